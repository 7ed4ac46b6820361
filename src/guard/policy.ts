/**
 * What a port guard is: the policy root attaches to a tap before its first frame (isolation, MAC
 * pinning, IP/ARP/ND source guard, rogue-server guard, BPDU guard, an EtherType allow-list), and its
 * one text form, the words of a bridge.conf `guard` line and of `qbh tap create --guard`:
 *
 * ```
 * isolated  mac=sticky[:N] | mac=MAC[,MAC…]  ip=PREFIX[,PREFIX…]  server-guard  bpdu-guard
 * ethertypes=ipv4,arp,ipv6[,0xHHHH…]  strict  none
 * ```
 *
 * `strict` is `isolated mac=sticky:1 server-guard bpdu-guard ethertypes=ipv4,arp,ipv6`; later words
 * add to or override it. `none` stands alone: no guard (an exemption from a wider `guard` line).
 * Imports nothing heavy: the helper parses guards on its start-up path.
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

/** EtherTypes by the names the guard's words use. */
export const ETHERTYPE_NAMES: ReadonlyMap<string, number> = new Map([
  ['ipv4', 0x0800],
  ['arp', 0x0806],
  ['ipv6', 0x86dd],
]);

/** The most MACs one port may hold (sticky cap or listed). */
export const MAX_GUARD_MACS = 16;
/** The most prefixes one `ip=` may list. */
export const MAX_GUARD_PREFIXES = 16;
/** The most EtherTypes one `ethertypes=` may list. */
export const MAX_GUARD_ETHERTYPES = 16;

/**
 * A port guard. Every field is optional; an empty object is no guard at all.
 * @category Guard
 */
export interface PortGuard {
  /** The port reaches non-isolated ports (the uplink, the gateway) but no other isolated port. Kernel port flag `isolated`. */
  isolated?: boolean;
  /**
   * MAC pinning. A list: frames only from these MACs (a locked port with static sticky FDB
   * entries: the bridge drops any other source), which no other port may claim. `'sticky'`: the port is
   * locked with MAC authentication bypass and qbhd makes the first {@link macLimit} MACs the guest
   * sends from static and sticky (switch-style port security); needs qbhd running.
   */
  mac?: 'sticky' | readonly string[];
  /** With `mac: 'sticky'`: how many MACs the port may hold (1–16, default 1). */
  macLimit?: number;
  /**
   * IP / ARP / neighbour-discovery source guard: IPv4 and IPv6 sources, ARP sender addresses and
   * NA targets must lie in these prefixes (`10.0.0.0/24`, `2001:db8::/64`). IPv4 0.0.0.0 passes for
   * DHCP client messages and ARP probes, `::` for ICMPv6 (DAD), IPv6 link-local (fe80::/10) unless a
   * link-local prefix is listed (then only those).
   */
  ips?: readonly string[];
  /** Rogue-server guard: DHCPv4 and DHCPv6 server messages, IPv6 router advertisements and redirects, ICMPv4 redirects and router advertisements from the guest are dropped. */
  serverGuard?: boolean;
  /** BPDU guard: frames to 01:80:c2:00:00:0X (STP, LACP, LLDP, 802.1X…) dropped, port flags `guard` and `root_block` set. */
  bpduGuard?: boolean;
  /** EtherType allow-list: frames of any other EtherType are dropped. */
  etherTypes?: readonly number[];
}

/** The words of `strict`. */
export const STRICT_WORDS: readonly string[] = ['isolated', 'mac=sticky:1', 'server-guard', 'bpdu-guard', 'ethertypes=ipv4,arp,ipv6'];

const MAC_TEXT = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Whether `g` asks for anything at all. */
export function isGuarded(g: PortGuard | null | undefined): g is PortGuard {
  if (!g) return false;
  return g.isolated === true || g.mac !== undefined || (g.ips?.length ?? 0) > 0 || g.serverGuard === true || g.bpduGuard === true || g.etherTypes !== undefined;
}

