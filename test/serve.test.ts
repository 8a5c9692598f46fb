// `dupn serve` over real HTTP on loopback: every route answers what the model computes directly, with the
// version (content hash) of the file; every error status (400 naming the field, 404, 413, 429, 504); the
// metrics text parses; a reload under concurrent load (file replaced, SIGHUP-equivalent, a bad file) fails no
// request; the command line drains on SIGTERM and exits 0.
import t from 'tap';
import * as http from 'node:http';
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model, ItemCatalogue, createServer, fileVersion, DupnServer } from '../lib';
import { randomTensors } from '../lib/reference/random-model';
import { UserInput } from '../lib/model/features';
import { smallTables } from './support/configs';
import { ROOT } from './support/child';
import { workerNodeFlags } from '../lib/cli/serve';

const CLI = path.join(ROOT, 'dist', 'lib', 'cli', 'main.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-serve-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const config = smallTables([
  { name: 'ctr', kind: 'binary', target: ['item', 'category', 'shop', 'brand'], layers: [9] },
  { name: 'l2r', kind: 'rank', target: ['item', 'shop'], layers: [5], denseFeatures: 2 },
  { name: 'ppp', kind: 'multiclass', classes: 4, layers: [] },
]);
const models = [1, 2, 3].map((seed) => Model.fromTensors(config, randomTensors(config, seed), { threads: 1 }));
t.teardown(() => models.forEach((m) => m.dispose()));
const items = Array.from({ length: 50 }, (_, i) => ({ item: `i${i}`, category: `c${i % 7}`, shop: `s${i % 5}`, brand: `b${i % 3}` }));
const itemsCsv = path.join(dir, 'items.csv');
fs.writeFileSync(itemsCsv, `item,category,shop,brand\n${items.map((x) => `${x.item},${x.category},${x.shop},${x.brand}`).join('\n')}\n`);

function user(seed: number, n = 5): UserInput {
  return { behaviors: Array.from({ length: n }, (_, i) => ({ item: `i${(seed * 7 + i * 3) % 50}`, category: `c${i % 7}`, type: i % 3 === 0 ? 'buy' : 'pv', time: 1_700_000_000 + i * 600 })) };
}

interface Answer {
  status: number;
  body: Record<string, unknown> & { error?: { code: string; message: string }; model?: { version: string } };
  headers: Headers;
}

async function post(base: string, route: string, body: unknown, raw?: string): Promise<Answer> {
  const r = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ?? JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as Answer['body'], headers: r.headers };
}

async function get(base: string, route: string): Promise<{ status: number; text: string }> {
  const r = await fetch(`${base}${route}`);
  return { status: r.status, text: await r.text() };
}

/** Prometheus text → samples by name and label text (`name{a="b"}`). */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m === null) throw new Error(`not a Prometheus sample line: ${line}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

interface Served {
  child: ChildProcess;
  /** `http://127.0.0.1:port` from the listening line. */
  base: string;
  line: string;
  readonly stderr: string;
  exited: Promise<number | null>;
}

/** `dupn serve <args>` as a child process, once it prints its listening line. */
async function serveCommand(args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/listening on http:\/\/\S+.*\n/.test(out)) resolve(out);
    });
    void exited.then((code) => reject(new Error(`exited ${code} before listening: ${err}`)));
  });
  return { child, base: /listening on (http:\/\/\S+)/.exec(line)![1], line, exited, get stderr() { return err; } };
}

async function started(file: string, options: Partial<Parameters<typeof createServer>[0]> = {}): Promise<{ server: DupnServer; base: string }> {
  const server = await createServer({ model: file, modelOptions: { threads: 1 }, watch: false, ...options });
  const base = await server.listen(0);
  return { server, base };
}

