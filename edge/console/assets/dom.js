// A few DOM helpers: the console builds its views from plain elements.

const SVG = 'http://www.w3.org/2000/svg';

/** h('tag.class', {attr: value, onclick: fn}, ...children): an element; children may be strings, nodes, arrays or null. */
export function h(spec, attrs = {}, ...children) {
  return build(document.createElement.bind(document), spec, attrs, children);
}

/** s(...) is h for SVG elements. */
export function s(spec, attrs = {}, ...children) {
  return build((t) => document.createElementNS(SVG, t), spec, attrs, children);
}

function build(make, spec, attrs, children) {
  const [tag, ...classes] = spec.split('.');
  const el = make(tag);
  if (classes.length) el.setAttribute('class', classes.join(' '));
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces el's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A time as the browser's locale shows it, with the ISO time as its title. */
export function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return h('time', { datetime: iso, title: iso }, isNaN(d) ? iso : d.toLocaleString());
}

/** An expandable JSON viewer: objects and arrays as nested <details>, open to depth 2. */
export function json(value, depth = 0, key = null) {
  const label = key == null ? null : h('span.json-key', {}, `${key}: `);
  if (value !== null && typeof value === 'object') {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const brackets = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
    if (entries.length === 0) return h('div.json-leaf', {}, label, brackets.join(''));
    return h('details.json', { open: depth < 2 },
      h('summary', {}, label, `${brackets[0]} ${entries.length} ${Array.isArray(value) ? 'items' : 'keys'} ${brackets[1]}`),
      entries.map(([k, v]) => json(v, depth + 1, k)));
  }
  const kind = value === null ? 'null' : typeof value;
  return h('div.json-leaf', {}, label, h(`span.json-${kind}`, {}, JSON.stringify(value)));
}
