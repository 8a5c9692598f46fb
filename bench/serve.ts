/**
 * bench/serve — `dupn serve` against what a Node engineer builds today, fastify around onnxruntime-node (one
 * session run per request, no batching; the same feature code and catalogue, lib's onnxruntime backend on the
 * same model exported to ONNX), on one paper-size model file, the same requests and the same HTTP client, in
 * one run. Each server runs in its own process; this process is the load generator (closed loop: n connections,
 * each sending its next request when the last is answered, for `--seconds` per level after a warm-up).
 * Workload (issue 13): one user with a real-length history (bench/lengths.ts; `--data` a Taobao CSV) plus 500
 * candidate ids from a 100,000-item catalogue, scored on ctr and l2r, top 50 returned. Reported per server and
 * connection count: requests/s, p50/p99/p99.9, server CPU per request; then the most requests/s at p99 ≤ 25 ms,
 * and RSS. Servers: dupn serve (batcher), dupn serve with --max-batch 1 (unbatched), dupn serve --workers 2, the
 * same with other Node flags (`--worker-flags "a;b"`: one server per set, "" for none; default no such server), peer.
 *
 * Then, per server, an open loop (requests started at a fixed rate whatever the server does, latency counted from
 * the scheduled start): the highest rate whose p99 stays within 25 ms, found by bisection, and the latencies at
 * half of that rate (`--no-open` skips it; `--servers 0,2` runs only those dupn servers, with the peer).
 * `--candidates n` changes the 500 candidates per request (the soak below uses it to reach a million requests
 * in reasonable time). `--probe <rate> [--repeat n] [--server-flags "a;b"]` instead compares the open-loop tail of
 * `dupn serve` under Node flag sets (probeRun).
 *
 *   npm run bench:serve [-- --seconds 5 --levels 1,2,4,8,16,32,64 --data ../shared/data/taobao-userbehavior]
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import Fastify from 'fastify';
import { Model } from '../lib/model/model';
import { UserInput } from '../lib/model/features';
import { resolveConfig } from '../lib/network/config';
import { randomTensors } from '../lib/reference/random-model';
import { ItemCatalogue } from '../lib/serve/catalogue';
import { createServer } from '../lib/serve/server';
import { lengthSource } from './lengths';
import { machineLine } from './machine';
import { benchCandidates, benchUsers } from './users';
import { numberArg, stringArg } from './args';

/** `--name a<sep>b` as its parts; none when the option is absent (an empty part, as in `"a;"`, stays). */
function listOption(name: string, sep: string): string[] {
  const v = stringArg(name, '');
  return v === '' ? [] : v.split(sep);
}

const TOP = 50;

/** The peer: fastify with the model on onnxruntime-node and the same catalogue; one encode and one scoring per request. */
async function peerServer(file: string, items: string, threads: number): Promise<string> {
  const model = await Model.load(file, { backend: 'onnxruntime', threads });
  const catalogue = await ItemCatalogue.load(items);
  const app = Fastify({ bodyLimit: 8 << 20 });
  app.post('/v1/rank', async (request) => {
    const { user, candidates, tasks, k } = request.body as { user: UserInput; candidates: string[]; tasks: string[]; k: number };
    const resolved = catalogue.resolve(candidates);
    const scores = await model.scoreAll(await model.encode([user]), resolved.candidates, { user, tasks });
    const first = scores[tasks[0]];
    const order = Array.from(first.keys()).sort((a, b) => first[b] - first[a]).slice(0, k);
    return {
      scores: Object.fromEntries(Object.entries(scores).map(([name, v]) => [name, Array.from(v)])),
      top: order.map((i) => ({ item: candidates[i], index: i, score: first[i] })),
    };
  });
  return app.listen({ port: 0, host: '127.0.0.1' });
}

