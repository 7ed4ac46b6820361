/**
 * The generic netlink attribute codec: TLVs with 4-byte alignment and nesting, driven by
 * declarative tables (one row per kernel attribute). Decoding keeps enough of the original bytes
 * that an unchanged object re-encodes byte for byte, unknown attributes included.
 * @module
 */
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK } from './constants.js';
import { NetlinkDecodeError } from './errors.js';

/** Scalar attribute payloads. */
export type ScalarKind =
  | 'u8'
  | 'u16'
  | 'u32'
  | 'u64'
  | 's32'
  | 'be16'
  | 'string'
  | 'binary'
  | 'mac'
  | 'flag';

/** One field of a fixed C struct carried in an attribute. */
export type StructField = readonly [name: string, kind: 'u8' | 'u16' | 'u32' | 'u64' | 'be16' | 'mac'];

/** How an attribute's payload is read. */
export type AttrKind =
  | ScalarKind
  | { readonly nested: AttrTable }
  /** A nested attribute whose table depends on a sibling already decoded (IFLA_INFO_DATA by kind). */
  | { readonly nestedBy: string; readonly tables: Readonly<Record<string, AttrTable>> }
  /** A nest whose children are all of one kind, keyed by their type number (IFLA_AF_SPEC by family). */
  | { readonly byType: Readonly<Record<number, AttrTable>> }
  /** A C struct, read by its minimum length; extra bytes a newer kernel adds are kept, not an error. */
  | { readonly struct: readonly StructField[] };

/** A table row: kernel type number, kernel name, field name, payload kind, and whether it repeats. */
export interface AttrRow {
  readonly type: number;
  readonly name: string;
  readonly key: string;
  readonly kind: AttrKind;
  readonly multi?: boolean;
}

/** A declarative attribute table (IFLA_*, IFLA_BR_*, …). */
export interface AttrTable {
  readonly name: string;
  readonly rows: readonly AttrRow[];
  readonly byType: ReadonlyMap<number, AttrRow>;
  readonly byKey: ReadonlyMap<string, AttrRow>;
}

type RowSpec = readonly [type: number, name: string, key: string, kind: AttrKind, opts?: { multi?: boolean }];

/** Builds a table from rows `[type, 'IFLA_MTU', 'mtu', 'u32']`. */
export function defineTable(name: string, rows: readonly RowSpec[]): AttrTable {
  const out: AttrRow[] = rows.map(([type, kname, key, kind, opts]) => ({ type, name: kname, key, kind, multi: opts?.multi ?? false }));
  return {
    name,
    rows: out,
    byType: new Map(out.map((r) => [r.type, r])),
    byKey: new Map(out.map((r) => [r.key, r])),
  };
}

/** An attribute the table does not know: kept as its raw type (flags included) and payload. */
export interface RawAttr {
  type: number;
  data: Buffer;
}

/** A decoded attribute set: named fields, plus `unknown` for attributes outside the table. */
export interface AttrSet {
  [key: string]: unknown;
  unknown?: RawAttr[];
}

/** One attribute as it was on the wire, so encode can repeat it. */
interface OrderEntry {
  key?: string;
  unknown?: RawAttr;
  rawType: number;
  /** Present only when the canonical encoding of `value` differs from what was received. */
  raw?: Buffer;
  value?: unknown;
}

const ORDER: unique symbol = Symbol('netlink attribute order');
type WithOrder = AttrSet & { [ORDER]?: OrderEntry[] };

const SIZES: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, s32: 4, be16: 2, mac: 6 };

export const align4 = (n: number): number => (n + 3) & ~3;

function decodeMac(b: Buffer, off = 0, len = 6): string {
  let s = '';
  for (let i = 0; i < len; i++) s += (i ? ':' : '') + (b[off + i]! < 16 ? '0' : '') + b[off + i]!.toString(16);
  return s;
}

/** Parses `aa:bb:cc:dd:ee:ff` into 6 bytes; throws TypeError on anything else. */
export function parseMac(mac: string): Buffer {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) throw new TypeError(`invalid MAC address "${mac}"`);
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

function readFixed(kind: string, b: Buffer, off: number): unknown {
  switch (kind) {
    case 'u8':
      return b.readUInt8(off);
    case 'u16':
      return b.readUInt16LE(off);
    case 'u32':
      return b.readUInt32LE(off);
    case 's32':
      return b.readInt32LE(off);
    case 'be16':
      return b.readUInt16BE(off);
    case 'u64':
      return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x100000000;
    case 'mac':
      return decodeMac(b, off);
  }
  throw new Error(`unreachable kind ${kind}`);
}

/** True when a u64 at `off` does not fit a double exactly (its number form would be lossy). */
const u64Lossy = (b: Buffer, off: number): boolean => b.readUInt32LE(off + 4) > 0x1fffff;