/**
 * Whether `g` needs a frame filter on the tap: anything but isolation and the MAC pin, which are
 * port flags and FDB entries (a pinned port's filter also checks that ARP's sender MAC is the frame's).
 */
export function needsFilter(g: PortGuard): boolean {
  return g.mac !== undefined || (g.ips?.length ?? 0) > 0 || g.serverGuard === true || g.bpduGuard === true || g.etherTypes !== undefined;
}

/** Why one word is not a guard word: the text of the error, naming the word. */
function bad(word: string, why: string): string {
  return `invalid guard word "${word}": ${why}`;
}

/** A MAC in canonical lower-case text, or null. */
function normalMac(text: string): string | null {
  const t = text.toLowerCase();
  if (!MAC_TEXT.test(t)) return null;
  const first = parseInt(t.slice(0, 2), 16);
  // A multicast source or the zero address is never a guest's.
  if (first & 1 || t === '00:00:00:00:00:00') return null;
  return t;
}

/** An IPv4 or IPv6 prefix in canonical form (`10.0.0.0/24`), or why not. Host bits must be zero. */
export function normalPrefix(text: string): string | { error: string } {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const lenText = slash < 0 ? null : text.slice(slash + 1);
  const bytes = addressBytes(addr);
  if (bytes === null) return { error: 'expected an IPv4 or IPv6 prefix such as 10.0.0.0/24' };
  const max = bytes.length * 8;
  if (lenText !== null && !/^[0-9]{1,3}$/.test(lenText)) return { error: `prefix length must be 0-${max}` };
  const len = lenText === null ? max : Number(lenText);
  if (len > max) return { error: `prefix length must be 0-${max}` };
  for (let bit = len; bit < max; bit++) {
    if (bytes[bit >> 3]! & (0x80 >> (bit & 7))) return { error: `host bits set (did you mean ${formatAddress(maskBytes(bytes, len))}/${len}?)` };
  }
  return `${formatAddress(bytes)}/${len}`;
}

/** `bytes` with every bit from `len` on cleared. */
function maskBytes(bytes: Uint8Array, len: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let bit = len; bit < out.length * 8; bit++) out[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return out;
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address in text, or null. */
export function addressBytes(text: string): Uint8Array | null {
  if (/^[0-9]{1,3}(\.[0-9]{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p) => p > 255)) return null;
    return Uint8Array.from(parts);
  }
  if (!/^[0-9a-fA-F:]+$/.test(text) || text.length > 39) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === null || tail === null) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** An address's text: dotted IPv4, or IPv6 with the longest run of zero groups as `::`. */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestAt < 0) return hex(groups);
  return `${hex(groups.slice(0, bestAt))}::${hex(groups.slice(bestAt + bestLen))}`;
}

/**
 * Reads guard words into a {@link PortGuard}; returns the guard, or the first problem as one line
 * naming the word (`invalid guard word "mac=sticky:99": at most 16 MACs`). `none` alone is the empty
 * guard. Never throws.
 */
