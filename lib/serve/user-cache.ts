/**
 * A bounded LRU of user vectors U with a time to live, keyed by a caller-given key: the paper's "compute the
 * user part once per request, reuse it", across the requests of a session. The {@link Batcher} reads it before
 * encoding and fills it after; it is exported so several batchers can share one, and for inspection.
 */
import { describe, inputError } from '../errors';

/** Options of a {@link UserCache}. */
export interface UserCacheOptions {
  /** Most vectors kept; the least recently used goes first (default 10,000; each holds `userDim` floats). */
  maxEntries?: number;
  /** Milliseconds a vector stays valid after it was stored (default 60,000; `Infinity`: until evicted). */
  ttlMs?: number;
  /** The clock, in milliseconds (default `performance.now`); tests pass their own. */
  clock?: () => number;
}

/** Counters of a {@link UserCache} since it was made. */
export interface UserCacheStats {
  /** Vectors kept now. */
  size: number;
  /** Lookups that found a live vector of the same model. */
  hits: number;
  /** Lookups that found none (expired ones and those of another model included). */
  misses: number;
  /** Vectors dropped because their time to live had passed when looked up. */
  expired: number;
  /** Vectors dropped to keep the cache within `maxEntries`. */
  evicted: number;
}

interface Entry {
  vector: Float32Array;
  expires: number;
  /** The model that computed it: a vector of another model is worth nothing. Weak, so the cache keeps no model alive. */
  owner: WeakRef<object> | undefined;
}

const DEFAULT_ENTRIES = 10_000;
const DEFAULT_TTL_MS = 60_000;

/**
 * User vectors by key, least recently used first out, each valid for `ttlMs` after it was stored. The key is
 * the caller's promise that the same key means the same user vector: a key names a user's state (their
 * history and request time, e.g. `"user42:1700000123"`), not just the user, unless a vector up to `ttlMs` old
 * is good enough. A vector is tied to the model that computed it; a lookup for another model misses.
 */
export class UserCache {
  /** Most vectors kept. */
  readonly maxEntries: number;
  /** Milliseconds a vector stays valid. */
  readonly ttlMs: number;
  private readonly clock: () => number;
  private readonly entries = new Map<string, Entry>();
  private readonly counts = { hits: 0, misses: 0, expired: 0, evicted: 0 };

  constructor(options: UserCacheOptions = {}) {
    if (typeof options !== 'object' || options === null) inputError('cache', `must be an object, got ${describe(options)}`);
    const { maxEntries = DEFAULT_ENTRIES, ttlMs = DEFAULT_TTL_MS, clock = () => performance.now() } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1 || maxEntries > 1 << 26) inputError('cache.maxEntries', `must be an integer in [1, 2^26], got ${describe(maxEntries)}`);
    if (typeof ttlMs !== 'number' || !(ttlMs > 0)) inputError('cache.ttlMs', `must be a number > 0 (Infinity: no expiry), got ${describe(ttlMs)}`);
    if (typeof clock !== 'function') inputError('cache.clock', `must be a function, got ${describe(clock)}`);
    this.maxEntries = maxEntries;
    this.ttlMs = ttlMs;
    this.clock = clock;
  }

  /**
   * The vector stored under `key` for model `owner` (any object; omitted: stored without one), if it is still
   * live; a hit makes it the most recently used. Returns the cache's own array: read it, never write to it.
   */
  get(key: string, owner?: object): Float32Array | undefined {
    const e = this.entries.get(key);
    if (e === undefined) {
      this.counts.misses++;
      return undefined;
    }
    if (this.clock() >= e.expires) {
      this.entries.delete(key);
      this.counts.expired++;
      this.counts.misses++;
      return undefined;
    }
    if (e.owner?.deref() !== owner) {
      this.entries.delete(key);
      this.counts.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    this.counts.hits++;
    return e.vector;
  }

  /** Stores a copy of `vector` under `key` for model `owner`, replacing what was there; evicts the least recently used beyond `maxEntries`. */
  set(key: string, vector: Float32Array, owner?: object): void {
    this.entries.delete(key);
    this.entries.set(key, { vector: vector.slice(), expires: this.clock() + this.ttlMs, owner: owner === undefined ? undefined : new WeakRef(owner) });
    while (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value as string);
      this.counts.evicted++;
    }
  }

  /** Drops the vector under `key` (e.g. the user acted, so their vector changed); whether there was one. */
  delete(key: string): boolean {
    return this.entries.delete(key);
  }

  /** Drops every vector (counters are kept). */
  clear(): void {
    this.entries.clear();
  }

  /** Vectors kept now (expired ones not yet looked up included). */
  get size(): number {
    return this.entries.size;
  }

  /** A snapshot of the counters. */
  get stats(): UserCacheStats {
    return { size: this.entries.size, ...this.counts };
  }
}
