// precision "bf16": within 1e-2 of fp32 on U, attention and every head (odd dims, lengths 0/1/max,
// both directions), and refused with a clear error wherever it cannot run.
import t from 'tap';
import { resolveConfig } from '../lib/network/config';
import { Model } from '../lib/model/model';
import { native } from '../lib/native/addon';
import { randomCandidateColumns, randomTensors, randomUserColumns } from '../lib/reference/random-model';
import { relError } from './support/compare';
import { throwsCode } from './support/errors';

const hasBf16 = native().kernels.hasBf16;

function configFor(bidirectional: boolean) {
  return resolveConfig({
    maxSeqLen: 50,
    itemFields: [
      { name: 'item', buckets: 999, dim: 13 },
      { name: 'category', buckets: 77, dim: 7 },
      { name: 'shop', buckets: 55, dim: 5 },
      { name: 'brand', buckets: 33, dim: 3 },
    ],
    query: { buckets: 41, dim: 9 },
    profileFields: [{ name: 'age', buckets: 9, dim: 3 }],
    hidden: 45,
    bidirectional,
    attentionHidden: 21,
  });
}

t.test('bf16 stays within 1e-2 of fp32', { skip: !hasBf16 && 'this CPU has no AVX-512-BF16: the refusal is tested below' }, async (t) => {
  for (const bidirectional of [true, false]) {
    const config = configFor(bidirectional);
    const tensors = randomTensors(config, 5, 0.3);
    const f = Model.fromTensors(config, tensors, { threads: 2 });
    const b = Model.fromTensors(config, tensors, { threads: 2, precision: 'bf16' });
    t.equal(b.precision, 'bf16');
    const lengths = [0, 1, 50, 17, 50, 3, ...Array.from({ length: 94 }, (_, i) => (i * 13) % 51)];
    const cols = randomUserColumns(config, 9, lengths);
    const steps = lengths.reduce((x, y) => x + y, 0);
    const af = new Float32Array(steps);
    const ab = new Float32Array(steps);
    const uf = await f.encodeColumns(cols, { attention: af });
    const ub = await b.encodeColumns(cols, { attention: ab });
    t.ok(relError(ub, uf) <= 1e-2, `bi=${bidirectional}: U rel err ${relError(ub, uf).toExponential(2)}`);
    t.ok(relError(ab, af) <= 1e-2, `bi=${bidirectional}: attention rel err ${relError(ab, af).toExponential(2)}`);
    t.ok(ub.subarray(0, config.hidden * (bidirectional ? 2 : 1)).every((x) => x === 0), 'L = 0 still gives r = 0');
    for (const task of ['ctr', 'l2r', 'spp']) {
      const c = randomCandidateColumns(config, task, 3, 200);
      const sf = await f.score(task, uf.subarray(f.userDim, 2 * f.userDim), c);
      const sb = await b.score(task, ub.subarray(b.userDim, 2 * b.userDim), c);
      t.ok(relError(sb, sf) <= 1e-2, `bi=${bidirectional}: ${task} rel err ${relError(sb, sf).toExponential(2)}`);
    }
    t.ok(relError(await b.predictFromVectors('ppp', ub), await f.predictFromVectors('ppp', uf)) <= 1e-2, 'ppp');
    f.dispose();
    b.dispose();
  }
});

t.test('bf16 is refused where it cannot run', async (t) => {
  const config = configFor(true);
  const tensors = randomTensors(config, 1);
  throwsCode(t, () => Model.fromTensors(config, tensors, { precision: 'bf16', isa: 'avx2' }), 'E_UNSUPPORTED', 'bf16');
  throwsCode(t, () => Model.fromTensors(config, tensors, { precision: 'bf16', isa: 'baseline' }), 'E_UNSUPPORTED', 'AVX-512-BF16');
  throwsCode(t, () => Model.fromTensors(config, tensors, { precision: 'bf16', backend: 'onnxruntime' }), 'E_UNSUPPORTED', 'options.precision');
  throwsCode(t, () => Model.fromTensors(config, tensors, { precision: 'fp16' as never }), 'E_INPUT', 'options.precision');
  if (!hasBf16) throwsCode(t, () => Model.fromTensors(config, tensors, { precision: 'bf16' }), 'E_UNSUPPORTED', 'AVX-512-BF16');
  else t.equal(Model.fromTensors(config, tensors, { precision: 'bf16' }).precision, 'bf16', 'this CPU runs bf16');
});
