// Introspection round-trip: the schema built from our introspection result
// must print exactly like the schema built from the SDL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { buildClientSchema, buildSchema, getIntrospectionQuery, printSchema } from 'graphql';
import { startServer } from './server.mjs';

// GRAPHQL_SDL names the SDL file of the server under test (with
// GRAPHQL_URL); by default it is the audit server's test schema.
const sdlPath = process.env.GRAPHQL_SDL ?? new URL('../internal/testschema/schema.graphql', import.meta.url);
const sdl = readFileSync(sdlPath, 'utf8');
let server;
before(async () => { server = await startServer(); });
after(() => server?.stop());

test('introspection round-trips the SDL', async () => {
  const query = getIntrospectionQuery({
    descriptions: true, specifiedByUrl: true, directiveIsRepeatable: true,
    schemaDescription: true, inputValueDeprecation: true, oneOf: true,
  });
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  const printed = printSchema(buildClientSchema(body.data));
  assert.equal(printed, printSchema(buildSchema(sdl)));
});
