// graphql-ws client (graphql-transport-ws) against edge/transport.WebSocket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer, sourceState, eventually, uniqueTag } from './server.mjs';

let server, wsURL;
before(async () => {
  server = await startServer();
  wsURL = server.url.replace(/^http/, 'ws');
});
after(() => server.stop());

function client(opts = {}) {
  return createClient({ url: wsURL, webSocketImpl: WebSocket, retryAttempts: 0, lazy: true, ...opts });
}

async function collect(c, payload) {
  const results = [];
  for await (const r of c.iterate(payload)) results.push(r);
  return results;
}

test('subscription ticks in order, then completes', async () => {
  const c = client();
  try {
    const tag = uniqueTag('ws-ticks');
    const results = await collect(c, { query: 'subscription($tag: String) { ticks(n: 5, tag: $tag) }', variables: { tag } });
    assert.deepEqual(results, [1, 2, 3, 4, 5].map((n) => ({ data: { ticks: n } })));
    assert.equal(await sourceState(server.url, tag), 'FINISHED');
  } finally {
    await c.dispose();
  }
});

test('two subscriptions share one socket', async () => {
  const c = client();
  try {
    const [a, b] = await Promise.all([
      collect(c, { query: 'subscription { ticks(n: 3, everyMs: 1) }' }),
      collect(c, { query: 'subscription { ticks(n: 4) }' }),
    ]);
    assert.deepEqual(a.map((r) => r.data.ticks), [1, 2, 3]);
    assert.deepEqual(b.map((r) => r.data.ticks), [1, 2, 3, 4]);
  } finally {
    await c.dispose();
  }
});

test('query and mutation give one result each', async () => {
  const c = client();
  try {
    assert.deepEqual(await collect(c, { query: '{ hello }' }), [{ data: { hello: 'world' } }]);
    const [m] = await collect(c, { query: 'mutation { bump }' });
    assert.equal(typeof m.data.bump, 'number');
  } finally {
    await c.dispose();
  }
});

test('validation error arrives as an error message', async () => {
  const c = client();
  try {
    await assert.rejects(collect(c, { query: 'subscription { nope }' }), (errs) => {
      assert.ok(Array.isArray(errs), `want an array of GraphQL errors, got ${errs}`);
      assert.equal(errs[0].message, 'Cannot query field "nope" on type "Subscription".');
      assert.equal(errs[0].extensions.code, 'GRAPHQL_VALIDATION_FAILED');
      return true;
    });
  } finally {
    await c.dispose();
  }
});

test('stopping early cancels the source', async () => {
  const c = client();
  try {
    const tag = uniqueTag('ws-stop');
    const seen = [];
    for await (const r of c.iterate({ query: `subscription { ticks(n: -1, everyMs: 2, tag: "${tag}") }` })) {
      seen.push(r.data.ticks);
      if (seen.length === 3) break; // sends complete
    }
    assert.deepEqual(seen, [1, 2, 3]);
    await eventually('source cancelled', async () => (await sourceState(server.url, tag)) === 'CANCELLED');
  } finally {
    await c.dispose();
  }
});

test('closing the socket cancels every source', async () => {
  const c = client();
  const tags = [uniqueTag('ws-close'), uniqueTag('ws-close')];
  const iters = tags.map((tag) => c.iterate({ query: `subscription { ticks(n: -1, everyMs: 2, tag: "${tag}") }` }));
  for (const it of iters) assert.deepEqual((await it.next()).value, { data: { ticks: 1 } });
  await c.dispose(); // closes the socket without completing
  for (const tag of tags) {
    await eventually(`source ${tag} cancelled`, async () => (await sourceState(server.url, tag)) === 'CANCELLED');
  }
});

test('a refused connection_init closes with 4403', async () => {
  const c = client({ connectionParams: { reject: true } });
  try {
    await assert.rejects(collect(c, { query: '{ hello }' }), (ev) => {
      assert.equal(ev.code, 4403);
      assert.equal(ev.reason, 'Forbidden');
      return true;
    });
  } finally {
    await c.dispose();
  }
});

test('a socket without the subprotocol is closed with 4406', async () => {
  const ws = new WebSocket(wsURL);
  const [code, reason] = await new Promise((resolve, reject) => {
    ws.on('close', (code, reason) => resolve([code, reason.toString()]));
    ws.on('error', reject);
  });
  assert.equal(code, 4406);
  assert.equal(reason, 'Subprotocol not acceptable');
});
