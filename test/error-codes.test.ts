import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DupnError, ERROR_CODES, isErrorCode } from '../lib/errors';
import { fromNativeError, native } from '../lib/native/addon';
import { synthesize } from '../lib/data/synthetic';
import { Trainer } from '../lib/train/trainer';
import { noPropertiesConfig } from './support/configs';

const root = path.join(__dirname, '..');

t.test('docs/errors.md has one section per code of ERROR_CODES, in the same order, and no other', async (t) => {
  const doc = fs.readFileSync(path.join(root, 'docs', 'errors.md'), 'utf8');
  const sections = [...doc.matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1]);
  t.same(sections, [...ERROR_CODES]);
  for (const code of ERROR_CODES) {
    const body = doc.split(`## ${code}\n`)[1].split('\n## ')[0];
    t.match(body, /\*\*Fix:\*\*/, `${code} says what to do`);
  }
});

t.test('every code the native addon throws is on the list', async (t) => {
  const codes = native().errorCodes;
  t.ok(codes.length >= 8, `the addon lists its codes (${codes.join(', ')})`);
  for (const code of codes) t.ok(isErrorCode(code), `${code} is in ERROR_CODES`);
});

t.test('the native sources spell no code by hand: they use the constants of error_codes.h', async (t) => {
  const dir = path.join(root, 'native', 'src');
  const files = fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(cpp|h|cu)$/.test(f) && !f.endsWith('error_codes.h'));
  t.ok(files.length > 10);
  for (const f of files) {
    const literal = fs.readFileSync(path.join(dir, f), 'utf8').match(/"E_[A-Z_]+"/);
    t.equal(literal, null, `${f} has no "E_…" literal`);
  }
});

t.test('an unknown native code becomes E_INTERNAL; a known one is kept', async (t) => {
  const known = Object.assign(new Error('x'), { code: 'E_BUSY' });
  t.equal(fromNativeError(known, 'ctx').code, 'E_BUSY');
  const typo = Object.assign(new Error('x'), { code: 'E_INPTU' });
  const e = fromNativeError(typo, 'ctx');
  t.ok(e instanceof DupnError);
  t.equal(e.code, 'E_INTERNAL');
  t.equal(e.message, 'ctx: x');
});

t.test('a second step while one runs is E_BUSY, and the first one completes', async (t) => {
  const config = noPropertiesConfig();
  const examples = Array.from(synthesize({ users: 16, seed: 3, config, items: 200, categories: 10, shops: 20, brands: 10 }));
  const trainer = Trainer.create(config, { seed: 1 });
  t.teardown(() => trainer.dispose());
  const first = trainer.step(examples);
  await t.rejects(trainer.step(examples), { code: 'E_BUSY', message: /previous step has not finished/ });
  const report = await first;
  t.ok(Number.isFinite(report.loss));
  await t.resolves(trainer.step(examples), 'the next step runs once the first has settled');
});
