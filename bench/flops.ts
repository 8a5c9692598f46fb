/** Floating-point operation counts of the forward pass (a multiply-add counts as 2), for GFLOP/s figures. */
import { ResolvedConfig, deriveDims } from '../lib/network/config';

/** FLOPs to encode one user with L behaviours: input projections, recurrence, attention (heads excluded). */
export function encodeFlops(config: ResolvedConfig, L: number): number {
  const d = deriveDims(config);
  const G = 4 * d.hidden;
  const perStepPerDir = 2 * (d.dx + d.dp) * G + 2 * d.hidden * G;
  const attention = 2 * (d.dh + d.dp) * d.attentionHidden + 2 * d.attentionHidden + 2 * d.dh;
  return L * (d.directions * perStepPerDir + attention);
}

/** FLOPs of an MLP of layer widths `widths` (input first) over `rows` rows. */
export function mlpFlops(widths: number[], rows: number): number {
  let f = 0;
  for (let k = 0; k + 1 < widths.length; k++) f += 2 * rows * widths[k] * widths[k + 1];
  return f;
}
