// graphql-sse client (distinct connections mode) against edge/transport.SSE.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, NetworkError } from 'graphql-sse';
import { startServer, sourceState, eventually, uniqueTag } from './server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

function client() {
  return createClient({ url: server.url, retryAttempts: 0 });
}

async function collect(c, payload) {
  const results = [];
  for await (const r of c.iterate(payload)) results.push(r);
  return results;
}

test('subscription ticks in order, then completes', async () => {
  const c = client();
  try {
    const tag = uniqueTag('sse-ticks');
    const results = await collect(c, { query: 'subscription($tag: String) { ticks(n: 5, tag: $tag) }', variables: { tag } });
    assert.deepEqual(results, [1, 2, 3, 4, 5].map((n) => ({ data: { ticks: n } })));
    assert.equal(await sourceState(server.url, tag), 'FINISHED');
  } finally {
    c.dispose();
  }
});

test('query gives one result', async () => {
  const c = client();
  try {
    assert.deepEqual(await collect(c, { query: '{ hello }' }), [{ data: { hello: 'world' } }]);
  } finally {
    c.dispose();
  }
});

test('validation error is streamed as a result', async () => {
  const c = client();
  try {
    const results = await collect(c, { query: 'subscription { nope }' });
    assert.equal(results.length, 1);
    assert.equal(results[0].data, undefined);
    assert.equal(results[0].errors[0].message, 'Cannot query field "nope" on type "Subscription".');
  } finally {
    c.dispose();
  }
});

test('parse error is rejected with 400', async () => {
  const c = client();
  try {
    await assert.rejects(collect(c, { query: 'subscription {' }), (err) => {
      assert.ok(err instanceof NetworkError, `want NetworkError, got ${err}`);
      assert.equal(err.response.status, 400);
      return true;
    });
  } finally {
    c.dispose();
  }
});

test('stopping early cancels the source', async () => {
  const c = client();
  try {
    const tag = uniqueTag('sse-stop');
    const seen = [];
    for await (const r of c.iterate({ query: `subscription { ticks(n: -1, everyMs: 2, tag: "${tag}") }` })) {
      seen.push(r.data.ticks);
      if (seen.length === 3) break; // aborts the request
    }
    assert.deepEqual(seen, [1, 2, 3]);
    await eventually('source cancelled', async () => (await sourceState(server.url, tag)) === 'CANCELLED');
  } finally {
    c.dispose();
  }
});

test('raw stream has the graphql-sse wire format', async () => {
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query: 'subscription { ticks(n: 2) }' }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  assert.equal(
    await res.text(),
    ':\n\nevent: next\ndata: {"data":{"ticks":1}}\n\nevent: next\ndata: {"data":{"ticks":2}}\n\nevent: complete\ndata:\n\n',
  );
});

test('GET with query parameters streams too', async () => {
  const params = new URLSearchParams({ query: 'subscription($n: Int!) { ticks(n: $n) }', variables: JSON.stringify({ n: 1 }) });
  const res = await fetch(`${server.url}?${params}`, { headers: { accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), ':\n\nevent: next\ndata: {"data":{"ticks":1}}\n\nevent: complete\ndata:\n\n');
});
