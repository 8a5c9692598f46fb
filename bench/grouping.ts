/**
 * bench/grouping — reading an interleaved (time-sorted) log of N rows into user timelines: in memory against
 * on disk with DuckDB, each in its own process, wall time and peak resident memory. The log is generated
 * (Taobao layout, 1 user in 20 active at a time, so users interleave), unless --data names one.
 *   node dist/bench/grouping.js [--rows 2000000] [--data log.csv] [--limit 1GB]
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTimelines } from '../lib/data';
import { mulberry32 } from '../lib/random';
import { machineLine } from './machine';
import { numberArg, option } from './args';

async function child(file: string, grouping: 'memory' | 'disk', limit: string): Promise<void> {
  const t0 = Date.now();
  let users = 0;
  let rows = 0;
  for await (const tl of readTimelines(file, { grouping, diskMemoryLimit: limit })) {
    users++;
    rows += tl.rows.length;
  }
  const maxRss = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ grouping, users, rows, seconds: (Date.now() - t0) / 1000, maxRssMiB: maxRss }));
}

function generate(file: string, n: number): void {
  const rand = mulberry32(1);
  const out = fs.openSync(file, 'w');
  const types = ['pv', 'pv', 'pv', 'pv', 'cart', 'fav', 'buy'];
  let buf = '';
  for (let i = 0; i < n; i++) {
    const user = Math.floor(i / 2000) * 20 + Math.floor(rand() * 20);
    buf += `${user},${Math.floor(rand() * 1e6)},${Math.floor(rand() * 5000)},${types[Math.floor(rand() * types.length)]},${1511500000 + i}\n`;
    if (buf.length > 1 << 20) {
      fs.writeSync(out, buf);
      buf = '';
    }
  }
  fs.writeSync(out, buf);
  fs.closeSync(out);
}

async function main(): Promise<void> {
  const mode = option('child');
  const limit = option('limit') ?? '1GB';
  if (mode === 'memory' || mode === 'disk') return child(option('file')!, mode, limit);
  const n = numberArg('rows', 2_000_000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dupn-grouping-'));
  try {
    const file = option('data') ?? path.join(dir, 'log.csv');
    if (!option('data')) generate(file, n);
    console.log(`bench/grouping · ${machineLine()}`);
    console.log(`${file}: ${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB; DuckDB memory limit ${limit}\n`);
    console.log('grouping | users | rows | seconds | peak RSS MiB');
    for (const g of ['memory', 'disk'] as const) {
      const r = JSON.parse(execFileSync(process.execPath, [__filename, '--child', g, '--file', file, '--limit', limit], { maxBuffer: 1 << 20 }).toString()) as Record<string, number>;
      console.log(`${g.padEnd(8)} | ${r['users']} | ${r['rows']} | ${r['seconds'].toFixed(1)} | ${r['maxRssMiB'].toFixed(0)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
