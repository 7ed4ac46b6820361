/**
 * The generic netlink attribute codec: TLVs with 4-byte alignment and nesting, driven by
 * declarative tables (one row per kernel attribute). Decoding keeps enough of the original bytes
 * that an unchanged object re-encodes byte for byte, unknown attributes included.
 * @module
 */
import { NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK } from './constants.js';
import { NetlinkDecodeError } from './errors.js';
import { compileBuilder } from './fast-objects.js';
import { parseMac } from './mac.js';
import { attrLength, eachAttr } from './wire.js';

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

/** Fixed-width numbers: decoded as a JavaScript number. */
type NumberKind = 'u8' | 'u16' | 'u32' | 'u64' | 's32' | 'be16';

/** One field of a fixed C struct carried in an attribute. */
export type StructField = readonly [name: string, kind: Exclude<NumberKind, 's32'> | 'mac'];

/** How an attribute's payload is read. */
export type AttrKind =
  | ScalarKind
  | { readonly nested: AttrTable<any> }
  /** A nested attribute whose table depends on a sibling already decoded (IFLA_INFO_DATA by kind). */
  | { readonly nestedBy: string; readonly tables: Readonly<Record<string, AttrTable<any>>> }
  /** A nest whose children are all of one kind, keyed by their type number (IFLA_AF_SPEC by family). */
  | { readonly byType: Readonly<Record<number, AttrTable<any>>> }
  /** A C struct, read by its minimum length; extra bytes a newer kernel adds are kept, not an error. */
  | { readonly struct: readonly StructField[] };

/** A table row: kernel type number, kernel name, field name, payload kind, and whether it repeats. */
export interface AttrRow {
  /** Position in its table. */
  readonly index: number;
  readonly type: number;
  readonly name: string;
  readonly key: string;
  readonly kind: AttrKind;
  readonly multi?: boolean;
}

/**
 * A declarative attribute table (IFLA_*, IFLA_BR_*, …). `S` is the decoded set's type, derived
 * from the rows by {@link defineTable}: see {@link Decoded}.
 */
export interface AttrTable<S extends AttrSet = AttrSet> {
  readonly name: string;
  readonly rows: readonly AttrRow[];
  /** The rows in an array indexed by type number (a lookup cheaper than a Map's on the decoder's path). */
  readonly rowByType: readonly (AttrRow | undefined)[];
  readonly byKey: ReadonlyMap<string, AttrRow>;
  /** Makes a decoded set from values by row index (a fast object: see fast-objects.ts). */
  readonly build: (values: ArrayLike<unknown>) => S;
}

/** A table row as written in a table: `[type, 'IFLA_MTU', 'mtu', 'u32']`, options last. */
export type RowSpec = readonly [type: number, name: string, key: string, kind: AttrKind, opts?: { readonly multi?: boolean }];

/** An object type written out (for readable hovers and messages). */
type Flat<T> = { [K in keyof T]: T[K] } & {};

/** The decoded type of a table's set. */
type SetOf<T> = T extends AttrTable<infer S> ? S : never;

/** The decoded value of one attribute of kind `K`. */
export type KindValue<K> = K extends NumberKind
  ? number
  : K extends 'string' | 'mac'
    ? string
    : K extends 'binary'
      ? Buffer
      : K extends 'flag'
        ? true
        : K extends { readonly nested: infer T }
          ? SetOf<T>
          : K extends { readonly tables: infer T }
            ? { [P in keyof T]: SetOf<T[P]> }[keyof T] | Buffer
            : K extends { readonly byType: infer T }
              ? { [P in keyof T]?: SetOf<T[P]> }
              : K extends { readonly struct: infer F extends readonly StructField[] }
                ? { [E in F[number] as E[0]]: E[1] extends 'mac' ? string : number }
                : never;

/** The decoded value of a row: its kind's value, or an array of them when the row repeats. */
type RowValue<R extends RowSpec> = R[4] extends { readonly multi: true } ? KindValue<R[3]>[] : KindValue<R[3]>;

/** The decoded set of a table with these rows: every key optional, `unknown` for attributes outside it. */
export type DecodedRows<R extends readonly RowSpec[]> = Flat<{ [Row in R[number] as Row[2]]?: RowValue<Row> } & { unknown?: RawAttr[] }>;

