/**
 * dupn inside your own service (issue 13, item 4): the model routes mounted in your fastify app with the
 * `dupnRoutes` plugin, and the same batcher behind a plain `node:http` handler.
 *
 *   node dist/examples/serve-embedded.js model.safetensors [items.csv]
 *
 * then `POST http://127.0.0.1:8081/recs/v1/rank` (fastify) or `POST http://127.0.0.1:8082/rank` (node:http).
 */
import * as http from 'node:http';
import Fastify, { FastifyInstance } from 'fastify';
import { AJV_OPTIONS, Batcher, DupnError, ItemCatalogue, Model, dupnRoutes, fileVersion, float32Json } from '../lib';
import { RankBody } from '../lib/serve/server';

/** Your fastify app with its own routes and dupn's under `/recs`. */
export async function fastifyApp(batcher: Batcher, version: string, catalogue?: ItemCatalogue): Promise<FastifyInstance> {
  const app = Fastify({ ajv: { customOptions: AJV_OPTIONS } });
  app.get('/hello', async () => ({ hello: 'world' }));
  await app.register(dupnRoutes, { prefix: '/recs', batcher, catalogue, versionOf: () => version });
  return app;
}

/** The same batcher behind plain node:http: one JSON rank request per POST /rank. */
export function httpServer(batcher: Batcher, catalogue?: ItemCatalogue): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, text: string): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(text);
      };
      const answer = (status: number, body: unknown): void => send(status, JSON.stringify(body));
      if (req.method !== 'POST' || req.url !== '/rank') return answer(404, { error: { code: 'E_INPUT', message: 'POST /rank only' } });
      let body: RankBody;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RankBody;
      } catch {
        return answer(400, { error: { code: 'E_INPUT', message: 'body: not JSON' } });
      }
      const candidates = (catalogue ?? ItemCatalogue.fromItems([])).resolve(body.candidates).candidates;
      batcher.rank(body.user, candidates, { tasks: body.tasks }).then(
        // float32Json prints each score as its float32's shortest decimal (JSON.stringify would print 17 digits).
        (scores) => send(200, `{"scores":{${Object.entries(scores).map(([k, v]) => `${JSON.stringify(k)}:${float32Json(v)}`).join(',')}}}`),
        (e: unknown) => {
          const code = e instanceof DupnError ? e.code : 'E_INTERNAL';
          answer(code === 'E_INPUT' || code === 'E_TASK' ? 400 : code === 'E_OVERLOADED' ? 429 : code === 'E_TIMEOUT' ? 504 : 500, { error: { code, message: (e as Error).message } });
        },
      );
    });
  });
}

async function main(): Promise<void> {
  const [modelPath, itemsPath] = process.argv.slice(2);
  if (modelPath === undefined) throw new Error('usage: serve-embedded.js model.safetensors [items.csv]');
  const model = await Model.load(modelPath);
  const catalogue = itemsPath === undefined ? undefined : await ItemCatalogue.load(itemsPath);
  const batcher = new Batcher({ model, timeoutMs: 1000 });
  const app = await fastifyApp(batcher, await fileVersion(modelPath), catalogue);
  console.log(`fastify: ${await app.listen({ port: 8081, host: '127.0.0.1' })}/recs/v1/rank`);
  const plain = httpServer(batcher, catalogue).listen(8082, '127.0.0.1', () => console.log('node:http: http://127.0.0.1:8082/rank'));
  process.once('SIGTERM', () => {
    plain.close();
    void app.close().then(() => batcher.close()).then(() => model.dispose());
  });
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
