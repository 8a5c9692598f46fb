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

t.test('unicode is hashed as UTF-8 bytes', async (t) => {
  // "é" is C3 A9 in UTF-8; a lone surrogate becomes U+FFFD (EF BF BD) like TextEncoder does.
  t.equal(fingerprint64('é'), fingerprint64(Buffer.from([0xc3, 0xa9]).toString('utf8')));
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