function writeFixed(kind: string, value: unknown, b: Buffer, off: number): void {
  switch (kind) {
    case 'u8':
      b.writeUInt8(Number(value), off);
      return;
    case 'u16':
      b.writeUInt16LE(Number(value), off);
      return;
    case 'u32':
      b.writeUInt32LE(Number(value) >>> 0, off);
      return;
    case 's32':
      b.writeInt32LE(Number(value), off);
      return;
    case 'be16':
      b.writeUInt16BE(Number(value), off);
      return;
    case 'u64':
      b.writeBigUInt64LE(BigInt(value as number), off);
      return;
    case 'mac':
      (typeof value === 'string' ? parseMac(value) : (value as Buffer)).copy(b, off);
      return;
  }
  throw new Error(`unreachable kind ${kind}`);
}

function structSize(fields: readonly StructField[]): number {
  return fields.reduce((n, [, k]) => n + SIZES[k]!, 0);
}

/** Decodes one payload. Returns the value and whether the bytes are in canonical form. */
function decodeValue(row: AttrRow, data: Buffer, parent: AttrSet): { value: unknown; canonical: boolean } {
  const kind = row.kind;
  if (typeof kind === 'string') {
    switch (kind) {
      case 'flag':
        return { value: true, canonical: data.length === 0 };
      case 'binary':
        // A view into the received datagram, not a copy: dumps carry kilobytes of these per link.
        return { value: data, canonical: true };
      case 'string': {
        const nul = data.indexOf(0);
        const value = data.toString('utf8', 0, nul < 0 ? data.length : nul);
        const canonical = nul === data.length - 1 && Buffer.byteLength(value) === nul;
        return { value, canonical };
      }
      case 'mac':
        // Hardware addresses of other lengths (none, infiniband) stay as they are.
        return data.length === 6 ? { value: decodeMac(data), canonical: true } : { value: decodeMac(data, 0, data.length), canonical: false };
      default: {
        const size = SIZES[kind]!;
        if (data.length < size) throw new NetlinkDecodeError(`${row.name}: ${data.length} bytes, expected ${size}`);
        const value = readFixed(kind, data, 0);
        const lossy = kind === 'u64' && u64Lossy(data, 0);
        return { value, canonical: data.length === size && !lossy };
      }
    }
  }
  if ('nested' in kind) return decodeNest(kind.nested, data);
  if ('nestedBy' in kind) {
    const table = kind.tables[String(parent[kind.nestedBy])];
    if (!table) return { value: data, canonical: true };
    return decodeNest(table, data);
  }
  if ('byType' in kind) {
    const out: Record<string, unknown> = {};
    let canonical = true;
    walk(data, (type, payload) => {
      const t = kind.byType[type & NLA_TYPE_MASK];
      if (!t || out[type & NLA_TYPE_MASK] !== undefined) {
        canonical = false;
        return;
      }
      const r = decodeNest(t, payload);
      canonical &&= r.canonical;
      out[type & NLA_TYPE_MASK] = r.value;
    });
    return { value: out, canonical: canonical && data.length % 4 === 0 };
  }
  const min = structSize(kind.struct);
  if (data.length < min) throw new NetlinkDecodeError(`${row.name}: ${data.length} bytes, expected at least ${min}`);
  const out: Record<string, unknown> = {};
  let off = 0;
  let lossy = false;
  for (const [name, k] of kind.struct) {
    out[name] = readFixed(k, data, off);
    if (k === 'u64' && u64Lossy(data, off)) lossy = true;
    off += SIZES[k]!;
  }
  return { value: out, canonical: data.length === min && !lossy };
}

function decodeNest(table: AttrTable, data: Buffer): { value: AttrSet; canonical: boolean } {
  return { value: decodeAttrs(table, data), canonical: data.length % 4 === 0 };
}

/** Calls `fn(type, payload)` for each attribute in `buf`; throws NetlinkDecodeError on bad lengths. */
export function walk(buf: Buffer, fn: (type: number, payload: Buffer) => void): void {
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLA_HDRLEN) {
      // Trailing bytes shorter than a header: padding, or garbage.
      if (buf.subarray(off).every((b) => b === 0)) return;
      throw new NetlinkDecodeError(`truncated attribute header at offset ${off}`);
    }
    const len = buf.readUInt16LE(off);
    const type = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN || off + len > buf.length) {
      throw new NetlinkDecodeError(`attribute type ${type & NLA_TYPE_MASK} at offset ${off}: bad length ${len}`);
    }
    fn(type, buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
}

/** Decodes the attributes in `buf` with `table`. Throws only NetlinkDecodeError. */
export function decodeAttrs(table: AttrTable, buf: Buffer): AttrSet {
  const out: WithOrder = {};
  const order: OrderEntry[] = [];
  let off = 0;
  // The walk() loop, inlined: this is the hot path of every dump.
  while (off < buf.length) {
    if (buf.length - off < NLA_HDRLEN) {
      if (buf.subarray(off).every((b) => b === 0)) break;
      throw new NetlinkDecodeError(`truncated attribute header at offset ${off}`);
    }
    const len = buf.readUInt16LE(off);
    const rawType = buf.readUInt16LE(off + 2);
    if (len < NLA_HDRLEN || off + len > buf.length) {
      throw new NetlinkDecodeError(`attribute type ${rawType & NLA_TYPE_MASK} at offset ${off}: bad length ${len}`);
    }
    const payload = buf.subarray(off + NLA_HDRLEN, off + len);
    off += (len + 3) & ~3;
    const row = table.byType.get(rawType & NLA_TYPE_MASK);
    if (!row || (!row.multi && out[row.key] !== undefined)) {
      const unknown: RawAttr = { type: rawType, data: payload };
      (out.unknown ??= []).push(unknown);
      order.push({ unknown, rawType });
      continue;
    }
    const { value, canonical } = decodeValue(row, payload, out);
    const entry: OrderEntry = { key: row.key, rawType };
    if (!canonical) {
      entry.raw = payload;
      entry.value = value;
    }
    if (row.multi) ((out[row.key] as unknown[] | undefined) ?? (out[row.key] = [] as unknown[]) as unknown[]).push(value);
    else out[row.key] = value;
    order.push(entry);
  }
  Object.defineProperty(out, ORDER, { value: order, enumerable: false });
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => sameValue((a as any)[k], (b as any)[k]));
  }
  return false;
}

