// The column checks live twice: natively (the authority, which every caller's ids pass) and in
// lib/model/columns.ts (for onnxruntime and the float64 reference). The same malformed columns must be
// refused by both with the same code and the same message, and the same good columns accepted by both.
import t from 'tap';
import { CandidateColumns, UserColumns, validateCandidateColumns, validateUserColumns } from '../lib/model/columns';
import { deriveDims, resolveConfig } from '../lib/network/config';
import { native } from '../lib/native/addon';
import { nativeSpec } from '../lib/native/spec';
import { cloneUserColumns, randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { oddConfig } from './support/configs';

// Every optional input present; brand and gender have dim 0 (no table read, so their user ids go unchecked).
const config = resolveConfig(oddConfig({ bidirectional: false, query: true, profile: true, scene: true, maxSeqLen: 6 }));
const addon = new (native().NativeModel)(nativeSpec(config, randomTensors(config, 3), 0, false), '');
const userDim = deriveDims(config).userDim;
t.teardown(() => addon.release());

/** What a check threw, as code and message; null when it accepted the input. */
function outcome(fn: () => unknown): { code: unknown; message: string } | null {
  try {
    fn();
    return null;
  } catch (e) {
    return { code: (e as { code?: unknown }).code, message: (e as Error).message };
  }
}

const good = randomUserColumns(config, 7, [3, 0, 6, 2], { queryTokens: 3 });
const spoil = (f: (c: UserColumns) => void): UserColumns => {
  const c = cloneUserColumns(good);
  f(c);
  return c;
};
const empty = (): UserColumns => ({
  lengths: new Int32Array(0), items: new Int32Array(0), properties: new Int32Array(0),
  queryOffsets: Int32Array.of(0), queryTokens: new Int32Array(0), profile: new Int32Array(0),
});
const F = config.itemFields.length;
const P = config.profileFields.length;

const userCases: [string, UserColumns][] = [
  ['negative item id', spoil((c) => (c.items[F + 1] = -1))],
  ['item id past its table', spoil((c) => (c.items[2 * F] = config.itemFields[0].buckets))],
  ['type id past its table', spoil((c) => (c.properties[3] = config.properties.types.length + 1))],
  ['negative gap bucket', spoil((c) => (c.properties[4] = -3))],
  ['scene id past its table', spoil((c) => (c.properties[8] = 1000))],
  ['query token past its table', spoil((c) => (c.queryTokens[c.queryTokens.length - 1] = config.query!.buckets))],
  ['negative profile id', spoil((c) => (c.profile[2 * P] = -1))],
  ['profile id past its table', spoil((c) => (c.profile[P + 2] = config.profileFields[2].buckets))],
  ['lengths not summing to the item rows', spoil((c) => (c.lengths[1] = 1))],
  ['a length over maxSeqLen', spoil((c) => (c.lengths[2] = 7))],
  ['a negative length', spoil((c) => (c.lengths[0] = -1))],
  ['properties short', spoil((c) => (c.properties = c.properties.subarray(3)))],
  ['profile short', spoil((c) => (c.profile = c.profile.subarray(1)))],
  ['query offsets out of order', spoil((c) => c.queryOffsets.set([0, 3, 1, 2, c.queryTokens.length]))],
  ['query offsets not starting at 0', spoil((c) => (c.queryOffsets[0] = 1))],
  ['query offsets not ending at the token count', spoil((c) => (c.queryTokens = c.queryTokens.subarray(1)))],
  ['query offsets one short', spoil((c) => (c.queryOffsets = c.queryOffsets.subarray(1)))],
  ['several faults: a bad length and a bad id (the length is named)', spoil((c) => ((c.items[0] = -5), (c.lengths[3] = 9)))],
  ['several faults: item count and query order (the count is named)', spoil((c) => ((c.items = c.items.subarray(F)), (c.queryOffsets[2] = 0)))],
  ['batch 0 with a stray item row', { ...empty(), items: new Int32Array(F) }],
  ['batch 0 with a stray profile row', { ...empty(), profile: new Int32Array(P) }],
  ['batch 0 with two query offsets', { ...empty(), queryOffsets: Int32Array.of(0, 0) }],
  ['batch 0 with a query token', { ...empty(), queryTokens: Int32Array.of(1) }],
  ['batch 0 with no query offset', { ...empty(), queryOffsets: new Int32Array(0) }],
  ['a Float32Array of items', spoil((c) => (c.items = new Float32Array(c.items.length) as never))],
  ['no profile', spoil((c) => delete (c as Partial<UserColumns>).profile)],
  ['not an object', null as never],
];

t.test('malformed user columns: the same code and message from both checks', async (t) => {
  for (const [what, cols] of userCases) {
    const ts = outcome(() => validateUserColumns(config, cols));
    const batch = cols?.lengths instanceof Int32Array ? cols.lengths.length : 0;
    const nat = outcome(() => addon.encode(cols, new Float32Array(batch * userDim), null, 1, false));
    t.not(ts, null, `${what}: refused`);
    t.equal(ts?.code, 'E_INPUT', `${what}: E_INPUT`);
    t.same(nat, ts, `${what}: ${ts?.message}`);
  }
});

t.test('good user columns, batch 0 included: accepted by both', async (t) => {
  const zeros = randomUserColumns(config, 2, [0, 0]);
  // Dim-0 columns are never read: any id passes there (brand is item field 3, gender profile field 1).
  const dimZero = spoil((c) => ((c.items[3] = -9), (c.profile[1] = 1 << 20)));
  for (const [what, cols] of [['batch 0', empty()], ['empty histories', zeros], ['random', good], ['ids in dim-0 columns', dimZero]] as const) {
    t.equal(outcome(() => validateUserColumns(config, cols)), null, `${what}: TypeScript accepts`);
    t.equal(outcome(() => addon.encode(cols, new Float32Array(cols.lengths.length * userDim), null, 1, false)), null, `${what}: native accepts`);
  }
});

t.test('malformed candidate columns: the same code and message from both checks', async (t) => {
  const heads = new Map(config.tasks.map((task, i) => [task.name, i]));
  const scoreNatively = (task: string, cands: CandidateColumns): void => {
    const count = cands?.items instanceof Int32Array ? Math.floor(cands.items.length / F) : 0;
    addon.score([heads.get(task)!], new Float32Array(userDim), cands, [new Float32Array(count)], 1, false);
  };
  const cands = (task: string, f: (c: CandidateColumns) => void = () => undefined): CandidateColumns => {
    const c = randomCandidateColumns(config, task, 5, 4);
    f(c);
    return c;
  };
  const cases: [string, string, CandidateColumns][] = [
    ['negative item id', 'ctr', cands('ctr', (c) => (c.items[F] = -1))],
    ['shop id past its table', 'l2r', cands('l2r', (c) => (c.items[3 * F + 2] = config.itemFields[2].buckets))],
    // A target field of dim 0 is still range-checked, as the native check does.
    ['brand (dim 0) id past its table', 'ctr', cands('ctr', (c) => (c.items[F + 3] = config.itemFields[3].buckets))],
    ['items not whole rows', 'ctr', cands('ctr', (c) => (c.items = c.items.subarray(1)))],
    ['dense features short', 'l2r', cands('l2r', (c) => (c.dense = c.dense.subarray(1)))],
    ['a NaN dense feature', 'l2r', cands('l2r', (c) => (c.dense[4] = NaN))],
    ['retrieval history features short', 'ret', cands('ret', (c) => (c.dense = c.dense.subarray(2)))],
    ['dense not a Float32Array', 'ctr', cands('ctr', (c) => (c.dense = [] as never))],
    ['items not an Int32Array', 'ctr', cands('ctr', (c) => (c.items = Array.from(c.items) as never))],
  ];
  for (const [what, task, c] of cases) {
    const ts = outcome(() => validateCandidateColumns(config, config.tasks[heads.get(task)!], c));
    t.not(ts, null, `${what}: refused`);
    t.equal(ts?.code, 'E_INPUT', `${what}: E_INPUT`);
    t.same(outcome(() => scoreNatively(task, c)), ts, `${what}: ${ts?.message}`);
  }
  for (const task of ['ctr', 'l2r', 'spp', 'plain', 'ret', 'ret1']) {
    const c = cands(task);
    t.equal(outcome(() => validateCandidateColumns(config, config.tasks[heads.get(task)!], c)), null, `${task}: TypeScript accepts`);
    t.equal(outcome(() => scoreNatively(task, c)), null, `${task}: native accepts`);
  }
});