/**
 * What decoding with `T` gives, and what encoding with it takes: `Decoded<typeof IFLA>` is
 * `{ address?: string; mtu?: number; linkinfo?: { kind?: string; data?: … }; … }`.
 */
export type Decoded<T extends AttrTable<any>> = SetOf<T>;

/** Builds a table from rows `[type, 'IFLA_MTU', 'mtu', 'u32']`; its decoded type follows from the rows. */
export function defineTable<const R extends readonly RowSpec[]>(name: string, rows: R): AttrTable<DecodedRows<R>> {
  return makeTable(name, rows);
}

/** A table of these rows whose sets are `S` (defineTable derives `S` from the rows, pickTable from its source). */
function makeTable<S extends AttrSet>(name: string, rows: readonly RowSpec[]): AttrTable<S> {
  const out: AttrRow[] = rows.map(([type, kname, key, kind, opts], index) => ({ index, type, name: kname, key, kind, multi: opts?.multi ?? false }));
  return {
    name,
    rows: out,
    rowByType: out.reduce<(AttrRow | undefined)[]>((a, r) => ((a[r.type] = r), a), []),
    byKey: new Map(out.map((r) => [r.key, r])),
    // Compiled on first use: a process that never decodes this family (the helper, mostly) skips it.
    get build() {
      const build = compileBuilder([...out.map((r) => r.key), 'unknown']) as (values: ArrayLike<unknown>) => S;
      Object.defineProperty(this, 'build', { value: build });
      return build;
    },
  };
}

/** An attribute the table does not know: kept as its raw type (flags included) and payload. */
export interface RawAttr {
  type: number;
  data: Buffer;
}

/**
 * A decoded attribute set of any table: named fields, plus `unknown` for attributes outside the
 * table. A table's own set type ({@link Decoded}) says which fields and of what type.
 */
export interface AttrSet {
  [key: string]: unknown;
  unknown?: RawAttr[];
}

/**
 * What a decoded set was decoded from: its attribute bytes (a view, not a copy) and the unknown
 * attributes as first listed. Encode walks these bytes again to repeat the original order, flags
 * and payloads of whatever is unchanged, so the decoder itself records nothing per attribute.
 */
interface Source {
  bytes: Buffer;
  unknown?: RawAttr[];
}

const SOURCE: unique symbol = Symbol('netlink attribute source');
type WithSource = AttrSet & { [SOURCE]?: Source };

const SIZES: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, s32: 4, be16: 2, mac: 6 };

export const align4 = (n: number): number => (n + 3) & ~3;

// Little-endian reads by index, for the decoder's inner loops: callers have checked the bounds
// already (wire.ts's attrLength), and plain loads stay cheap before the optimising compiler has run (a
// CLI's first thousand links) where a call to Buffer#readUInt16LE does not.
const u16 = (b: Buffer, off: number): number => b[off]! | (b[off + 1]! << 8);
const u32 = (b: Buffer, off: number): number => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16) | (b[off + 3]! << 24)) >>> 0;

function decodeMac(b: Buffer, off = 0, len = 6): string {
  let s = '';
  for (let i = 0; i < len; i++) s += (i ? ':' : '') + (b[off + i]! < 16 ? '0' : '') + b[off + i]!.toString(16);
  return s;
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
      (typeof value === 'string' ? parseMac(value, SIZES.mac) : (value as Buffer)).copy(b, off);
      return;
  }
  throw new Error(`unreachable kind ${kind}`);
}

function structSize(fields: readonly StructField[]): number {
  return fields.reduce((n, [, k]) => n + SIZES[k]!, 0);
}

/**
 * Decodes the payload at buf[start, end). Scalars are read in place (no Buffer view per
 * attribute: this is the hot path of every dump). `pick`: nests are read with pickAttrs.
 */
