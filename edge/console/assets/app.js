// The console's entry point: the bearer key field, the connection status,
// what the served schema offers, and the router over deep links:
//   #/                              the workflow list (#/?after=<id>: the next page)
//   #/workflows/{id}                a workflow's net, with its live events
//   #/workflows/{id}/places/{p}     … and the tokens in place p
//   #/workflows/{id}/tokens/{t}     … and token t
//   #/workflows/{id}/events         … and its live events

import { bearer, setBearer, typeFields, watchConnection } from './api.js';
import { listView, workflowView } from './views.js';

const main = document.getElementById('main');

/** Parses location.hash into a route. */
function route() {
  const [path, q] = location.hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(q || '');
  if (parts[0] !== 'workflows' || !parts[1]) return { view: 'list', after: params.get('after') || '' };
  const r = { view: 'workflow', id: parts[1] };
  if (parts[2] === 'places' && parts[3]) r.place = parts[3];
  else if (parts[2] === 'tokens' && parts[3]) r.token = parts[3];
  else if (parts[2] === 'events') r.events = true;
  return r;
}

/**
 * Fields other changes add to the schema (timers: Transition.after/at,
 * Token.timers): the console asks for them only when the server has them.
 * HOOK (timers): when TransitionDefinition gains after/at and Token gains
 * timers, the net shows "⏱ after …" under a transition and the token panel
 * the token's timers, with no change here; their scalar subfields are
 * selected as the schema describes them.
 */
async function schemaExtras() {
  const out = { transitionTimers: [], tokenTimers: '', tokenTimersField: '' };
  let f;
  try {
    f = await typeFields('Transition', 'Token');
  } catch {
    return out; // introspection off: no optional fields
  }
  const named = (t) => (t.ofType ? named(t.ofType) : t);
  out.transitionTimers = f.Transition.filter((x) => ['after', 'at'].includes(x.name) && ['SCALAR', 'ENUM'].includes(named(x.type).kind)).map((x) => x.name);
  const timers = f.Token.find((x) => x.name === 'timers');
  if (timers) {
    const t = named(timers.type);
    if (t.kind === 'SCALAR' || t.kind === 'ENUM') out.tokenTimers = 'timers';
    else if (t.kind === 'OBJECT') {
      const sub = (await typeFields(t.name).catch(() => ({})))[t.name] || [];
      const leaves = sub.filter((x) => ['SCALAR', 'ENUM'].includes(named(x.type).kind)).map((x) => x.name);
      if (leaves.length) out.tokenTimers = `timers { ${leaves.join(' ')} }`;
    }
    out.tokenTimersField = out.tokenTimers ? 'timers' : '';
  }
  return out;
}

function bearerField() {
  const input = document.getElementById('cb-bearer');
  input.value = bearer();
  const commit = () => {
    if (input.value.trim().replace(/^bearer\s+/i, '') === bearer()) return;
    setBearer(input.value);
    show(true);
  };
  input.addEventListener('change', commit);
  input.addEventListener('keydown', (e) => e.key === 'Enter' && commit());
  document.getElementById('cb-bearer-clear').addEventListener('click', () => {
    input.value = '';
    commit();
    input.focus();
  });
}

function connection() {
  const el = document.getElementById('live');
  const text = { live: '● live', connecting: '○ connecting…', offline: '○ offline: retrying', refused: '○ refused: check the bearer key', '': '' };
  watchConnection((s) => {
    el.textContent = text[s] ?? s;
    el.dataset.state = s;
  });
}

const extras = schemaExtras(); // asked for once, at start, beside the first view's own requests
let current = null; // {key, view}

/** Shows the route; force redraws even when only the panel changed. */
async function show(force = false) {
  const r = route();
  const key = r.view === 'workflow' ? `wf:${r.id}` : `list:${r.after}`;
  if (!force && current?.key === key && current.view.update) {
    current.view.update(r);
    return;
  }
  current?.view.stop?.();
  const view = r.view === 'workflow' ? workflowView(main, r, extras) : listView(main, r);
  current = { key, view: typeof view === 'function' ? { stop: view } : view };
  if (r.view === 'list') document.title = 'Workflows · Circuit Breaker console';
}

bearerField();
connection();
window.addEventListener('hashchange', () => show());
show();
