/**
 * The unit of training data: one user at a cut time with the labels of what followed. Every reader
 * (Taobao CSV, column-mapped CSV/TSV, JSON Lines, the synthetic generator) yields these, the trainer packs
 * them into native batches, and evaluation scores them. A JSON Lines file holds one per line.
 */
import { CandidateInput, UserInput } from '../model/features';

/** Behaviour grades of `rank` labels (docs/model.md, Training loss: buy > cart > fav > click > none). */
export const GRADES = { none: 0, click: 1, fav: 2, cart: 3, buy: 4 } as const;

/** A candidate and its label for one `binary`, `rank` or `retrieval` task (retrieval: 1 = the positive). */
export interface LabelledCandidate {
  /** The target entity's fields (the task's `target` item fields) and, for rank tasks, `dense`. */
  candidate: CandidateInput;
  /** `binary`: 0 or 1. `rank`: the grade 0..4 of {@link GRADES} (0 = shown or sampled, not acted on). */
  label: number;
  /** Per-candidate weight (default 1), multiplied into the example weight. */
  weight?: number;
  /**
   * `retrieval`: log of the probability with which this candidate was sampled (log Q), subtracted from its
   * logit in the sampled softmax (the sampling-bias correction); default 0.
   */
  logQ?: number;
}

/** One training or validation example. */
export interface TrainingExample {
  /** The user at the cut: behaviours before it (oldest first), `now` = the cut time. */
  user: UserInput;
  /** Who the user is: groups examples for GAUC (per-user AUC) and for the request groups of pairwise loss. */
  userId: string;
  /** Unix seconds of the cut; the train/validation split is by this time. */
  time: number;
  /**
   * Labels by task name. `binary`/`rank`: the labelled candidates; `multiclass`: the class index. A task
   * that is absent carries no label for this example (label masks).
   */
  labels: Record<string, LabelledCandidate[] | number>;
  /** Per-example weight (default 1). */
  weight?: number;
}

/** A malformed input row, as readers count and report them (never silently used). */
export interface MalformedRow {
  /** 1-based line number in the file. */
  line: number;
  /** What was wrong, naming the column. */
  problem: string;
}
