// End-to-end test of the edge's embedded GraphiQL in headless Chromium with the
// network closed: every request to an origin other than the edge's is aborted and
// recorded, and the test fails if the page attempted any. It then drives the real
// UI (types into the query editor, clicks the execute button) against the real
// edge: a query, a createWorkflow mutation, and the query again. A second test
// uses the page's bearer key field against an edge that requires
// authentication (AUTH_EDGE_URL, with one of its API keys in AUTH_KEY: role
// admin, tenant "*").
//
//   EDGE_URL=http://127.0.0.1:PORT AUTH_EDGE_URL=http://127.0.0.1:PORT2 AUTH_KEY=... node --test graphiql.test.mjs
//
// (run.sh starts the circuit-breakers itself when these are unset; without
// AUTH_EDGE_URL the second test is skipped.) Optional env: CHROMIUM (default
// /usr/bin/chromium), SCREENSHOT (default /tmp/graphiql-e2e.png), SCREENSHOT_AUTH
// (default /tmp/graphiql-e2e-auth.png).
// Browsers are never downloaded: playwright-core drives the system Chromium.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { chromium } from 'playwright-core';

const EDGE_URL = (process.env.EDGE_URL || '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.SCREENSHOT || '/tmp/graphiql-e2e.png';
const AUTH_EDGE_URL = (process.env.AUTH_EDGE_URL || '').replace(/\/+$/, '');
const AUTH_KEY = process.env.AUTH_KEY || '';
const SCREENSHOT_AUTH = process.env.SCREENSHOT_AUTH || '/tmp/graphiql-e2e-auth.png';
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
// The page's own field for the bearer key, found by its accessible label.
const KEY_LABEL = 'Bearer key (API key or JWT)';
const KEY_STORAGE = 'cb.bearer'; // its sessionStorage item

if (!EDGE_URL) {
  throw new Error('EDGE_URL is not set (e.g. EDGE_URL=http://127.0.0.1:4000); run.sh sets it');
}
const edge = new URL(EDGE_URL);
const authEdge = AUTH_EDGE_URL ? new URL(AUTH_EDGE_URL) : null;
const edgeHosts = [edge, authEdge].filter(Boolean).map((u) => u.host);

/** Same host and port as an edge under test (http/ws alike); data:/blob:/about: never hit the network. */
function isEdge(u) {
  const url = typeof u === 'string' ? new URL(u) : u;
  if (['data:', 'blob:', 'about:'].includes(url.protocol)) return true;
  return edgeHosts.includes(url.host);
}

let browser;
let context;
const offEdge = []; // every request the page tried outside the edge (aborted)
const seen = []; // every request the page made
const pageErrors = [];
const cspViolations = []; // reported by the pages (securitypolicyviolation events)

/** A fresh browser context (its own storage) with the network closed but for the edges. */
async function newContext() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  ctx.setDefaultTimeout(STEP_TIMEOUT);
  ctx.on('request', (r) => seen.push(`${r.method()} ${r.url()}`));
  await ctx.route((url) => !isEdge(url), (route) => {
    const r = route.request();
    offEdge.push(`${r.method()} ${r.url()} (${r.resourceType()})`);
    return route.abort('internetdisconnected');
  });
  await ctx.routeWebSocket((url) => !isEdge(url), (ws) => {
    offEdge.push(`WEBSOCKET ${ws.url()}`);
    return ws.close({ code: 1008, reason: 'network closed by e2e test' });
  });
  // The page's Content-Security-Policy must block nothing the page itself needs.
  await ctx.exposeFunction('__cspViolation', (v) => cspViolations.push(v));
  await ctx.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__cspViolation(`${location.href}: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`),
    );
  });
  return ctx;
}

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
      // Belt and braces: even a request that bypassed the routes in newContext
      // could not resolve any host name but the edges'.
      `--host-resolver-rules=MAP * ~NOTFOUND, ${[...new Set([edge, authEdge].filter(Boolean).map((u) => `EXCLUDE ${u.hostname}`))].join(', ')}`,
    ],
  });
  context = await newContext();
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

