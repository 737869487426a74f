// Subscriptions against the real system, from outside: graphql-ws (over
// WebSocket) and graphql-sse clients subscribe through the edge, mutations
// are made over HTTP, and the tests assert the exact events in order, and
// that resuming after an event's sequence yields exactly the events after it.
// GRAPHQL_URL is the edge's GraphQL URL (http://host:port/graphql).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createClient as createWS } from 'graphql-ws';
import { createClient as createSSE } from 'graphql-sse';
import WebSocket from 'ws';

const url = process.env.GRAPHQL_URL;
if (!url) throw new Error('GRAPHQL_URL is required');
const wsURL = url.replace(/^http/, 'ws');
const run = Date.now().toString(36);

async function gql(query, variables) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  return body.data;
}

// subscribe returns a reader of a subscription's results: next() resolves
// with the next result's data (or rejects on an error or after 15 s).
function subscribe(client, payload) {
  const queue = [], waiting = [];
  let failure = null;
  const push = (item) => { const w = waiting.shift(); if (w) w(item); else queue.push(item); };
  const dispose = client.subscribe(payload, {
    next: (r) => push(r.errors ? { error: new Error(JSON.stringify(r.errors)) } : { data: r.data }),
    error: (e) => push({ error: e instanceof Error ? e : new Error(JSON.stringify(e)) }),
    complete: () => push({ error: new Error('completed') }),
  });
  const next = () => {
    const item = queue.shift();
    const got = item ? Promise.resolve(item) : new Promise((resolve) => waiting.push(resolve));
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no result within 15 s')), 15000).unref());
    return Promise.race([got, timeout]).then((it) => { if (it.error) throw it.error; return it.data; });
  };
  return { next, dispose };
}

// take reads n results and ends the subscription.
async function take(client, payload, n) {
  const sub = subscribe(client, payload);
  try {
    const out = [];
    while (out.length < n) out.push(await sub.next());
    return out;
  } finally { sub.dispose(); }
}

async function newWorkflow(name) {
  const id = `${name}_${run}`;
  await gql(`mutation($id:String!){ createWorkflow(input:{id:$id, name:"e2e", places:["draft","review","done"], initialPlace:"draft",
    transitions:[{id:"submit", fromPlaces:["draft"], toPlace:"review"},{id:"approve", fromPlaces:["review"], toPlace:"done"}]}){ id } }`, { id });
  return id;
}

let ws, sse;
before(() => {
  ws = createWS({ url: wsURL, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });
  sse = createSSE({ url, retryAttempts: 0 });
});
after(async () => { await ws?.dispose(); sse?.dispose(); });

const eventsQuery = `subscription($wf:String!, $after:String, $types:[String!]){
  workflowEvents(workflowId:$wf, afterSequence:$after, eventTypes:$types){ eventType tokenId fromPlace toPlace place transitionId natsSequence revision sequence } }`;

test('graphql-ws: workflowEvents streams the exact events in order, and resumes after a sequence', async () => {
  const wf = await newWorkflow('ws');
  // From the start of the stream: the workflow_created event proves the
  // subscription is live before the mutations are made.
  const live = subscribe(ws, { query: eventsQuery, variables: { wf, after: '1' } });
  assert.equal((await live.next()).workflowEvents.eventType, 'workflow_created');
  const tok = (await gql(`mutation($wf:String!){ createToken(input:{workflowId:$wf, triggeredBy:"e2e"}){ id natsSequence } }`, { wf })).createToken;
  const fire = (t) => gql(`mutation($id:String!,$t:String!){ fireTransition(input:{tokenId:$id, transitionId:$t}){ place natsSequence } }`, { id: tok.id, t });
  const s1 = (await fire('submit')).fireTransition;
  const s2 = (await fire('approve')).fireTransition;
  const evs = [];
  for (let i = 0; i < 3; i++) evs.push((await live.next()).workflowEvents);
  live.dispose();
  assert.deepEqual(evs.map((e) => [e.eventType, e.tokenId, e.fromPlace ?? e.place, e.toPlace, e.revision]), [
    ['token_created', tok.id, 'draft', null, 1],
    ['token_transitioned', tok.id, 'draft', 'review', 2],
    ['token_transitioned', tok.id, 'review', 'done', 3],
  ]);
  assert.deepEqual(evs.map((e) => e.natsSequence), [tok.natsSequence, s1.natsSequence, s2.natsSequence]);
  const seqs = evs.map((e) => BigInt(e.sequence));
  assert.ok(seqs[0] < seqs[1] && seqs[1] < seqs[2]);

  // Resume after the first event: exactly the two that followed, replayed from the stream.
  const resumed = (await take(ws, { query: eventsQuery, variables: { wf, after: evs[0].sequence } }, 2)).map((d) => d.workflowEvents);
  assert.deepEqual(resumed.map((e) => e.sequence), [evs[1].sequence, evs[2].sequence]);

  // Filter by type: only transitions.
  const fired = (await take(sse, { query: eventsQuery, variables: { wf, after: '1', types: ['token_transitioned'] } }, 2)).map((d) => d.workflowEvents);
  assert.deepEqual(fired.map((e) => e.transitionId), ['submit', 'approve']);
});

