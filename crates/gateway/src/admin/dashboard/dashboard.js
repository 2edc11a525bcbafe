// The dashboard's script: polls the admin API every second (same origin, the login cookie)
// and draws what it answers. Every field may be missing (an older gateway answers fewer):
// a missing value shows as "-". Text goes in with textContent only, never as markup.
'use strict';

const POLL_MS = 1000;
const KEEP_MS = 10 * 60 * 1000; // the chart's window
const ARM_MS = 5000; // how long an End button waits for its second click
const TEARDOWNS_SHOWN = 20;

const samples = []; // {t, processes, sessions}, oldest first
const armed = new Map(); // scope id -> until when its End button is armed
const ending = new Set(); // scope ids whose DELETE is under way or done
let notice = '';

const $ = (id) => document.getElementById(id);
const missing = (v) => v === undefined || v === null;
const dash = (v) => (missing(v) || v === '' ? '-' : String(v));

/** An element with attributes (`text` for its text) and children. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (missing(v)) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (!missing(c)) e.append(c);
  return e;
}

function duration(ms) {
  if (missing(ms) || !Number.isFinite(Number(ms))) return '-';
  ms = Number(ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function kib(k) {
  if (missing(k) || !Number.isFinite(Number(k))) return '-';
  k = Number(k);
  if (k < 1024) return `${k} KiB`;
  if (k < 1024 * 1024) return `${(k / 1024).toFixed(1)} MiB`;
  return `${(k / 1024 / 1024).toFixed(2)} GiB`;
}

function cpu(ms) {
  if (missing(ms) || !Number.isFinite(Number(ms))) return '-';
  ms = Number(ms);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

const short = (id) => (typeof id === 'string' ? id.slice(0, 8) : dash(id));
const command = (c) => (Array.isArray(c) ? dash(c.join(' ')) : dash(c));

function time(rfc3339) {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? dash(rfc3339) : d.toLocaleTimeString();
}

class Unauthorized extends Error {}

async function get(path) {
  const r = await fetch(path, { cache: 'no-store', headers: { accept: 'application/json' } });
  if (r.status === 401) throw new Unauthorized(path);
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${(body && body.error) || r.statusText}`);
  return body;
}

function setStatus(text, error) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', Boolean(error));
}

async function poll() {
  try {
    const [sessions, instances, teardowns] = await Promise.all([
      get('/v1/sessions'),
      get('/v1/instances'),
      get('/v1/teardowns'),
    ]);
    render(
      Array.isArray(sessions) ? sessions : [],
      Array.isArray(instances) ? instances : [],
      Array.isArray(teardowns) ? teardowns : [],
    );
    setStatus(`${notice ? notice + ' · ' : ''}updated ${new Date().toLocaleTimeString()}`, false);
  } catch (e) {
    if (e instanceof Unauthorized) {
      setStatus('Logged out: the gateway restarted (a new token) or the cookie is gone. Run `tether dashboard` for a new address.', true);
    } else if (e instanceof TypeError) {
      setStatus(`The gateway does not answer (${new Date().toLocaleTimeString()}): stopped?`, true);
    } else {
      setStatus(String(e.message || e), true);
    }
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

/** Keeps `container`'s children one per item, in order, keyed: made once, then updated. */
function keyed(container, items, keyOf, make, update) {
  const old = new Map();
  for (const child of [...container.children]) old.set(child.dataset.key, child);
  items.forEach((item, i) => {
    const key = String(keyOf(item));
    let node = old.get(key);
    if (node) old.delete(key);
    else {
      node = make(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
  });
  for (const gone of old.values()) gone.remove();
}

function render(sessions, instances, teardowns) {
  const byId = new Map(instances.map((i) => [i.id, i]));
  const held = new Set();
  const heldBy = new Map();
  for (const s of sessions) {
    const ids = new Set(Array.isArray(s.instances) ? s.instances : []);
    for (const i of instances) if (!missing(i.session) && i.session === s.key) ids.add(i.id);
    const list = [...ids].map((id) => byId.get(id)).filter(Boolean);
    list.forEach((i) => held.add(i.id));
    heldBy.set(s, list);
  }
  const shared = instances.filter((i) => !held.has(i.id));
  const processes = instances.reduce((n, i) => n + (Number(i.processes) || 0), 0);

  $('session-count').textContent = String(sessions.length);
  $('instance-count').textContent = String(instances.length);
  $('process-count').textContent = String(processes);

  keyed($('sessions'), sessions, (s) => s.key ?? s.id, makeSession, (node, s) => updateSession(node, s, heldBy.get(s)));
  $('no-sessions').hidden = sessions.length > 0;
  keyed($('shared'), shared, (i) => i.id, (i) => makeInstance(i, false), updateInstance);
  $('no-shared').hidden = shared.length > 0;
  renderTeardowns(teardowns);

  const now = Date.now();
  samples.push({ t: now, processes, sessions: sessions.length });
  while (samples.length && samples[0].t < now - KEEP_MS) samples.shift();
  drawChart();
}

function endButton(kind, scope) {
  const b = el('button', { class: 'end', type: 'button', 'data-end': kind, 'data-scope': scope });
  paintButton(b);
  return b;
}

function paintButton(b) {
  const scope = b.dataset.scope;
  const until = armed.get(scope);
  const isArmed = !missing(until) && until > Date.now();
  b.disabled = ending.has(scope);
  b.classList.toggle('armed', isArmed && !b.disabled);
  b.textContent = b.disabled ? 'Ending…' : isArmed ? 'Really end?' : 'End';
  b.title = b.disabled ? '' : isArmed ? `Click again to end ${b.dataset.end} ${scope} and every process of it` : `End this ${b.dataset.end}`;
}

function repaintButtons() {
  document.querySelectorAll('button.end').forEach(paintButton);
}

document.addEventListener('click', async (ev) => {
  const b = ev.target.closest && ev.target.closest('button.end');
  if (!b || b.disabled) return;
  const scope = b.dataset.scope;
  const until = armed.get(scope);
  if (missing(until) || until <= Date.now()) {
    armed.set(scope, Date.now() + ARM_MS);
    paintButton(b);
    setTimeout(repaintButtons, ARM_MS + 50);
    return;
  }
  armed.delete(scope);
  ending.add(scope);
  repaintButtons();
  try {
    const r = await fetch(`/v1/scopes/${encodeURIComponent(scope)}`, { method: 'DELETE', cache: 'no-store' });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `${r.status} ${r.statusText}`);
    notice = `ended ${body.ended || b.dataset.end} ${short(body.key || body.id || scope)}`;
  } catch (e) {
    ending.delete(scope);
    repaintButtons();
    notice = '';
    setStatus(`Ending ${b.dataset.end} ${short(scope)} failed: ${e.message || e}`, true);
  }
});

/** Replaces `node`'s children with label/value pairs. */
function facts(node, pairs) {
  node.replaceChildren(
    ...pairs.map(([label, value, cls]) => el('span', {}, `${label} `, el('b', { class: cls, text: dash(value) }))),
  );
}

function makeSession(s) {
  const node = el('article', { class: 'card session', 'data-session': dash(s.key) });
  const head = el('div', { class: 'head' });
  head.append(
    el('span', { class: 'title' }, 'session ', el('code', { class: 'key' })),
    el('span', { class: 'facts' }),
    endButton('session', s.key ?? s.id),
  );
  node.append(head, el('div', { class: 'instances' }), el('p', { class: 'empty none', text: 'No instance of its own: it uses shared ones, or its first call starts one.' }));
  return node;
}

function updateSession(node, s, instances) {
  node.querySelector('.key').textContent = dash(s.key);
  const client = s.client && typeof s.client === 'object' ? `${dash(s.client.name)} ${s.client.version ?? ''}`.trim() : dash(s.client);
  facts(node.querySelector('.head .facts'), [
    ['endpoint', s.endpoint],
    ['client', client],
    ['protocol', s.protocol],
    ['idle', duration(s.idle_ms)],
    ['instances', instances.length],
  ]);
  paintButton(node.querySelector('.head button.end'));
  keyed(node.querySelector('.instances'), instances, (i) => i.id, (i) => makeInstance(i, true), updateInstance);
  node.querySelector('.none').hidden = instances.length > 0;
}

function makeInstance(i, nested) {
  const node = el('div', { class: nested ? 'instance nested' : 'card instance', 'data-instance': dash(i.id) });
  const head = el('div', { class: 'head' });
  head.append(
    el('span', { class: 'title' }, 'instance ', el('code', { class: 'id' }), ' of ', el('b', { class: 'server' })),
    el('span', { class: 'facts main' }),
    endButton('instance', i.id),
  );
  const table = el(
    'table',
    { class: 'tree' },
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        ...[['pid', 'num'], ['ppid', 'num'], ['command', 'cmd'], ['state'], ['RSS', 'num'], ['CPU', 'num'], ['age', 'num'], ['found by']].map(
          ([t, c]) => el('th', { class: c, text: t }),
        ),
      ),
    ),
    el('tbody'),
  );
  node.append(head, el('div', { class: 'facts more' }), table, el('p', { class: 'note tree-note' }));
  return node;
}

