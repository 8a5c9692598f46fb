#!/usr/bin/env node
/**
 * The `dupn` command line: synth, train, shards, eval, serve, export-onnx and build-native. Every failure prints one line naming the
 * error code and the problem and exits with status 1 (2 for a usage error).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DupnError } from '../errors';
import { Model } from '../model/model';
import { packageVersion } from '../native/addon';
import { buildNativeCommand } from './build-native';
import { evalCommand } from './eval';
import { serveCommand } from './serve';
import { shardsCommand } from './shards';
import { list, numberFlag } from './settings';
import { synthCommand } from './synth';
import { Output, trainCommand } from './train';
import { DEFAULT_EMBEDDING_OPTIMIZER, EMBEDDING_OPTIMIZERS, defaultEmbeddingLearningRate } from '../train/options';

const io: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  stream: process.stderr,
};

function num(flag: string): (v: string) => number {
  const parse = numberFlag(flag);
  return (v) => {
    try {
      return parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** The input options `train` and `eval` share. */
function dataOptions(c: Command): Command {
  return c
    .addOption(new Option('--format <name>', 'input format (default: jsonl for .jsonl, csv with --columns, else taobao); sequences: a user id and its items in order per line').choices(['taobao', 'csv', 'jsonl', 'sequences']))
    .option(
      '--columns <mapping>',
      'column mapping role=column (index or header name): user, item, category, shop, brand, type, price, scene, and a time: ' +
        'time (Unix seconds or ISO date-time), day (a date), month+day (with --year), day+offset (ms since the day began), or none (file order)',
    )
    .option('--delimiter <c>', 'field delimiter (default: tab for .tsv, else comma; "tab" for a tab)')
    .option('--header', 'the first line is a header (default: when --columns names a column)')
    .option('--no-header', 'the first line is data')
    .option('--types <codes>', 'behaviour codes of the type column, e.g. 0=pv,1=cart,2=buy,3=fav')
    .option('--year <n>', 'year of month/day or MMDD dates', num('--year'))
    .addOption(new Option('--time-unit <unit>', 'unit of a numeric time column').choices(['s', 'ms']))
    .addOption(new Option('--grouping <how>', 'auto: check whether rows of a user are contiguous; memory: group an interleaved (time-sorted) log in memory; disk: out of core with DuckDB (optional @duckdb/node-api; auto picks it past 20 M rows)').choices(['auto', 'stream', 'memory', 'disk']))
    .option('--min-history <n>', 'fewest behaviours before a cut (default 1)', num('--min-history'))
    .option('--examples-per-user <n>', 'most cuts per user (default 64)', num('--examples-per-user'))
    .option('--negatives <n>', 'sampled negatives per label list (default 4)', num('--negatives'))
    .option('--uniform-negatives <n>', 'retrieval heads: more negatives drawn uniformly from the distinct items (default 4)', num('--uniform-negatives'))
    .option('--strict', 'stop at the first malformed line');
}