/** A server as a child process; resolves to its address. */
async function start(args: string[]): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', process.env['BENCH_SERVER_STDERR'] ? 'inherit' : 'ignore'] });
  const base = await new Promise<string>((resolve, reject) => {
    let out: string | undefined = '';
    const copy = process.env['BENCH_SERVER_STDOUT']; // a file to append the server's stdout to (e.g. --trace-gc lines)
    child.stdout!.on('data', (d: Buffer) => {
      if (copy) fs.appendFileSync(copy, d);
      if (out === undefined) return;
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m !== null) {
        out = undefined;
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code} before listening`)));
  });
  return { child, base };
}

/** A process and its children (a cluster's workers). */
function family(pid: number): number[] {
  try {
    return [pid, ...fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
  } catch {
    return [pid];
  }
}

/**
 * Memory of each process of the family, `RSS (private)` in MiB: private pages are what another worker adds; the
 * rest is shared (the memory-mapped model file, Node's binary).
 */
function rssMiB(pid: number): string[] {
  return family(pid).map((p) => {
    const text = fs.readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
    const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return `${(kb('Rss') / 1024).toFixed(0)} (${((kb('Private_Clean') + kb('Private_Dirty')) / 1024).toFixed(0)})`;
  });
}

/** CPU seconds (user + system) used so far by the family. */
function cpuSeconds(pid: number): number {
  const tick = 100; // USER_HZ on Linux
  return family(pid).reduce((sum, p) => {
    const fields = fs.readFileSync(`/proc/${p}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    return sum + (Number(fields[11]) + Number(fields[12])) / tick;
  }, 0);
}

/** The open-loop search's result: the highest rate within the bound, and the latencies at half of it. */
interface OpenResult {
  rate: number;
  half: Level | undefined;
}

interface Level {
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  failed: number;
  cpuMsPerRequest: number;
  /** This process's (the load generator's) CPU ms per request: it shares the cores with the server. */
  clientCpuMsPerRequest: number;
}

/** A level's figures from its latencies (ms), its length (s), its failures, the server's CPU seconds and ours. */
function levelOf(connections: number, lat: number[], elapsed: number, failed: number, cpu: number, client: NodeJS.CpuUsage): Level {
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { connections, rps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), p999: q(0.999), failed, cpuMsPerRequest: (1000 * cpu) / lat.length, clientCpuMsPerRequest: (client.user + client.system) / 1000 / lat.length };
}

/** A level's table cells from requests/s on (the rows of the closed- and open-loop table share them). */
function cells(l: Level): string {
  return `${l.rps.toFixed(0)} | ${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${l.p999.toFixed(1)} | ${l.cpuMsPerRequest.toFixed(2)} | ${l.clientCpuMsPerRequest.toFixed(2)} | ${l.failed} |`;
}

