// The standalone C++ check of dupn::fingerprint64 (native/test/fingerprint64_check.cpp), compiled and run here:
// golden vectors from odd addresses, TensorFlow's bucket ids, and every length 0..300 read unaligned from a buffer
// sized exactly (under AddressSanitizer where the compiler has it, so an over-read fails). The JavaScript tests
// reach the hash only through strings; this one calls the C++ function on raw bytes at every alignment.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './support/child';
import { buildCheck, findCompiler } from './support/compiler';

const CHECK = path.join(ROOT, 'native', 'test', 'fingerprint64_check.cpp');

const cxx = findCompiler();

t.test('the golden table in the C++ check is the fixture', async (t) => {
  // The .cpp holds its own copy of test/fixtures/fingerprint64.json (it has no JSON parser); they must agree.
  const fixture = JSON.parse(fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'fingerprint64.json'), 'utf8')) as {
    vectors: { input: string; fingerprint64_hex: string }[];
  };
  const source = fs.readFileSync(CHECK, 'utf8');
  const table = [...source.matchAll(/(\d+), 0x([0-9a-f]{16})ULL\}/g)].map((m) => ({ len: Number(m[1]), hex: m[2] }));
  t.same(
    table,
    fixture.vectors.map((v) => ({ len: Buffer.byteLength(v.input, 'utf8'), hex: v.fingerprint64_hex })),
    'same vectors, lengths and values, in the same order',
  );
});

t.test('native/test/fingerprint64_check.cpp compiles and passes', { skip: !cxx && 'no C++ compiler ($CXX, g++, c++ or clang++) on the PATH' }, async (t) => {
  const exe = buildCheck(t, cxx!, ['native/src/core/fingerprint64.cpp', 'native/test/fingerprint64_check.cpp']);
  if (exe === undefined) return;

  const run = spawnSync(exe, [], { encoding: 'utf8', env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
  t.equal(run.status, 0, `the check exits 0${run.status === 0 ? '' : `:\n${run.stdout}${run.stderr}`}`);
  t.match(run.stdout, /golden vectors: (\d+)\/\1 PASS/, 'every golden vector, aligned and unaligned');
  t.match(run.stdout, /bucket cases: (\d+)\/\1 PASS/, "TensorFlow's bucket ids");
  t.match(run.stdout, /unaligned sweep 0\.\.300: 301\/301 PASS/, 'every length 0..300, unaligned');
  t.match(run.stdout, /\nPASS\n$/, 'and the verdict');
});