t.test('every route over HTTP, with the version of the file', async (t) => {
  const file = path.join(dir, 'a.safetensors');
  await models[0].save(file);
  const version = await fileVersion(file);
  const catalogue = await ItemCatalogue.load(itemsCsv);
  const { server, base } = await started(file, { catalogue, limits: { maxCandidates: 60, bodyLimit: 64 << 10 } });
  t.teardown(() => server.close());
  const m = models[0];

  t.equal((await get(base, '/healthz')).status, 200);
  const ready = await get(base, '/readyz');
  t.equal(ready.status, 200);
  t.same(JSON.parse(ready.text).model, { version });

  const users = [user(1), user(2, 0), user(3, 30)];
  const enc = await post(base, '/v1/encode', { users, now: 1_700_100_000 });
  t.equal(enc.status, 200);
  t.same(enc.body.model, { version });
  const want = await m.encode(users, { now: 1_700_100_000 });
  t.same(Float32Array.from((enc.body['vectors'] as number[][]).flat()), want, 'encode: the vectors the model computes');

  const pred = await post(base, '/v1/predict', { task: 'ppp', users: users.slice(0, 2) });
  t.equal(pred.status, 200);
  t.same(Float32Array.from((pred.body['probabilities'] as number[][]).flat()), await m.predict('ppp', users.slice(0, 2)));

  const candidates = ['i3', 'nope', { item: 'x', category: 'c1', shop: 's2', brand: 'b0', dense: [0.5, -1] }, 'i17', 'i3'];
  const rank = await post(base, '/v1/rank', { user: user(4), candidates, k: 3 });
  t.equal(rank.status, 200, JSON.stringify(rank.body));
  t.same(rank.body.model, { version });
  const explicit = [{ ...items[3], dense: [0, 0] }, { item: 'nope', dense: [0, 0] }, candidates[2], { ...items[17], dense: [0, 0] }, { ...items[3], dense: [0, 0] }];
  const U = await m.encode([user(4)]);
  const direct = await m.scoreAll(U, explicit as never, { user: user(4) });
  const scores = rank.body['scores'] as Record<string, number[]>;
  t.same(Object.keys(scores), ['ctr', 'l2r']);
  for (const task of ['ctr', 'l2r']) t.same(Float32Array.from(scores[task]), direct[task], `rank ${task}: the model's scores`);
  const top = rank.body['top'] as { item?: string; index: number; score: number }[];
  t.equal(top.length, 3);
  const order = Array.from(direct['ctr'].keys()).sort((a, b) => direct['ctr'][b] - direct['ctr'][a] || a - b).slice(0, 3);
  t.same(top.map((x) => x.index), order, 'top: best first by the first task');
  t.same(top.map((x) => x.item), order.map((i) => (i === 2 ? 'x' : candidates[i])));
  const l2rOnly = await post(base, '/v1/rank', { user: user(4), candidates: ['i1', 'i2'], tasks: ['l2r'], k: 1 });
  t.same(Object.keys(l2rOnly.body['scores'] as object), ['l2r']);

  // Errors: 400 naming the field, 404, 413.
  const cases: [string, unknown, string, string][] = [
    ['/v1/encode', {}, 'E_INPUT', 'body.users'],
    ['/v1/encode', { users: [] }, 'E_INPUT', 'body.users'],
    ['/v1/encode', { users: [{ behaviors: [{ type: 'pv', time: 'soon' }] }] }, 'E_INPUT', 'body.users[0].behaviors[0].time'],
    ['/v1/encode', { users: [{ behaviors: [], extra: 1 }] }, 'E_INPUT', 'body.users[0].extra'],
    ['/v1/encode', { users: [user(1)], keys: ['a', 'b'] }, 'E_INPUT', 'body.keys'],
    ['/v1/encode', { users: [{ behaviors: [], profile: { nope: 1 } }] }, 'E_INPUT', 'profile.nope'],
    ['/v1/predict', { task: 'nope', users: [user(1)] }, 'E_TASK', 'nope'],
    ['/v1/predict', { task: 'ctr', users: [user(1)] }, 'E_TASK', 'ctr'],
    ['/v1/rank', { user: user(1), candidates: [1] }, 'E_INPUT', 'body.candidates[0]'],
    ['/v1/rank', { user: user(1), candidates: ['i1'], k: -1 }, 'E_INPUT', 'body.k'],
    ['/v1/rank', { user: user(1), candidates: Array(61).fill('i1') }, 'E_INPUT', 'body.candidates'],
    ['/v1/rank', { user: user(1), candidates: [{ item: 'x', dense: [1] }], tasks: ['l2r'] }, 'E_INPUT', 'candidates[0].dense'],
    ['/v1/rank', { candidates: ['i1'] }, 'E_INPUT', 'body.user'],
  ];
  for (const [route, body, code, field] of cases) {
    const r = await post(base, route, body);
    t.equal(r.status, 400, `${route} ${field}: 400`);
    t.equal(r.body.error?.code, code, `${route} ${field}: ${code}`);
    t.match(r.body.error?.message, field, `the message names ${field}: ${r.body.error?.message}`);
  }
  const badJson = await post(base, '/v1/encode', undefined, '{"users": [');
  t.equal(badJson.status, 400);
  t.equal(badJson.body.error?.code, 'E_INPUT');
  const big = await post(base, '/v1/encode', { users: [{ behaviors: Array.from({ length: 800 }, () => ({ type: 'pv', time: 1, item: 'x'.repeat(80) })) }] });
  t.equal(big.status, 413);
  t.equal(big.body.error?.code, 'E_INPUT');
  t.equal((await post(base, '/v1/nope', {})).status, 404);

  const metrics = parseMetrics((await get(base, '/metrics')).text);
  t.ok((metrics.get('dupn_http_requests_total{route="/v1/encode",method="POST",status="200"}') ?? 0) >= 1, 'requests by route and status');
  t.ok((metrics.get('dupn_http_requests_total{route="/v1/encode",method="POST",status="400"}') ?? 0) >= 5);
  t.ok((metrics.get('dupn_http_requests_total{route="/v1/encode",method="POST",status="413"}') ?? 0) >= 1);
  t.equal(metrics.get(`dupn_model_info{version="${version}"}`), 1, 'model version info');
  t.equal(metrics.get('dupn_model_reloads_total{result="success"}'), 0);
  t.equal(metrics.get('dupn_model_reloads_total{result="failure"}'), 0);
  t.equal(metrics.get('dupn_catalogue_unknown_items_total'), 1, 'the unknown id counted');
  t.ok((metrics.get('dupn_batch_users_count') ?? 0) >= 4, 'batch size histogram');
  t.ok((metrics.get('dupn_compute_seconds_count') ?? 0) >= 4, 'compute time histogram');
  t.ok((metrics.get('dupn_queue_seconds_count{kind="rank"}') ?? 0) >= 2, 'queue time histogram');
  t.ok((metrics.get('dupn_request_duration_seconds_count{route="/v1/rank"}') ?? 0) >= 2, 'total time histogram');
  t.equal(metrics.get('dupn_queue_depth'), 0);
  t.ok(metrics.has('dupn_user_cache_hits_total'));

  // The user-vector cache across requests.
  await post(base, '/v1/rank', { user: user(5), candidates: ['i1'], key: 'session-5' });
  await post(base, '/v1/rank', { user: user(5), candidates: ['i1'], key: 'session-5' });
  const after = parseMetrics((await get(base, '/metrics')).text);
  t.ok((after.get('dupn_user_cache_hits_total') ?? 0) >= 1, 'a keyed user is taken from the cache');
});