export function program(): Command {
  const cmd = new Command('dupn')
    .description('Deep User Perception Network: train and evaluate user-representation models')
    .version(packageVersion(), '-V, --version', 'print the dupn version')
    .showHelpAfterError()
    .exitOverride();

  cmd
    .command('synth')
    .description('write synthetic train/valid JSON Lines with planted structure (deterministic by seed)')
    .requiredOption('--out <dir>', 'output folder (train.jsonl, valid.jsonl)')
    .option('--users <n>', 'training users', num('--users'), 20000)
    .option('--valid-users <n>', 'validation users (new users, same universe)', num('--valid-users'), 2000)
    .option('--seed <n>', 'seed of the universe and the streams', num('--seed'), 1)
    .option('--day <n>', 'day index (1 = the next day of the same users, tastes drifted)', num('--day'))
    .option('--examples-per-user <n>', 'cuts per user', num('--examples-per-user'))
    .option('--config <file>', 'settings JSON ({model, train, data}); the model section decides tasks and sizes')
    .action(async (flags) => synthCommand(flags, io));

  const train = cmd
    .command('train')
    .description('train a model on a behaviour log or labelled JSON Lines')
    .requiredOption('--data <path>', 'training data: Taobao UserBehavior CSV, CSV/TSV with --columns, or .jsonl')
    .requiredOption('--out <file>', 'model file to write (.safetensors)')
    .option('--valid <path>', 'validation data (default for logs: the last day of --data)')
    .option('--valid-from <unix>', 'split a log by time here instead of at its last day', num('--valid-from'))
    .addOption(new Option('--split <how>', 'split of a log without --valid: time (its last day), leave-one-out (per user: last tests, second-last validates) or user (10% of users by id hash validate)').choices(['time', 'leave-one-out', 'user']))
    .option('--config <file>', 'settings JSON: {"model": {...}, "train": {...}, "data": {...}}')
    .option('--checkpoint <file>', 'checkpoint file (default <out>.ckpt)')
    .option('--checkpoint-every <steps>', 'also checkpoint every this many steps', num('--checkpoint-every'))
    .option('--resume', 'continue from the checkpoint (after a crash or kill)')
    .option('--init <model>', 'start from this model file (incremental training; transfer with a bigger --config)')
    .addOption(new Option('--freeze <what>', 'keep the shared network fixed and train heads only').choices(['none', 'shared']))
    .option('--tasks <names>', 'train only these heads (comma-separated)', list)
    .option('--freeze-tensors <names>', 'keep these tensors fixed: names or prefixes ending in "." (comma-separated)', list)
    .option('--epochs <n>', 'passes over the data (default on a log: up to 20, stopping early on validation; else 1)', num('--epochs'))
    .option('--no-calibrate', 'keep the retrieval head\'s history, successor and prior weights as trained (default: scaled by what scores best on the selection cases, where the gain exceeds two standard errors)')
    .option('--successor-dropout <p>', 'share of training examples whose successor features are zeroed (default 0.5)', num('--successor-dropout'))
    .option('--dropout <p>', 'training dropout of the behaviour inputs and the user vector, in [0, 0.95] (default 0)', num('--dropout'))
    .option('--weight-decay <w>', 'decoupled weight decay of weights and touched embedding rows, in [0, 1] (default 0)', num('--weight-decay'))
    .option('--average-decay <d>', 'save the exponential moving average of the weights with this decay per step, in [0, 1) (default 0.999; 0: the last step\'s weights)', num('--average-decay'))
    .option('--successors <n>', 'successors kept per item for the retrieval head of a new model on a log (0: no successor features; default 32)', num('--successors'))
    .option('--patience <n>', 'stop after n epochs without a better validation score and keep the best epoch (default on a log: 2)', num('--patience'))
    .option('--batch-size <n>', 'examples per step (default 64)', num('--batch-size'))
    .option('--lr <rate>', 'learning rate (default 0.005)', num('--lr'))
    .option('--embedding-lr <rate>', `learning rate of the embedding rows (default: ${EMBEDDING_OPTIMIZERS.map((o) => `${defaultEmbeddingLearningRate(o)} for ${o}`).join(', ')})`, num('--embedding-lr'))
    .addOption(new Option('--embedding-optimizer <name>', `optimizer of the embedding rows (default ${DEFAULT_EMBEDDING_OPTIMIZER})`).choices([...EMBEDDING_OPTIMIZERS]))
    .option('--threads <n>', 'threads (default: all cores)', num('--threads'))
    .option('--seed <n>', 'seed of new weights', num('--seed'))
    .option('--deterministic', 'one thread, fixed order: bit-identical runs')
    .option('--pairwise', 'add the pairwise loss to rank heads')
    .option('--warmup <steps>', 'linear learning-rate warm-up', num('--warmup'))
    .addOption(new Option('--decay <shape>', 'learning-rate decay (needs totalSteps in the settings)').choices(['none', 'linear', 'cosine']))
    .option('--max-steps <n>', 'stop after this many steps in all', num('--max-steps'))
    .option('--shuffle <n>', 'train each run of n examples in a seeded random order (default 4096; 0 keeps the file order)', num('--shuffle'))
    .option('--no-progress', 'plain progress lines even on a terminal')
    .option('--no-data-sized-tables', 'a new model on a log: keep the paper-size tables instead of sizing them from the distinct ids')
    .option('--no-next-item', 'skip the next-item table (full catalogue and sampled) after training a log');
  dataOptions(train).action(async (flags) => trainCommand(flags, io));

  const shards = cmd
    .command('shards')
    .description('pack the training batches dupn train would use into shard files for another trainer (python3 -m dupn_torch train; docs/scale-out.md)')
    .requiredOption('--data <path>', 'training data: Taobao UserBehavior CSV, CSV/TSV with --columns, or .jsonl')
    .requiredOption('--out <dir>', 'folder to write: index.json, shard-NNNNN.bin/.json, init.safetensors (the starting model)')
    .option('--shards <n>', 'shard files, read by the ranks of a DDP job in turn (default 1)', num('--shards'))
    .option('--valid <path>', 'validation data (left out of the shards)')
    .option('--valid-from <unix>', 'split a log by time here instead of at its last day', num('--valid-from'))
    .addOption(new Option('--split <how>', 'split of a log without --valid (the validation part is left out of the shards)').choices(['time', 'leave-one-out', 'user']))
    .option('--config <file>', 'settings JSON: {"model": {...}, "train": {...}, "data": {...}}')
    .option('--init <model>', 'start from this model file instead of new weights')
    .option('--tasks <names>', 'heads with labels (comma-separated; default all)', list)
    .option('--batch-size <n>', 'examples per batch (default 64)', num('--batch-size'))
    .option('--seed <n>', 'seed of new weights', num('--seed'))
    .option('--pairwise', 'mark rank heads for the pairwise loss')
    .option('--successor-dropout <p>', 'share of examples whose successor features are zeroed (default 0.5)', num('--successor-dropout'))
    .option('--successors <n>', 'successors kept per item for the retrieval head of a new model on a log (default 32)', num('--successors'))
    .option('--shuffle <n>', 'pack each run of n examples in a seeded random order (default 4096; 0 keeps the file order)', num('--shuffle'))
    .option('--no-data-sized-tables', 'a new model on a log: keep the paper-size tables');
  dataOptions(shards).action(async (flags) => shardsCommand(flags, io));

  const evalCmd = cmd
    .command('eval')
    .description('validation metrics of a model on a data file')
    .requiredOption('--model <file>', 'model file')
    .requiredOption('--data <path>', 'labelled data (same formats as train)')
    .option('--popularity <path>', 'also score the popularity baseline counted from this training data')
    .option('--valid-from <unix>', 'evaluate only the examples cut at or after this time (negatives of earlier cuts from before it)', num('--valid-from'))
    .option('--config <file>', 'settings JSON (its data section)')
    .option('--threads <n>', 'threads', num('--threads'))
    .option('--json', 'print the report as JSON');
  dataOptions(evalCmd).action(async (flags) => evalCommand(flags, io));

  cmd
    .command('export-onnx')
    .description('write a model as ONNX graphs (one user graph, one graph per head)')
    .requiredOption('--model <file>', 'model file')
    .requiredOption('--out <file>', 'the user graph <stem>.onnx (heads go beside it)')
    .action(async (flags: { model: string; out: string }) => {
      const model = await Model.load(flags.model);
      const files = await model.exportOnnx(flags.out);
      io.out(`wrote ${files.join(', ')}`);
      model.dispose();
    });

  cmd
    .command('serve')
    .description('serve a model over HTTP (fastify): POST /v1/encode, /v1/rank, /v1/predict; GET /healthz, /readyz, /metrics; SIGHUP or replacing the file reloads it, SIGTERM drains')
    .requiredOption('--model <file>', 'model file (.safetensors); its content hash is the version in every response')
    .option('--items <file>', 'item catalogue (CSV/TSV/JSON Lines): rank candidates may then be item ids')
    .option('--columns <mapping>', 'column mapping of --items, role=column (index or header name): item, category, shop, brand, price, or an extra item field (default: the header names)')
    .option('--delimiter <c>', 'field delimiter of --items (default: tab for .tsv, else comma; "tab" for a tab)')
    .option('--header', 'the first line of --items is a header (default: unless every mapped column is an index)')
    .option('--no-header', 'the first line of --items is data')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'port (0: any free port)', num('--port'), 8080)
    .option('--max-batch <n>', 'most users per batch (default 64)', num('--max-batch'))
    .option('--max-delay-ms <ms>', 'how long a small batch may wait for more requests (default 0)', num('--max-delay-ms'))
    .option('--max-queue <n>', 'most users waiting; beyond it 429 (default 4096)', num('--max-queue'))
    .option('--timeout-ms <ms>', 'queue deadline of a request; past it 504 (default 1000)', num('--timeout-ms'))
    .option('--max-candidates <n>', 'most candidates per rank request (default 2000)', num('--max-candidates'))
    .option('--max-behaviors <n>', 'most behaviours per user (default 1000)', num('--max-behaviors'))
    .option('--max-users <n>', 'most users per encode/predict request (default 64, at most --max-batch)', num('--max-users'))
    .option('--body-limit <bytes>', 'largest request body; beyond it 413 (default 8 MiB)', num('--body-limit'))
    .option('--threads <n>', 'native threads per call (default: all cores, shared out among --workers)', num('--threads'))
    .option('--candidate-cache <n>', 'candidate projection cache entries per head (default 0: none; measured slower than computing on random catalogue candidates, docs/serving.md)', num('--candidate-cache'))
    .option('--no-watch', 'do not reload when the model file is replaced (SIGHUP still reloads)')
    .option('--workers <n>', 'processes sharing the port (Node cluster), each with its own model and cores/n native threads (default 1)', num('--workers'))
    .option('--worker-node-options <flags>', 'Node/V8 flags of each --workers process, space-separated (default: the primary\'s own; "--optimize-for-size" halves a worker\'s private memory at a third of its throughput, docs/serving.md)')
    .action(async (flags) => serveCommand(flags, io));

  cmd
    .command('build-native')
    .description('build the native addon from source (platforms without a prebuilt binary); needs python3, make and a C++17 compiler')
    .option('--out <file>', 'where to write dupn.node (default: the per-user cache the loader reads)')
    .option('--jobs <n>', 'parallel compile jobs', num('--jobs'))
    .action(async (flags: { out?: string; jobs?: number }) => buildNativeCommand(flags, io));
  return cmd;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string };
    if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
      // Help and version exit 0; usage errors were already printed by commander.
      return err.exitCode ?? 2;
    }
    if (e instanceof DupnError) io.err(`dupn: ${e.code}: ${e.message}`);
    else io.err(`dupn: E_INTERNAL: ${err.message ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