function decodeValue(row: AttrRow, buf: Buffer, start: number, end: number, sibling: (key: string) => unknown, pick = false): unknown {
  const kind = row.kind;
  const len = end - start;
  if (typeof kind === 'string') {
    switch (kind) {
      case 'u32':
        if (len !== 4) return fixedOdd(row, kind, buf, start, len);
        return u32(buf, start);
      case 'u8':
        if (len !== 1) return fixedOdd(row, kind, buf, start, len);
        return buf[start];
      case 'u16':
        if (len !== 2) return fixedOdd(row, kind, buf, start, len);
        return u16(buf, start);
      case 'flag':
        return true;
      case 'binary':
        // A view into the received datagram, not a copy: dumps carry kilobytes of these per link.
        return buf.subarray(start, end);
      case 'string': {
        const nul = buf.indexOf(0, start);
        const stop = nul < 0 || nul >= end ? end : nul;
        return buf.toString('utf8', start, stop);
      }
      case 'mac':
        // Hardware addresses of other lengths (none, infiniband) decode to as many octets.
        return decodeMac(buf, start, len);
      default:
        return fixedOdd(row, kind, buf, start, len);
    }
  }
  const nest = pick ? pickAttrs : decodeNest;
  if ('nested' in kind) return nest(kind.nested, buf, start, end);
  if ('nestedBy' in kind) {
    const table = kind.tables[String(sibling(kind.nestedBy))];
    return table ? nest(table, buf, start, end) : buf.subarray(start, end);
  }
  if ('byType' in kind) {
    // Families without a table, and repeats, are dropped from the value; an unchanged value is
    // re-emitted from the received bytes, so they survive a round trip all the same.
    const out: Record<string, unknown> = {};
    for (let off = start; off < end; ) {
      const len = attrLength(buf, off, end);
      if (len === 0) break;
      const type = u16(buf, off + 2) & NLA_TYPE_MASK;
      const t = kind.byType[type];
      if (t && out[type] === undefined) out[type] = nest(t, buf, off + NLA_HDRLEN, off + len);
      off += (len + 3) & ~3;
    }
    return out;
  }
  const min = structSize(kind.struct);
  if (len < min) throw new NetlinkDecodeError(`${row.name}: ${len} bytes, expected at least ${min}`);
  const out: Record<string, unknown> = {};
  let off = start;
  for (const [name, k] of kind.struct) {
    out[name] = readFixed(k, buf, off);
    off += SIZES[k]!;
  }
  return out;
}

/** Fixed-size scalars of other widths, and fixed ones of an unexpected length. */
function fixedOdd(row: AttrRow, kind: string, buf: Buffer, start: number, len: number): unknown {
  const size = SIZES[kind]!;
  if (len < size) throw new NetlinkDecodeError(`${row.name}: ${len} bytes, expected ${size}`);
  return readFixed(kind, buf, start);
}

const decodeNest = (table: AttrTable, buf: Buffer, start: number, end: number): AttrSet => decodeAttrs(table, buf.subarray(start, end));

/** Calls `fn(type, payload)` for each attribute in `buf` (type with its flag bits); throws NetlinkDecodeError on bad lengths. */
export function walk(buf: Buffer, fn: (type: number, payload: Buffer) => void): void {
  eachAttr(buf, 0, buf.length, (type, start, end) => fn(type, buf.subarray(start, end)));
}

/** Decodes the attributes in `buf` with `table`. Throws only NetlinkDecodeError. */
export function decodeAttrs<S extends AttrSet>(table: AttrTable<S>, buf: Buffer): S {
  const values: unknown[] = new Array(table.rows.length + 1);
  let sibling: ((key: string) => unknown) | undefined;
  let unknown: RawAttr[] | undefined;
  for (let off = 0; off < buf.length; ) {
    const len = attrLength(buf, off);
    if (len === 0) break;
    const rawType = u16(buf, off + 2);
    const start = off + NLA_HDRLEN;
    const end = off + len;
    off += (len + 3) & ~3;
    const row = table.rowByType[rawType & NLA_TYPE_MASK];
    if (!row || (!row.multi && values[row.index] !== undefined)) {
      (unknown ??= []).push({ type: rawType, data: buf.subarray(start, end) });
      continue;
    }
    // Only nests read a sibling (IFLA_INFO_DATA's table by IFLA_INFO_KIND): made for them alone.
    if (typeof row.kind !== 'string') sibling ??= (key: string) => values[table.byKey.get(key)!.index];
    const value = decodeValue(row, buf, start, end, sibling!);
    if (row.multi) ((values[row.index] as unknown[] | undefined) ?? (values[row.index] = [] as unknown[]) as unknown[]).push(value);
    else values[row.index] = value;
  }
  values[table.rows.length] = unknown;
  const out = table.build(values);
  const source: Source = { bytes: buf };
  if (unknown) source.unknown = unknown.slice();
  Object.defineProperty(out, SOURCE, { value: source, enumerable: false });
  return out;
}

