// End-to-end test of the edge's embedded GraphiQL in headless Chromium with the
// network closed: every request to an origin other than the edge's is aborted and
// recorded, and the test fails if the page attempted any. It then drives the real
// UI (types into the query editor, clicks the execute button) against the real
// edge: a query, a createWorkflow mutation, and the query again.
//
//   EDGE_URL=http://127.0.0.1:PORT node --test graphiql.test.mjs
//
// (run.sh starts a circuit-breaker itself when EDGE_URL is unset.) Optional env:
// CHROMIUM (default /usr/bin/chromium), SCREENSHOT (default /tmp/graphiql-e2e.png).
// Browsers are never downloaded: playwright-core drives the system Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const EDGE_URL = (process.env.EDGE_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT || '/tmp/graphiql-e2e.png';
const STEP_TIMEOUT = 15_000; // any single wait (selector, response)
const SUITE_TIMEOUT = 55_000; // the whole file must stay under a minute

// Selectors of graphiql@4.1.2 (CodeMirror 5 editors).
const SEL = {
  container: '.graphiql-container',
  queryEditor: '.graphiql-query-editor .CodeMirror',
  executeButton: 'button.graphiql-execute-button',
  result: '.graphiql-response .result-window',
  resultEditor: '.graphiql-response .result-window .CodeMirror',
};

if (!EDGE_URL) {
  throw new Error('EDGE_URL is not set (e.g. EDGE_URL=http://127.0.0.1:4000); run.sh sets it');
}
const edge = new URL(EDGE_URL);

/** Same host and port as the edge (http/ws alike); data:/blob:/about: never hit the network. */
function isEdge(u) {
  const url = typeof u === 'string' ? new URL(u) : u;
  if (['data:', 'blob:', 'about:'].includes(url.protocol)) return true;
  return url.host === edge.host;
}

let browser;
let context;
const offEdge = []; // every request the page tried outside the edge (aborted)
const seen = []; // every request the page made
const pageErrors = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: STEP_TIMEOUT,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Belt and braces: even a request that bypassed the route below could not
      // resolve any host name but the edge's.
      `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${edge.hostname}`,
    ],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.on('request', (r) => seen.push(`${r.method()} ${r.url()}`));
  await context.route((url) => !isEdge(url), (route) => {
    const r = route.request();
    offEdge.push(`${r.method()} ${r.url()} (${r.resourceType()})`);
    return route.abort('internetdisconnected');
  });
  await context.routeWebSocket((url) => !isEdge(url), (ws) => {
    offEdge.push(`WEBSOCKET ${ws.url()}`);
    return ws.close({ code: 1008, reason: 'network closed by e2e test' });
  });
});

after(async () => {
  // Bounded: a page stuck in some call must not keep the process (and run.sh) alive.
  let timer;
  await Promise.race([
    browser?.close(),
    new Promise((resolve) => {
      timer = setTimeout(resolve, 5_000);
    }),
  ]);
  clearTimeout(timer);
});

