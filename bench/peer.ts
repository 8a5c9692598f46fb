/**
 * bench/peer — the native forward pass vs onnxruntime-node on the same paper-size model and the same
 * inputs, in one process, alternating, after warm-up. Encode at B ∈ {1, 8, 64, 256, 512}, L ∈ {50, 100},
 * ragged batches with real lengths, threads 1 and 2; scoring 1,000 candidates × every head for one user.
 * Reports medians, the speed ratio, users/s, GFLOP/s and the share of the measured FMA peak. `--also-isa avx2`
 * times a second native path (forced instruction set) in the same alternation, with its own columns: on an
 * AVX-512 host, the AVX2 kernels beside AVX-512 and onnxruntime in one run (onnxruntime cannot be held to AVX2).
 *
 *   npm run bench:peer -- [--data ../shared/data/taobao-userbehavior] [--threads 1,2] [--also-isa avx2] [--gap-ms 50] [--burst 200] [--out file.md]
 */
import * as fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { CandidateColumns, UserColumns } from '../lib/model/columns';
import { resolveConfig } from '../lib/network/config';
import { initTensors } from '../lib/network/init';
import { Model } from '../lib/model/model';
import { native } from '../lib/native/addon';
import { randomCandidateColumns, randomUserColumns } from '../lib/reference/random-model';
import { encodeFlops } from './flops';
import { lengthSource } from './lengths';
import { fmaPeak, machineLine, median } from './machine';
import { numberArg, option } from './args';

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// onnxruntime's worker threads spin for a while after each run (its default, kept here); an idle gap
// before every timed call lets them park, so neither engine runs against the other's leftover threads.
const GAP_MS = numberArg('gap-ms', 50);
const BURST_CALLS = numberArg('burst', 200);

/** Times the engines in turn after warm-up; repetitions sized to ~`budgetMs` per engine. Medians, in order. */
async function alternate(engines: (() => Promise<unknown>)[], budgetMs: number): Promise<number[]> {
  for (let i = 0; i < 2; i++) for (const e of engines) await e();
  let t = now();
  for (const e of engines) await e();
  const reps = Math.max(5, Math.min(60, Math.ceil((engines.length * budgetMs) / Math.max(0.01, now() - t))));
  const times = engines.map((): number[] => []);
  for (let i = 0; i < reps; i++) {
    for (const [k, e] of engines.entries()) {
      await pause(GAP_MS);
      t = now();
      await e();
      times[k].push(now() - t);
    }
  }
  return times.map(median);
}

/**
 * Back to back: bursts of calls to one engine with nothing in between (what a busy service sees), the
 * engines' bursts taking turns with a pause between them so none runs against another's spinning threads.
 * Median per call of each engine over every burst.
 */
async function bursts(engines: (() => Promise<unknown>)[], calls: number, rounds: number): Promise<number[]> {
  const times = engines.map((): number[] => []);
  for (let r = 0; r < rounds; r++) {
    for (const [e, call] of engines.entries()) {
      await pause(GAP_MS);
      for (let i = 0; i < 3; i++) await call();
      for (let i = 0; i < calls; i++) {
        const t = now();
        await call();
        times[e].push(now() - t);
      }
    }
  }
  return times.map(median);
}

/** Event-loop delay (p50 / p99 / max, ms) while `inFlight` calls keep the engine saturated for `ms`. */
async function loopDelayUnderLoad(call: () => Promise<unknown>, inFlight: number, ms: number): Promise<string> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const until = now() + ms;
  let calls = 0;
  h.enable();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (now() < until) {
        await call();
        calls++;
      }
    }),
  );
  h.disable();
  const q = (p: number): string => (h.percentile(p) / 1e6).toFixed(2);
  return `p50 ${q(50)} ms, p99 ${q(99)} ms, max ${(h.max / 1e6).toFixed(2)} ms over ${calls} calls`;
}

