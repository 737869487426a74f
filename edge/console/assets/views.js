// The console's views: the workflow list, and a workflow's page (its net
// with live counts, and a side panel with a place's tokens, one token, or
// the live event feed). Each takes the element to draw into and returns a
// function that stops what it started (subscriptions).

import { query, subscribe } from './api.js';
import { h, fill, time, json } from './dom.js';
import { drawNet } from './net.js';

const PAGE = 25;
const FEED_MAX = 200;
const EVENT_TYPES = ['workflow_created', 'workflow_updated', 'token_created', 'token_transitioned', 'token_updated', 'token_migrated', 'bulk_progress'];

/** Encodes a path segment of a deep link. */
const seg = encodeURIComponent;
export const links = {
  workflow: (wf) => `#/workflows/${seg(wf)}`,
  place: (wf, p) => `#/workflows/${seg(wf)}/places/${seg(p)}`,
  token: (wf, id) => `#/workflows/${seg(wf)}/tokens/${seg(id)}`,
  events: (wf) => `#/workflows/${seg(wf)}/events`,
};

/** An error box with the server's message (and code) as given. */
const problem = (e) => h('p.error', { role: 'alert' }, String(e));

/** Runs fns (functions returning promises) at most n at a time. */
async function pool(n, fns) {
  const queue = [...fns];
  await Promise.all(Array.from({ length: n }, async () => {
    while (queue.length) await queue.shift()();
  }));
}

const ANALYTICS = `query A($id: String!) { workflowAnalytics(workflowId: $id, window: "1h") { coversHistory tokensPerPlace { place count } throughput { transitions windowSeconds } } }`;
const STATS = `query S($id: String!) { workflowStats(workflowId: $id) { tokens tokensPerPlace { place count } transitionsInWindow windowMinutes } }`;

/**
 * A workflow's counts: from its analytics, kept from its events (costs
 * its places, not its tokens), unless they do not cover its whole history
 * (events deleted by retention before they were counted); then from
 * workflowStats, which reads every token. Resolves to
 * {tokens, tokensPerPlace, transitionsInWindow, windowMinutes}.
 */
async function counts(id) {
  const { workflowAnalytics: a } = await query(ANALYTICS, { id });
  if (!a.coversHistory) return (await query(STATS, { id })).workflowStats;
  return {
    tokens: a.tokensPerPlace.reduce((n, pc) => n + pc.count, 0), tokensPerPlace: a.tokensPerPlace,
    transitionsInWindow: a.throughput.transitions, windowMinutes: Math.round(a.throughput.windowSeconds / 60),
  };
}

/** The workflow list: every workflow with its token counts per place and recent transitions. */
export function listView(main, { after = '' } = {}) {
  const body = h('tbody');
  const status = h('p.muted', { role: 'status' }, 'Loading workflows…');
  fill(main, h('h1', {}, 'Workflows'), status,
    h('table.list', {}, h('caption.sr', {}, 'Workflows, their tokens per place and transitions in the last hour'),
      h('thead', {}, h('tr', {}, ['Workflow', 'Version', 'Places', 'Tokens', 'Tokens per place', 'Recent activity'].map((c) => h('th', { scope: 'col' }, c)))),
      body));
  let stopped = false;
  (async () => {
    let wfs;
    try {
      ({ workflows: wfs } = await query(`query L($after: String) { workflows(first: 100, after: $after) { id name description version places } }`, { after: after || null }));
    } catch (e) {
      return fill(status, problem(e));
    }
    fill(status, wfs.length ? `${wfs.length} workflow${wfs.length === 1 ? '' : 's'}${after ? ` after ${after}` : ''}.` : 'No workflows yet: create one with createWorkflow (GraphiQL).');
    if (wfs.length === 100) status.append(' ', h('a', { href: `#/?after=${seg(wfs[99].id)}` }, 'Next page'));
    const rows = wfs.map((w) => {
      const cells = { tokens: h('td.num', {}, '…'), places: h('td.counts', {}, ''), activity: h('td', {}, '') };
      body.append(h('tr', { 'data-workflow': w.id },
        h('th', { scope: 'row' }, h('a', { href: links.workflow(w.id) }, w.name), h('div.muted.small', {}, w.id)),
        h('td.num', {}, `v${w.version}`), h('td.num', {}, w.places.length), cells.tokens, cells.places, cells.activity));
      return async () => {
        if (stopped) return;
        try {
          const st = await counts(w.id);
          cells.tokens.textContent = st.tokens;
          fill(cells.places, st.tokensPerPlace.map((pc) => h('a.chip', { href: links.place(w.id, pc.place) }, `${pc.place} ${pc.count}`)));
          cells.activity.textContent = `${st.transitionsInWindow} transitions in ${st.windowMinutes} min`;
        } catch (e) {
          fill(cells.tokens, problem(e));
        }
      };
    });
    await pool(4, rows);
  })();
  return () => (stopped = true);
}

