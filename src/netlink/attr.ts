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

/**
 * How a decoded set looked on the wire, so an unchanged set re-encodes byte for byte: per
 * attribute its raw type (flags included) and its key (or the unknown attribute itself), and, only
 * for payloads that were not in canonical form, the received bytes with the value they decoded to.
 */
interface WireOrder {
  types: number[];
  items: (string | RawAttr)[];
  raw?: Map<number, { bytes: Buffer; value: unknown }>;
}

const ORDER: unique symbol = Symbol('netlink attribute order');
type WithOrder = AttrSet & { [ORDER]?: WireOrder };

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

/** Set by decodeValue when the payload it read was not in canonical form. */
let nonCanonical = false;

/**
 * Decodes the payload at buf[start, end). Scalars are read in place (no Buffer view per
 * attribute: this is the hot path of every dump); sets `nonCanonical` when re-encoding the value
 * would not give the same bytes.
 */
function decodeValue(row: AttrRow, buf: Buffer, start: number, end: number, parent: AttrSet): unknown {
  const kind = row.kind;
  const len = end - start;
  if (typeof kind === 'string') {
    switch (kind) {
      case 'u32':
        if (len !== 4) return fixedOdd(row, kind, buf, start, len);
        return buf.readUInt32LE(start);
      case 'u8':
        if (len !== 1) return fixedOdd(row, kind, buf, start, len);
        return buf[start];
      case 'u16':
        if (len !== 2) return fixedOdd(row, kind, buf, start, len);
        return buf.readUInt16LE(start);
      case 'flag':
        if (len !== 0) nonCanonical = true;
        return true;
      case 'binary':
        // A view into the received datagram, not a copy: dumps carry kilobytes of these per link.
        return buf.subarray(start, end);
      case 'string': {
        const nul = buf.indexOf(0, start);
        const stop = nul < 0 || nul >= end ? end : nul;
        const value = buf.toString('utf8', start, stop);
        if (stop !== end - 1 || Buffer.byteLength(value) !== stop - start) nonCanonical = true;
        return value;
      }
      case 'mac':
        // Hardware addresses of other lengths (none, infiniband) stay as they are.
        if (len !== 6) nonCanonical = true;
        return decodeMac(buf, start, len);
      default:
        return fixedOdd(row, kind, buf, start, len);
    }
  }
  const data = buf.subarray(start, end);
  if ('nested' in kind) return decodeNest(kind.nested, data);
  if ('nestedBy' in kind) {
    const table = kind.tables[String(parent[kind.nestedBy])];
    return table ? decodeNest(table, data) : data;
  }
  if ('byType' in kind) {
    const out: Record<string, unknown> = {};
    let canonical = data.length % 4 === 0;
    walk(data, (type, payload) => {
      const t = kind.byType[type & NLA_TYPE_MASK];
      if (!t || out[type & NLA_TYPE_MASK] !== undefined) {
        canonical = false;
        return;
      }
      out[type & NLA_TYPE_MASK] = decodeNest(t, payload);
    });
    if (!canonical) nonCanonical = true;
    return out;
  }
  const min = structSize(kind.struct);
  if (len < min) throw new NetlinkDecodeError(`${row.name}: ${len} bytes, expected at least ${min}`);
  const out: Record<string, unknown> = {};
  let off = start;
  for (const [name, k] of kind.struct) {
    out[name] = readFixed(k, buf, off);
    if (k === 'u64' && u64Lossy(buf, off)) nonCanonical = true;
    off += SIZES[k]!;
  }
  if (len !== min) nonCanonical = true;
  return out;
}

/** Fixed-size scalars of other widths, and fixed ones of an unexpected length. */
function fixedOdd(row: AttrRow, kind: string, buf: Buffer, start: number, len: number): unknown {
  const size = SIZES[kind]!;
  if (len < size) throw new NetlinkDecodeError(`${row.name}: ${len} bytes, expected ${size}`);
  if (len !== size || (kind === 'u64' && u64Lossy(buf, start))) nonCanonical = true;
  return readFixed(kind, buf, start);
}

