// The console's only way to the server: the public GraphQL API.
// query() POSTs a document; subscribe() runs one over a shared
// graphql-transport-ws connection. Both carry the bearer key kept in this
// tab's sessionStorage under "cb.bearer" (the same item GraphiQL's page uses).

const endpoint = document.querySelector('meta[name="cb-endpoint"]')?.content || '/graphql';
const KEY = 'cb.bearer';

/** The bearer key, without a pasted "Bearer " prefix ('' when none). */
export function bearer() {
  try {
    return (sessionStorage.getItem(KEY) || '').trim().replace(/^bearer\s+/i, '');
  } catch {
    return '';
  }
}

/** Keeps key in sessionStorage (removes it when empty) and reconnects the socket. */
export function setBearer(key) {
  key = key.trim().replace(/^bearer\s+/i, '');
  try {
    if (key) sessionStorage.setItem(KEY, key);
    else sessionStorage.removeItem(KEY);
  } catch {}
  socket.restart();
}

/** An error the server answered, with its message and extensions.code as given. */
export class APIError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code || '';
  }
  toString() {
    return this.code ? `${this.message} (${this.code})` : this.message;
  }
}

/** POSTs document with variables; resolves to data, or rejects with the first error as the server gave it. */
export async function query(document, variables = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json;q=0.9' };
  if (bearer()) headers.authorization = `Bearer ${bearer()}`;
  let resp;
  try {
    resp = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query: document, variables }) });
  } catch (e) {
    throw new APIError(`the server cannot be reached: ${e.message}`, 'NETWORK');
  }
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new APIError(`HTTP ${resp.status} ${resp.statusText}`, 'HTTP');
  }
  const err = body.errors?.[0];
  if (err) throw new APIError(err.message, err.extensions?.code);
  return body.data;
}

// socket is the one graphql-transport-ws connection: opened on the first
// subscription, re-opened (with every running subscription) after it
// closes, with backoff; state() reports "live", "connecting" or "offline".
const socket = (() => {
  const subs = new Map(); // id -> {payload, sink}
  let ws = null;
  let acked = false;
  let next = 1;
  let retry = 0;
  let onState = () => {};
  const wsURL = () => {
    const u = new URL(endpoint, location.href);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  };
  const send = (m) => ws?.readyState === WebSocket.OPEN && ws.send(JSON.stringify(m));
  const state = (s) => onState(s);
  function open() {
    if (ws || subs.size === 0) return;
    acked = false;
    state('connecting');
    const w = (ws = new WebSocket(wsURL(), 'graphql-transport-ws'));
    w.onopen = () => send({ type: 'connection_init', payload: bearer() ? { authorization: `Bearer ${bearer()}` } : {} });
    w.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'connection_ack') {
        acked = true;
        retry = 0;
        state('live');
        for (const [id, s] of subs) {
          send({ id, type: 'subscribe', payload: s.payload });
          s.sink.started?.();
        }
      } else if (m.type === 'ping') send({ type: 'pong' });
      else if (m.type === 'next') subs.get(m.id)?.sink.next(m.payload);
      else if (m.type === 'error') {
        const s = subs.get(m.id);
        subs.delete(m.id);
        s?.sink.error(new APIError(m.payload?.[0]?.message || 'subscription failed', m.payload?.[0]?.extensions?.code));
      } else if (m.type === 'complete') subs.delete(m.id);
    };
    w.onclose = (e) => {
      if (ws !== w) return;
      ws = null;
      state(e.code === 4403 || e.code === 4401 ? 'refused' : 'offline');
      if (subs.size > 0) setTimeout(open, Math.min(5000, 250 * 2 ** retry++));
    };
  }
  return {
    subscribe(payload, sink) {
      const id = String(next++);
      subs.set(id, { payload, sink });
      if (ws && acked) {
        send({ id, type: 'subscribe', payload });
        sink.started?.();
      } else open();
      return () => {
        if (subs.delete(id)) send({ id, type: 'complete' });
        if (subs.size === 0 && ws) {
          const w = ws;
          ws = null;
          w.close(1000);
          state('');
        }
      };
    },
    restart() {
      const w = ws;
      ws = null;
      w?.close(1000);
      open();
    },
    watch(fn) {
      onState = fn;
    },
  };
})();

/**
 * Runs a subscription. sink.next(data) gets each result's data,
 * sink.error(APIError) a refusal, sink.started() each time the subscription
 * is (re)sent on a connection. Returns a function that stops it.
 */
export function subscribe(document, variables, sink) {
  return socket.subscribe({ query: document, variables }, {
    next: (r) => (r.errors?.length ? sink.error?.(new APIError(r.errors[0].message, r.errors[0].extensions?.code)) : sink.next(r.data)),
    error: (e) => sink.error?.(e),
    started: () => sink.started?.(),
  });
}

/** Calls fn with the connection's state ("live", "connecting", "offline", "refused" or ""). */
export function watchConnection(fn) {
  socket.watch(fn);
}

/** Names of the fields of a type in the served schema (for fields other changes add, e.g. timers). */
export async function typeFields(...names) {
  const doc = `{ ${names.map((n, i) => `t${i}: __type(name: ${JSON.stringify(n)}) { fields { name type { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } }`).join(' ')} }`;
  const data = await query(doc);
  const out = {};
  names.forEach((n, i) => (out[n] = data[`t${i}`]?.fields || []));
  return out;
}