/**
 * Reads only the attributes `table` names from buf[start, end), nests included (with their own
 * tables): the others are skipped, not kept, and the set does not remember its bytes (it cannot
 * re-encode what it skipped). For reading many messages when only some of their attributes are
 * used: names by ifindex in a 10 000-link dump, or what a listing prints (present.ts: LINK_REFS,
 * LINK_SHOWN). Throws only NetlinkDecodeError.
 */
export function pickAttrs<S extends AttrSet>(table: AttrTable<S>, buf: Buffer, start = 0, end = buf.length): S {
  const values: unknown[] = new Array(table.rows.length + 1);
  let sibling: ((key: string) => unknown) | undefined;
  for (let off = start; off < end; ) {
    const len = attrLength(buf, off, end);
    if (len === 0) break;
    const row = table.rowByType[u16(buf, off + 2) & NLA_TYPE_MASK];
    if (row && (row.multi || values[row.index] === undefined)) {
      if (typeof row.kind !== 'string') sibling ??= (key: string) => values[table.byKey.get(key)!.index];
      const value = decodeValue(row, buf, off + NLA_HDRLEN, off + len, sibling!, true);
      if (row.multi) ((values[row.index] as unknown[] | undefined) ?? (values[row.index] = [] as unknown[]) as unknown[]).push(value);
      else values[row.index] = value;
    }
    off += (len + 3) & ~3;
  }
  return table.build(values);
}

/**
 * A table of some of `table`'s rows, by key, for pickAttrs; `kinds` replaces the kind of a row
 * (a nest read with a smaller table of its own).
 */
export function pickTable<S extends AttrSet, const K extends keyof S & string, const O extends { readonly [P in K]?: AttrKind } = {}>(
  name: string,
  table: AttrTable<S>,
  keys: readonly K[],
  kinds?: O,
): AttrTable<Picked<S, K, O>> {
  const over: Readonly<Record<string, AttrKind | undefined>> = kinds ?? {};
  const wanted = new Set<string>(keys);
  const rows = table.rows.filter((r) => wanted.has(r.key));
  return makeTable(name, rows.map((r) => [r.type, r.name, r.key, over[r.key] ?? r.kind, { multi: r.multi ?? false }] as const));
}

/** The set of a table of `S`'s fields `K`, with the kinds of `O` in place of their own (pickTable). */
export type Picked<S, K extends keyof S, O> = Flat<
  { [P in Exclude<K, keyof O>]?: S[P] } & { [P in keyof O & K]?: KindValue<O[P]> } & { unknown?: RawAttr[] }
>;

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
        return typeof value === 'string' ? parseMac(value) : Buffer.from(value as Uint8Array);
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
export function encodeAttrs<S extends AttrSet>(table: AttrTable<S>, values: S): Buffer {
  const set: AttrSet = values;
  const parts: Buffer[] = [];
  const done = new Set<string>();
  const doneUnknown = new Set<RawAttr>();
  const emit = (row: AttrRow, value: unknown, rawType: number) => parts.push(attr(rawType, encodeValue(row, value, set)));
  const multiIndex = new Map<string, number>();
  const source = (set as WithSource)[SOURCE];
  if (source) {
    // Walk the received bytes again, classifying each attribute as decodeAttrs did: what is
    // unchanged goes out as it came in (order, flags, exact payload), the rest is encoded anew.
    const seen = new Set<string>();
    let unknownIndex = 0;
    walk(source.bytes, (rawType, payload) => {
      const row = table.rowByType[rawType & NLA_TYPE_MASK];
      if (!row || (!row.multi && seen.has(row.key))) {
        const u = source.unknown![unknownIndex++]!;
        if (set.unknown?.includes(u)) {
          parts.push(attr(u.type, u.data));
          doneUnknown.add(u);
        }
        return;
      }
      seen.add(row.key);
      let value = set[row.key];
      if (value === undefined) return;
      if (row.multi) {
        const n = multiIndex.get(row.key) ?? 0;
        multiIndex.set(row.key, n + 1);
        const arr = value as unknown[];
        if (n + 1 >= arr.length) done.add(row.key);
        if (n >= arr.length) return;
        value = arr[n];
      } else done.add(row.key);
      if (sameValue(value, decodeValue(row, payload, 0, payload.length, (k) => set[k]))) parts.push(attr(rawType, payload));
      else emit(row, value, rawType);
    });
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
