/**
 * bench/real-data-pick — the "tuned" column of docs/real-data.md: given the outputs of
 * `bench/real-data.sh … --split leave-one-out <flags>` for several flag sets (one file each, named for its flags),
 * picks per log the flag set whose final model scores best on that log's validation (selection) cases, and
 * prints its test numbers beside the defaults'. The test cases (each user's last behaviour) take no part in the
 * choice. Used by bench/real-data-tuned.sh.
 *
 *   node dist/bench/real-data-pick.js default.txt epu256.txt …   (the first file is the default)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One paired difference "model − recent": mean and one standard error. */
interface Diff {
  mean: number;
  se: number;
}

/** What one run of one log reports. */
interface Run {
  /** The final model's validation score (after calibration when it ran). */
  valid: number;
  /** Test: the model's HR@20, MRR@20 and HR@10 of 100, warm then open catalogue. */
  model: { warm: number[]; open: number[] };
  /** Test: model − recent, paired, on HR@20, MRR@20 and HR@10 of 100, warm then open catalogue. */
  diff: { warm: Diff[]; open: Diff[] };
}

const METRICS = ['HR@20', 'MRR@20', 'HR@10/100'];

function parseDiffs(line: string): Diff[] {
  return METRICS.map((m) => {
    const r = new RegExp(`${m.replace('/', '\\/')} ([+−-][0-9.]+) ± ([0-9.]+)`).exec(line);
    if (r === null) throw new Error(`no ${m} in: ${line}`);
    return { mean: Number(r[1].replace('−', '-')), se: Number(r[2]) };
  });
}

function modelRow(line: string): number[] {
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return [v[0], v[1], v[3]];
}

/** Every log's run in one output of bench/real-data.sh. */
function parse(file: string): Map<string, Run> {
  const runs = new Map<string, Run>();
  for (const section of fs.readFileSync(file, 'utf8').split(/^## /m).slice(1)) {
    const name = section.slice(0, section.indexOf('\n')).trim();
    const lines = section.split('\n');
    let valid = NaN;
    for (const l of lines) {
      const best = /best ([0-9.]+) at epoch/.exec(l) ?? /^score ([0-9.]+) \(best so far/.exec(l);
      if (best !== null) valid = Number(best[1]);
      const cal = /\(score [0-9.]+ → ([0-9.]+)\)/.exec(l);
      if (cal !== null) valid = Number(cal[1]);
    }
    const models = lines.filter((l) => l.startsWith('model:next ') && !l.startsWith('model:next −'));
    const diffs = lines.filter((l) => l.startsWith('model:next − recent'));
    if (models.length < 2 || diffs.length < 2 || Number.isNaN(valid)) throw new Error(`${file}: ${name}: incomplete run`);
    runs.set(name, { valid, model: { warm: modelRow(models[0]), open: modelRow(models[1]) }, diff: { warm: parseDiffs(diffs[0]), open: parseDiffs(diffs[1]) } });
  }
  return runs;
}

const cell = (d: Diff): string => {
  const s = `${d.mean >= 0 ? '+' : '−'}${Math.abs(d.mean).toFixed(3)} ± ${d.se.toFixed(3)}`;
  return d.mean > 2 * d.se ? `**${s}**` : s;
};
const beyond = (r: Run): number => [...r.diff.warm, ...r.diff.open].filter((d) => d.mean > 2 * d.se).length;
const below = (r: Run): number => [...r.diff.warm, ...r.diff.open].filter((d) => d.mean < 0).length;

function main(): void {
  const files = process.argv.slice(2);
  if (files.length < 2) throw new Error('usage: real-data-pick <default output> <other outputs…>');
  const sets = files.map((f) => ({ name: path.basename(f).replace(/\.[^.]*$/, ''), runs: parse(f) }));
  console.log('| log | flags | validation | warm: HR@20 / MRR@20 / HR@10 of 100 (− recent) | open: HR@20 / MRR@20 / HR@10 of 100 (− recent) |');
  console.log('|---|---|---:|---|---|');
  const totals = { default: [0, 0], tuned: [0, 0] };
  for (const log of sets[0].runs.keys()) {
    const def = sets[0].runs.get(log) as Run;
    let pick = sets[0];
    for (const s of sets) if ((s.runs.get(log)?.valid ?? -1) > (pick.runs.get(log) as Run).valid) pick = s;
    const tuned = pick.runs.get(log) as Run;
    const row = (label: string, flags: string, r: Run): string =>
      `| ${label} | ${flags} | ${r.valid.toFixed(4)} | ${r.model.warm.map((x) => x.toFixed(3)).join(' / ')} (${r.diff.warm.map(cell).join(', ')}) | ${r.model.open.map((x) => x.toFixed(3)).join(' / ')} (${r.diff.open.map(cell).join(', ')}) |`;
    console.log(row(log, 'default', def));
    console.log(row('', `tuned: ${pick.name}`, tuned));
    totals.default[0] += beyond(def);
    totals.default[1] += below(def);
    totals.tuned[0] += beyond(tuned);
    totals.tuned[1] += below(tuned);
  }
  const cells = sets[0].runs.size * 6;
  console.log(`\ncells beyond two errors against "recently seen": default ${totals.default[0]} of ${cells} (${totals.default[1]} below zero), tuned ${totals.tuned[0]} of ${cells} (${totals.tuned[1]} below zero)`);
  console.log(`flag sets: ${sets.map((s) => s.name).join(', ')}; validation scores per log and flag set:`);
  for (const log of sets[0].runs.keys()) console.log(`  ${log}: ${sets.map((s) => `${s.name} ${s.runs.get(log)?.valid.toFixed(4) ?? '–'}`).join(', ')}`);
}

main();
