/**
 * Feature hashing (docs/model.md, Feature hashing): FarmHash Fingerprint64 of the UTF-8 bytes, modulo the bucket count — the
 * same buckets as TensorFlow's `tf.strings.to_hash_bucket_fast`. One implementation, in C++.
 */
import { DupnError, describe } from '../errors';
import { native } from '../native/addon';

/** A categorical value as callers give it: strings as they are, numbers as their decimal string. */
export type Categorical = string | number;

/** The string that is hashed for a value; `undefined`/`null` (missing) hash as the empty string. */
export function hashKey(value: unknown, path: string): string {
  const key = keyOf(value);
  if (key !== undefined) return key;
  if (typeof value === 'number') throw new DupnError('E_INPUT', `${path}: must be a finite number or a string, got ${value}`, { path });
  throw new DupnError('E_INPUT', `${path}: must be a string or a number, got ${describe(value)}`, { path });
}

/**
 * {@link hashKey} without the error: the key, or undefined for a value that cannot be one. For hot loops,
 * which build the path of the offending field only when there is one (then call hashKey for the error).
 */
export function keyOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === 'bigint') return value.toString();
  return undefined;
}

/** FarmHash Fingerprint64 of the UTF-8 bytes of `value`. */
export function fingerprint64(value: string): bigint {
  if (typeof value !== 'string') throw new DupnError('E_INPUT', `value: must be a string, got ${describe(value)}`, { path: 'value' });
  return native().fingerprint64(value);
}

function checkBuckets(buckets: number): void {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 0x7fffffff) {
    throw new DupnError('E_INPUT', `buckets: must be an integer in [1, 2^31-1], got ${describe(buckets)}`, { path: 'buckets' });
  }
}

/** The bucket of one value: fingerprint64(String(value)) mod buckets. */
export function bucket(value: Categorical, buckets: number): number {
  checkBuckets(buckets);
  const out = new Int32Array(1);
  native().bucketStrings([hashKey(value, 'value')], buckets, out, 0, 1);
  return out[0];
}

/**
 * Buckets of many values in one native call. With `out`, writes `out[offset + i·stride]` and returns `out`;
 * otherwise returns a new Int32Array.
 */
export function bucketMany(
  values: readonly Categorical[],
  buckets: number,
  out?: Int32Array,
  offset = 0,
  stride = 1,
): Int32Array {
  checkBuckets(buckets);
  const keys = values.map((v, i) => hashKey(v, `values[${i}]`));
  const target = out ?? new Int32Array(keys.length);
  native().bucketStrings(keys, buckets, target, offset, stride);
  return target;
}
