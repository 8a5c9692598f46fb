/**
 * The JSON text of the model routes' answers. Each route's response schema is compiled (fastify's
 * `serializerCompiler`, set per route) into a writer for exactly that shape: strings through `JSON.stringify`,
 * numbers of the model through the addon's `float32Json`, which prints each float32 as its own shortest
 * round-trip decimal (at most 9 significant digits; `Math.fround(parsed)` is the model's value).
 *
 * Why not fastify's default (fast-json-stringify): it widens each float32 to a double and V8 prints the double's
 * shortest form, about 17 digits at some 170 ns a number. A rank answer holds 1,000 scores, so that was the
 * largest single cost on the event loop (0.20 of about 0.9 ms a request, docs/serving.md) and half the bytes.
 */
import { fromNativeError, native } from '../native/addon';

/** Rows of a B × row matrix held flat (what encode and predict answer). */
export interface Float32Rows {
  values: Float32Array;
  row: number;
}

/** One entry of a rank answer's `top`. */
export interface TopEntry {
  item?: string;
  index: number;
  score: number;
}

/** What the rank route's handler returns. */
export interface RankAnswer {
  scores: Record<string, Float32Array>;
  top?: TopEntry[];
  model: { version: string };
}

/** What the encode route's handler returns. */
export interface EncodeAnswer {
  vectors: Float32Rows;
  model: { version: string };
}

/** What the predict route's handler returns. */
export interface PredictAnswer {
  probabilities: Float32Rows;
  model: { version: string };
}

/** An error answer (every status but 200). */
export interface ErrorAnswer {
  error: { code: string; message: string };
}

const str = JSON.stringify;

/**
 * The JSON text of float32 values, each as the shortest decimal that reads back to the same float32
 * (`Math.fround(JSON.parse(text)[i]) === values[i]`); not finite → `null`. With `row > 0`, rows of `row`
 * values: `[[…],[…]]` (row must divide the length). For a service that writes its own answers (plain
 * `node:http`, express): `JSON.stringify(Array.from(scores))` prints the widened doubles, twice as long and
 * several times slower. Throws DupnError E_INPUT for anything but a Float32Array or a bad row.
 */
export function float32Json(values: Float32Array, row = 0): string {
  try {
    return native().float32Json(values, row);
  } catch (e) {
    throw fromNativeError(e, 'float32Json');
  }
}

function modelJson(model: { version: string }): string {
  return `"model":{"version":${str(model.version)}}`;
}

/** The rank answer's text (the response schema of `POST /v1/rank`). */
export function rankJson(a: RankAnswer): string {
  let out = '{"scores":{';
  let first = true;
  for (const task of Object.keys(a.scores)) {
    out += `${first ? '' : ','}${str(task)}:${float32Json(a.scores[task])}`;
    first = false;
  }
  out += '}';
  if (a.top !== undefined) {
    // One native call for the top's scores, split back into their texts.
    const texts = float32Json(Float32Array.from(a.top, (t) => t.score)).slice(1, -1).split(',');
    out += ',"top":[';
    for (let i = 0; i < a.top.length; i++) {
      const t = a.top[i];
      out += `${i === 0 ? '' : ','}{${t.item === undefined ? '' : `"item":${str(t.item)},`}"index":${t.index},"score":${texts[i]}}`;
    }
    out += ']';
  }
  return `${out},${modelJson(a.model)}}`;
}

/** The encode answer's text. */
export function encodeJson(a: EncodeAnswer): string {
  return `{"vectors":${float32Json(a.vectors.values, a.vectors.row)},${modelJson(a.model)}}`;
}

/** The predict answer's text. */
export function predictJson(a: PredictAnswer): string {
  return `{"probabilities":${float32Json(a.probabilities.values, a.probabilities.row)},${modelJson(a.model)}}`;
}

/** An error answer's text: only the schema's two fields, as the schema-compiled serialiser wrote them. */
export function errorJson(a: ErrorAnswer): string {
  return `{"error":{"code":${str(String(a.error.code))},"message":${str(String(a.error.message))}}}`;
}

/**
 * A route's `serializerCompiler`: `ok` for status 200, {@link errorJson} for every other status the route's
 * schema lists ('4xx', '5xx').
 */
export function answerCompiler<T>(ok: (answer: T) => string) {
  return ({ httpStatus }: { httpStatus?: string }): ((data: unknown) => string) =>
    (httpStatus === '200' ? ok : errorJson) as unknown as (data: unknown) => string;
}
