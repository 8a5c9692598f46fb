// FarmHash Fingerprint64 against the golden vectors (facts copied from shared/testdata), and bucketing.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bucket, bucketMany, fingerprint64 } from '../lib/model/hashing';
import { throwsCode } from './support/errors';

interface Golden {
  vectors: { input: string; fingerprint64: string; fingerprint64_hex: string }[];
  buckets?: unknown;
}
// test/fixtures, whether this runs from test/ (tap) or compiled from dist/test/ (the arm64 check under emulation).
const fixtures = [path.join(__dirname, 'fixtures'), path.join(__dirname, '..', '..', 'test', 'fixtures')].find((d) => fs.existsSync(d)) ?? '';
const golden = JSON.parse(fs.readFileSync(path.join(fixtures, 'fingerprint64.json'), 'utf8')) as Golden;

t.test('every golden vector', async (t) => {
  t.ok(golden.vectors.length >= 20, 'fixture has the vectors');
  for (const v of golden.vectors) {
    const fp = fingerprint64(v.input);
    t.equal(fp, BigInt(v.fingerprint64), `fingerprint64(${JSON.stringify(v.input.slice(0, 20))}) decimal`);
    t.equal(fp.toString(16).padStart(16, '0'), v.fingerprint64_hex, 'hex');
  }
});

t.test('bucket = fingerprint64 mod buckets, numbers as decimal strings, missing as ""', async (t) => {
  for (const v of golden.vectors) {
    for (const n of [1, 10, 97, 65536, 1 << 20, 0x7fffffff]) {
      t.equal(bucket(v.input, n), Number(BigInt(v.fingerprint64) % BigInt(n)));
    }
  }
  t.equal(bucket(123456, 1000), bucket('123456', 1000));
  t.equal(bucket(1.5, 1000), bucket('1.5', 1000));
  const many = bucketMany(['a', 'b', 7, 'abc'], 4096);
  t.same(Array.from(many), [bucket('a', 4096), bucket('b', 4096), bucket('7', 4096), bucket('abc', 4096)]);
  const strided = new Int32Array(8).fill(-1);
  bucketMany(['a', 'b'], 4096, strided, 1, 3);
  t.same(Array.from(strided), [-1, bucket('a', 4096), -1, -1, bucket('b', 4096), -1, -1, -1]);
});

// FarmHash Fingerprint64 of 0..16 bytes, written here in BigInt from the published algorithm
// (farmhashna HashLen0to16): an oracle over raw bytes that does not go through the addon's string conversion.
const M64 = (1n << 64n) - 1n;
const K0 = 0xc3a5c85c97cb3127n;
const K2 = 0x9ae16a3b2f90404fn;
function short64(bytes: Uint8Array): bigint {
  const len = bytes.length;
  if (len > 16) throw new Error('short64: at most 16 bytes');
  const le = (at: number, n: number): bigint => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]);
    return v;
  };
  const rotr = (v: bigint, s: bigint): bigint => ((v >> s) | (v << (64n - s))) & M64;
  const mix16 = (u: bigint, v: bigint, mul: bigint): bigint => {
    let a = ((u ^ v) * mul) & M64;
    a ^= a >> 47n;
    let b = ((v ^ a) * mul) & M64;
    b ^= b >> 47n;
    return (b * mul) & M64;
  };
  const n = BigInt(len);
  if (len >= 8) {
    const mul = (K2 + n * 2n) & M64;
    const a = (le(0, 8) + K2) & M64;
    const b = le(len - 8, 8);
    const c = (rotr(b, 37n) * mul + a) & M64;
    const d = ((rotr(a, 25n) + b) * mul) & M64;
    return mix16(c, d, mul);
  }
  if (len >= 4) return mix16((n + (le(0, 4) << 3n)) & M64, le(len - 4, 4), (K2 + n * 2n) & M64);
  if (len > 0) {
    const y = (BigInt(bytes[0]) + (BigInt(bytes[len >> 1]) << 8n)) & 0xffffffffn;
    const z = (n + (BigInt(bytes[len - 1]) << 2n)) & 0xffffffffn;
    const m = ((y * K2) ^ (z * K0)) & M64;
    return ((m ^ (m >> 47n)) * K2) & M64;
  }
  return K2;
}

t.test('the byte-level oracle agrees with every golden vector of up to 16 bytes', async (t) => {
  let checked = 0;
  for (const v of golden.vectors) {
    const bytes = Buffer.from(v.input, 'utf8');
    if (bytes.length > 16) continue;
    t.equal(short64(bytes), BigInt(v.fingerprint64), `${bytes.length} bytes`);
    checked++;
  }
  t.ok(checked >= 17, 'lengths 0..16 all covered');
});

t.test('unicode is hashed as its UTF-8 bytes, not normalised', async (t) => {
  // U+00E9 "é" (NFC) is C3 A9 in UTF-8, not E9 (Latin-1) nor E9 00 (UTF-16LE).
  const nfc = '\u00e9';
  t.equal(fingerprint64(nfc), short64(Uint8Array.from([0xc3, 0xa9])));
  t.not(fingerprint64(nfc), short64(Uint8Array.from([0xe9])));
  t.not(fingerprint64(nfc), short64(Uint8Array.from([0xe9, 0x00])));
  // The NFD form "e" + U+0301 is other bytes (65 CC 81): no normalisation happens before hashing.
  const nfd = 'e\u0301';
  t.equal(nfd.normalize('NFC'), nfc);
  t.equal(fingerprint64(nfd), short64(Uint8Array.from([0x65, 0xcc, 0x81])));
  t.not(fingerprint64(nfd), fingerprint64(nfc));
  // Beyond the BMP: U+1F600 is one surrogate pair in JavaScript, F0 9F 98 80 in UTF-8.
  t.equal(fingerprint64('\u{1f600}'), short64(Uint8Array.from([0xf0, 0x9f, 0x98, 0x80])));
  // A lone surrogate becomes U+FFFD (EF BF BD), as TextEncoder does.
  t.equal(fingerprint64('\ud800'), short64(Uint8Array.from([0xef, 0xbf, 0xbd])));
  t.equal(fingerprint64('\ud800'), fingerprint64('\ufffd'));
});

t.test('bad arguments are typed errors', async (t) => {
  const bad: [() => unknown, string][] = [
    [() => bucket('a', 0), 'buckets'],
    [() => bucket('a', 1.5), 'buckets'],
    [() => bucket('a', 2 ** 31), 'buckets'],
    [() => bucket(NaN, 10), 'value'],
    [() => bucket(Infinity, 10), 'value'],
    [() => bucket({} as unknown as string, 10), 'value'],
    [() => fingerprint64(5 as unknown as string), 'value'],
    [() => bucketMany(['a', null as unknown as string, []] as unknown as string[], 10), 'values[2]'],
  ];
  for (const [fn, field] of bad) {
    throwsCode(t, fn, 'E_INPUT', field);
  }
});
