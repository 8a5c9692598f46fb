// The C++ compiler the standalone native checks (native/test/*.cpp) are built with, and their build.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Test } from 'tap';
import { ROOT } from './child';

/** The first C++ compiler that answers `--version`: $CXX, then g++, c++, clang++. */
export function findCompiler(): string | undefined {
  const candidates = [process.env.CXX, 'g++', 'c++', 'clang++'].filter((c): c is string => !!c);
  return candidates.find((c) => spawnSync(c, ['--version'], { encoding: 'utf8' }).status === 0);
}

const FLAGS = ['-std=c++17', '-O2', '-Wall', '-Wextra', `-I${path.join(ROOT, 'native', 'include')}`];

/**
 * Compiles `sources` (paths under the repository root) into an executable in a temporary folder removed when
 * `t` ends, with AddressSanitizer and UndefinedBehaviorSanitizer where this compiler and its runtime have them,
 * plainly otherwise (said in a comment). Asserts that it compiled; returns the executable, or undefined if not.
 */
export function buildCheck(t: Test, cxx: string, sources: string[]): string | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-check-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, process.platform === 'win32' ? 'check.exe' : 'check');
  const compile = (extra: string[]) =>
    spawnSync(cxx, [...FLAGS, ...extra, ...sources.map((s) => path.join(ROOT, s)), '-o', exe], { encoding: 'utf8' });
  let built = compile(['-fsanitize=address,undefined', '-fno-sanitize-recover=all']);
  let mode = 'with -fsanitize=address,undefined';
  if (built.status !== 0) {
    t.comment(`${cxx} cannot build with the sanitizers here; built without them: ${built.stderr.trim().split('\n').pop()}`);
    built = compile([]);
    mode = 'without sanitizers';
  }
  t.equal(built.status, 0, `${cxx} compiles the check ${mode}${built.status === 0 ? '' : `:\n${built.stderr}`}`);
  return built.status === 0 ? exe : undefined;
}
