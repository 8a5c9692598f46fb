/**
 * The multi-task training loss in float64, written from its definition on top of the float64 forward
 * reference (forward.ts). Gradient checks differentiate it by central differences; it is the
 * yardstick of the native backward pass, not a training path.
 *
 * loss = Σ_k λ_k · loss_k over heads with labels, where loss_k is a weighted mean over the labelled examples:
 * - binary: w · (softplus(z) − y·z), the logistic loss of the logit z;
 * - rank: the same with y = [grade > 0] and w multiplied by the grade weight, plus (optionally) the pairwise
 *   logistic loss softplus(−(z_a − z_b)) over the pairs of one user's candidates with grade_a > grade_b,
 *   weighted by the mean of the two candidates' weights and averaged over all pairs of the batch;
 * - multiclass: w · (−log softmax(z)_y);
 * - retrieval: per user, the sampled softmax over that user's candidates of z_c − offset_c (z_c the
 *   head's score), Σ_c w_c y_c (logsumexp − (z_c − offset_c)), divided by Σ w_c y_c over the batch.
 */
import { ResolvedConfig, denseCount, deriveDims } from '../network/config';
import { NativeTrainBatch } from '../native/addon';
import { referenceEncode, referenceHead, referenceScore } from './forward';
import { DropoutMask } from './dropout';
import { Tensors, itemTableName } from '../network/tensors';

/** Point-wise weight of each rank grade 0..4 (none, click, fav, cart, buy); native/include/dupn/train.h has the same. */
export const GRADE_WEIGHTS = [1, 1, 2, 3, 5] as const;

function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

export interface ReferenceLoss {
  loss: number;
  /** loss_k per head (0 for a head without labels). */
  heads: number[];
}

/** `dropout`: the mask a training step drew (dropout.ts); absent, the loss of the network as it serves. */
export function referenceLoss(config: ResolvedConfig, tensors: Tensors, batch: NativeTrainBatch, dropout?: DropoutMask): ReferenceLoss {
  const d = deriveDims(config);
  const { user } = referenceEncode(config, tensors, batch.users, dropout);
  const F = config.itemFields.length;
  const heads: number[] = [];
  let loss = 0;
  config.tasks.forEach((task, h) => {
    const lab = batch.heads[h];
    let total = 0;
    let sum = 0;
    if (lab.lambda === 0) {
      heads.push(0);
      return;
    }
    if (task.kind === 'retrieval') {
      const owner = lab.owner!;
      const C = owner.length;
      const byUser = new Map<number, number[]>();
      for (let c = 0; c < C; c++) {
        if (!byUser.has(owner[c])) byUser.set(owner[c], []);
        byUser.get(owner[c])!.push(c);
      }
      for (const [b, cands] of byUser) {
        const D = denseCount(task);
        const items = new Int32Array(cands.length * F);
        const dense = new Float32Array(cands.length * D);
        cands.forEach((c, i) => {
          items.set(lab.items!.subarray(c * F, (c + 1) * F), i * F);
          if (D > 0) dense.set(lab.dense!.subarray(c * D, (c + 1) * D), i * D);
        });
        const s = referenceScore(config, tensors, task.name, user.subarray(b * d.userDim, (b + 1) * d.userDim), { items, dense });
        const z = cands.map((c, i) => s[i] - (lab.offset ? lab.offset[c] : 0));
        const mx = Math.max(...z);
        const lse = mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0));
        cands.forEach((c, i) => {
          const wy = lab.weight![c] * lab.label![c];
          sum += wy * (lse - z[i]);
          total += wy;
        });
      }
    } else if (task.kind === 'multiclass') {
      const classes = lab.classes!;
      for (let b = 0; b < classes.length; b++) {
        if (classes[b] < 0) continue;
        const z = referenceHead(config, tensors, task, user.subarray(b * d.userDim, (b + 1) * d.userDim));
        let mx = -Infinity;
        for (const v of z) mx = Math.max(mx, v);
        let s = 0;
        for (const v of z) s += Math.exp(v - mx);
        const w = lab.classWeight![b];
        sum += w * (mx + Math.log(s) - z[classes[b]]);
        total += w;
      }
    } else {
      const owner = lab.owner!;
      const C = owner.length;
      const D = denseCount(task);
      const z = new Float64Array(C);
      for (let c = 0; c < C; c++) {
        const input: number[] = Array.from(user.subarray(owner[c] * d.userDim, (owner[c] + 1) * d.userDim));
        for (const name of task.target) {
          const fi = config.itemFields.findIndex((f) => f.name === name);
          const f = config.itemFields[fi];
          if (f.dim === 0) continue;
          const table = tensors.get(itemTableName(name))!;
          const row = lab.items![c * F + fi];
          for (let j = 0; j < f.dim; j++) input.push(table[row * f.dim + j]);
        }
        for (let j = 0; j < D; j++) input.push(lab.dense![c * D + j]);
        z[c] = referenceHead(config, tensors, task, input)[0];
        let w = lab.weight![c];
        let y = lab.label![c];
        if (task.kind === 'rank') {
          w *= GRADE_WEIGHTS[y];
          y = y > 0 ? 1 : 0;
        }
        sum += w * (softplus(z[c]) - y * z[c]);
        total += w;
      }
      if (task.kind === 'rank' && lab.pairwise && total > 0) {
        let pairSum = 0;
        let pairTotal = 0;
        for (let a = 0; a < C; a++) {
          for (let b = 0; b < C; b++) {
            if (owner[a] !== owner[b] || !(lab.label![a] > lab.label![b])) continue;
            const pw = 0.5 * (lab.weight![a] + lab.weight![b]);
            pairSum += pw * softplus(-(z[a] - z[b]));
            pairTotal += pw;
          }
        }
        if (pairTotal > 0) {
          const lk = sum / total + pairSum / pairTotal;
          heads.push(lk);
          loss += lab.lambda * lk;
          return;
        }
      }
    }
    const lk = total > 0 ? sum / total : 0;
    heads.push(lk);
    loss += lab.lambda * lk;
  });
  return { loss, heads };
}
