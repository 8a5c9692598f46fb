// Asserting typed errors: a DupnError with the expected code whose message names the field.
import { Test } from 'tap';
import { DupnError } from '../../lib/errors';

function matches(e: unknown, code: string, field: string): string | null {
  if (!(e instanceof DupnError)) return `not a DupnError: ${String(e)}`;
  if (e.code !== code) return `code ${e.code}, expected ${code} (${e.message})`;
  if (!e.message.includes(field)) return `message does not name ${field}: ${e.message}`;
  return null;
}

export function throwsCode(t: Test, fn: () => unknown, code: string, field: string, label = `${code} ${field}`): void {
  try {
    fn();
  } catch (e) {
    const problem = matches(e, code, field);
    t.equal(problem, null, label);
    return;
  }
  t.fail(`${label}: did not throw`);
}

export async function rejectsCode(t: Test, fn: () => Promise<unknown>, code: string, field: string, label = `${code} ${field}`): Promise<void> {
  try {
    await fn();
  } catch (e) {
    t.equal(matches(e, code, field), null, label);
    return;
  }
  t.fail(`${label}: did not reject`);
}
