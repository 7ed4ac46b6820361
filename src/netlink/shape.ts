/**
 * Fast objects with many optional fields. V8 turns an object into a slow dictionary once more than
 * a dozen properties are added by computed key (`o[k] = v`) or removed with `delete`: two to three
 * times the memory, and most of the time of a 10 000-link dump went to the garbage collector. A
 * builder compiled once per shape adds the fields by name instead, which keeps objects fast.
 * @internal
 * @module
 */

/** Compiles `(values) => object` that sets `keys[i]` to `values[i]` wherever that is defined. */
export function compileBuilder(keys: readonly string[]): (values: ArrayLike<unknown>) => Record<string, unknown> {
  const body = keys.map((k, i) => `if (v[${i}] !== undefined) o[${JSON.stringify(k)}] = v[${i}];`).join('\n');
  return new Function('v', `'use strict';\nconst o = {};\n${body}\nreturn o;`) as (values: ArrayLike<unknown>) => Record<string, unknown>;
}

/** Every key of `T`, each with a value of any type (`undefined` included): the input of a loose copier. */
export type Loose<T> = { [K in keyof T]-?: unknown };

/**
 * A copier for one object literal's shape: it returns a copy without the undefined fields. Compiled
 * from the first object it sees; every object given to it must have that object's keys, in order.
 * `I` is what it accepts: `T` itself, or `Loose<T>` where the values come unchecked from decoded
 * attributes (the keys are still checked).
 */
export function compactor<T extends object, I extends object = T>(): (o: I) => T {
  let copy: ((o: I) => T) | undefined;
  return (o) => {
    if (!copy) {
      const body = Object.keys(o)
        .map((k) => `if (s[${JSON.stringify(k)}] !== undefined) o[${JSON.stringify(k)}] = s[${JSON.stringify(k)}];`)
        .join('\n');
      copy = new Function('s', `'use strict';\nconst o = {};\n${body}\nreturn o;`) as (o: I) => T;
    }
    return copy(o);
  };
}