export function readGuardWords(words: readonly string[]): PortGuard | { error: string } {
  if (words.length === 0) return { error: 'no guard words (write "none" for no guard)' };
  if (words.includes('none')) return words.length === 1 ? {} : { error: bad('none', 'stands alone') };
  const g: { -readonly [K in keyof PortGuard]: PortGuard[K] } = {};
  const expanded = words.flatMap((w) => (w === 'strict' ? STRICT_WORDS : [w]));
  for (const word of expanded) {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    const value = eq < 0 ? null : word.slice(eq + 1);
    if (key === 'isolated' || key === 'server-guard' || key === 'bpdu-guard') {
      if (value !== null) return { error: bad(word, 'takes no value') };
      if (key === 'isolated') g.isolated = true;
      else if (key === 'server-guard') g.serverGuard = true;
      else g.bpduGuard = true;
      continue;
    }
    if (value === null || value === '') return { error: bad(word, key === 'mac' || key === 'ip' || key === 'ethertypes' ? 'needs a value after "="' : 'unknown (expected isolated, mac=, ip=, server-guard, bpdu-guard, ethertypes=, strict or none)') };
    if (key === 'mac') {
      const sticky = /^sticky(?::([0-9]{1,3}))?$/.exec(value);
      if (sticky) {
        const n = sticky[1] === undefined ? 1 : Number(sticky[1]);
        if (n < 1 || n > MAX_GUARD_MACS) return { error: bad(word, `a port may hold 1-${MAX_GUARD_MACS} MACs`) };
        g.mac = 'sticky';
        g.macLimit = n;
        continue;
      }
      const macs: string[] = [];
      for (const m of value.split(',')) {
        const mac = normalMac(m);
        if (mac === null) return { error: bad(word, `"${m}" is not a unicast MAC such as 52:54:00:12:34:56 (or sticky[:N])`) };
        if (!macs.includes(mac)) macs.push(mac);
      }
      if (macs.length > MAX_GUARD_MACS) return { error: bad(word, `at most ${MAX_GUARD_MACS} MACs`) };
      g.mac = macs;
      delete g.macLimit;
      continue;
    }
    if (key === 'ip') {
      const prefixes = [...(g.ips ?? [])];
      for (const p of value.split(',')) {
        const n = normalPrefix(p);
        if (typeof n !== 'string') return { error: bad(word, `"${p}": ${n.error}`) };
        if (!prefixes.includes(n)) prefixes.push(n);
      }
      if (prefixes.length > MAX_GUARD_PREFIXES) return { error: bad(word, `at most ${MAX_GUARD_PREFIXES} prefixes`) };
      g.ips = prefixes;
      continue;
    }
    if (key === 'ethertypes') {
      const types: number[] = [];
      for (const t of value.split(',')) {
        const named = ETHERTYPE_NAMES.get(t.toLowerCase());
        const n = named ?? (/^0x[0-9a-fA-F]{4}$/.test(t) ? parseInt(t.slice(2), 16) : -1);
        if (n < 0x0600) return { error: bad(word, `"${t}" is not an EtherType (ipv4, arp, ipv6 or 0x0600-0xffff)`) };
        if (n === 0x8100 || n === 0x88a8 || n === 0x9100) return { error: bad(word, `"${t}": VLAN tags are always dropped on a guarded port`) };
        if (!types.includes(n)) types.push(n);
      }
      if (types.length > MAX_GUARD_ETHERTYPES) return { error: bad(word, `at most ${MAX_GUARD_ETHERTYPES} EtherTypes`) };
      g.etherTypes = types;
      continue;
    }
    return { error: bad(word, 'unknown (expected isolated, mac=, ip=, server-guard, bpdu-guard, ethertypes=, strict or none)') };
  }
  return g;
}

/**
 * Parses guard words (an array, or one string split at whitespace) into a {@link PortGuard}, or
 * throws an {@link InvalidArgumentError} naming the word. `op` names the operation for the error.
 * @category Guard
 */
export function parseGuard(words: string | readonly string[], op = 'parseGuard'): PortGuard {
  const list = typeof words === 'string' ? words.split(/\s+/).filter((w) => w !== '') : words;
  const g = readGuardWords(list);
  if ('error' in g) throw new InvalidArgumentError(g.error as string, { op });
  return g;
}

/** The text of an EtherType: its name, or `0xHHHH`. */
export function etherTypeText(t: number): string {
  for (const [name, v] of ETHERTYPE_NAMES) if (v === t) return name;
  return `0x${t.toString(16).padStart(4, '0')}`;
}

/**
 * The canonical words of a guard (`none` for no guard): what `qbh acl check`, the audit line and
 * the tap's alias show, and what {@link parseGuard} reads back to the same guard.
 * @category Guard
 */
