/**
 * dupn — Deep User Perception Network for Node.js. See README.md for a guided tour.
 * @packageDocumentation
 */
export { Model } from './model/model';
export type { ModelOptions, CreateOptions, EncodeOptions, ScoreOptions, ScoreAllOptions, Explanation } from './model/model';
export { DupnError, ERROR_CODES, isErrorCode } from './errors';
export type { DupnErrorCode } from './errors';
export { fingerprint64, bucket, bucketMany } from './model/hashing';
export type { Categorical } from './model/hashing';
export { resolveConfig, defaultConfig, deriveDims, HISTORY_FEATURES, HEAD_HISTORY_FEATURES } from './network/config';
export type {
  DupnConfig,
  ResolvedConfig,
  TaskConfig,
  BinaryTask,
  RankTask,
  MulticlassTask,
  RetrievalTask,
  TableField,
  PropertiesConfig,
  QueryConfig,
  Dims,
} from './network/config';
export type { UserInput, BehaviorInput, CandidateInput, PackOptions } from './model/features';
export { historyFeatures, historyIndex } from './model/features';
export type { Retrieved, RetrieveOptions } from './model/retrieval';
export type { UserColumns, CandidateColumns } from './model/columns';
export { tensorSpecs } from './network/tensors';
export type { TensorSpec } from './network/tensors';

// Serving: the dynamic batcher and its user-vector cache.
export { Batcher } from './serve/batcher';
export type {
  BatcherOptions,
  BatcherStats,
  BatchInfo,
  BatchKind,
  BatchRequest,
  BatchValue,
  CandidatePacker,
  DropCode,
  DropInfo,
  EncodeRequest,
  PredictRequest,
  RankRequest,
  RankRequestOptions,
  RequestOptions,
  Scores,
  Served,
  UsersRequestOptions,
} from './serve/batcher';
export { UserCache } from './serve/user-cache';
export type { UserCacheOptions, UserCacheStats } from './serve/user-cache';
export { ItemCatalogue, candidateCacheFor, catalogueDense } from './serve/catalogue';
export type { CatalogueItem, CatalogueReadOptions, CatalogueStats, ResolvedCandidates } from './serve/catalogue';
export { createServer, dupnRoutes, routeSchemas, resolveLimits, errorReply, AJV_OPTIONS, DEFAULT_LIMITS } from './serve/server';
export type { DupnServer, ServerOptions, DupnRoutesOptions, ServeLimits, EncodeBody, PredictBody, RankBody } from './serve/server';
export { ModelHost, fileVersion, loadVersioned, warm } from './serve/model-host';
export type { ModelHostOptions, ReloadResult } from './serve/model-host';
export { ServeMetrics } from './serve/metrics';
export { float32Json } from './serve/answers';

// Training: data, the trainer and its loop, evaluation.
export { Trainer } from './train/trainer';
export type { StepReport } from './train/trainer';
export type { TrainOptions } from './train/options';
export { fit } from './train/fit';
export type { FitOptions, FitProgress, EpochReport, DataPosition } from './train/fit';
export { readExamples, defaultValidFrom, splitByTime, writeJsonl, GRADES } from './data';
export type { ReadExamplesOptions, DataReport, ExampleSource, DataFormat, TrainingExample, LabelledCandidate, MalformedRow } from './data';
export { synthesize, synthesizeWithOracle } from './data/synthetic';
export type { SyntheticOptions, SyntheticRecord } from './data/synthetic';
export { evaluate, modelScorer, popularityScorer, oracleScorer, formatReport } from './eval/evaluate';
export type { Scorer, EvalReport, TaskReport, EvaluateOptions } from './eval/evaluate';
