/**
 * Fast objects with many optional fields. V8 turns an object into a slow dictionary once more than
 * a dozen properties are added by computed key (`o[k] = v`) or removed with `delete`: two to three
 * times the memory, and most of the time of a 10 000-link dump went to the garbage collector. A
 * builder compiled once per shape adds the fields by name instead, which keeps objects fast.
 * @internal
 * @module
 */

/** `o.key` where the key is an identifier, `o["key"]` otherwise. */
const member = (o: string, key: string): string => (/^[A-Za-z_$][\w$]*$/.test(key) ? `${o}.${key}` : `${o}[${JSON.stringify(key)}]`);

/**
 * How many objects a builder makes by interpretation before it is compiled. Compiling one
 * (`new Function`: parse, then interpret the new code) costs about as much as making a few dozen
 * objects the slow way; a short listing (`qbh bridge list` with a bridge and ten ports) makes
 * fewer than that of most shapes, a 10 000-link dump makes thousands of each.
 */
const COMPILE_AFTER = 32;

/**
 * Compiles a function that makes objects through a constructor whose body assigns `this.KEY =
 * VALUE` for every key where `VALUE` (an expression of `s`, made by `read`) is defined. Made with
 * `new`, an object gets room for all of its properties in the object itself; built from `{}`, it
 * got four there and an out-of-object array reallocated as each further property arrived — half
 * of what a 10 000-link listing allocated (docs/performance.md). The prototype stays Object.prototype:
 * the objects are plain objects still.
 */
function compileMaker(keys: readonly string[], read: (key: string, i: number) => string): (s: unknown) => Record<string, unknown> {
  const body = keys.map((k, i) => `if (${read(k, i)} !== undefined) ${member('this', k)} = ${read(k, i)};`).join('\n');
  return new Function(`'use strict';\nfunction Made(s) {\n${body}\n}\nMade.prototype = Object.prototype;\nreturn (s) => new Made(s);`)() as (s: unknown) => Record<string, unknown>;
}

/**
 * A maker that copies by interpretation (`slow`: the same keys, order and values as the compiled
 * maker's objects) for its first {@link COMPILE_AFTER} objects, then compiles itself.
 */
function lazyMaker(keys: () => readonly string[], read: (key: string, i: number) => string, slow: (s: unknown) => Record<string, unknown>): (s: unknown) => Record<string, unknown> {
  let made = 0;
  let fast: ((s: unknown) => Record<string, unknown>) | undefined;
  return (s) => {
    if (fast !== undefined) return fast(s);
    if (++made <= COMPILE_AFTER) return slow(s);
    fast = compileMaker(keys(), read);
    return fast(s);
  };
}

/** Compiles `(values) => object` that sets `keys[i]` to `values[i]` wherever that is defined. */
export function compileBuilder(keys: readonly string[]): (values: ArrayLike<unknown>) => Record<string, unknown> {
  const slow = (values: ArrayLike<unknown>): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < keys.length; i++) if (values[i] !== undefined) o[keys[i]!] = values[i];
    return o;
  };
  return lazyMaker(() => keys, (_, i) => `s[${i}]`, slow as (s: unknown) => Record<string, unknown>) as (values: ArrayLike<unknown>) => Record<string, unknown>;
}

/** Every key of `T`, each with its value or `undefined` (which the copier drops): what a copier takes. */
export type Compactable<T> = { [K in keyof Required<T>]: T[K] | undefined };

/**
 * A copier for one object literal's shape: it returns a copy without the undefined fields. Compiled
 * from the first object it sees; every object given to it must have that object's keys, in order.
 * `I` is what it accepts: every key of `T`, a value of its type or `undefined` for each.
 */
export function compactor<T extends object, I extends object = Compactable<T>>(): (o: I) => T {
  let keys: readonly string[] | undefined;
  const slow = (o: Record<string, unknown>): Record<string, unknown> => {
    keys ??= Object.keys(o);
    const out: Record<string, unknown> = {};
    for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
    return out;
  };
  return lazyMaker(() => keys!, (k) => member('s', k), slow as (s: unknown) => Record<string, unknown>) as unknown as (o: I) => T;
}
