// The C++ compiler the standalone native checks (native/test/*.cpp) are built with.
import { spawnSync } from 'node:child_process';

/** The first C++ compiler that answers `--version`: $CXX, then g++, c++, clang++. */
export function findCompiler(): string | undefined {
  const candidates = [process.env.CXX, 'g++', 'c++', 'clang++'].filter((c): c is string => !!c);
  return candidates.find((c) => spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0);
}

/**
 * Compiles `sources` into `exe` with `flags`, with AddressSanitizer and UndefinedBehaviorSanitizer where this
 * compiler and its runtime have them, plainly otherwise. Returns the compiler's result and which it was.
 */
export function compileChecked(cxx: string, flags: string[], sources: string[], exe: string): { status: number | null; stderr: string; mode: string; fallback?: string } {
  const compile = (extra: string[]) => spawnSync(cxx, [...flags, ...extra, ...sources, '-o', exe], { encoding: 'utf8' });
  const built = compile(['-fsanitize=address,undefined', '-fno-sanitize-recover=all']);
  if (built.status === 0) return { status: 0, stderr: built.stderr, mode: 'with -fsanitize=address,undefined' };
  const plain = compile([]);
  return { status: plain.status, stderr: plain.stderr, mode: 'without sanitizers', fallback: built.stderr.trim().split('\n').pop() };
}