/** Formats the timer fields (after, at) of a transition when the schema has them ('' otherwise). */
function timerText(t, fields) {
  return fields.filter((f) => t[f] != null && t[f] !== '').map((f) => `${f} ${typeof t[f] === 'object' ? JSON.stringify(t[f]) : t[f]}`).join(', ');
}

/**
 * A workflow's page: the net with live counts and a side panel. route is
 * {id, place?, token?, events?}; extras (a promise) tells which optional
 * fields the server has (timers). Returns {update(route), stop()}.
 */
export function workflowView(main, route, extras) {
  const head = h('div.wf-head');
  const netBox = h('section.net-box', { 'aria-label': 'Net' }, h('p.muted', {}, 'Loading the net…'));
  const side = h('section.side', { 'aria-live': 'polite' });
  const tabs = h('nav.tabs', { 'aria-label': 'Panels' });
  fill(main, head, h('div.wf-body', {}, netBox, h('aside.side-wrap', { 'aria-label': 'Details' }, tabs, side)));
  let schema = null;
  const state = { wf: null, net: null, route, stopPanel: () => {}, feed: [], feedTypes: new Set(EVENT_TYPES), hidden: new Set(), onEvent: null, statsTimer: 0 };

  // Counts come from counts(), then follow the events: created +1,
  // transitioned −1/+1. Events that arrive while a count is being read may
  // or may not be in it, so the count is read again a second later; a
  // kind of change that cannot be applied locally (migration, a new
  // definition) asks for the counts again too.
  let counting = false;
  let starts = 0; // how often the event subscription has (re)started
  let dirty = false;
  const recount = async (asked = counts(route.id)) => {
    counting = true;
    dirty = false;
    try {
      const st = await asked;
      const per = new Map(st.tokensPerPlace.map((pc) => [pc.place, pc.count]));
      for (const p of state.wf.places) state.net.setCount(p, per.get(p) || 0);
      // Counted after the subscription started: from now on the counts follow every event.
      if (starts > 0 && !dirty) netBox.dataset.live = 'true';
      fill(head.querySelector('.wf-stats'), `${st.tokens} tokens · ${st.transitionsInWindow} transitions in the last ${st.windowMinutes} min`);
    } catch (e) {
      fill(head.querySelector('.wf-stats'), problem(e));
    }
    counting = false;
    if (dirty) recountSoon(1000);
  };
  const recountSoon = (ms = 300) => {
    clearTimeout(state.statsTimer);
    state.statsTimer = setTimeout(() => recount(), ms);
  };
  const apply = (e) => {
    if (!state.net) return;
    if (counting) dirty = true;
    const bump = (p, d) => p && state.net.setCount(p, Math.max(0, state.net.count(p) + d));
    if (e.eventType === 'token_created') bump(e.place, 1);
    else if (e.eventType === 'token_transitioned') {
      bump(e.fromPlace, -1);
      bump(e.toPlace, 1);
    } else if (!['token_updated', 'bulk_progress', 'workflow_created'].includes(e.eventType)) recountSoon();
  };

  // The subscription starts once the first counts are shown: starting a
  // workflow's feed on the edge (a JetStream consumer) while the counts
  // are read slows the read. Events committed
  // between the two are caught by one more count once it has started.
  let stopEvents = () => {};
  let stopped = false;
  const listen = () => !stopped && (stopEvents = subscribe(`subscription E($id: String!) { workflowEvents(workflowId: $id) { eventType workflowId tokenId place fromPlace toPlace transitionId timestamp triggeredBy natsSequence sequence } }`, { id: route.id }, {
    next: ({ workflowEvents: e }) => {
      apply(e);
      state.feed.unshift(e);
      state.feed.length = Math.min(state.feed.length, FEED_MAX);
      state.feedTypes.add(e.eventType);
      state.onEvent?.(e);
    },
    error: (e) => head.append(problem(e)),
    // A (re-)connected subscription may have missed events: count again.
    started: () => recountSoon(starts++ === 0 ? 1500 : 300),
  }));

  // The counts are asked for at once, beside the definition: reading them
  // may take longest (when workflowStats has to read every token).
  const wfDoc = (timerFields) => `query W($id: String!) { workflow(id: $id) { id name description version initialPlace places updatedAt
    transitions { id name description fromPlaces toPlace conditions rules { id description condition } ${timerFields.join(' ')} }
    analysis { unreachablePlaces terminalPlaces deadTransitions } searchAttributes { path type } } }`;
  const firstCount = counts(route.id);
  firstCount.catch(() => {});
  (async () => {
    schema = await extras;
    const timerFields = schema.transitionTimers;
    let wf;
    try {
      ({ workflow: wf } = await query(wfDoc(timerFields), { id: route.id }));
    } catch (e) {
      return fill(netBox, problem(e));
    }
    if (!wf) return fill(netBox, problem(`Workflow not found: ${route.id}`));
    state.wf = wf;
    document.title = `${wf.name} · Circuit Breaker console`;
    const a = wf.analysis;
    fill(head, h('h1', {}, wf.name, ' ', h('span.muted', {}, `${wf.id} · v${wf.version}`)),
      wf.description ? h('p', {}, wf.description) : null,
      h('p.wf-stats.muted', { role: 'status' }, 'Counting tokens…'),
      h('p.analysis', {},
        a.deadTransitions.length ? h('span.warn', {}, `Dead transitions: ${a.deadTransitions.join(', ')}. `) : null,
        a.unreachablePlaces.length ? h('span.warn', {}, `Unreachable places: ${a.unreachablePlaces.join(', ')}. `) : null,
        `Terminal places: ${a.terminalPlaces.join(', ') || 'none'}.`));
    state.net = drawNet(wf, { onPlace: (p) => (location.hash = links.place(wf.id, p)), extra: (t) => timerText(t, timerFields) });
    fill(netBox, state.net.el);
    performance.mark('cb:net-drawn');
    await recount(firstCount);
    netBox.dataset.ready = 'true';
    performance.mark('cb:counts-shown');
    listen();
    panel();
  })();

  function panel() {
    if (!state.wf) return;
    state.stopPanel();
    state.onEvent = null;
    const r = state.route;
    state.net.select(r.place);
    const tab = (label, href, on) => h('a', { href, 'aria-current': on ? 'page' : null }, label);
    fill(tabs,
      r.place ? tab(`Place ${r.place}`, links.place(r.id, r.place), true) : null,
      r.token ? tab('Token', links.token(r.id, r.token), true) : null,
      tab('Live events', links.events(r.id), r.events || (!r.place && !r.token)));
    if (r.token) state.stopPanel = tokenPanel(side, state, r.token, schema);
    else if (r.place) state.stopPanel = placePanel(side, state, r.place);
    else state.stopPanel = eventsPanel(side, state);
  }

  return {
    update(r) {
      state.route = r;
      panel();
    },
    stop() {
      stopped = true;
      stopEvents();
      state.stopPanel();
      clearTimeout(state.statsTimer);
    },
  };
}