async function main(): Promise<void> {
  const threadList = (option('threads') ?? '1,2').split(',').map(Number);
  const asked = option('also-isa');
  const supported = native().supportedIsas.split(',');
  if (asked !== undefined && !supported.includes(asked)) console.log(`--also-isa ${asked}: this CPU runs ${supported.join(', ')}; skipped\n`);
  const alsoIsa = asked !== undefined && supported.includes(asked) ? asked : undefined;
  const source = lengthSource(option('data'));
  const budget = numberArg('budget-ms', 400);
  const config = resolveConfig({});
  const tensors = initTensors(config, 1);
  const lines: string[] = [];
  const say = (s: string): void => {
    console.log(s);
    lines.push(s);
  };
  say(`bench/peer · ${machineLine()}`);
  say(`model: paper size (docs/model.md), seeded initial weights; ragged lengths: ${source.describe}\n`);

  for (const threads of threadList) {
    const peak = fmaPeak(threads);
    const nat = Model.fromTensors(config, tensors, { threads });
    const ort = Model.fromTensors(config, tensors, { threads, backend: 'onnxruntime' });
    // The native bf16 path beside fp32 (AVX-512-BF16 CPUs only): in the back-to-back lines and its own table.
    const bf = native().kernels.hasBf16 && nat.isa === 'avx512' ? Model.fromTensors(config, tensors, { threads, precision: 'bf16' }) : undefined;
    // The second native path (`--also-isa`), against its own instruction set's measured peak.
    const alt = alsoIsa !== undefined && alsoIsa !== nat.isa ? Model.fromTensors(config, tensors, { threads, isa: alsoIsa }) : undefined;
    const altPeak = alt ? fmaPeak(threads, alt.isa) : 0;
    say(`### ${threads} thread(s) — native ISA ${nat.isa}, measured fp32 FMA peak ${peak.toFixed(0)} GFLOP/s` +
      `${alt ? `; also native ${alt.isa} (its peak ${altPeak.toFixed(0)} GFLOP/s)` : ''}\n`);
    const altHead = alt ? ` native ${alt.isa} ms | ${alt.isa} vs ort | ${alt.isa} GFLOP/s (% ${alt.isa} peak) |` : '';
    say(`| batch | B | native ms | onnxruntime ms | speed ratio | native users/s | ort users/s | native GFLOP/s (% peak) | ort GFLOP/s (% peak) |${altHead}`);
    say(`|---|---:|---:|---:|---:|---:|---:|---:|---:|${alt ? '---:|---:|---:|' : ''}`);
    const cases: { label: string; lengths: number[] }[] = [];
    for (const L of [50, 100]) for (const B of [1, 8, 64, 256, 512]) cases.push({ label: `L = ${L}`, lengths: new Array<number>(B).fill(L) });
    for (const B of [64, 256, 512]) cases.push({ label: 'ragged', lengths: source.sample(B, B, config.maxSeqLen) });
    for (const c of cases) {
      const B = c.lengths.length;
      const cols: UserColumns = randomUserColumns(config, B + c.lengths[0], c.lengths);
      const outA = new Float32Array(B * nat.userDim);
      const outB = new Float32Array(B * nat.userDim);
      const [tn, to, ta] = await alternate([() => nat.encodeColumns(cols, { out: outA }), () => ort.encodeColumns(cols, { out: outB }),
        ...(alt ? [() => alt.encodeColumns(cols, { out: outA })] : [])], budget);
      // Useful work: real steps only (onnxruntime also computes the padding up to the longest user).
      const flops = c.lengths.reduce((s, L) => s + encodeFlops(config, L), 0);
      const gf = (ms: number, of = peak): string => `${(flops / ms / 1e6).toFixed(1)} (${((100 * flops) / ms / 1e6 / of).toFixed(0)}%)`;
      const maxL = Math.max(...c.lengths);
      const label = c.label === 'ragged' ? `ragged (mean ${(c.lengths.reduce((a, b) => a + b, 0) / B).toFixed(0)}, max ${maxL})` : c.label;
      say(`| ${label} | ${B} | ${tn.toFixed(3)} | ${to.toFixed(3)} | ${(to / tn).toFixed(2)}× | ${((B / tn) * 1e3).toFixed(0)} | ${((B / to) * 1e3).toFixed(0)} | ${gf(tn)} | ${gf(to)} |` +
        `${ta === undefined ? '' : ` ${ta.toFixed(3)} | ${(to / ta).toFixed(2)}× | ${gf(ta, altPeak)} |`}`);
    }

    // Small batches back to back: the latency a loaded service sees (the table above is after an idle gap).
    say(`\nback to back (${BURST_CALLS} calls per burst, 5 bursts per engine, in turn): native ms | onnxruntime ms | ratio${bf ? ' | native bf16 ms' : ''}` +
      `${alt ? ` | native ${alt.isa} ms | ${alt.isa} vs ort` : ''}`);
    for (const [L, B] of [[50, 1], [100, 1], [100, 8]]) {
      const cols = randomUserColumns(config, B + L, new Array<number>(B).fill(L));
      const out = new Float32Array(B * nat.userDim);
      const engines = [nat, ort, ...(bf ? [bf] : []), ...(alt ? [alt] : [])].map((m) => () => m.encodeColumns(cols, { out }));
      const times = await bursts(engines, BURST_CALLS, 5);
      const [tn, to] = times;
      const tb = bf ? times[2] : undefined;
      const ta = alt ? times[times.length - 1] : undefined;
      say(`- L = ${L}, B = ${B}: ${tn.toFixed(3)} | ${to.toFixed(3)} | ${(to / tn).toFixed(2)}×${tb === undefined ? '' : ` | ${tb.toFixed(3)}`}` +
        `${ta === undefined ? '' : ` | ${ta.toFixed(3)} | ${(to / ta).toFixed(2)}×`}`);
    }

    // Scoring: one user, 1,000 candidates, every head (multiclass: the user's class probabilities).
    const user = (await nat.encodeColumns(randomUserColumns(config, 5, [100]))).slice();
    // One candidate set with every item field hashed, scored by all binary/rank heads in one call.
    const cands: CandidateColumns = randomCandidateColumns(config, 'ctr', 9, 1000);
    const multiclass = config.tasks.filter((t) => t.kind === 'multiclass').map((t) => t.name);
    const scoreAll = (m: Model) => async (): Promise<void> => {
      await m.scoreAll(user, cands);
      for (const t of multiclass) await m.predictFromVectors(t, user);
    };
    const [sn, so, sa] = await alternate([scoreAll(nat), scoreAll(ort), ...(alt ? [scoreAll(alt)] : [])], budget);
    say(`\nscoring 1,000 candidates × ${config.tasks.length} heads for one user (scoreAll + predictFromVectors): native ${sn.toFixed(3)} ms, onnxruntime ${so.toFixed(3)} ms, ratio ${(so / sn).toFixed(2)}×` +
      `${sa === undefined ? '' : `; native ${alt?.isa} ${sa.toFixed(3)} ms, ratio ${(so / sa).toFixed(2)}×`}`);

    // The JavaScript thread while each engine is kept busy: 4 encodes of B = 64, L = 100 always in flight.
    const load = randomUserColumns(config, 11, new Array<number>(64).fill(100));
    say(`event-loop delay at full load (4 × B = 64 in flight, 3 s): native ${await loopDelayUnderLoad(() => nat.encodeColumns(load), 4, 3000)}; ` +
      `onnxruntime ${await loopDelayUnderLoad(() => ort.encodeColumns(load), 4, 3000)}\n`);
    if (bf) {
      say('| bf16 vs fp32 (native, back to back), L = 100 | B | fp32 ms | bf16 ms | bf16 speed-up | U rel. difference |');
      say('|---|---:|---:|---:|---:|---:|');
      for (const B of [64, 256, 512]) {
        const cols = randomUserColumns(config, B, new Array<number>(B).fill(100));
        const u32 = new Float32Array(B * nat.userDim);
        const u16 = new Float32Array(B * nat.userDim);
        // Back to back, in bursts taking turns: no onnxruntime threads to let park here, and an idle gap
        // before each call would time the cores waking (at 2 threads it inflated B = 64 by up to 45%).
        const engines = [() => nat.encodeColumns(cols, { out: u32 }), () => bf.encodeColumns(cols, { out: u16 })];
        const t0 = now();
        await engines[0]();
        const [t32, t16] = await bursts(engines, Math.max(3, Math.min(50, Math.ceil(budget / 5 / Math.max(0.01, now() - t0)))), 5);
        let num = 0;
        let den = 0;
        for (let i = 0; i < u32.length; i++) {
          num += (u16[i] - u32[i]) ** 2;
          den += u32[i] ** 2;
        }
        say(`| | ${B} | ${t32.toFixed(2)} | ${t16.toFixed(2)} | ${(t32 / t16).toFixed(2)}× | ${Math.sqrt(num / den).toExponential(1)} |`);
      }
      say('');
      bf.dispose();
    }
    nat.dispose();
    ort.dispose();
    alt?.dispose();
  }
  const out = option('out');
  if (out) fs.writeFileSync(out, lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
