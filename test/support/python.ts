// Finds a Python with torch for the PyTorch twin's tests (python/dupn_torch).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export const PYTHON_PATH = path.resolve(__dirname, '..', '..', 'python');

export type TorchPython = { python: string; version: string } | { python: null; reason: string };

/**
 * The first of $DUPN_PYTHON, /usr/bin/python3 (Debian's, where python3-torch installs) and python3 on the PATH
 * that imports torch with gloo, or why none does.
 */
export function findTorchPython(): TorchPython {
  const tried: string[] = [];
  for (const python of [process.env.DUPN_PYTHON, '/usr/bin/python3', 'python3']) {
    if (!python) continue;
    const r = spawnSync(python, ['-c', 'import torch, torch.distributed as d; print(torch.__version__, d.is_gloo_available())'], { encoding: 'utf8' });
    const out = (r.stdout ?? '').trim();
    if (r.status === 0 && out.endsWith('True')) return { python, version: out.split(' ')[0] };
    tried.push(`${python}: ${r.error ? r.error.message : (r.stderr ?? '').trim().split('\n').pop() || out}`);
  }
  return { python: null, reason: `no Python with torch and gloo (install Debian's python3-torch; tried ${tried.join('; ')})` };
}

/** Runs `python args…` with the twin on PYTHONPATH; throws with stderr on a non-zero exit. */
export function runPython(python: string, args: string[], opts: { allowFail?: boolean } = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(python, args, {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: PYTHON_PATH, OMP_NUM_THREADS: '1' },
    maxBuffer: 1 << 28,
  });
  const res = { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (res.status !== 0 && !opts.allowFail) throw new Error(`${python} ${args.join(' ')} exited ${res.status}: ${res.stderr}`);
  return res;
}

/**
 * The Python to test the twin with, or null after marking the test file: skipped with the reason where no
 * Python has torch, failed where DUPN_REQUIRE_TORCH=1 (.ci/run installs torch, so there it must be found).
 */
export function torchForTest(t: { fail: (msg: string) => unknown; plan: (n: number, comment: string) => unknown }): { python: string; version: string } | null {
  const found = findTorchPython();
  if (found.python !== null) return found;
  if (process.env.DUPN_REQUIRE_TORCH === '1') t.fail(`DUPN_REQUIRE_TORCH=1 but ${found.reason}`);
  else t.plan(0, `skipped: ${found.reason}`);
  return null;
}