t.test('429 when the queue is full, 504 past the deadline', async (t) => {
  const file = path.join(dir, 'b.safetensors');
  await models[0].save(file);
  const { server, base } = await started(file, { maxBatch: 4, maxQueue: 4, maxDelayMs: 2000, timeoutMs: 300 });
  t.teardown(() => server.close());
  const first = post(base, '/v1/encode', { users: [user(1), user(2), user(3)] });
  await new Promise((r) => setTimeout(r, 100));
  const second = await post(base, '/v1/encode', { users: [user(1), user(2)] });
  t.equal(second.status, 429);
  t.equal(second.body.error?.code, 'E_OVERLOADED');
  t.equal(second.headers.get('retry-after'), '1');
  const late = await first;
  t.equal(late.status, 504);
  t.equal(late.body.error?.code, 'E_TIMEOUT');
  const metrics = parseMetrics((await get(base, '/metrics')).text);
  t.equal(metrics.get('dupn_dropped_requests_total{code="E_OVERLOADED"}'), 1);
  t.equal(metrics.get('dupn_dropped_requests_total{code="E_TIMEOUT"}'), 1);
});

t.test('a client that goes away while its request is queued: the request is dropped, never computed', async (t) => {
  const file = path.join(dir, 'gone.safetensors');
  await models[0].save(file);
  const { server, base } = await started(file, { maxDelayMs: 400 });
  t.teardown(() => server.close());
  const url = new URL('/v1/encode', base);
  const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } });
  req.on('error', () => undefined); // the socket is destroyed on purpose
  req.end(JSON.stringify({ users: [user(1)] }));
  await new Promise((r) => setTimeout(r, 100)); // read and queued (waiting out maxDelayMs)
  t.equal(server.batcher.stats.queued, 1, 'queued');
  req.destroy();
  for (let i = 0; i < 100 && server.batcher.stats.queued > 0; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(server.batcher.stats.queued, 0, 'taken out of the queue when the client went away');
  t.equal(server.batcher.stats.dropped.E_ABORTED, 1, 'dropped as aborted');
  t.equal(server.batcher.stats.batches, 0, 'never computed');
  const after = await post(base, '/v1/encode', { users: [user(2)] });
  t.equal(after.status, 200, 'the server goes on answering');
});