function updateInstance(node, i) {
  node.querySelector('.id').textContent = short(i.id);
  node.querySelector('.id').title = dash(i.id);
  node.querySelector('.server').textContent = dash(i.server);
  facts(node.querySelector('.facts.main'), [
    ['lifetime', i.lifetime],
    ['state', i.state, `state-${i.state}`],
    ['shim pid', i.shim_pid],
    ['processes', i.processes],
    ['age', duration(i.age_ms)],
    ['idle', duration(i.idle_ms)],
    ['in flight', i.in_flight],
  ]);
  const more = node.querySelector('.facts.more');
  const layers = Array.isArray(i.layers) && i.layers.length ? i.layers.map((l) => el('span', { class: 'chip', text: String(l) })) : [el('b', { text: '-' })];
  more.replaceChildren(
    el('span', {}, 'RSS ', el('b', { text: kib(i.rss_kib) })),
    el('span', {}, 'CPU ', el('b', { text: cpu(i.cpu_ms) })),
    el('span', {}, 'layers ', ...layers),
    el('span', {}, 'cgroup ', el('b', { class: 'mono', text: dash(i.cgroup) })),
  );
  paintButton(node.querySelector('.head button.end'));
  const rows = treeRows(i);
  node.querySelector('.tree tbody').replaceChildren(...rows);
  const note = node.querySelector('.tree-note');
  note.textContent = Array.isArray(i.tree) ? '' : missing(i.shim_pid) ? 'No process yet.' : `This gateway reports ${dash(i.processes)} process(es) but not their tree: the shim's alone is shown.`;
  note.hidden = note.textContent === '';
}