/** Opens url, waits for GraphiQL to mount and for the schema to be fetched. */
async function openGraphiQL(path) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${path}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[browser console ${path}] ${m.text()}`);
  });
  const resp = await page.goto(EDGE_URL + path, { waitUntil: 'load' });
  assert.equal(resp.status(), 200, `GET ${path}`);
  assert.match(resp.headers()['content-type'] || '', /^text\/html/, `GET ${path} content-type`);
  await page.locator(SEL.container).waitFor({ state: 'visible' });
  await page.locator(SEL.queryEditor).waitFor({ state: 'visible' });
  await page.locator(SEL.executeButton).waitFor({ state: 'visible' });
  // The CodeMirror instance is what GraphiQL reads the query from.
  await page.waitForFunction((sel) => !!document.querySelector(sel)?.CodeMirror, SEL.queryEditor);
  return page;
}

/**
 * Replaces the query editor's text the way a user would (focus, select all, type),
 * clicks the execute button, and returns { body, shown }: the edge's JSON response
 * to that POST, and the result pane's text once it shows that same result.
 */
async function run(page, operation) {
  await page.locator(SEL.queryEditor).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Backspace');
  // insertText sends the text as one input event: CodeMirror's bracket and quote
  // auto-closing (which fire on key presses) cannot double the braces.
  await page.keyboard.insertText(operation);
  const inEditor = await page.$eval(SEL.queryEditor, (el) => el.CodeMirror.getValue());
  assert.equal(inEditor, operation, 'query editor holds the typed operation');

  const responded = page.waitForResponse(
    (r) =>
      isEdge(r.url()) &&
      new URL(r.url()).pathname === '/graphql' &&
      r.request().method() === 'POST' &&
      (r.request().postData() || '').includes(JSON.stringify(operation).slice(1, -1)),
  );
  await page.locator(SEL.executeButton).click();
  const resp = await responded;
  assert.equal(resp.status(), 200, 'POST /graphql status');
  const body = await resp.json();

  // Wait until the result pane holds exactly what the edge answered.
  await page.waitForFunction(
    ({ sel, want }) => {
      const cm = document.querySelector(sel)?.CodeMirror;
      if (!cm) return false;
      try {
        return JSON.stringify(JSON.parse(cm.getValue())) === want;
      } catch {
        return false;
      }
    },
    { sel: SEL.resultEditor, want: JSON.stringify(body) },
  );
  const shown = await page.locator(SEL.result).innerText();
  return { body, shown };
}

test('GraphiQL loads offline and runs a query and a mutation against the edge', { timeout: SUITE_TIMEOUT }, async (t) => {
  const id = `e2e-${Date.now().toString(36)}`; // unique, so reruns on a kept server pass
  let page;

  await t.test('GET / renders GraphiQL from embedded assets only', async () => {
    page = await openGraphiQL('/');
    assert.equal(await page.title(), 'Circuit Breaker');
    const text = await page.locator('#graphiql').innerText();
    assert.doesNotMatch(text, /Loading GraphiQL…/, 'React replaced the placeholder');
  });

  await t.test('query { workflows { id name } } shows "workflows"', async () => {
    const { body, shown } = await run(page, '{ workflows { id name } }');
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    assert.ok(Array.isArray(body.data?.workflows), JSON.stringify(body));
    assert.match(shown, /"workflows"/);
  });

  await t.test(`mutation createWorkflow shows "${id}"`, async () => {
    const { body, shown } = await run(
      page,
      `mutation { createWorkflow(input:{id:"${id}", name:"E2E", places:["a","b"], initialPlace:"a", ` +
        `transitions:[{id:"go", fromPlaces:["a"], toPlace:"b"}]}) { id } }`,
    );
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    assert.equal(body.data?.createWorkflow?.id, id);
    assert.match(shown, /"createWorkflow"/);
    assert.ok(shown.includes(`"${id}"`), `result pane shows "${id}":\n${shown}`);
  });

  await t.test('the created workflow is queried back', async () => {
    const { body, shown } = await run(page, '{ workflows { id name } }');
    assert.equal(body.errors, undefined, JSON.stringify(body.errors));
    assert.deepEqual(
      body.data.workflows.find((w) => w.id === id),
      { id, name: 'E2E' },
      JSON.stringify(body),
    );
    assert.match(shown, /"workflows"/);
    assert.ok(shown.includes(`"${id}"`), `result pane shows "${id}":\n${shown}`);
    assert.ok(shown.includes('"E2E"'), `result pane shows "E2E":\n${shown}`);
    // Written here, not via screenshot({ path }), which mkdir -p's the directory.
    await writeFile(SCREENSHOT, await page.screenshot());
    console.log(`screenshot: ${SCREENSHOT}`);
  });

  await t.test('a subscription runs over the WebSocket and shows the workflow_created event', async () => {
    const op = `subscription Events { workflowEvents(workflowId:"${id}", afterSequence:"1") { eventType workflowId } }`;
    await page.locator(SEL.queryEditor).click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.insertText(op);
    // GraphiQL picks the WebSocket only once its editor has re-parsed the
    // document (debounced); until then it would POST the operation.
    await page.waitForTimeout(600);
    const socket = page.waitForEvent('websocket', (ws) => isEdge(ws.url()));
    await page.locator(SEL.executeButton).click();
    assert.ok(new URL((await socket).url()).pathname === '/graphql', 'GraphiQL opened a WebSocket to /graphql');
    await page.waitForFunction(
      ({ sel, id }) => {
        const text = document.querySelector(sel)?.CodeMirror?.getValue() ?? '';
        return text.includes('"workflow_created"') && text.includes(id);
      },
      { sel: SEL.resultEditor, id },
    );
    await page.locator(SEL.executeButton).click(); // stop the subscription
  });

  await t.test('GET /graphql with Accept: text/html also serves GraphiQL', async () => {
    // A browser navigation sends Accept: text/html,...; the edge answers with the page.
    const p = await openGraphiQL('/graphql');
    assert.equal(await p.title(), 'Circuit Breaker');
    await p.close();
  });

  await t.test('no request left the loopback edge', () => {
    const fromEdge = seen.filter((s) => isEdge(s.split(' ')[1]));
    assert.ok(
      fromEdge.some((s) => /\/graphiql\.min\.js\b/.test(s)) && fromEdge.some((s) => /\/graphiql\.min\.css\b/.test(s)),
      `GraphiQL's assets came from the edge:\n${seen.join('\n')}`,
    );
    assert.deepEqual(offEdge, [], `requests outside ${edge.host} were attempted:\n${offEdge.join('\n')}`);
    assert.deepEqual(pageErrors, [], `uncaught errors in the page:\n${pageErrors.join('\n')}`);
  });
});
