// The workflow net as SVG: places are circles, transitions bars, arcs go
// place → transition → place. dagre (vendored, see vendor/LICENSES.md)
// lays it out left to right; the view pans (drag, arrow keys) and zooms
// (wheel, + and -, the buttons). Places and transitions are focusable;
// Enter or a click selects a place.

import dagre from './vendor/dagre-3.1.3.esm.js';
import { h, s } from './dom.js';

const R = 26; // place radius
const BAR = { w: 12, h: 48 };

/** The label of a transition: its name, else its id. */
const tlabel = (t) => t.name || t.id;

/** Lays out wf (places, transitions) with dagre: returns {nodes: Map(key → {x, y}), edges: [{from, to, points}], width, height}. */
export function layout(wf) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 56, marginx: 24, marginy: 24 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const p of wf.places) g.setNode(`p:${p}`, { width: 2 * R, height: 2 * R + 18 });
  wf.transitions.forEach((t, i) => {
    g.setNode(`t:${i}`, { width: BAR.w + 8, height: BAR.h + 18 });
    for (const f of t.fromPlaces) g.setEdge(`p:${f}`, `t:${i}`, {}, `in:${i}:${f}`);
    g.setEdge(`t:${i}`, `p:${t.toPlace}`, {}, `out:${i}`);
  });
  dagre.layout(g);
  const nodes = new Map(g.nodes().map((k) => [k, g.node(k)]));
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points }));
  const { width, height } = g.graph();
  return { nodes, edges, width, height };
}

/**
 * Draws wf into a new element and returns {el, setCount(place, n), select(place)}.
 * analysis marks dead transitions and unreachable and terminal places;
 * onPlace(place) is called when a place is chosen. extra(t) may return a
 * line shown under a transition (timers, when the schema has them).
 */
export function drawNet(wf, { onPlace, extra = () => '' }) {
  const lay = layout(wf);
  const a = wf.analysis || { unreachablePlaces: [], terminalPlaces: [], deadTransitions: [] };
  const counts = new Map();
  const svg = s('svg.net', { role: 'group', 'aria-label': `Net of ${wf.name}: ${wf.places.length} places, ${wf.transitions.length} transitions`, viewBox: `0 0 ${lay.width} ${lay.height}` });
  const world = s('g');
  svg.append(s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, s('path.arrowhead', { d: 'M0,0 L10,5 L0,10 z' }))), world);
  for (const e of lay.edges) {
    world.append(s('polyline.arc', { points: e.points.map((p) => `${p.x},${p.y}`).join(' '), 'marker-end': 'url(#arrow)' }));
  }
  wf.transitions.forEach((t, i) => {
    const n = lay.nodes.get(`t:${i}`);
    const dead = a.deadTransitions.includes(t.id);
    const guard = t.conditions.length + t.rules.length > 0;
    const guards = [...t.conditions, ...t.rules.map((r) => r.description || r.id)];
    const more = extra(t);
    const desc = [dead ? 'dead: can never fire' : '', guard ? `guard: ${guards.join(', ')}` : '', more].filter(Boolean).join('; ');
    world.append(s(`g.transition${dead ? '.dead' : ''}${guard ? '.guarded' : ''}`, { tabindex: 0, 'data-transition': t.id, role: 'img', 'aria-label': `transition ${tlabel(t)}: ${t.fromPlaces.join(', ')} → ${t.toPlace}${desc ? `; ${desc}` : ''}` },
      s('title', {}, `${tlabel(t)} (${t.fromPlaces.join(', ')} → ${t.toPlace})${desc ? `\n${desc}` : ''}`),
      s('rect', { x: n.x - BAR.w / 2, y: n.y - BAR.h / 2 - 9, width: BAR.w, height: BAR.h, rx: 2 }),
      s('text.label', { x: n.x, y: n.y + BAR.h / 2 + 5, 'text-anchor': 'middle' }, tlabel(t)),
      guard ? s('text.mark', { x: n.x + BAR.w / 2 + 3, y: n.y - BAR.h / 2 - 2 }, '◆ guard') : null,
      dead ? s('text.mark', { x: n.x + BAR.w / 2 + 3, y: n.y - BAR.h / 2 - 2 + (guard ? 11 : 0) }, 'dead') : null,
      more ? s('text.mark', { x: n.x, y: n.y + BAR.h / 2 + 17, 'text-anchor': 'middle' }, `⏱ ${more}`) : null));
  });
  const placeEls = new Map();
  for (const p of wf.places) {
    const n = lay.nodes.get(`p:${p}`);
    const cls = ['place'];
    if (a.unreachablePlaces.includes(p)) cls.push('unreachable');
    if (a.terminalPlaces.includes(p)) cls.push('terminal');
    if (p === wf.initialPlace) cls.push('initial');
    const count = s('text.count', { x: n.x, y: n.y - 9 + 5, 'text-anchor': 'middle' }, '…');
    const notes = [p === wf.initialPlace && 'initial', cls.includes('terminal') && 'terminal', cls.includes('unreachable') && 'unreachable'].filter(Boolean);
    const g = s(`g.${cls.join('.')}`, { tabindex: 0, role: 'button', 'data-place': p },
      s('title', {}, `${p}${notes.length ? ` (${notes.join(', ')})` : ''}`),
      cls.includes('terminal') ? s('circle.ring', { cx: n.x, cy: n.y - 9, r: R + 4 }) : null,
      s('circle', { cx: n.x, cy: n.y - 9, r: R }),
      count,
      s('text.label', { x: n.x, y: n.y + R + 5, 'text-anchor': 'middle' }, p),
      cls.includes('unreachable') ? s('text.mark', { x: n.x, y: n.y - R - 13, 'text-anchor': 'middle' }, 'unreachable') : null);
    const label = () => g.setAttribute('aria-label', `place ${p}: ${counts.get(p) ?? 'unknown'} tokens${notes.length ? ` (${notes.join(', ')})` : ''}`);
    label();
    const choose = () => onPlace?.(p);
    g.addEventListener('click', choose);
    g.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        choose();
      }
    });
    placeEls.set(p, { g, count, label });
    world.append(g);
  }
  const view = panZoom(svg, world, lay);
  const el = h('div.net-wrap', {},
    h('div.net-tools', { role: 'toolbar', 'aria-label': 'Zoom' },
      h('button', { type: 'button', onclick: () => view.zoom(1.25), 'aria-label': 'Zoom in' }, '+'),
      h('button', { type: 'button', onclick: () => view.zoom(0.8), 'aria-label': 'Zoom out' }, '−'),
      h('button', { type: 'button', onclick: () => view.reset() }, 'Fit'),
      h('span.legend', {}, h('span.lg-place', {}, '○ place'), h('span', {}, '▮ transition'), h('span', {}, '◎ terminal'), h('span.lg-dead', {}, '┆ dead / unreachable'), h('span', {}, '◆ guard'))),
    svg);
  return {
    el,
    setCount(place, n) {
      counts.set(place, n);
      const p = placeEls.get(place);
      if (!p) return;
      p.count.textContent = String(n);
      p.g.dataset.count = String(n);
      p.g.classList.toggle('empty', n === 0);
      p.label();
    },
    count: (place) => counts.get(place) ?? 0,
    select(place) {
      for (const [name, p] of placeEls) p.g.classList.toggle('selected', name === place);
    },
  };
}