/** The tree's rows, each under its parent (the shim first), indented by depth. */
function treeRows(i) {
  let tree = Array.isArray(i.tree) ? i.tree.filter((p) => p && !missing(p.pid)) : null;
  if (!tree) tree = missing(i.shim_pid) ? [] : [{ pid: i.shim_pid, found_by: 'shim' }];
  const pids = new Set(tree.map((p) => p.pid));
  const children = new Map();
  const roots = [];
  for (const p of tree) {
    if (!missing(p.ppid) && pids.has(p.ppid) && p.ppid !== p.pid) {
      if (!children.has(p.ppid)) children.set(p.ppid, []);
      children.get(p.ppid).push(p);
    } else roots.push(p);
  }
  const rows = [];
  const seen = new Set();
  const walk = (p, depth) => {
    if (seen.has(p.pid)) return;
    seen.add(p.pid);
    const cmd = el('td', { class: 'cmd', text: command(p.cmdline), title: command(p.cmdline) });
    cmd.style.paddingLeft = `${8 + depth * 16}px`;
    rows.push(
      el(
        'tr',
        { 'data-pid': String(p.pid) },
        el('td', { class: 'num pid', text: String(p.pid) }),
        el('td', { class: 'num', text: dash(p.ppid) }),
        cmd,
        el('td', { text: dash(p.state) }),
        el('td', { class: 'num', text: kib(p.rss_kib) }),
        el('td', { class: 'num', text: cpu(p.cpu_ms) }),
        el('td', { class: 'num', text: missing(p.age_secs) ? '-' : duration(Number(p.age_secs) * 1000) }),
        el('td', { text: dash(p.found_by) }),
      ),
    );
    for (const c of children.get(p.pid) || []) walk(c, depth + 1);
  };
  roots.forEach((p) => walk(p, 0));
  return rows;
}