/** Encodes one payload in canonical form. */
function encodeValue(row: AttrRow, value: unknown, parent: AttrSet): Buffer {
  const kind = row.kind;
  if (typeof kind === 'string') {
    switch (kind) {
      case 'flag':
        return Buffer.alloc(0);
      case 'binary':
        return Buffer.from(value as Uint8Array);
      case 'string':
        return Buffer.concat([Buffer.from(String(value), 'utf8'), Buffer.alloc(1)]);
      case 'mac':
        return typeof value === 'string' ? Buffer.from(value.split(':').map((h) => parseInt(h, 16))) : Buffer.from(value as Uint8Array);
      default: {
        const b = Buffer.alloc(SIZES[kind]!);
        writeFixed(kind, value, b, 0);
        return b;
      }
    }
  }
  if ('nested' in kind) return encodeAttrs(kind.nested, value as AttrSet);
  if ('nestedBy' in kind) {
    const table = kind.tables[String(parent[kind.nestedBy])];
    return table && !Buffer.isBuffer(value) ? encodeAttrs(table, value as AttrSet) : Buffer.from(value as Uint8Array);
  }
  if ('byType' in kind) {
    const parts: Buffer[] = [];
    for (const [t, v] of Object.entries(value as Record<string, AttrSet>)) {
      const table = kind.byType[Number(t)]!;
      parts.push(attr(Number(t), encodeAttrs(table, v)));
    }
    return Buffer.concat(parts);
  }
  const b = Buffer.alloc(structSize(kind.struct));
  let off = 0;
  for (const [name, k] of kind.struct) {
    writeFixed(k, (value as Record<string, unknown>)[name], b, off);
    off += SIZES[k]!;
  }
  return b;
}

/** One attribute: header, payload, zero padding to 4 bytes. */
export function attr(type: number, payload: Buffer): Buffer {
  const len = NLA_HDRLEN + payload.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, NLA_HDRLEN);
  return b;
}

function isNestKind(kind: AttrKind): boolean {
  return typeof kind !== 'string' && !('struct' in kind);
}

/**
 * Encodes an attribute set. A decoded set re-emits its attributes in their original order and
 * form (unknown ones included); fields added or changed since are encoded canonically, with
 * NLA_F_NESTED on nests; fields set to `undefined` are left out.
 */
export function encodeAttrs(table: AttrTable, set: AttrSet): Buffer {
  const parts: Buffer[] = [];
  const done = new Set<string>();
  const doneUnknown = new Set<RawAttr>();
  const emit = (row: AttrRow, value: unknown, rawType: number, entry?: OrderEntry) => {
    if (entry?.raw && sameValue(value, entry.value)) parts.push(attr(rawType, entry.raw));
    else parts.push(attr(rawType, encodeValue(row, value, set)));
  };
  const order = (set as WithOrder)[ORDER] ?? [];
  const multiIndex = new Map<string, number>();
  for (const entry of order) {
    if (entry.unknown) {
      if (set.unknown?.includes(entry.unknown)) {
        parts.push(attr(entry.unknown.type, entry.unknown.data));
        doneUnknown.add(entry.unknown);
      }
      continue;
    }
    const row = table.byKey.get(entry.key!)!;
    const value = set[row.key];
    if (value === undefined) continue;
    if (row.multi) {
      const i = multiIndex.get(row.key) ?? 0;
      multiIndex.set(row.key, i + 1);
      const arr = value as unknown[];
      if (i < arr.length) emit(row, arr[i], entry.rawType, entry);
      if (i + 1 >= arr.length) done.add(row.key);
      continue;
    }
    emit(row, value, entry.rawType, entry);
    done.add(row.key);
  }
  for (const row of table.rows) {
    const value = set[row.key];
    if (value === undefined || done.has(row.key)) continue;
    const type = row.type | (isNestKind(row.kind) ? NLA_F_NESTED : 0);
    if (row.multi) {
      for (const v of (value as unknown[]).slice(multiIndex.get(row.key) ?? 0)) emit(row, v, type);
    } else emit(row, value, type);
  }
  for (const u of set.unknown ?? []) if (!doneUnknown.has(u)) parts.push(attr(u.type, u.data));
  return Buffer.concat(parts);
}
