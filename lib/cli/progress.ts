/**
 * Training progress for the CLI: a live bar (examples, rate, loss, ETA) on a terminal, plain lines every
 * few seconds otherwise (logs, CI), so both a person and a log file get something readable.
 */
import { SingleBar } from 'cli-progress';
import { FitProgress } from '../train/fit';

export interface ProgressSink {
  update(p: FitProgress): void;
  /** Ends the current bar (before printing an epoch report). */
  pause(): void;
  stop(): void;
}

function duration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

function line(p: FitProgress): string {
  const of = p.examplesPerEpoch ? `/${p.examplesPerEpoch}` : '';
  return `epoch ${p.epoch + 1}/${p.epochs} · step ${p.step.step} · ${p.examples}${of} examples · ` +
    `${p.examplesPerSecond.toFixed(0)} ex/s · loss ${p.smoothedLoss.toFixed(4)} · ETA ${duration(p.etaSeconds)}`;
}

/** A bar when `stream` is a terminal (and `plain` is not set), else a line every `everySeconds`. */
export function progressSink(stream: NodeJS.WriteStream = process.stderr, plain = false, everySeconds = 5): ProgressSink {
  if (!plain && stream.isTTY) {
    let bar: SingleBar | null = null;
    return {
      update(p) {
        if (!bar) {
          bar = new SingleBar(
            { stream, format: 'epoch {epoch} [{bar}] {value}/{total} ex · {rate} ex/s · loss {loss} · ETA {eta_text}', hideCursor: true, clearOnComplete: false },
          );
          bar.start(p.examplesPerEpoch ?? p.examples, p.examples, { epoch: `${p.epoch + 1}/${p.epochs}`, rate: '-', loss: '-', eta_text: '?' });
        }
        if (p.examplesPerEpoch) bar.setTotal(p.examplesPerEpoch);
        else bar.setTotal(Math.max(p.examples, bar.getTotal()));
        bar.update(p.examples, {
          epoch: `${p.epoch + 1}/${p.epochs}`,
          rate: p.examplesPerSecond.toFixed(0),
          loss: p.smoothedLoss.toFixed(4),
          eta_text: duration(p.etaSeconds),
        });
      },
      pause() {
        bar?.stop();
        bar = null;
      },
      stop() {
        bar?.stop();
        bar = null;
      },
    };
  }
  let last = 0;
  return {
    update(p) {
      const now = Date.now();
      if (now - last < everySeconds * 1000) return;
      last = now;
      stream.write(`${line(p)}\n`);
    },
    pause() {
      last = 0;
    },
    stop() {},
  };
}
