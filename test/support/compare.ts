// Helpers shared by the native-vs-reference tests.
import { native } from '../../lib/native/addon';

/** ‖a − b‖₂ / ‖b‖₂ (0 when both are zero). */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Every instruction-set path this CPU can run; each is forced in turn by the parity tests. */
export function isas(): string[] {
  return native().supportedIsas.split(',');
}

/** Every instruction-set path the addon is built with (x86-64); a CPU may run fewer of them. */
export const BUILT_ISAS = ['baseline', 'avx2', 'avx512'];

export function allFinite(a: ArrayLike<number>): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}
