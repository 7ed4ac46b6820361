/**
 * Stable bridge MACs. A bridge created without an address takes the lowest MAC of its ports, so it
 * changes whenever a port comes or goes (with only taps: random, then a tap's fe:…, then another,
 * then 00:00:00:00:00:00 with no ports), and every neighbour's ARP cache goes stale. Giving the
 * bridge a MAC at creation sets its addr_assign_type to NET_ADDR_SET, and the kernel then never
 * recalculates it (net/bridge/br_stp_if.c, br_stp_recalculate_bridge_id: "user has chosen a value").
 *
 * The MAC is derived the way systemd-networkd's `MACAddressPolicy=persistent` derives one for a
 * netdev (src/network/netdev/netdev.c): a keyed hash of /etc/machine-id with an application-specific
 * key, and the interface name, made a locally administered unicast address. The same name on the
 * same machine gets the same MAC, across re-creation and reboots; another machine gets another one.
 * systemd hashes with SipHash-2-4; qbh uses HMAC-SHA256 (in node:crypto), so the addresses are
 * qbh's own and never collide on purpose with networkd's.
 * @module
 */
import type { createHmac as CreateHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { QbhError } from '../errors.js';

/**
 * node:crypto, loaded on the first derivation: index.ts re-exports this module, so every program
 * that imports the API (the `qbh` CLI at each start) would otherwise load node:crypto and OpenSSL's
 * ciphers for nothing (docs/performance.md has the measurement).
 */
let hmac: typeof CreateHmac | undefined;
const createHmac: typeof CreateHmac = (...args) => (hmac ??= (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')).createHmac)(...args);

/** One octet of MAC text: two hex digits. */
const MAC_OCTET = /^[0-9a-fA-F]{2}$/;

/**
 * MAC text to bytes, the one parser of the codebase: two hex digits an octet, colon-separated
 * (`aa:bb:cc:dd:ee:ff`). `octets`: how many there must be (6 for Ethernet); without it any number,
 * `''` being none (hardware addresses of other lengths decode to as many octets). Throws a
 * TypeError on anything else; callers facing users check the text first (validate.ts checkMac).
 */
export function parseMac(text: string, octets?: number): Buffer {
  const parts = text === '' && octets === undefined ? [] : text.split(':');
  if ((octets !== undefined && parts.length !== octets) || !parts.every((p) => MAC_OCTET.test(p))) {
    throw new TypeError(`invalid MAC address "${text}"`);
  }
  return Buffer.from(parts.map((h) => parseInt(h, 16)));
}

/** Bytes to MAC text, `aa:bb:cc:dd:ee:ff` (lower case, two digits an octet). */
export const formatMac = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');

/** qbh's application id, a fixed random 128-bit value (as systemd's per-use HASH_KEY). */
const QBH_APP_ID = Buffer.from('8f3b0c5e2a7d4e19b6c1d0a47e5f2b93', 'hex');

/** Where the machine id is looked for, in order: machine-id(5), then D-Bus's copy of it. */
const MACHINE_ID_FILES = ['/etc/machine-id', '/var/lib/dbus/machine-id'];
/** The fallback when no machine id exists: random per boot (stable until reboot). */
const BOOT_ID_FILE = '/proc/sys/kernel/random/boot_id';

/** Where a persistent MAC's machine secret came from. */
export type PersistentMacSource = 'machine-id' | 'boot-id';

/** A derived MAC and what it was derived from. */
export interface PersistentMac {
  /** `aa:bb:cc:dd:ee:ff`: locally administered (bit 1 of octet 0 set), unicast (bit 0 clear). */
  address: string;
  /**
   * `machine-id`: stable for this name on this machine. `boot-id`: there was no machine id
   * (/etc/machine-id and /var/lib/dbus/machine-id missing or empty, as in some containers), so the
   * MAC is stable only until the next reboot; a warning (`QBH_NO_MACHINE_ID`) is emitted once.
   */
  source: PersistentMacSource;
}

/** 32 hex digits (machine-id(5)) or a UUID (boot_id) as 16 bytes; undefined if the file has neither. */
function readId(file: string): Buffer | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const hex = text.trim().replace(/-/g, '');
  return /^[0-9a-f]{32}$/i.test(hex) && !/^0+$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

let warned = false;

function machineSecret(): { id: Buffer; source: PersistentMacSource } {
  for (const f of MACHINE_ID_FILES) {
    const id = readId(f);
    if (id) return { id, source: 'machine-id' };
  }
  const boot = readId(BOOT_ID_FILE);
  if (!boot) {
    throw new QbhError(`no machine id (${MACHINE_ID_FILES.join(', ')}) and no ${BOOT_ID_FILE} to derive a MAC from; pass an address`, {
      code: 'ENOENT',
      op: 'persistentMac',
    });
  }
  if (!warned) {
    warned = true;
    process.emitWarning(
      `no machine id in ${MACHINE_ID_FILES.join(' or ')}: bridge MACs are derived from the boot id and change at reboot ` +
        '(create /etc/machine-id, e.g. with systemd-machine-id-setup, or pass an address)',
      { code: 'QBH_NO_MACHINE_ID' },
    );
  }
  return { id: boot, source: 'boot-id' };
}

/**
 * The persistent MAC qbh gives a bridge named `name` on this machine (createBridge's default):
 * HMAC-SHA256 keyed with an application-specific key (itself HMAC-SHA256 of the machine id and
 * qbh's app id, as sd_id128_get_machine_app_specific(3) derives one), over the name; its first six
 * bytes, with the multicast bit cleared and the locally-administered bit set.
 * No iproute2 equivalent (systemd-networkd's `MACAddressPolicy=persistent` for netdevs).
 * @category Links and bridges
 */
export function persistentMac(name: string): PersistentMac {
  const { id, source } = machineSecret();
  const appKey = createHmac('sha256', id).update(QBH_APP_ID).digest().subarray(0, 16);
  const b = createHmac('sha256', appKey).update(name, 'utf8').digest().subarray(0, 6);
  b[0] = (b[0]! & 0xfe) | 0x02; // unicast, locally administered (as the kernel's eth_random_addr)
  return { address: formatMac(b), source };
}
