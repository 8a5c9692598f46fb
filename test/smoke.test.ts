import t from 'tap';
import { resolveConfig } from '../lib/config';
t.test('defaults', async (t) => { t.equal(resolveConfig({}).hidden, 128); });
