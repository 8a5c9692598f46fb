// Running lib/*.ts in child processes (loader and node-gyp tests).
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CMAKE_ADDON = path.join(ROOT, 'build', 'Release', 'dupn.node');

/** ts-node's transpile-only hook: ts-node itself, else the fork that tap ships (same API). */
export function tsNodeRegister(): string {
  for (const id of ['ts-node/register/transpile-only', '@isaacs/ts-node-temp-fork-for-pr-2009/register/transpile-only']) {
    try {
      return require.resolve(id, { paths: [ROOT] });
    } catch {
      // try the next
    }
  }
  throw new Error('ts-node is not installed (needed to run lib/*.ts in a child process)');
}