test('graphql-sse: tokenUpdates streams the token each time it changes', async () => {
  const wf = await newWorkflow('sse');
  const tok = (await gql(`mutation($wf:String!){ createWorkflowInstance(input:{workflowId:$wf, initialData:{n:1}}){ id } }`, { wf })).createWorkflowInstance;
  const updates = subscribe(sse, { query: `subscription($id:String!){ tokenUpdates(tokenId:$id){ id place revision data } }`, variables: { id: tok.id } });
  const got = [(await updates.next()).tokenUpdates]; // the current state: the subscription is live
  await gql(`mutation($id:String!){ fireTransition(input:{tokenId:$id, transitionId:"submit", data:{n:2}}){ place } }`, { id: tok.id });
  await gql(`mutation($id:String!){ updateToken(input:{tokenId:$id, data:{n:3}}){ revision } }`, { id: tok.id });
  got.push((await updates.next()).tokenUpdates, (await updates.next()).tokenUpdates);
  updates.dispose();
  assert.deepEqual(got.map((t) => [t.place, t.revision, t.data.n]), [['draft', 1, 1], ['review', 2, 2], ['review', 3, 3]]);
});

test('graphql-sse: workflowEvents resumes after a sequence', async () => {
  const wf = await newWorkflow('sseresume');
  const tok = (await gql(`mutation($wf:String!){ createToken(input:{workflowId:$wf}){ id } }`, { wf })).createToken;
  await gql(`mutation($id:String!){ fireTransition(input:{tokenId:$id, transitionId:"submit"}){ place } }`, { id: tok.id });
  const all = (await take(sse, { query: eventsQuery, variables: { wf, after: '1' } }, 3)).map((d) => d.workflowEvents);
  const rest = (await take(sse, { query: eventsQuery, variables: { wf, after: all[0].sequence } }, 2)).map((d) => d.workflowEvents);
  assert.deepEqual(rest.map((e) => e.sequence), [all[1].sequence, all[2].sequence]);
});

test('an unknown token is a clear error', async () => {
  await assert.rejects(take(ws, { query: `subscription{ tokenUpdates(tokenId:"123e4567-e89b-12d3-a456-426614174000"){ id } }` }, 1), /Token not found/);
});

const placeQuery = `subscription($wf:String!, $place:String!, $after:String){
  placeEvents(workflowId:$wf, placeId:$place, afterSequence:$after){ eventType tokenId place fromPlace toPlace transitionId triggeredBy revision sequence } }`;

// Two tokens: one enters review and leaves it, one enters and stays. The
// events of "review" are exactly its two entries and one exit, in order.
async function placeTraffic(wf) {
  const mk = async () => (await gql(`mutation($wf:String!){ createToken(input:{workflowId:$wf}){ id } }`, { wf })).createToken.id;
  const fire = (id, t) => gql(`mutation($id:String!,$t:String!){ fireTransition(input:{tokenId:$id, transitionId:$t, triggeredBy:"e2e"}){ place } }`, { id, t });
  const a = await mk(), b = await mk();
  await fire(a, 'submit');
  await fire(b, 'submit');
  await fire(a, 'approve');
  return [a, b];
}

const reviewEvents = (a, b) => [
  ['token_transitioned', a, 'draft', 'review'],
  ['token_transitioned', b, 'draft', 'review'],
  ['token_transitioned', a, 'review', 'done'],
];
const shape = (e) => [e.eventType, e.tokenId, e.fromPlace, e.toPlace];

for (const [name, client] of [['graphql-ws', () => ws], ['graphql-sse', () => sse]]) {
  test(`${name}: placeEvents streams live the events that enter or leave a place`, async () => {
    const wf = await newWorkflow(`place_${name.replace('-', '')}`);
    // Subscribed after the workflow's last event, so nothing is lost while
    // the subscription starts; a probe token entering review proves it live.
    const last = (await gql(`query($wf:String!){ events(workflowId:$wf){ sequence } }`, { wf })).events.at(-1).sequence;
    const review = subscribe(client(), { query: placeQuery, variables: { wf, place: 'review', after: last } });
    try {
      const probe = (await gql(`mutation($wf:String!){ createToken(input:{workflowId:$wf}){ id } }`, { wf })).createToken.id;
      await gql(`mutation($id:String!){ fireTransition(input:{tokenId:$id, transitionId:"submit"}){ place } }`, { id: probe });
      assert.equal((await review.next()).placeEvents.tokenId, probe);
      const [a, b] = await placeTraffic(wf);
      const got = [];
      for (let i = 0; i < 3; i++) got.push((await review.next()).placeEvents);
      assert.deepEqual(got.map(shape), reviewEvents(a, b));
      assert.ok(got.every((e) => e.triggeredBy === 'e2e' && e.place === null));
    } finally { review.dispose(); }
  });

  test(`${name}: placeEvents replays a place's stored events after a sequence`, async () => {
    const wf = await newWorkflow(`placereplay_${name.replace('-', '')}`);
    const [a, b] = await placeTraffic(wf);
    const all = (await take(client(), { query: placeQuery, variables: { wf, place: 'review', after: '1' } }, 3)).map((d) => d.placeEvents);
    assert.deepEqual(all.map(shape), reviewEvents(a, b));
    const rest = (await take(client(), { query: placeQuery, variables: { wf, place: 'review', after: all[0].sequence } }, 2)).map((d) => d.placeEvents);
    assert.deepEqual(rest.map((e) => e.sequence), [all[1].sequence, all[2].sequence]);
  });
}

test('placeEvents on an unknown workflow is a clear error', async () => {
  await assert.rejects(take(ws, { query: placeQuery, variables: { wf: `nope_${run}`, place: 'draft' } }, 1), /not found/i);
});
