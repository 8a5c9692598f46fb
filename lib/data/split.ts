/**
 * Train/validation split by time: an example whose cut `time >= validFrom` is validation, any other is
 * training. The default `validFrom` is the start of the last day of the data, found by a cheap scan of
 * timestamps (see {@link TimeHistogram}).
 */
import { DupnError, describe } from '../errors';
import { seedFor } from '../random';

/**
 * Whether a user is in the held-out share of a split by user: a hash of the id, so the same user is always on
 * the same side (in every file, pass and process) and about `share` of the users are.
 */
export function isHeldOutUser(userId: string, share: number): boolean {
  return seedFor(0, `user-split|${userId}`) / 2 ** 32 < share;
}

/** Both parts of a re-creatable example stream split by user ({@link isHeldOutUser}). */
export function splitByUser<T extends { userId: string | number }>(examples: AsyncIterable<T>, share: number): { train: AsyncIterable<T>; validation: AsyncIterable<T> } {
  if (typeof share !== 'number' || !(share > 0 && share < 1)) throw new DupnError('E_INPUT', `validUsers: must be a share in (0, 1), got ${describe(share)}`, { path: 'validUsers' });
  const part = (validation: boolean): AsyncIterable<T> => ({
    async *[Symbol.asyncIterator]() {
      for await (const e of examples) if (isHeldOutUser(String(e.userId), share) === validation) yield e;
    },
  });
  return { train: part(false), validation: part(true) };
}

/** True when `example` belongs to the validation part. */
export function isValidation(example: { time: number }, validFrom: number): boolean {
  return example.time >= validFrom;
}

/**
 * Both parts of a re-creatable example stream: each part re-iterates `examples` (a new pass over the file
 * every time it is iterated) and keeps its own side of `validFrom`.
 */
export function splitByTime<T extends { time: number }>(examples: AsyncIterable<T>, validFrom: number): { train: AsyncIterable<T>; validation: AsyncIterable<T> } {
  if (typeof validFrom !== 'number' || Number.isNaN(validFrom)) {
    throw new DupnError('E_INPUT', `validFrom: must be a number (Unix seconds), got ${describe(validFrom)}`, { path: 'validFrom' });
  }
  const part = (validation: boolean): AsyncIterable<T> => ({
    async *[Symbol.asyncIterator]() {
      for await (const e of examples) if (isValidation(e, validFrom) === validation) yield e;
    },
  });
  return { train: part(false), validation: part(true) };
}

/** Options of the default split point. */
export interface ValidFromOptions {
  /** Days start at 00:00 in this UTC offset (default 0; 8 for Beijing days, as in the Taobao logs). */
  utcOffsetHours?: number;
  /** A day with fewer than this share of all timestamps is an outlier, not "the last day" (default 0.001). */
  minDayShare?: number;
}

/** Distinct hours a histogram keeps (a real log spans a few thousand; garbage times must not grow it). */
const MAX_HOURS = 1 << 20;

/**
 * Counts timestamps per hour in bounded memory and picks the default split point: the start of the last
 * "core" day (a day holding at least `minDayShare` of the timestamps, so that a few stray rows far after the
 * window do not make the validation part empty); when there is only one core day, the start of its last
 * hour that holds timestamps.
 */
export class TimeHistogram {
  private readonly hours = new Map<number, number>();
  /** Timestamps counted. */
  count = 0;
  /** Timestamps not counted because the histogram was full. */
  dropped = 0;
  private readonly offset: number;

  constructor(readonly options: ValidFromOptions = {}) {
    const h = options.utcOffsetHours ?? 0;
    if (typeof h !== 'number' || !Number.isFinite(h) || Math.abs(h) > 14) {
      throw new DupnError('E_INPUT', `utcOffsetHours: must be a number in [-14, 14], got ${describe(h)}`, { path: 'utcOffsetHours' });
    }
    this.offset = h * 3600;
    const share = options.minDayShare ?? 0.001;
    if (typeof share !== 'number' || !(share >= 0 && share <= 1)) {
      throw new DupnError('E_INPUT', `minDayShare: must be a number in [0, 1], got ${describe(share)}`, { path: 'minDayShare' });
    }
  }

  /** Counts one timestamp (Unix seconds). */
  add(time: number): void {
    const hour = Math.floor((time + this.offset) / 3600);
    const n = this.hours.get(hour);
    if (n !== undefined) this.hours.set(hour, n + 1);
    else if (this.hours.size < MAX_HOURS) this.hours.set(hour, 1);
    else {
      this.dropped++;
      return;
    }
    this.count++;
  }

  /** The default `validFrom` (Unix seconds). Throws `DupnError('E_INPUT')` when nothing was counted. */
  validFrom(): number {
    if (this.count === 0) throw new DupnError('E_INPUT', 'validFrom: no timestamps to split (empty data)', { path: 'validFrom' });
    const share = this.options.minDayShare ?? 0.001;
    const days = new Map<number, number>();
    for (const [hour, n] of this.hours) days.set(Math.floor(hour / 24), (days.get(Math.floor(hour / 24)) ?? 0) + n);
    const core = [...days].filter(([, n]) => n >= share * this.count).map(([d]) => d);
    // With share <= 1 the fullest day is always core.
    core.sort((a, b) => a - b);
    const last = core[core.length - 1];
    if (core.length >= 2) return last * 86_400 - this.offset;
    let lastHour = last * 24;
    for (const hour of this.hours.keys()) if (Math.floor(hour / 24) === last && hour > lastHour) lastHour = hour;
    return lastHour * 3600 - this.offset;
  }
}

/** The default `validFrom` of a stream of timestamps (see {@link TimeHistogram}). */
export async function validFromTimes(times: AsyncIterable<number> | Iterable<number>, options: ValidFromOptions = {}): Promise<number> {
  const h = new TimeHistogram(options);
  for await (const t of times) h.add(t);
  return h.validFrom();
}
