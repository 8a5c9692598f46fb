/**
 * `dupn build-native`: the addon built from source, for platforms without a prebuilt binary (musl, other
 * architectures) or when a user wants one compiled for their own machine. It runs node-gyp on the
 * package's own native/binding.gyp in a scratch folder and writes the binary where the loader looks after the
 * prebuilds: a per-user cache outside node_modules, so `npm ci` does not wipe it (lib/native/addon.ts).
 *
 * node-gyp is the copy npm itself ships (or one installed beside dupn); Node's headers are taken from the
 * running Node's install prefix when present, so nothing is downloaded then.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-file';
import { DupnError } from '../errors';
import { packageRoot, platformTag, sourceBuildPath } from '../native/addon';
import { Output } from './train';

export interface BuildNativeFlags {
  out?: string;
  jobs?: number;
}

/** node-gyp's entry script: $npm_config_node_gyp, one resolvable from dupn, or the one inside npm. */
function findNodeGyp(): string | undefined {
  const candidates: string[] = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js', { paths: [packageRoot()] }));
  } catch {
    // not installed beside dupn: try npm's own copy
  }
  const prefix = path.dirname(path.dirname(process.execPath));
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => fs.existsSync(c));
}

/** A folder with include/node/node_api.h for this Node (its install prefix), so node-gyp downloads nothing. */
export function localNodeDir(): string | undefined {
  const candidates = [process.env.npm_config_nodedir, path.dirname(path.dirname(process.execPath))].filter((d): d is string => !!d);
  return candidates.find((d) => fs.existsSync(path.join(d, 'include', 'node', 'node_api.h')));
}

export async function buildNativeCommand(flags: BuildNativeFlags, io: Output): Promise<void> {
  const root = packageRoot();
  const gyp = findNodeGyp();
  if (!gyp) {
    throw new DupnError('E_UNSUPPORTED', 'node-gyp not found: it ships with npm; or install it beside dupn (npm install node-gyp)');
  }
  let napiDir: string;
  try {
    napiDir = path.dirname(path.dirname(require.resolve('node-addon-api/package.json', { paths: [root] })));
  } catch (e) {
    throw new DupnError('E_UNSUPPORTED', 'node-addon-api (a dependency of dupn) is not installed', { cause: e });
  }
  const target = path.resolve(flags.out ?? sourceBuildPath());
  // A scratch copy: node-gyp writes build/ beside binding.gyp, and node_modules/dupn may be read-only.
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-build-'));
  try {
    const native = path.join(scratch, 'native');
    fs.cpSync(path.join(root, 'native'), native, { recursive: true });
    const args = [gyp, 'rebuild', '--release', `--jobs=${flags.jobs ?? os.availableParallelism()}`];
    const nodedir = localNodeDir();
    if (nodedir) args.push(`--nodedir=${nodedir}`);
    io.err(`dupn: building the addon for ${platformTag()} with node-gyp (${gyp})${nodedir ? `, Node headers from ${nodedir}` : ''}`);
    const r = spawnSync(process.execPath, args, {
      cwd: native,
      // binding.gyp finds node-addon-api with require.resolve, which honours NODE_PATH from a scratch folder.
      env: { ...process.env, NODE_PATH: [napiDir, process.env.NODE_PATH].filter(Boolean).join(path.delimiter) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (r.error) throw new DupnError('E_IO', `could not run node-gyp: ${r.error.message}`, { cause: r.error });
    if (r.status !== 0) {
      throw new DupnError('E_UNSUPPORTED', `node-gyp failed (exit ${r.status ?? r.signal}): it needs python3, make and a C++17 compiler (g++ ≥ 9 or clang ≥ 10)`);
    }
    const built = path.join(native, 'build', 'Release', 'dupn.node');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    await writeFileAtomic(target, [fs.readFileSync(built)]);
    io.out(`wrote ${target}`);
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