t.test('reloads under concurrent load fail no request; a bad file keeps the old model', async (t) => {
  const file = path.join(dir, 'c.safetensors');
  await models[0].save(file);
  const versions = await Promise.all(models.map(async (m, i) => {
    const p = path.join(dir, `v${i}.safetensors`);
    await m.save(p);
    return fileVersion(p);
  }));
  const { server, base } = await started(file, { watch: true });
  t.teardown(() => server.close());
  let stop = false;
  const failures: string[] = [];
  const seen = new Set<string>();
  let answered = 0;
  const client = async (c: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const r = i % 2 === 0
        ? await post(base, '/v1/rank', { user: user(c + i), candidates: [{ item: 'a', dense: [1, 2] }, { item: 'b', dense: [0, 1] }] })
        : await post(base, '/v1/encode', { users: [user(c), user(i)] });
      answered++;
      if (r.status !== 200) failures.push(`${r.status} ${JSON.stringify(r.body)}`);
      else seen.add(r.body.model?.version ?? '');
    }
  };
  const clients = Array.from({ length: 6 }, (_, c) => client(c));
  const waitFor = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 400; i++) {
      if (await ok()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.fail(`timed out waiting for ${what}`);
  };
  const serving = async (): Promise<string> => JSON.parse((await get(base, '/readyz')).text).model.version as string;
  await new Promise((r) => setTimeout(r, 200));
  // 1. The file replaced (write and rename): the watcher reloads it.
  await models[1].save(file);
  await waitFor('the watcher to reload', async () => (await serving()) === versions[1]);
  // 2. The file replaced with the watcher's reload racing an explicit one (SIGHUP).
  await models[2].save(file);
  const r = await server.reload();
  t.equal(r.version, versions[2]);
  t.equal(await serving(), versions[2]);
  // 3. A bad file renamed over it: reported, the old model serves, /readyz stays ready.
  const tmp = path.join(dir, 'c.safetensors.tmp');
  fs.writeFileSync(tmp, 'not a model');
  fs.renameSync(tmp, file);
  const bad = await server.reload();
  t.equal(bad.swapped, false);
  t.equal(bad.error?.code, 'E_MODEL_FILE');
  t.equal(await serving(), versions[2], 'the old model keeps serving');
  t.equal((await get(base, '/readyz')).status, 200);
  // 4. Back to a good file.
  await models[0].save(file);
  await waitFor('the last reload', async () => (await serving()) === versions[0]);
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await Promise.all(clients);
  t.same(failures, [], `no failed request of ${answered}`);
  t.ok(answered > 20, `${answered} requests answered during the reloads`);
  t.ok(seen.has(versions[0]) && seen.has(versions[2]), 'answers came from the old and the new models');
  const metrics = parseMetrics((await get(base, '/metrics')).text);
  t.ok((metrics.get('dupn_model_reloads_total{result="success"}') ?? 0) >= 3, 'reloads counted');
  t.ok((metrics.get('dupn_model_reloads_total{result="failure"}') ?? 0) >= 1, 'the failed reload counted');
  t.equal(metrics.get(`dupn_model_info{version="${versions[0]}"}`), 1);
  t.equal(metrics.get(`dupn_model_info{version="${versions[2]}"}`), undefined, 'only the serving version is set');
});