/** Opens path on base (default the open edge) in ctx and waits for GraphiQL to mount. */
async function openGraphiQL(path, { base = EDGE_URL, ctx = context } = {}) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${path}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[browser console ${path}] ${m.text()}`);
  });
  const resp = await page.goto(base + path, { waitUntil: 'load' });
  assert.equal(resp.status(), 200, `GET ${path}`);
  assert.match(resp.headers()['content-type'] || '', /^text\/html/, `GET ${path} content-type`);
  assert.match(resp.headers()['content-security-policy'] || '', /script-src 'self' 'sha256-/, `GET ${path} CSP`);
  await mounted(page);
  return page;
}

/** Waits for GraphiQL's editor and execute button. */
async function mounted(page) {
  await page.locator(SEL.container).waitFor({ state: 'visible' });
  await page.locator(SEL.queryEditor).waitFor({ state: 'visible' });
  await page.locator(SEL.executeButton).waitFor({ state: 'visible' });
  // The CodeMirror instance is what GraphiQL reads the query from.
  await page.waitForFunction((sel) => !!document.querySelector(sel)?.CodeMirror, SEL.queryEditor);
}

/** The predicate of a POST /graphql whose body holds text. */
function postOf(text) {
  return (r) =>
    isEdge(r.url()) &&
    new URL(r.url()).pathname === '/graphql' &&
    r.request().method() === 'POST' &&
    (r.request().postData() || '').includes(text);
}

/**
 * Replaces the query editor's text the way a user would (focus, select all, type),
 * clicks the execute button, and returns { body, shown, headers }: the edge's JSON
 * response to that POST (whose status must be status), the result pane's text once
 * it shows that same result, and the POST's request headers. settle waits for
 * GraphiQL's debounced re-parse of the editor before the click: needed when the
 * editor held another kind of operation (say, a subscription restored by a reload),
 * or GraphiQL would pick its transport by the old one.
 */
async function run(page, operation, { status = 200, settle = false } = {}) {
  await page.locator(SEL.queryEditor).click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Backspace');
  // insertText sends the text as one input event: CodeMirror's bracket and quote
  // auto-closing (which fire on key presses) cannot double the braces.
  await page.keyboard.insertText(operation);
  const inEditor = await page.$eval(SEL.queryEditor, (el) => el.CodeMirror.getValue());
  assert.equal(inEditor, operation, 'query editor holds the typed operation');
  if (settle) await page.waitForTimeout(600);

  const responded = page.waitForResponse(postOf(JSON.stringify(operation).slice(1, -1)));
  await page.locator(SEL.executeButton).click();
  const resp = await responded;
  assert.equal(resp.status(), status, 'POST /graphql status');
  const body = await resp.json();
  const headers = await resp.request().allHeaders();

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
  return { body, shown, headers };
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
    assert.deepEqual(cspViolations, [], `Content-Security-Policy violations:\n${cspViolations.join('\n')}`);
  });
});

test(
  "GraphiQL's bearer key field against an edge that requires authentication",
  { timeout: SUITE_TIMEOUT, skip: AUTH_EDGE_URL && AUTH_KEY ? false : 'AUTH_EDGE_URL and AUTH_KEY are not set (run.sh sets them)' },
  async (t) => {
    const ctx = await newContext(); // its own sessionStorage and localStorage
    let page;
    let field;
    const id = `e2e-auth-${Date.now().toString(36)}`;
    const query = '{ workflows { id } }';
    /** What the page keeps: the key's sessionStorage item, and every localStorage value and cookie. */
    const storage = async () => ({
      session: await page.evaluate((k) => sessionStorage.getItem(k), KEY_STORAGE),
      local: await page.evaluate(() => Object.values({ ...localStorage }).join('\n')),
      cookies: JSON.stringify(await ctx.cookies()) + (await page.evaluate(() => document.cookie)),
    });
    /** Asserts that the edge refused query for lack of credentials, and that GraphiQL shows why. */
    const refused = async () => {
      const { body, shown, headers } = await run(page, query, { status: 401 });
      assert.equal(headers.authorization, undefined, 'no Authorization header without a key');
      assert.equal(body.data, undefined, JSON.stringify(body));
      assert.equal(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(body));
      assert.match(shown, /UNAUTHENTICATED/);
    };
    /** Asserts that query ran with the key and shows its data. */
    const answered = async (opts) => {
      const { body, shown, headers } = await run(page, query, opts);
      assert.equal(headers.authorization, `Bearer ${AUTH_KEY}`);
      assert.equal(body.errors, undefined, JSON.stringify(body.errors));
      assert.ok(Array.isArray(body.data?.workflows), JSON.stringify(body));
      assert.match(shown, /"workflows"/);
    };

    try {
      await t.test('the page loads without a key; its field is an empty password input', async () => {
        page = await openGraphiQL('/', { base: AUTH_EDGE_URL, ctx });
        field = page.getByLabel(KEY_LABEL, { exact: true });
        assert.equal(await field.getAttribute('type'), 'password');
        assert.equal(await field.inputValue(), '');
        assert.ok(await page.getByRole('button', { name: /clear/i }).isVisible(), 'a clear button');
        assert.equal((await storage()).session, null);
      });

      await t.test('a query without the key shows UNAUTHENTICATED', refused);

      await t.test('with the key typed into the field, the schema is fetched again and a query returns data', async () => {
        await field.click();
        await page.keyboard.insertText(AUTH_KEY);
        // Enter (or leaving the field) hands GraphiQL a new fetcher: it introspects again, now with the key.
        const introspected = page.waitForResponse(postOf('IntrospectionQuery'));
        await field.press('Enter');
        const intro = await introspected;
        assert.equal(intro.status(), 200, 'introspection with the key');
        assert.equal((await intro.request().allHeaders()).authorization, `Bearer ${AUTH_KEY}`);
        await answered();
      });

      await t.test('a mutation with the key creates a workflow', async () => {
        const { body, headers } = await run(
          page,
          `mutation { createWorkflow(input:{id:"${id}", name:"E2E auth", places:["a","b"], initialPlace:"a", ` +
            `transitions:[{id:"go", fromPlaces:["a"], toPlace:"b"}]}) { id } }`,
        );
        assert.equal(headers.authorization, `Bearer ${AUTH_KEY}`);
        assert.equal(body.errors, undefined, JSON.stringify(body.errors));
        assert.equal(body.data?.createWorkflow?.id, id);
      });

      await t.test('the key is in sessionStorage, not in localStorage or a cookie', async () => {
        const s = await storage();
        assert.equal(s.session, AUTH_KEY);
        assert.ok(!s.local.includes(AUTH_KEY), 'localStorage holds the key');
        assert.ok(!s.cookies.includes(AUTH_KEY), 'a cookie holds the key');
      });

      await t.test('a subscription sends the key in connection_init and shows the workflow_created event', async () => {
        const op = `subscription Events { workflowEvents(workflowId:"${id}", afterSequence:"1") { eventType workflowId } }`;
        await page.locator(SEL.queryEditor).click();
        await page.keyboard.press('ControlOrMeta+A');
        await page.keyboard.press('Backspace');
        await page.keyboard.insertText(op);
        await page.waitForTimeout(600); // GraphiQL's debounced re-parse, see the first test
        const sent = [];
        const socket = new Promise((resolve) => {
          const opened = (ws) => {
            if (!isEdge(ws.url())) return;
            page.off('websocket', opened);
            ws.on('framesent', (f) => sent.push(String(f.payload)));
            resolve(ws);
          };
          page.on('websocket', opened);
        });
        await page.locator(SEL.executeButton).click();
        await socket;
        await page.waitForFunction(
          ({ sel, id }) => {
            const text = document.querySelector(sel)?.CodeMirror?.getValue() ?? '';
            return text.includes('"workflow_created"') && text.includes(id);
          },
          { sel: SEL.resultEditor, id },
        );
        const init = sent.map((p) => JSON.parse(p)).find((m) => m.type === 'connection_init');
        assert.ok(init, `connection_init among the frames sent:\n${sent.join('\n')}`);
        assert.equal(init.payload?.authorization, `Bearer ${AUTH_KEY}`);
        await page.locator(SEL.executeButton).click(); // stop the subscription
      });

      await t.test('a reload keeps the key (sessionStorage) and queries still return data', async () => {
        await page.reload({ waitUntil: 'load' });
        await mounted(page);
        field = page.getByLabel(KEY_LABEL, { exact: true });
        assert.equal(await field.inputValue(), AUTH_KEY);
        await answered({ settle: true }); // GraphiQL restored the subscription into the editor
        await writeFile(SCREENSHOT_AUTH, await page.screenshot());
        console.log(`screenshot: ${SCREENSHOT_AUTH}`);
      });

      await t.test('Clear removes the key from the field and sessionStorage; the next query is refused', async () => {
        await page.getByRole('button', { name: /clear/i }).click();
        assert.equal(await field.inputValue(), '');
        assert.equal((await storage()).session, null);
        await refused();
      });

      await t.test('no request left the loopback edges; no page errors or CSP violations', () => {
        assert.deepEqual(offEdge, [], `requests outside the edges were attempted:\n${offEdge.join('\n')}`);
        assert.deepEqual(pageErrors, [], `uncaught errors in the page:\n${pageErrors.join('\n')}`);
        assert.deepEqual(cspViolations, [], `Content-Security-Policy violations:\n${cspViolations.join('\n')}`);
      });
    } finally {
      await ctx.close();
    }
  },
);