/** POSTs `body` as JSON; resolves to the status (0 when the request failed), once the answer is read. */
function postJson(url: URL, agent: http.Agent, body: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Keeps `connections` POSTs in flight for `seconds`; bodies cycle through `bodies`. */
async function load(base: string, pid: number, bodies: string[], connections: number, seconds: number): Promise<Level> {
  const url = new URL('/v1/rank', base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const lat: number[] = [];
  let failed = 0;
  let next = 0;
  const cpu0 = cpuSeconds(pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < until) {
        const r0 = performance.now();
        const status = await postJson(url, agent, bodies[next++ % bodies.length]);
        if (status !== 200) failed++;
        lat.push(performance.now() - r0);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  agent.destroy();
  return levelOf(connections, lat, elapsed, failed, cpu, process.cpuUsage(client0));
}

/**
 * Open loop: requests start at `rate` per second on a fixed schedule whatever the server does (as independent
 * clients arrive), for `seconds`. A request's latency counts from its scheduled start, so a server that falls
 * behind is charged for the wait (no coordinated omission). Connections are opened as needed (keep-alive).
 */
async function openLoad(base: string, pid: number, bodies: string[], rate: number, seconds: number): Promise<Level> {
  const url = new URL('/v1/rank', base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const lat: number[] = [];
  let failed = 0;
  let next = 0;
  const total = Math.max(1, Math.round(rate * seconds));
  const cpu0 = cpuSeconds(pid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  let inFlight = 0;
  let peak = 0;
  await new Promise<void>((done) => {
    let sent = 0;
    let answered = 0;
    const fire = (scheduled: number): void => {
      const body = bodies[next++ % bodies.length];
      inFlight++;
      peak = Math.max(peak, inFlight);
      void postJson(url, agent, body).then((status) => {
        inFlight--;
        if (status !== 200) failed++;
        lat.push(performance.now() - scheduled);
        if (++answered === total) done();
      });
    };
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && t0 + (sent * 1000) / rate <= now) fire(t0 + (sent++ * 1000) / rate);
      if (sent < total) setTimeout(tick, Math.max(0, t0 + (sent * 1000) / rate - performance.now()));
    };
    tick();
  });
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  agent.destroy();
  return levelOf(peak, lat, elapsed, failed, cpu, process.cpuUsage(client0));
}

/**
 * The highest open-loop rate (requests/s, to 2%) whose p99 stays within `bound` ms with no failure, by bisection
 * between `low` (assumed to pass; checked) and `high`; every probe is returned in the order run.
 */
async function maxRate(base: string, pid: number, bodies: string[], low: number, high: number, bound: number, seconds: number): Promise<{ best: Level | undefined; rate: number; probes: { rate: number; level: Level }[] }> {
  const probes: { rate: number; level: Level }[] = [];
  const passes = async (rate: number): Promise<Level | undefined> => {
    const level = await openLoad(base, pid, bodies, rate, seconds);
    probes.push({ rate, level });
    return level.p99 <= bound && level.failed === 0 ? level : undefined;
  };
  let best = await passes(low);
  while (best === undefined && low > 2) {
    high = low;
    low = Math.max(1, Math.round(low / 2));
    best = await passes(low);
  }
  if (best === undefined) return { best, rate: 0, probes };
  let ok = low;
  while (high / ok > 1.02 && high - ok > 1) {
    const mid = Math.round(Math.sqrt(ok * high));
    if (mid <= ok || mid >= high) break;
    const level = await passes(mid);
    if (level !== undefined) {
      ok = mid;
      best = level;
    } else high = mid;
  }
  return { best, rate: ok, probes };
}

/**
 * `--soak n`: n requests at 64 connections against `dupn serve` while the model file is replaced `--reloads`
 * times, every `--reload-ms` (write to a temporary name and rename, as `dupn train` does; the server watches the file), alternating two
 * models; prints failed requests, the reloads the server counted, and RSS at every twentieth of the run.
 */
async function soakRun(cli: string, file: string, items: string, bodies: string[], total: number, reloads: number, reloadMs: number, dir: string): Promise<void> {
  const other = path.join(dir, 'other.safetensors');
  const config = resolveConfig({});
  const second = Model.fromTensors(config, randomTensors(config, 2, 0.2), { threads: 1 });
  await second.save(other);
  second.dispose();
  const first = fs.readFileSync(file);
  const alt = fs.readFileSync(other);
  const { child, base } = await start([cli, 'serve', '--model', file, '--items', items, '--port', '0', '--timeout-ms', '10000']);
  console.log(`bench/serve --soak · ${machineLine()}`);
  console.log(`${total} requests (the workload above, ${JSON.parse(bodies[0]).candidates.length} candidates each) at 64 connections, the model file replaced ${reloads} times under load, every ${reloadMs} ms\n`);
  const url = new URL('/v1/rank', base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let sent = 0;
  let done = 0;
  let failed = 0;
  let replaced = 0;
  const rss: string[] = [];
  const versions = new Set<string>();
  const post = (body: string): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
  // One replacement every reloadMs (longer than a load, check and warm-up of this model, so each is a reload
  // of its own rather than coalesced with the next).
  const timer = setInterval(() => {
    if (replaced >= reloads) return;
    replaced++;
    const tmp = `${file}.tmp-${replaced}`;
    fs.writeFileSync(tmp, replaced % 2 === 1 ? alt : first);
    fs.renameSync(tmp, file);
  }, reloadMs);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (sent < total || replaced < reloads) {
        const i = sent++;
        try {
          const r = await post(bodies[i % bodies.length]);
          if (r.status !== 200) failed++;
          else if (i % 97 === 0) versions.add((JSON.parse(r.text) as { model: { version: string } }).model.version);
        } catch {
          failed++;
        }
        if (++done % Math.max(1, Math.floor(total / 20)) === 0) rss.push(`${done}: ${rssMiB(child.pid!).join(' + ')} MiB`);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, reloadMs));
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const count = (result: string): string => new RegExp(`dupn_model_reloads_total\\{result="${result}"\\} (\\S+)`).exec(metrics)?.[1] ?? '?';
  agent.destroy();
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  console.log(`${done} requests in ${seconds.toFixed(0)} s (${(done / seconds).toFixed(0)}/s), failed ${failed}; file replaced ${replaced} times, reloads counted by the server: success ${count('success')}, failure ${count('failure')}; versions seen in answers: ${versions.size}; exit ${code}`);
  console.log(`RSS: ${rss.join(', ')}`);
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Tail latency of `dupn serve` under Node flag sets, A/B: one server per flag set (`--server-flags "a;b"`, flag
 * sets separated by ';', an empty one for the defaults), all started and warmed, then `repeat` open-loop probes of
 * `seconds` at `rate` per server, taking turns, so that drifts of the shared machine fall on every set alike.
 */
async function probeRun(serveArgs: string[], bodies: string[], rate: number, repeat: number, seconds: number, flagSets: string[]): Promise<void> {
  const servers: { flags: string; child: ChildProcess; base: string; runs: Level[] }[] = [];
  for (const flags of flagSets) {
    const { child, base } = await start([...flags.split(' ').filter((f) => f !== ''), ...serveArgs]);
    await load(base, child.pid!, bodies, 8, 3);
    servers.push({ flags, child, base, runs: [] });
  }
  console.log(`bench/serve --probe · ${machineLine()}`);
  console.log(`open loop at ${rate}/s, ${seconds} s per probe, ${repeat} probes per server in turn\n`);
  console.log('| node flags | probe | p50 ms | p99 ms | p99.9 ms | max in flight | server CPU ms/request | failed |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (let r = 0; r < repeat; r++) {
    for (const s of servers) {
      const l = await openLoad(s.base, s.child.pid!, bodies, rate, seconds);
      s.runs.push(l);
      console.log(`| ${s.flags || '(defaults)'} | ${r + 1} | ${l.p50.toFixed(1)} | ${l.p99.toFixed(1)} | ${l.p999.toFixed(1)} | ${l.connections} | ${l.cpuMsPerRequest.toFixed(2)} | ${l.failed} |`);
    }
  }
  console.log('\n| node flags | p99 ms of each probe (sorted) | median p99 | RSS (private) MiB |');
  console.log('|---|---|---:|---|');
  for (const s of servers) {
    const p99s = s.runs.map((l) => l.p99).sort((a, b) => a - b);
    console.log(`| ${s.flags || '(defaults)'} | ${p99s.map((x) => x.toFixed(1)).join(', ')} | ${p99s[p99s.length >> 1].toFixed(1)} | ${rssMiB(s.child.pid!).join(' + ')} |`);
    if (s.child.exitCode === null && s.child.signalCode === null) {
      const exited = new Promise((resolve) => s.child.once('exit', resolve));
      s.child.kill('SIGTERM');
      await exited;
    }
  }
}

async function main(): Promise<void> {
  const role = stringArg('role', 'client');
  const threads = numberArg('threads', os.availableParallelism());
  if (role === 'peer') {
    console.log(await peerServer(stringArg('model', ''), stringArg('items', ''), threads));
    return;
  }
  const seconds = numberArg('seconds', 5);
  const levels = stringArg('levels', '1,2,4,8,16,32,64').split(',').map(Number);
  const openLoop = !process.argv.includes('--no-open');
  const only = stringArg('servers', '');
  const source = lengthSource(stringArg('data', '') || undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-bench-serve-'));
  const file = path.join(dir, 'model.safetensors');
  const items = path.join(dir, 'items.csv');
  const config = resolveConfig({});
  const model = Model.fromTensors(config, randomTensors(config, 1, 0.2), { threads: 1 });
  await model.save(file);
  model.dispose();
  const catalogue = benchCandidates(100_000, 8).map((c, k) => ({ ...c, item: `i${k * 10}` })); // unique ids
  fs.writeFileSync(items, `item,category,shop,brand\n${catalogue.map((c) => `${c.item},${c.category},${c.shop},${c.brand}`).join('\n')}\n`);
  const users = benchUsers(512, source.sample(512, 3, config.maxSeqLen), 7);
  const perRequest = numberArg('candidates', 500);
  const pick = (u: number): string[] => Array.from({ length: perRequest }, (_, j) => catalogue[(u * 7919 + j * 104_729) % catalogue.length].item as string);
  const bodies = users.map((user, u) => JSON.stringify({ user, candidates: pick(u), tasks: ['ctr', 'l2r'], k: TOP }));
  const cli = path.join(__dirname, '..', 'lib', 'cli', 'main.js');
  const soak = numberArg('soak', 0);
  if (soak > 0) return soakRun(cli, file, items, bodies, soak, numberArg('reloads', 100), numberArg('reload-ms', 3000), dir);
  const serve = [cli, 'serve', '--model', file, '--items', items, '--port', '0', '--no-watch', '--timeout-ms', '10000'];
  const probe = numberArg('probe', 0);
  if (probe > 0) {
    await probeRun([...serve, '--threads', String(threads)], bodies, probe, numberArg('repeat', 3), seconds, stringArg('server-flags', '').split(';'));
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  }
  const servers: { name: string; args: string[] }[] = [
    { name: `dupn serve (${threads} threads)`, args: [...serve, '--threads', String(threads)] },
    { name: 'dupn serve --max-batch 1 (unbatched)', args: [...serve, '--threads', String(threads), '--max-batch', '1', '--max-users', '1'] },
    { name: 'dupn serve --workers 2 (1 thread each)', args: [...serve, '--workers', '2'] },
    // `--native-threads "1"`: the batched server again with other native thread counts (the event loop competes with them for the cores).
    ...listOption('native-threads', ',').map((n) => ({ name: `dupn serve (${n} threads)`, args: [...serve, '--threads', n] })),
    // `--worker-flags "a;b"`: the workers again with each set of Node flags ("" for none), to see what they cost or save.
    ...listOption('worker-flags', ';').map((flags) => ({ name: `dupn serve --workers 2 --worker-node-options "${flags}"`, args: [...serve, '--workers', '2', '--worker-node-options', flags] })),
    { name: `peer: fastify + onnxruntime-node (${threads} threads)`, args: [__filename, '--role', 'peer', '--model', file, '--items', items, '--threads', String(threads)] },
  ];
  if (only !== '') {
    const keep = new Set(only.split(',').map(Number));
    for (let i = servers.length - 2; i >= 0; i--) if (!keep.has(i)) servers.splice(i, 1); // the peer (last) always runs
  }
  console.log(`bench/serve · ${machineLine()}`);
  console.log(`paper-size model (${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB file, random weights); one user per request (lengths: ${source.describe}) + 500 ids of a 100,000-item catalogue, ctr and l2r, top ${TOP}; closed loop, ${seconds} s per level after a 2 s warm-up; the load generator shares the 2 cores\n`);
  console.log('| server | connections | requests/s | p50 ms | p99 ms | p99.9 ms | server CPU ms/request | load generator CPU ms/request | failed |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  const summary: { name: string; best: Level | undefined; open: OpenResult | undefined; at64: Level | undefined; rss: string[] }[] = [];
  for (const s of servers) {
    const { child, base } = await start(s.args);
    await load(base, child.pid!, bodies, 8, 2);
    const results: Level[] = [];
    for (const n of levels) {
      const r = await load(base, child.pid!, bodies, n, seconds);
      results.push(r);
      console.log(`| ${s.name} | ${n} | ${cells(r)}`);
    }
    const within = results.filter((r) => r.p99 <= 25 && r.failed === 0);
    const best = within.sort((a, b) => b.rps - a.rps)[0];
    const top = Math.max(...results.map((r) => r.rps));
    let open: OpenResult | undefined;
    if (openLoop) {
      const found = await maxRate(base, child.pid!, bodies, Math.max(10, Math.round((best?.rps ?? 20) / 2)), Math.round(top * 1.5), 25, seconds);
      for (const p of found.probes) console.log(`|   open loop at ${p.rate}/s | (peak ${p.level.connections} in flight) | ${cells(p.level)}`);
      const half = found.rate > 0 ? await openLoad(base, child.pid!, bodies, found.rate / 2, seconds) : undefined;
      if (half !== undefined) console.log(`|   open loop at ${(found.rate / 2).toFixed(0)}/s (half) | (peak ${half.connections} in flight) | ${cells(half)}`);
      open = { rate: found.rate, half };
    }
    summary.push({ name: s.name, best, open, at64: results.find((r) => r.connections === 64), rss: rssMiB(child.pid!) });
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
  const peer = summary[summary.length - 1];
  console.log('\n| server | most requests/s at p99 ≤ 25 ms (connections) | vs peer | requests/s at 64 connections | RSS (private) MiB per process |');
  console.log('|---|---:|---:|---:|---|');
  for (const x of summary) {
    const best = x.best === undefined ? 'none' : `${x.best.rps.toFixed(0)} (${x.best.connections})`;
    const ratio = x.best !== undefined && peer.best !== undefined ? `${(x.best.rps / peer.best.rps).toFixed(2)}×` : '–';
    console.log(`| ${x.name} | ${best} | ${ratio} | ${x.at64?.rps.toFixed(0) ?? '–'} | ${x.rss.join(' + ')} |`);
  }
  if (openLoop) {
    console.log('\n| server | open loop: most requests/s at p99 ≤ 25 ms | vs peer | at half that rate: p50 / p99 / p99.9 ms |');
    console.log('|---|---:|---:|---|');
    for (const x of summary) {
      const o = x.open;
      const ratio = o !== undefined && peer.open !== undefined && peer.open.rate > 0 ? `${(o.rate / peer.open.rate).toFixed(2)}×` : '–';
      const half = o?.half === undefined ? '–' : `${o.half.p50.toFixed(1)} / ${o.half.p99.toFixed(1)} / ${o.half.p999.toFixed(1)}`;
      console.log(`| ${x.name} | ${o?.rate ?? '–'} | ${ratio} | ${half} |`);
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