t.test('dupn serve: SIGHUP reloads, SIGTERM drains what is queued and exits 0', async (t) => {
  const file = path.join(dir, 'd.safetensors');
  await models[0].save(file);
  const v0 = await fileVersion(file);
  const served = await serveCommand(['--model', file, '--port', '0', '--items', itemsCsv, '--max-delay-ms', '800', '--timeout-ms', '10000', '--threads', '1', '--no-watch']);
  const { child, base, exited } = served;
  t.match(JSON.parse((await get(base, '/readyz')).text), { model: { version: v0 } });
  await models[1].save(file);
  const v1 = await fileVersion(file);
  child.kill('SIGHUP');
  for (let i = 0; i < 200 && JSON.parse((await get(base, '/readyz')).text).model.version !== v1; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(JSON.parse((await get(base, '/readyz')).text).model.version, v1, 'SIGHUP reloaded the file');
  // Requests queued behind --max-delay-ms when SIGTERM comes are all answered.
  const inflight = Array.from({ length: 5 }, (_, i) => post(base, '/v1/rank', { user: user(i), candidates: ['i1', 'i2', 'zzz'] }));
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGTERM');
  const answers = await Promise.all(inflight);
  t.same(answers.map((a) => a.status), [200, 200, 200, 200, 200], 'every request in flight answered');
  t.same(answers.map((a) => a.body.model?.version), Array(5).fill(v1));
  t.equal(await exited, 0, `exit status 0 (${served.stderr.trim()})`);
  t.match(served.stderr, /SIGTERM: draining/);
  await t.rejects(fetch(`${base}/healthz`), 'no longer listening');
});

t.test('dupn serve --workers 2: both workers answer on one port, /metrics sums them, SIGHUP reloads both, a killed worker is replaced, SIGTERM drains', async (t) => {
  const file = path.join(dir, 'w.safetensors');
  await models[0].save(file);
  const served = await serveCommand(['--model', file, '--port', '0', '--workers', '2', '--threads', '1', '--no-watch', '--max-delay-ms', '300', '--timeout-ms', '10000', '--worker-node-options', '--max-semi-space-size=8']);
  const { child, base, exited } = served;
  t.match(served.line, /listening on http:\/\/127\.0\.0\.1:\d+ \(model [0-9a-f]{16}; 2 workers × 1 native threads\)/, 'one line for both workers');
  const direct = (await models[0].scoreAll(await models[0].encode([user(3)]), [{ item: 'i1' }, { item: 'i2' }], { user: user(3), tasks: ['ctr'] }))['ctr'];
  // Connections spread over both workers (the primary hands them out round robin).
  const answers = await Promise.all(Array.from({ length: 16 }, () => post(base, '/v1/rank', { user: user(3), candidates: [{ item: 'i1' }, { item: 'i2' }], tasks: ['ctr'] })));
  for (const a of answers) t.same(Float32Array.from((a.body.scores as Record<string, number[]>)['ctr']), direct, 'the scores the model computes, from every worker');
  const metrics = parseMetrics((await get(base, '/metrics')).text);
  t.equal(metrics.get('dupn_http_requests_total{route="/v1/rank",method="POST",status="200"}'), 16, 'the sum over both workers');
  t.equal(metrics.get(`dupn_model_info{version="${await fileVersion(file)}"}`), 1, 'the version once, not once per worker');
  const pids = [...served.stderr.matchAll(/dupn serve\[(\d+)\]/g)].map((m) => Number(m[1]));
  t.equal(new Set(pids).size, 0, 'workers are quiet while they serve');
  await models[1].save(file);
  const v1 = await fileVersion(file);
  child.kill('SIGHUP');
  const versions = async (): Promise<Set<string>> => new Set((await Promise.all(Array.from({ length: 8 }, () => get(base, '/readyz')))).map((r) => JSON.parse(r.text).model.version as string));
  for (let i = 0; i < 200 && [...(await versions())].join() !== v1; i++) await new Promise((r) => setTimeout(r, 50));
  t.same([...(await versions())], [v1], 'SIGHUP reloaded every worker');
  // A worker killed from outside is replaced; the port keeps answering.
  const workerPids = fs.readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  t.equal(workerPids.length, 2, 'two worker processes');
  for (const pid of workerPids) {
    t.ok(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('--max-semi-space-size=8'), `worker ${pid} runs with its --worker-node-options`);
  }
  process.kill(workerPids[0], 'SIGKILL');
  for (let i = 0; i < 200 && !/died \(SIGKILL\): starting another/.test(served.stderr); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(served.stderr, /worker \d+ died \(SIGKILL\): starting another/);
  for (let i = 0; i < 40; i++) t.equal((await get(base, '/healthz')).status, 200);
  const inflight = Array.from({ length: 4 }, (_, i) => post(base, '/v1/rank', { user: user(i), candidates: ['i1', 'i2'] }));
  await new Promise((r) => setTimeout(r, 150));
  child.kill('SIGTERM');
  t.same((await Promise.all(inflight)).map((a) => a.status), [200, 200, 200, 200], 'every request in flight answered');
  t.equal(await exited, 0, `exit status 0 (${served.stderr.trim()})`);
  await t.rejects(fetch(`${base}/healthz`), 'no longer listening');
});

t.test('fileVersion: the SHA-256 of the whole file, read in pieces; a missing file is E_IO', async (t) => {
  const big = path.join(dir, 'big.bin');
  const bytes = Buffer.alloc(2.5 * 2 ** 20 + 7);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
  fs.writeFileSync(big, bytes);
  t.equal(await fileVersion(big), createHash('sha256').update(bytes).digest('hex').slice(0, 16), 'over three reads of the buffer');
  const empty = path.join(dir, 'empty.bin');
  fs.writeFileSync(empty, '');
  t.equal(await fileVersion(empty), createHash('sha256').digest('hex').slice(0, 16), 'an empty file');
  await t.rejects(fileVersion(path.join(dir, 'absent.bin')), { code: 'E_IO' });
});

t.test('--worker-node-options: Node flags of the workers, checked before any worker starts', async (t) => {
  t.same(workerNodeFlags(undefined), [], 'none by default');
  t.same(workerNodeFlags(''), []);
  t.same(workerNodeFlags('--optimize-for-size'), ['--optimize-for-size']);
  t.same(workerNodeFlags(' --max-semi-space-size=4  --single-threaded-gc '), ['--max-semi-space-size=4', '--single-threaded-gc']);
  for (const bad of ['rm -rf /', '--eval=x y', '-e', '--x;y']) {
    t.throws(() => workerNodeFlags(bad), { code: 'E_INPUT', path: '--worker-node-options' }, JSON.stringify(bad));
  }
  const child = spawn(process.execPath, [CLI, 'serve', '--model', path.join(dir, 'w.safetensors'), '--port', '0', '--workers', '2', '--worker-node-options', 'oops'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  t.equal(await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c))), 1, err);
  t.match(err, /--worker-node-options: "oops" is not a Node option/);
  t.notMatch(err, /dupn serve\[\d+\]/, 'no worker started');
});

t.test('dupn serve --workers 2 with a model that cannot load: the error once per worker, exit 1, no hang', async (t) => {
  const child = spawn(process.execPath, [CLI, 'serve', '--model', path.join(dir, 'missing.safetensors'), '--port', '0', '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 1, err);
  t.match(err, /E_IO: cannot read .*missing\.safetensors/);
  t.match(err, /a serving worker exited before it listened/);
});

t.test('embedded: the plugin in your own fastify app, the batcher behind node:http', async (t) => {
  const { fastifyApp, httpServer } = await import('../examples/serve-embedded');
  const { Batcher } = await import('../lib');
  const m = models[0];
  const catalogue = ItemCatalogue.fromItems(items);
  const batcher = new Batcher({ model: m });
  t.teardown(() => batcher.close());
  const app = await fastifyApp(batcher, 'v-test', catalogue);
  t.teardown(() => app.close());
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  t.same(JSON.parse((await get(base, '/hello')).text), { hello: 'world' }, 'the app keeps its own routes');
  const r = await post(base, '/recs/v1/rank', { user: user(1), candidates: ['i1', 'i2'], tasks: ['ctr'] });
  t.equal(r.status, 200);
  t.same(r.body.model, { version: 'v-test' });
  const U = await m.encode([user(1)]);
  t.same(Float32Array.from((r.body['scores'] as Record<string, number[]>)['ctr']), (await m.scoreAll(U, [items[1], items[2]], { tasks: ['ctr'] }))['ctr']);
  const bad = await post(base, '/recs/v1/encode', { users: [{ behaviors: [], extra: 1 }] });
  t.equal(bad.status, 400, 'refused, not dropped, with AJV_OPTIONS');
  const plain = httpServer(batcher, catalogue);
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  t.teardown(() => plain.close());
  const port = (plain.address() as { port: number }).port;
  const p = await post(`http://127.0.0.1:${port}`, '/rank', { user: user(1), candidates: ['i1', 'i2'], tasks: ['ctr'] });
  t.equal(p.status, 200);
  t.same(p.body['scores'], r.body['scores'], 'node:http answers the same scores');
  const e = await post(`http://127.0.0.1:${port}`, '/rank', { user: user(1), candidates: ['i1'], tasks: ['nope'] });
  t.equal(e.status, 400);
  t.equal(e.body.error?.code, 'E_TASK');
});