/**
 * Pans (pointer drag, arrow keys on the SVG) and zooms (wheel, +/-) the
 * world group. The SVG's viewBox is its own size in pixels; fit() scales
 * the net to it, but never below 0.55 (a long net stays readable and is
 * panned instead), and is kept up on resizes until the user moves the view.
 */
function panZoom(svg, world, lay) {
  let k = 1;
  let x = 0;
  let y = 0;
  let vw = lay.width;
  let vh = lay.height;
  let moved = false;
  const apply = () => world.setAttribute('transform', `translate(${x} ${y}) scale(${k})`);
  const zoom = (f, cx = vw / 2, cy = vh / 2) => {
    const nk = Math.min(8, Math.max(0.1, k * f));
    x = cx - ((cx - x) * nk) / k;
    y = cy - ((cy - y) * nk) / k;
    k = nk;
    moved = true;
    apply();
  };
  const fit = () => {
    k = Math.max(0.55, Math.min(1.5, vw / lay.width, vh / lay.height));
    x = lay.width * k < vw ? (vw - lay.width * k) / 2 : 0;
    y = (vh - lay.height * k) / 2;
    moved = false;
    apply();
  };
  new ResizeObserver(() => {
    const r = svg.getBoundingClientRect();
    if (!r.width || !r.height) return;
    vw = r.width;
    vh = r.height;
    svg.setAttribute('viewBox', `0 0 ${vw} ${vh}`);
    if (!moved) fit();
  }).observe(svg);
  const at = (e) => {
    const r = svg.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  };
  svg.addEventListener('wheel', (e) => {
    e.preventDefault();
    zoom(e.deltaY < 0 ? 1.1 : 1 / 1.1, ...at(e));
  }, { passive: false });
  let drag = null;
  svg.addEventListener('pointerdown', (e) => {
    if (e.target.closest('g.place')) return;
    drag = { px: e.clientX, py: e.clientY, x, y };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener('pointermove', (e) => {
    if (!drag) return;
    x = drag.x + e.clientX - drag.px;
    y = drag.y + e.clientY - drag.py;
    moved = true;
    apply();
  });
  svg.addEventListener('pointerup', () => (drag = null));
  svg.setAttribute('tabindex', '0');
  svg.setAttribute('aria-description', 'Arrow keys pan, + and - zoom, 0 fits');
  svg.addEventListener('keydown', (e) => {
    if (e.target !== svg) return;
    const step = 40;
    const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    if (moves[e.key]) {
      x += moves[e.key][0];
      y += moves[e.key][1];
      moved = true;
      apply();
    } else if (e.key === '+' || e.key === '=') zoom(1.25);
    else if (e.key === '-') zoom(0.8);
    else if (e.key === '0') fit();
    else return;
    e.preventDefault();
  });
  return { zoom, reset: fit };
}
