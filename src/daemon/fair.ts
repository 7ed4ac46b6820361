/**
 * The daemon's two fairness tools, keyed by person (the uid a connection is counted against): a
 * queue served round-robin across persons, so one person's pile of requests never stands between
 * another person and the daemon, and token buckets, which bound how often one person may have
 * something done (a refusal answered, an audit line written) with memory bounded too.
 * @module
 */

/**
 * Items waiting, one first-in-first-out queue per person; {@link FairQueue.take} serves the persons
 * in turn, whatever each has queued.
 */
export class FairQueue<T> {
  // A Map iterates in insertion order: a person served is deleted and re-inserted at the back.
  private readonly queues = new Map<number, T[]>();

  /** Items waiting, all persons together. */
  get size(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** The persons with something waiting, longest unserved first. */
  persons(): IterableIterator<number> {
    return this.queues.keys();
  }

  push(person: number, item: T): void {
    const q = this.queues.get(person);
    if (q === undefined) this.queues.set(person, [item]);
    else q.push(item);
  }

  /** Removes an item that no longer needs serving (its client left). */
  remove(person: number, item: T): void {
    const q = this.queues.get(person);
    const i = q?.indexOf(item) ?? -1;
    if (i < 0) return;
    q!.splice(i, 1);
    if (q!.length === 0) this.queues.delete(person);
  }

  /** The next item of the first person (in turn) for whom `ready` holds; that person goes to the back. */
  take(ready: (person: number) => boolean): { person: number; item: T } | null {
    for (const [person, q] of this.queues) {
      if (!ready(person)) continue;
      const item = q.shift()!;
      this.queues.delete(person);
      if (q.length > 0) this.queues.set(person, q);
      return { person, item };
    }
    return null;
  }
}

/**
 * One token bucket per person: `capacity` tokens, refilled at `perSecond`. Only buckets that are not
 * full are stored (a full one is the same as none), and at most `maxPersons` of them: beyond that,
 * every further person shares one bucket, so memory stays bounded whatever uids appear.
 */
export class TokenBuckets {
  private readonly buckets = new Map<number, { tokens: number; at: number }>();
  private readonly capacity: number;
  private readonly perSecond: number;
  private readonly maxPersons: number;

  constructor(capacity: number, perSecond: number, maxPersons: number) {
    this.capacity = capacity;
    this.perSecond = perSecond;
    this.maxPersons = maxPersons;
  }

  /** The key a person's tokens are counted under: their own, or the shared overflow bucket's (-1). */
  key(person: number): number {
    if (this.buckets.has(person) || this.buckets.size < this.maxPersons) return person;
    this.sweep();
    return this.buckets.size < this.maxPersons ? person : -1;
  }

  /** Tokens `person` has now (refilled for the time passed). */
  tokens(person: number): number {
    const b = this.buckets.get(this.key(person));
    if (b === undefined) return this.capacity;
    const now = performance.now();
    b.tokens = Math.min(this.capacity, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    return b.tokens;
  }

  /** Takes one token if there is one; returns whether it did. */
  take(person: number): boolean {
    if (this.tokens(person) < 1) return false;
    this.spend(person);
    return true;
  }

  /** Spends one token, even the last (the bucket never goes below empty). */
  spend(person: number): void {
    const key = this.key(person);
    const tokens = Math.max(0, this.tokens(person) - 1);
    this.buckets.set(key, { tokens, at: performance.now() });
  }

  /** Milliseconds until `person` has a whole token again (0 if they have one). */
  msUntilToken(person: number): number {
    const missing = 1 - this.tokens(person);
    return missing <= 0 ? 0 : Math.ceil((missing / this.perSecond) * 1000);
  }

  /** Forgets the buckets that have filled up again. */
  private sweep(): void {
    for (const [key] of this.buckets) if (this.tokens(key) >= this.capacity) this.buckets.delete(key);
  }
}
