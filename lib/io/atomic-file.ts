/**
 * Crash-safe file replacement: readers (and a process restarted after a crash) see either the old file or the
 * complete new one, never a torn mix. The data go to a temporary file in the same directory (same file
 * system, so rename is atomic), are fsynced, and only then renamed over the target. A set of files that belong
 * together is written the same way, all temporaries first. Also here: the checks every path and every read of
 * an untrusted model-like file go through.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsc, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as nodePath from 'node:path';
import { DupnError } from '../errors';

/** Largest single write: keeps each call below the platform's per-call I/O limits (2 GiB on some). */
const MAX_WRITE = 1 << 30;

/**
 * Writes `chunks`, in order, to `path`, replacing any previous file atomically. On any failure the previous
 * file is untouched, the temporary file is removed, and the promise rejects with `DupnError('E_IO')`.
 */
export async function writeFileAtomic(path: string, chunks: Uint8Array[]): Promise<void> {
  await writeFilesAtomic([{ path, chunks }]);
}

/**
 * Writes a set of files that belong together (an ONNX user file and its head files): every file goes to its
 * temporary first, and only when all are written and fsynced are they renamed into place, the first file of
 * the list last. A failure while writing (a full disk, the usual one) leaves the previous set whole and
 * removes every temporary; the renames that follow need no space. Rejects with `DupnError('E_IO')`.
 */
export async function writeFilesAtomic(files: { path: string; chunks: Uint8Array[] }[]): Promise<void> {
  for (const [i, f] of files.entries()) checkPath(f.path, files.length === 1 ? 'path' : `files[${i}].path`);
  const temps: string[] = [];
  let current = files[0]?.path ?? '';
  try {
    for (const f of files) {
      current = f.path;
      temps.push(await writeTemporary(f.path, f.chunks));
    }
    for (let i = files.length - 1; i >= 0; i--) {
      current = files[i].path;
      await fsp.rename(temps[i], files[i].path);
      temps[i] = '';
    }
  } catch (err) {
    await Promise.all(temps.filter((p) => p !== '').map((p) => fsp.unlink(p).catch(() => undefined)));
    if (err instanceof DupnError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new DupnError('E_IO', `cannot write ${current}: ${reason}`, { cause: err });
  }
  for (const dir of new Set(files.map((f) => nodePath.dirname(nodePath.resolve(f.path))))) await syncDirectory(dir);
  for (const f of files) await removeStaleTemporaries(f.path);
}

/** Writes and fsyncs `chunks` to a fresh temporary beside `path`; returns its name (removed on failure). */
async function writeTemporary(path: string, chunks: Uint8Array[]): Promise<string> {
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
    return tmp;
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    if (created) await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * A path dupn may open: a non-empty string without a NUL byte (the native side would cut it there and open
 * another file than `fs` would). Throws `DupnError('E_INPUT')` naming `name`.
 */
export function checkPath(path: unknown, name: string): asserts path is string {
  if (typeof path !== 'string' || path.length === 0) {
    throw new DupnError('E_INPUT', `${name}: must be a non-empty string (a file path), got ${path === null ? 'null' : typeof path}`, { path: name });
  }
  if (path.includes('\0')) throw new DupnError('E_INPUT', `${name}: contains a NUL byte`, { path: name });
}

/**
 * Reads a whole file that must be a regular one (a model, checkpoint or ONNX file: untrusted input). Opened
 * without blocking, so a FIFO cannot stall the call waiting for a writer; a FIFO, a device (/dev/zero would
 * read forever) or a directory is refused before anything is read; then exactly the size the file had is
 * read. Rejects with `DupnError('E_IO')` naming `what` and the path.
 */
export async function readRegularFile(path: string, what: string): Promise<Buffer> {
  checkPath(path, 'path');
  let handle: FileHandle | undefined;
  try {
    handle = await fsp.open(path, fsc.O_RDONLY | (fsc.O_NONBLOCK ?? 0));
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`not a regular file (${kindOf(st)})`);
    const size = st.size;
    const out = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(out, done, Math.min(MAX_WRITE, size - done), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done === size ? out : out.subarray(0, done);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DupnError('E_IO', `cannot read ${what} ${path}: ${reason}`, { cause: err });
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function kindOf(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a file';
}

/**
 * Temporaries of earlier writes of `path` whose writer is gone (killed mid-write: up to a whole checkpoint
 * each) are removed. Only names of our own pattern, and only when no process with that pid is alive: a
 * concurrent writer keeps its file. Best effort.
 */
async function removeStaleTemporaries(path: string): Promise<void> {
  const dir = nodePath.dirname(nodePath.resolve(path));
  const base = nodePath.basename(path);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(`${base}.tmp-`)) continue;
    const m = /^(\d+)-[0-9a-f]{12}$/.exec(name.slice(base.length + 5));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    await fsp.unlink(nodePath.join(dir, name)).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
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