function renderTeardowns(teardowns) {
  const shown = teardowns.slice(0, TEARDOWNS_SHOWN);
  $('teardowns').replaceChildren(
    ...shown.map((t) =>
      el(
        'tr',
        { 'data-teardown': dash(t.instance) },
        el('td', { class: 'num', text: time(t.ended_at) }),
        el('td', {}, el('code', { text: short(t.instance) })),
        el('td', { text: dash(t.server) }),
        el('td', { text: missing(t.reason) ? 'it ended by itself' : String(t.reason) }),
        el('td', { class: 'num', text: duration(t.teardown_ms) }),
        el('td', { text: dash(t.status) }),
        el('td', { class: 'num', text: duration(t.lived_ms) }),
      ),
    ),
  );
  $('no-teardowns').hidden = teardowns.length > 0;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** A round number at or above `n`: 1, 2, 5, 10, 20, 50… */
function ceiling(n) {
  let step = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (step * m >= n) return step * m;
    step *= 10;
  }
}

function drawChart() {
  const chart = $('chart');
  const W = Math.max(200, Math.round(chart.clientWidth || 1000));
  const H = Math.max(60, Math.round(chart.clientHeight || 120));
  chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const left = 34;
  const top = 6;
  const bottom = 16;
  const now = Date.now();
  const max = ceiling(Math.max(1, ...samples.map((s) => Math.max(s.processes, s.sessions))));
  const x = (t) => left + (W - left - 4) * (1 - (now - t) / KEEP_MS);
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const parts = [];
  for (const v of [0, max / 2, max]) {
    parts.push(svg('line', { class: 'grid', x1: left, x2: W - 4, y1: y(v), y2: y(v) }));
    const label = svg('text', { x: left - 6, y: y(v) + 4, 'text-anchor': 'end' });
    label.textContent = String(Number.isInteger(v) ? v : v.toFixed(1));
    parts.push(label);
  }
  for (const [minutes, anchor] of [[10, 'start'], [5, 'middle'], [0, 'end']]) {
    const label = svg('text', { x: x(now - minutes * 60000), y: H - 3, 'text-anchor': anchor });
    label.textContent = minutes ? `-${minutes} min` : 'now';
    parts.push(label);
  }
  // One line per run of polls without a gap (a gateway that did not answer leaves one).
  const runs = [];
  let run = [];
  for (const s of samples) {
    if (run.length && s.t - run[run.length - 1].t > 3 * POLL_MS) {
      runs.push(run);
      run = [];
    }
    run.push(s);
  }
  if (run.length) runs.push(run);
  for (const r of runs) {
    const pts = (key) => r.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
    if (r.length > 1) {
      const area = `${x(r[0].t).toFixed(1)},${y(0)} ${pts('processes')} ${x(r[r.length - 1].t).toFixed(1)},${y(0)}`;
      parts.push(svg('polygon', { class: 'area', points: area }));
    }
    parts.push(svg('polyline', { class: 'processes', points: pts('processes') }));
    parts.push(svg('polyline', { class: 'sessions', points: pts('sessions') }));
  }
  chart.replaceChildren(...parts);
}

window.addEventListener('resize', drawChart);
poll();
