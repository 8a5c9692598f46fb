/**
 * `dupn shards`: a log (or JSON Lines of examples) → packed training batches for a trainer outside dupn, such as
 * PyTorch DistributedDataParallel through python/dupn_torch (docs/scale-out.md). The model, the split, the
 * table sizes, the successor tables and the batches are exactly those `dupn train` would use with the same
 * flags, so the buckets and examples are the same by construction: Python never hashes or cuts.
 */
import * as path from 'node:path';
import { ShardWriter } from '../io/shards';
import { shuffled } from '../train/fit';
import { TrainingExample } from '../data/training-example';
import { Output, TrainFlags, setUpTraining } from './train';
import { formatDataReport } from './data-report';

export interface ShardsFlags extends Omit<TrainFlags, 'out'> {
  out: string;
  /** Shard files (default 1): each rank of a DDP job reads its own (rank r: shards r, r + W, …). */
  shards?: number;
}

export async function shardsCommand(flags: ShardsFlags, io: Output): Promise<void> {
  const dir = flags.out;
  const init = 'init.safetensors';
  const { trainer, parts, trainData, firstPassDone, setPriors } = await setUpTraining({ ...flags, out: path.join(dir, init) }, io);
  try {
    const writer = new ShardWriter(dir, flags.shards ?? 1);
    const batchSize = trainer.options.batchSize;
    let written = 0;
    try {
      let batch: TrainingExample[] = [];
      const flush = (): void => {
        const packed = trainer.packBatch(batch);
        // The starting model gets the random start of every row the batches use, as dupn's own steps would give it.
        trainer.startRows(packed);
        writer.add(packed, batch.length);
        written += batch.length;
        batch = [];
      };
      // The order of `dupn train`'s first epoch (its shuffle window, seeded the same way).
      for await (const ex of shuffled(trainData, flags.shuffle ?? 4096, 0)) {
        batch.push(ex);
        if (batch.length === batchSize) flush();
      }
      if (batch.length > 0) flush();
    } catch (e) {
      writer.abort();
      throw e;
    }
    if (!firstPassDone()) for (const line of formatDataReport(flags.data, parts.source.report())) io.err(line);
    // The starting model carries the training part's statistics (priors, successor tables), as a trained one would.
    setPriors();
    await trainer.save(path.join(dir, init));
    const o = trainer.options;
    const index = await writer.finish({
      config: trainer.config,
      heads: trainer.config.tasks.map((t, i) => ({ name: t.name, kind: t.kind, lambda: o.lambdas[i], pairwise: o.pairwise })),
      batchSize,
      init,
    });
    io.out(`wrote ${index.shards.length} shard${index.shards.length === 1 ? '' : 's'} of ${written} examples in ${index.batches} batches of up to ${batchSize} to ${dir} (index.json, starting model ${init})`);
  } finally {
    trainer.dispose();
  }
}