/** A nest decodes as a set; one whose length is not a multiple of 4 is kept as received. */
function decodeNest(table: AttrTable, data: Buffer): AttrSet {
  const outer = nonCanonical;
  const set = decodeAttrs(table, data);
  nonCanonical = outer || data.length % 4 !== 0;
  return set;
}

/** The length of the attribute at `off`, 0 for trailing zero padding; throws on a bad one. */
function attrLength(buf: Buffer, off: number): number {
  if (buf.length - off < NLA_HDRLEN) {
    for (let i = off; i < buf.length; i++) {
      if (buf[i] !== 0) throw new NetlinkDecodeError(`truncated attribute header at offset ${off}`);
    }
    return 0;
  }
  const len = buf.readUInt16LE(off);
  if (len < NLA_HDRLEN || off + len > buf.length) {
    throw new NetlinkDecodeError(`attribute type ${buf.readUInt16LE(off + 2) & NLA_TYPE_MASK} at offset ${off}: bad length ${len}`);
  }
  return len;
}

/** Calls `fn(type, payload)` for each attribute in `buf`; throws NetlinkDecodeError on bad lengths. */
export function walk(buf: Buffer, fn: (type: number, payload: Buffer) => void): void {
  for (let off = 0; off < buf.length; ) {
    const len = attrLength(buf, off);
    if (len === 0) return;
    fn(buf.readUInt16LE(off + 2), buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
}

/** Decodes the attributes in `buf` with `table`. Throws only NetlinkDecodeError. */
export function decodeAttrs(table: AttrTable, buf: Buffer): AttrSet {
  const out: WithOrder = {};
  const order: WireOrder = { types: [], items: [] };
  for (let off = 0; off < buf.length; ) {
    const len = attrLength(buf, off);
    if (len === 0) break;
    const rawType = buf.readUInt16LE(off + 2);
    const start = off + NLA_HDRLEN;
    const end = off + len;
    off += (len + 3) & ~3;
    const row = table.byType.get(rawType & NLA_TYPE_MASK);
    order.types.push(rawType);
    if (!row || (!row.multi && out[row.key] !== undefined)) {
      const unknown: RawAttr = { type: rawType, data: buf.subarray(start, end) };
      (out.unknown ??= []).push(unknown);
      order.items.push(unknown);
      continue;
    }
    nonCanonical = false;
    const value = decodeValue(row, buf, start, end, out);
    if (nonCanonical) (order.raw ??= new Map()).set(order.items.length, { bytes: buf.subarray(start, end), value });
    order.items.push(row.key);
    if (row.multi) ((out[row.key] as unknown[] | undefined) ?? (out[row.key] = [] as unknown[]) as unknown[]).push(value);
    else out[row.key] = value;
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
  const emit = (row: AttrRow, value: unknown, rawType: number, received?: { bytes: Buffer; value: unknown }) => {
    if (received && sameValue(value, received.value)) parts.push(attr(rawType, received.bytes));
    else parts.push(attr(rawType, encodeValue(row, value, set)));
  };
  const order = (set as WithOrder)[ORDER];
  const multiIndex = new Map<string, number>();
  for (let i = 0; order && i < order.items.length; i++) {
    const item = order.items[i]!;
    if (typeof item !== 'string') {
      if (set.unknown?.includes(item)) {
        parts.push(attr(item.type, item.data));
        doneUnknown.add(item);
      }
      continue;
    }
    const row = table.byKey.get(item)!;
    const value = set[row.key];
    if (value === undefined) continue;
    const received = order.raw?.get(i);
    if (row.multi) {
      const n = multiIndex.get(row.key) ?? 0;
      multiIndex.set(row.key, n + 1);
      const arr = value as unknown[];
      if (n < arr.length) emit(row, arr[n], order.types[i]!, received);
      if (n + 1 >= arr.length) done.add(row.key);
      continue;
    }
    emit(row, value, order.types[i]!, received);
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
