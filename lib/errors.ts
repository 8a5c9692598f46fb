/**
 * Machine-readable error codes, the one list (docs/errors.md says what each means and what to do; a test
 * checks the two agree, and that every code the native addon throws is on it). Every error dupn throws or
 * rejects with is a {@link DupnError} carrying one of these, so callers can branch on `err.code` instead of
 * parsing messages.
 */
export const ERROR_CODES = [
  'E_CONFIG', // the model config is invalid
  'E_INPUT', // a request (users, candidates, columns, options) is invalid
  'E_TASK', // an unknown task, or a task of the wrong kind for the call
  'E_MODEL_FILE', // a model file is unreadable, corrupt or does not match its config
  'E_DISPOSED', // the model was disposed
  'E_BUSY', // a trainer step is running: await it before the next call that needs the weights
  'E_NATIVE_LOAD', // the native addon could not be loaded
  'E_IO', // a file could not be read or written
  'E_UNSUPPORTED', // the call is not available with this backend (e.g. *Sync on onnxruntime)
  'E_DIVERGED', // training produced a non-finite loss or gradient (the step was not applied)
  'E_NUMERIC', // a model's output was not finite (its weights overflow on this input): the result is withheld
  'E_OVERLOADED', // the batcher's queue is full: back off and retry (HTTP 429)
  'E_TIMEOUT', // a request's deadline passed while it waited in the batcher's queue: it was never computed (HTTP 504)
  'E_ABORTED', // the caller's AbortSignal fired before the request's result was delivered
  'E_CLOSED', // the batcher was closed and takes no more requests
  'E_INTERNAL', // a native failure that is not the caller's fault
] as const;

/** One of {@link ERROR_CODES}. */
export type DupnErrorCode = (typeof ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether `code` is one of {@link ERROR_CODES}. */
export function isErrorCode(code: unknown): code is DupnErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

/** The one error class of dupn: `code` says what kind of failure, `message` names the field and the problem. */
export class DupnError extends Error {
  /** What kind of failure: one of {@link ERROR_CODES} (docs/errors.md). */
  readonly code: DupnErrorCode;
  /** Path of the offending field (`tasks[2].target[1]`, `users[3].behaviors[7].time`), when there is one. */
  readonly path?: string;

  constructor(code: DupnErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DupnError';
    this.code = code;
    if (options?.path !== undefined) this.path = options.path;
  }
}

/** Throws an `E_INPUT` error naming `path`. */
export function inputError(path: string, problem: string): never {
  throw new DupnError('E_INPUT', `${path}: ${problem}`, { path });
}

/** Short, safe rendering of an offending value for messages (never dumps a huge object). */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `"${value.slice(0, 40)}…"` : JSON.stringify(value);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'undefined':
      return 'undefined';
    case 'object':
      return ArrayBuffer.isView(value) ? `a ${value.constructor.name}` : 'an object';
    default:
      return `a ${typeof value}`;
  }
}
