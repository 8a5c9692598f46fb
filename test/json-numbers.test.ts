// The addon's float32Json (what the server's answers print the model's numbers with): every value reads back to
// the same float32 (Math.fround of the parsed number), has no more digits than the shortest decimal that does, is
// written as JavaScript writes that number, and odd values (±0, subnormals, the largest and smallest, NaN and
// ±Infinity as null) come out as JSON.parse takes them; rows nest; bad arguments are E_INPUT. Then the C++ check
// of the formatter's two paths (native/test/json_numbers_check.cpp), under the sanitizers where available.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { buildCheck, findCompiler } from './support/compiler';
import { DupnError, float32Json } from '../lib';
import { mulberry32 } from '../lib/random';

const f32 = float32Json;
const cxx = findCompiler();

/** The shortest decimal (significant digits 1..9) whose float32 is v: the reference, by trying each precision. */
function shortestDigits(v: number): number {
  for (let p = 1; p <= 9; p++) if (Math.fround(Number(v.toPrecision(p))) === v) return p;
  return 9;
}
/** Significant digits of a decimal text (leading zeros and an integer's trailing zeros are not). */
const digits = (text: string): number => text.replace(/^-/, '').replace(/e.*$/, '').replace('.', '').replace(/^0+/, '').replace(/0+$/, '').length || 1;

t.test('random floats of every magnitude read back exactly, in the fewest digits', async (t) => {
  const rand = mulberry32(20261205);
  const bits = new Uint32Array(20000);
  for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(rand() * 2 ** 32);
  const values = new Float32Array(bits.buffer);
  const text = f32(values);
  const back = JSON.parse(text) as (number | null)[];
  t.equal(back.length, values.length);
  let wrong = 0;
  let longer = 0;
  let style = 0;
  const parts = text.slice(1, -1).split(',');
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      if (back[i] !== null) wrong++;
      continue;
    }
    if (Math.fround(back[i] as number) !== v) wrong++;
    if (digits(parts[i]) > shortestDigits(v) || parts[i].length > String(v).length) longer++;
    if (String(Number(parts[i])) !== parts[i]) style++;
  }
  t.equal(wrong, 0, 'every value reads back to its float32 (NaN and ±Infinity as null)');
  t.equal(longer, 0, 'no value longer than the widened double\'s text, nor with more digits than the shortest that reads back');
  t.equal(style, 0, 'each text is how JavaScript writes that number');
});

t.test('odd values', async (t) => {
  const odd = [0, -0, 1, -1, 0.1, 1 / 3, 1e-45, -1.4e-45, 1.17549435e-38, 3.4028234663852886e38, -3.4028234663852886e38, 16777216, 16777217, 1e20, 1e-5, NaN, Infinity, -Infinity];
  const values = Float32Array.from(odd);
  const back = JSON.parse(f32(values)) as (number | null)[];
  for (let i = 0; i < odd.length; i++) {
    if (Object.is(values[i], -0)) t.ok(Object.is(back[i], 0), '-0 → 0, as JSON.stringify writes it');
    else if (Number.isFinite(values[i])) t.ok(Object.is(Math.fround(back[i] as number), values[i]), `${odd[i]} → ${String(back[i])}`);
    else t.equal(back[i], null, `${odd[i]} → null`);
  }
  t.equal(f32(new Float32Array(0)), '[]');
  t.equal(f32(Float32Array.of(0.5, 2, 0.1, 1e-7, 1e21, 123456792, -1.5e-10)), '[0.5,2,0.1,1e-7,1e+21,123456790,-1.5e-10]');
});

t.test('rows', async (t) => {
  const values = Float32Array.from({ length: 12 }, (_, i) => i / 7);
  const rows = JSON.parse(f32(values, 4)) as number[][];
  t.equal(rows.length, 3);
  t.same(rows.map((r) => r.length), [4, 4, 4]);
  t.same(Float32Array.from(rows.flat()), values);
  t.same(JSON.parse(f32(values, 12)), [Array.from(values, (v) => JSON.parse(f32(Float32Array.of(v)))[0] as number)]);
  t.equal(f32(new Float32Array(0), 3), '[]', 'no rows');
  t.same(JSON.parse(f32(values, 0)), JSON.parse(f32(values)), 'row 0 is flat');
});

t.test('bad arguments are E_INPUT', async (t) => {
  const expectInput = (f: () => unknown, what: string): void => {
    try {
      f();
      t.fail(`${what}: no error`);
    } catch (e) {
      t.ok(e instanceof DupnError && e.code === 'E_INPUT', what);
    }
  };
  const call = f32 as unknown as (...args: unknown[]) => string;
  expectInput(() => call([1, 2]), 'a plain array');
  expectInput(() => call(new Float64Array(2)), 'a Float64Array');
  expectInput(() => call(new Float32Array(10), 3), 'a row that does not divide the length');
  expectInput(() => call(new Float32Array(10), -1), 'a negative row');
  expectInput(() => call(new Float32Array(10), 1.5), 'a fractional row');
});

t.test('native/test/json_numbers_check.cpp compiles and passes', { skip: !cxx && 'no C++ compiler ($CXX, g++, c++ or clang++) on the PATH' }, async (t) => {
  const exe = buildCheck(t, cxx!, ['native/src/core/json_numbers.cpp', 'native/test/json_numbers_check.cpp']);
  if (exe === undefined) return;
  const run = spawnSync(exe, ['200000'], { encoding: 'utf8' });
  t.equal(run.status, 0, `the check exits 0${run.status === 0 ? '' : `:\n${run.stdout}${run.stderr}`}`);
  t.match(run.stdout, /awkward values and their neighbours: (\d+) values, fast = slow \1\/\1, read back \1\/\1, .* PASS/, 'powers of two and ten, extremes and their neighbours');
  t.match(run.stdout, /random bit patterns: 200000 values, fast = slow 200000\/200000, read back 200000\/200000, library's shortest (\d+)\/\1 PASS/, '200,000 random floats');
  t.match(run.stdout, /\nPASS\n$/, 'and the verdict');
});