/** A paged table of the tokens in a place, with a search by data and metadata (findTokens). */
function placePanel(side, state, place) {
  const wf = state.wf;
  const table = h('div');
  const pager = h('div.pager');
  const dataIn = h('input', { id: 'q-data', placeholder: '{"priority": 5}', spellcheck: 'false' });
  const metaIn = h('input', { id: 'q-meta', placeholder: '{"department": "sales"}', spellcheck: 'false' });
  const attrs = wf.searchAttributes.map((a) => `${a.path} (${a.type})`).join(', ');
  const stack = []; // cursors of the pages before
  let cursor = null;
  let search = null;
  const form = h('form.search', { role: 'search', 'aria-label': `Search tokens in ${place}`, onsubmit: (e) => {
    e.preventDefault();
    try {
      const f = { workflowIds: [wf.id], places: [place] };
      if (dataIn.value.trim()) f.data = JSON.parse(dataIn.value);
      if (metaIn.value.trim()) f.metadata = JSON.parse(metaIn.value);
      search = f.data || f.metadata ? f : null;
    } catch (err) {
      return fill(table, problem(`Not JSON: ${err.message}`));
    }
    stack.length = 0;
    load(null);
  } },
  h('label', { for: 'q-data' }, 'data equals'), dataIn,
  h('label', { for: 'q-meta' }, 'metadata equals'), metaIn,
  h('button', { type: 'submit' }, 'Search'),
  h('small.muted', {}, attrs ? `Searchable: ${attrs}` : 'No search attributes declared: search is refused by the server.'));
  fill(side, h('h2', {}, `Tokens in ${place}`), form, table, pager);

  async function load(after) {
    cursor = after;
    fill(table, h('p.muted', {}, 'Loading…'));
    let list;
    try {
      if (search) {
        ({ findTokens: list } = await query(`query F($f: TokenFilter!, $after: String) { findTokens(filter: $f, first: ${PAGE}, after: $after) { id workflowId cursor createdAt updatedAt revision data } }`, { f: search, after }));
      } else {
        ({ tokensInPlace: list } = await query(`query P($id: String!, $place: String!, $after: String) { tokensInPlace(workflowId: $id, placeId: $place, first: ${PAGE}, after: $after) { id cursor createdAt updatedAt revision data } }`, { id: wf.id, place, after }));
      }
    } catch (e) {
      return fill(table, problem(e));
    }
    fill(table, list.length === 0 ? h('p.muted', {}, search ? 'No token matches.' : 'No tokens here.') :
      h('table.tokens', {}, h('caption.sr', {}, `Tokens in ${place}`),
        h('thead', {}, h('tr', {}, ['Token', 'Updated', 'Rev', 'Data'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, list.map((t) => h('tr', { 'data-token': t.id },
          h('td', {}, h('a.mono', { href: links.token(wf.id, t.id), 'aria-label': `token ${t.id}` }, t.id.slice(0, 8))),
          h('td', {}, time(t.updatedAt)), h('td.num', {}, t.revision),
          h('td.mono.small', {}, JSON.stringify(t.data).slice(0, 60)))))));
    const next = list.length === PAGE ? (search ? `${list.at(-1).workflowId}/${list.at(-1).id}` : list.at(-1).cursor) : null;
    fill(pager,
      h('button', { type: 'button', disabled: stack.length === 0, onclick: () => load(stack.pop()) }, '← Previous'),
      h('span.muted', {}, ` page ${stack.length + 1} `),
      h('button', { type: 'button', disabled: !next, onclick: () => { stack.push(cursor); load(next); } }, 'Next →'));
  }
  load(null);
  // The first page follows the place's changes.
  state.onEvent = (e) => {
    if (stack.length === 0 && !search && [e.place, e.fromPlace, e.toPlace].includes(place)) load(null);
  };
  return () => {};
}

/** RuleResults as a nested list: each rule, passed or not, and why. */
function rules(list) {
  if (!list?.length) return null;
  return h('ul.rules', {}, list.map((r) => h(`li.${r.passed ? 'pass' : 'fail'}`, {},
    h('strong', {}, r.passed ? '✓ ' : '✗ ', r.ruleId), ': ', r.explanation, rules(r.subResults))));
}

/** One token: data, metadata, history, and its transitions with their guard explanations and fire buttons. */
function tokenPanel(side, state, id, schema) {
  const wf = state.wf;
  const RR = 'ruleId passed explanation';
  const timers = schema.tokenTimers ? ` ${schema.tokenTimers}` : '';
  const doc = `query T($id: String!) { token(id: $id) { id workflowId place data metadata createdAt updatedAt revision workflowVersion${timers}
      transitionHistory(first: 200) { fromPlace toPlace transitionId timestamp triggeredBy triggeredByClaim natsSequence } }
    transitionEvaluations(tokenId: $id) { transitionId name fromPlaces toPlace placeCompatible rulesPassed canFire explanation
      ruleResults { ${RR} subResults { ${RR} subResults { ${RR} subResults { ${RR} } } } } } }`;
  const dialog = h('dialog.confirm', { 'aria-labelledby': 'fire-title' });
  const out = h('div.fire-result', { role: 'status', 'aria-live': 'assertive' });
  let stopped = false;

  async function load() {
    let d;
    try {
      d = await query(doc, { id });
    } catch (e) {
      return fill(side, problem(e));
    }
    if (stopped) return;
    const t = d.token;
    if (!t || t.workflowId !== wf.id) return fill(side, problem(`Token not found in ${wf.id}: ${id}`));
    state.net.select(t.place);
    const evals = d.transitionEvaluations.filter((ev) => ev.placeCompatible);
    const others = d.transitionEvaluations.filter((ev) => !ev.placeCompatible);
    fill(side,
      h('h2', {}, 'Token ', h('span.mono', {}, t.id)),
      h('p', {}, 'In ', h('a', { href: links.place(wf.id, t.place), 'data-token-place': t.place }, h('strong', {}, t.place)),
        ` · revision ${t.revision} · version ${t.workflowVersion} · created `, time(t.createdAt), ' · updated ', time(t.updatedAt)),
      timers ? h('p.timers', {}, '⏱ timers: ', json(t[schema.tokenTimersField])) : h('p.hook.small.muted', {}, 'Timers: not in this server\'s schema (the console shows Token.timers once it is).'),
      out,
      h('section', { 'aria-labelledby': 'h-tr' }, h('h3', { id: 'h-tr' }, 'Transitions from here'),
        evals.length === 0 ? h('p.muted', {}, 'No transition leaves this place.') : h('ul.evals', {}, evals.map((ev) => h(`li.eval.${ev.canFire ? 'can' : 'cannot'}`, { 'data-transition': ev.transitionId },
          h('div.eval-head', {},
            h('strong', {}, ev.name || ev.transitionId), ` → ${ev.toPlace} `,
            h('span.badge', {}, ev.canFire ? 'can fire' : 'cannot fire'),
            h('button', { type: 'button', disabled: !ev.canFire, onclick: () => confirmFire(t, ev), 'aria-label': `Fire ${ev.name || ev.transitionId}` }, 'Fire…')),
          h('p.explanation', {}, ev.explanation),
          rules(ev.ruleResults)))),
        others.length ? h('p.small.muted', {}, `Not from ${t.place}: ${others.map((ev) => ev.transitionId).join(', ')}`) : null),
      h('section', { 'aria-labelledby': 'h-hist' }, h('h3', { id: 'h-hist' }, 'History'),
        h('ol.timeline', {}, t.transitionHistory.map((r) => h('li', {},
          time(r.timestamp), ' ', h('strong', {}, r.transitionId), ` ${r.fromPlace} → ${r.toPlace}`,
          r.triggeredBy ? h('span.muted', {}, ` by ${r.triggeredBy}`) : null,
          r.triggeredByClaim ? h('span.muted', {}, ` (claimed ${r.triggeredByClaim})`) : null))),
        t.transitionHistory.length === 200 ? h('p.small.muted', {}, 'The first 200 entries.') : null),
      h('section', { 'aria-labelledby': 'h-data' }, h('h3', { id: 'h-data' }, 'Data'), h('div.json-box', {}, json(t.data))),
      h('section', { 'aria-labelledby': 'h-meta' }, h('h3', { id: 'h-meta' }, 'Metadata'), h('div.json-box', {}, json(t.metadata))),
      dialog);
  }

  function confirmFire(t, ev) {
    fill(dialog,
      h('h3', { id: 'fire-title' }, `Fire ${ev.name || ev.transitionId}?`),
      h('p', {}, `Token ${t.id.slice(0, 8)} moves from ${t.place} to ${ev.toPlace} (only if it is still at revision ${t.revision}).`),
      h('form', { method: 'dialog', class: 'dialog-buttons' },
        h('button', { value: 'cancel', autofocus: true }, 'Cancel'),
        h('button.primary', { value: 'fire' }, 'Fire')));
    dialog.onclose = () => dialog.returnValue === 'fire' && fire(t, ev);
    dialog.returnValue = '';
    dialog.showModal();
  }

  async function fire(t, ev) {
    fill(out, h('p.muted', {}, `Firing ${ev.transitionId}…`));
    try {
      const { fireTransition: r } = await query(`mutation F($in: TransitionFireInput!) { fireTransition(input: $in) { id place revision } }`,
        { in: { tokenId: t.id, transitionId: ev.transitionId, expectedRevision: t.revision, triggeredBy: 'console' } });
      await load();
      fill(out, h('p.ok', {}, `Fired ${ev.transitionId}: now in ${r.place} (revision ${r.revision}).`));
    } catch (e) {
      fill(out, problem(e));
    }
  }

  fill(side, h('p.muted', {}, 'Loading the token…'));
  load();
  state.onEvent = (e) => e.tokenId === id && !dialog.open && load();
  return () => (stopped = true);
}

/** The live event feed of the workflow (since the page opened), filterable by type. */
function eventsPanel(side, state) {
  const list = h('ol.feed', { 'aria-label': 'Events, newest first' });
  const boxes = h('fieldset.types', {}, h('legend', {}, 'Show event types'));
  const drawTypes = () => {
    fill(boxes, h('legend', {}, 'Show event types'), [...state.feedTypes].map((t) => h('label', {},
      h('input', { type: 'checkbox', checked: !state.hidden.has(t), onchange: (e) => {
        if (e.target.checked) state.hidden.delete(t);
        else state.hidden.add(t);
        draw();
      } }), ` ${t}`)));
  };
  const row = (e) => h('li', { 'data-type': e.eventType },
    time(e.timestamp), ' ', h('strong', {}, e.eventType), ' ',
    e.tokenId ? h('a.mono', { href: links.token(e.workflowId, e.tokenId) }, e.tokenId.slice(0, 8)) : null,
    e.eventType === 'token_transitioned' ? ` ${e.transitionId}: ${e.fromPlace} → ${e.toPlace}` : e.place ? ` in ${e.place}` : '',
    e.triggeredBy ? h('span.muted', {}, ` by ${e.triggeredBy}`) : null);
  const draw = () => {
    const shown = state.feed.filter((e) => !state.hidden.has(e.eventType));
    fill(list, shown.length ? shown.map(row) : h('li.muted', {}, 'No events since this page opened.'));
  };
  fill(side, h('h2', {}, 'Live events'), boxes, list);
  drawTypes();
  draw();
  state.onEvent = (e) => {
    if (boxes.querySelectorAll('input').length !== state.feedTypes.size) drawTypes();
    draw();
  };
  return () => {};
}
