/** A line naming the machine and the date, for every benchmark's output. */
import * as os from 'node:os';
import { native } from '../lib/native/addon';

export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${new Date().toISOString()} · ${cpu} · ${os.availableParallelism()} threads · ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB · ` +
    `node ${process.version} · ISAs ${native().supportedIsas}`;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The machine's measured fp32 FMA peak (GFLOP/s) on `threads` threads with the best ISA (median of 3). */
export function fmaPeak(threads: number, isa = ''): number {
  return median([0, 1, 2].map(() => native().measureFmaPeak(isa, threads, 200)));
}
