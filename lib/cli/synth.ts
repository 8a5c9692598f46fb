/**
 * `dupn synth`: synthetic training and validation files (JSON Lines of labelled examples) with planted
 * structure (lib/data/synthetic.ts), deterministic by seed. Validation users are new users of the same
 * universe, so a model is judged on people it has not seen.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveConfig } from '../network/config';
import { writeJsonl } from '../data';
import { synthesize } from '../data/synthetic';
import { DupnError } from '../errors';
import { Output } from './train';
import { readSettings } from './settings';

export interface SynthFlags {
  out: string;
  users: number;
  validUsers: number;
  seed: number;
  day?: number;
  examplesPerUser?: number;
  config?: string;
}

export async function synthCommand(flags: SynthFlags, io: Output): Promise<void> {
  for (const [name, v] of [['--users', flags.users], ['--valid-users', flags.validUsers]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new DupnError('E_INPUT', `${name}: expected an integer ≥ 0, got ${v}`, { path: name });
  }
  const settings = await readSettings(flags.config);
  const config = resolveConfig(settings.model ?? {});
  fs.mkdirSync(flags.out, { recursive: true });
  const common = { config, universeSeed: flags.seed, day: flags.day ?? 0, examplesPerUser: flags.examplesPerUser ?? 1 };
  const train = path.join(flags.out, 'train.jsonl');
  const valid = path.join(flags.out, 'valid.jsonl');
  const nTrain = await writeJsonl(train, synthesize({ ...common, seed: flags.seed, users: flags.users }));
  const nValid = await writeJsonl(valid, synthesize({ ...common, seed: flags.seed + 1, users: flags.validUsers, firstUser: flags.users }));
  io.out(`wrote ${train} (${nTrain} examples) and ${valid} (${nValid} examples)`);
}
