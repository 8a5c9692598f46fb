/**
 * Columnar (packed) inputs: the TypedArrays that cross into the native addon. Request objects are packed
 * into these by `features.ts`; callers that already hold hashed ids may build them directly.
 * All ids are table rows (already reduced modulo the table's bucket count).
 */

/** A batch of B users with N = Σ lengths behaviours in total, oldest first within each user. */
export interface UserColumns {
  /** [B] number of behaviours kept per user, each in [0, maxSeqLen]. */
  lengths: Int32Array;
  /** [N × F] item-field rows, F = config.itemFields.length, fields in config order (dim-0 fields included). */
  items: Int32Array;
  /** [N × 3] property rows: type, gap bucket, scene (a column is ignored when its dim is 0). */
  properties: Int32Array;
  /** [B + 1] offsets into `queryTokens`; user b owns tokens queryOffsets[b] .. queryOffsets[b+1]. */
  queryOffsets: Int32Array;
  /** Query-token rows of all users, concatenated. */
  queryTokens: Int32Array;
  /** [B × P] profile rows, P = config.profileFields.length, fields in config order. */
  profile: Int32Array;
}

/** C candidates for one head: item-field rows in the same layout as behaviours, plus dense ranking features. */
export interface CandidateColumns {
  /** [C × F] item-field rows, F = config.itemFields.length (fields a task does not target are ignored). */
  items: Int32Array;
  /** [C × denseFeatures] for `rank` tasks with dense features; empty otherwise. */
  dense: Float32Array;
}