export function formatGuard(g: PortGuard | null | undefined): string {
  if (!isGuarded(g)) return 'none';
  const words: string[] = [];
  if (g.isolated) words.push('isolated');
  if (g.mac === 'sticky') words.push(`mac=sticky:${g.macLimit ?? 1}`);
  else if (g.mac !== undefined) words.push(`mac=${g.mac.join(',')}`);
  if (g.ips !== undefined && g.ips.length > 0) words.push(`ip=${g.ips.join(',')}`);
  if (g.serverGuard) words.push('server-guard');
  if (g.bpduGuard) words.push('bpdu-guard');
  if (g.etherTypes !== undefined) words.push(`ethertypes=${g.etherTypes.map(etherTypeText).join(',')}`);
  return words.join(' ');
}

/**
 * Checks a guard given through the API (any shape) and returns it in canonical form, or throws an
 * {@link InvalidArgumentError} naming the field: the same rules as the words.
 */
export function checkGuard(g: unknown, op: string, target?: string): PortGuard {
  if (g === null || typeof g !== 'object' || Array.isArray(g)) throw new InvalidArgumentError('invalid guard: expected an object such as { isolated: true, mac: "sticky" }', { op, target });
  const o = g as Record<string, unknown>;
  const known = new Set(['isolated', 'mac', 'macLimit', 'ips', 'serverGuard', 'bpduGuard', 'etherTypes']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new InvalidArgumentError(`invalid guard: unknown field "${k}"`, { op, target });
  const words: string[] = [];
  const flag = (k: string, word: string) => {
    if (o[k] === undefined || o[k] === false) return;
    if (o[k] !== true) throw new InvalidArgumentError(`invalid guard.${k}: expected true or false`, { op, target });
    words.push(word);
  };
  flag('isolated', 'isolated');
  flag('serverGuard', 'server-guard');
  flag('bpduGuard', 'bpdu-guard');
  if (o['mac'] === 'sticky') {
    const n = o['macLimit'] ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new InvalidArgumentError('invalid guard.macLimit: expected an integer', { op, target });
    words.push(`mac=sticky:${n}`);
  } else if (o['mac'] !== undefined) {
    if (!Array.isArray(o['mac']) || o['mac'].length === 0 || o['mac'].some((m) => typeof m !== 'string')) throw new InvalidArgumentError('invalid guard.mac: expected "sticky" or a list of MACs', { op, target });
    if (o['macLimit'] !== undefined) throw new InvalidArgumentError('invalid guard.macLimit: only with mac: "sticky"', { op, target });
    words.push(`mac=${(o['mac'] as string[]).join(',')}`);
  } else if (o['macLimit'] !== undefined) throw new InvalidArgumentError('invalid guard.macLimit: only with mac: "sticky"', { op, target });
  if (o['ips'] !== undefined) {
    if (!Array.isArray(o['ips']) || o['ips'].some((p) => typeof p !== 'string' || p === '' || p.includes(','))) throw new InvalidArgumentError('invalid guard.ips: expected a list of prefixes such as "10.0.0.0/24"', { op, target });
    if (o['ips'].length > 0) words.push(`ip=${(o['ips'] as string[]).join(',')}`);
  }
  if (o['etherTypes'] !== undefined) {
    if (!Array.isArray(o['etherTypes']) || o['etherTypes'].some((t) => typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffff)) throw new InvalidArgumentError('invalid guard.etherTypes: expected a list of EtherType numbers such as 0x0800', { op, target });
    if (o['etherTypes'].length === 0) throw new InvalidArgumentError('invalid guard.etherTypes: an empty allow-list would drop every frame', { op, target });
    words.push(`ethertypes=${(o['etherTypes'] as number[]).map((t) => `0x${t.toString(16).padStart(4, '0')}`).join(',')}`);
  }
  if (words.length === 0) return {};
  const parsed = readGuardWords(words);
  if ('error' in parsed) throw new InvalidArgumentError(parsed.error as string, { op, target });
  return parsed;
}
