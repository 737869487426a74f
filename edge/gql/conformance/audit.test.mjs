// Runs every graphql-http server audit against the gql test schema and
// fails on anything but "ok" (warnings and notices count as failures).
import { test, before, after } from 'node:test';
import { serverAudits } from 'graphql-http';
import { startServer } from './server.mjs';

let server;
before(async () => { server = await startServer(); });
after(() => server?.stop());

for (const audit of serverAudits({ url: () => server.url, fetchFn: fetch })) {
  test(`${audit.id} ${audit.name}`, async () => {
    const r = await audit.fn();
    if ('response' in r && r.response?.body) await r.response.body.cancel().catch(() => {});
    if (r.status !== 'ok') throw new Error(`${r.status}: ${r.reason}`);
  });
}
