/**
 * What the reader did with a data file, printed by `train` and `eval` after every read, and the refusal of
 * a file that gave no examples, naming the likely cause instead of training on nothing.
 */
import { DataReport } from '../data';
import { DupnError } from '../errors';

/** The reader's report as lines: rows, malformed (the first few), users, examples, cuts dropped and why. */
export function formatDataReport(what: string, r: DataReport): string[] {
  const lines = [
    `${what}: ${r.rows} rows, ${r.users} users${r.grouping === 'memory' ? ' (not grouped by user: grouped in memory)' : r.grouping === 'disk' ? ' (not grouped by user: grouped on disk by DuckDB)' : ''}, ${r.examples} examples` +
      `${r.malformed > 0 ? `, ${r.malformed} malformed line${r.malformed > 1 ? 's' : ''} skipped (--strict makes them fatal)` : ''}`,
  ];
  for (const m of r.firstMalformed.slice(0, 5)) lines.push(`  line ${m.line}: ${m.problem}`);
  if (r.malformed > 5) lines.push(`  … ${r.malformed - 5} more`);
  const dropped: string[] = [];
  if (r.shortTimelines > 0) dropped.push(`${r.shortTimelines} users with too short a history for a cut (--min-history)`);
  if (r.cutsNotTaken > 0) dropped.push(`${r.cutsNotTaken} cuts over the per-user limit (--examples-per-user)`);
  if (r.unlabelled > 0) dropped.push(`${r.unlabelled} cuts without a label for any task`);
  if (r.reappearedUsers > 0) dropped.push(`${r.reappearedUsers} user blocks that reappeared (--grouping memory groups them)`);
  if (r.unknownTypes > 0) dropped.push(`${r.unknownTypes} rows kept with an unknown behaviour type (--types maps codes)`);
  if (dropped.length > 0) lines.push(`  ${dropped.join('; ')}`);
  return lines;
}

/** Throws `DupnError('E_INPUT')` when a pass gave no examples, with the most likely reason. */
export function refuseEmpty(what: string, r: DataReport): void {
  if (r.examples > 0) return;
  let why: string;
  if (r.rows === 0 && r.malformed > 0) {
    why = `all ${r.malformed} data lines are malformed (check --columns, --delimiter, --header, --types); the first: ` +
      r.firstMalformed.slice(0, 3).map((m) => `line ${m.line}: ${m.problem}`).join('; ');
  } else if (r.rows === 0) {
    why = 'the file has no data rows';
  } else if (r.reappearedUsers > 0) {
    why = `the rows of a user are not contiguous (${r.reappearedUsers} users reappear): use --grouping memory or auto`;
  } else if (r.shortTimelines >= r.users) {
    why = `every one of the ${r.users} users has too short a history for a cut: fewer behaviours than --min-history + 1, or all at one time`;
  } else if (r.unlabelled > 0) {
    why = `no cut had a label for any of the model's tasks (${r.unlabelled} cuts without one)`;
  } else {
    why = `nothing fell in this part of the data (${r.rows} rows, ${r.users} users)`;
  }
  throw new DupnError('E_INPUT', `${what}: no examples: ${why}`, { path: what });
}
