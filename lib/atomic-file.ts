/**
 * Crash-safe file replacement: readers (and a process restarted after a crash) see either the old file or the
 * complete new one, never a torn mix. The data go to a temporary file in the same directory (same file
 * system, so rename is atomic), are fsynced, and only then renamed over the target.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { DupnError } from './errors';

/** Largest single write: keeps each call below the platform's per-call I/O limits (2 GiB on some). */
const MAX_WRITE = 1 << 30;

/**
 * Writes `chunks`, in order, to `path`, replacing any previous file atomically. On any failure the previous
 * file is untouched, the temporary file is removed, and the promise rejects with `DupnError('E_IO')`.
 */
export async function writeFileAtomic(path: string, chunks: Uint8Array[]): Promise<void> {
  // pid + random suffix: concurrent writers (threads or processes) never share a temp file.
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: FileHandle | undefined;
  let created = false;
  try {
    // 'wx' refuses to follow or clobber anything already at the temp name.
    handle = await fsp.open(tmp, 'wx');
    created = true;
    let position = 0;
    for (const [i, chunk] of chunks.entries()) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError(`chunk ${i} is not a Uint8Array`);
      for (let done = 0; done < chunk.byteLength; ) {
        const { bytesWritten } = await handle.write(chunk, done, Math.min(MAX_WRITE, chunk.byteLength - done), position);
        done += bytesWritten;
        position += bytesWritten;
      }
    }
    // The data must be durable before the rename publishes them, or a power cut could publish an empty file.
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fsp.rename(tmp, path);
    created = false;
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    if (created) await fsp.unlink(tmp).catch(() => undefined);
    const reason = err instanceof Error ? err.message : String(err);
    throw new DupnError('E_IO', `cannot write ${path}: ${reason}`, { cause: err });
  }
  await syncDirectory(nodePath.dirname(nodePath.resolve(path)));
}

/**
 * Makes the rename itself durable. Best effort: some platforms (Windows) and file systems cannot open or
 * fsync a directory, and the new file is already in place, so failures are ignored.
 */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // ignored, see above
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
