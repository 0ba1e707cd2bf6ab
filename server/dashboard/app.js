// server/dashboard/app.js -- the Quiver dashboard: collections, their config, a point
// browser, a search form, live charts from /metrics and a recall probe. It calls only
// the public HTTP API of the server that served it (same origin), with the API key the
// user typed, kept in sessionStorage (gone when the tab closes).
'use strict';

const $ = (sel) => document.querySelector(sel);
const KEY_ITEM = 'quiver.apiKey';
const params = new URLSearchParams(location.search);
// ?poll=MS sets how often /metrics is read (the browser test reads it faster)
const POLL_MS = Math.min(60000, Math.max(100, Number(params.get('poll')) || 1000));
const WINDOW_S = 120;                       // seconds of history in the live charts
const TABLE_EVERY_MS = 10000;               // the collections table refreshes itself

const state = { key: sessionStorage.getItem(KEY_ITEM) || '', infos: new Map(), selected: null, tab: 'config',
  pages: [], page: null, pageSize: 20 };

// ---- the API ----------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = {};
  if (state.key) headers.Authorization = 'Bearer ' + state.key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'quiverd is not answering (' + e.message + ')');
  }
  const text = await r.text();
  if (r.ok) return path === '/metrics' ? text : JSON.parse(text);
  let msg = r.status + ' ' + r.statusText;
  try { msg = JSON.parse(text).error.message || msg; } catch { /* not JSON: keep the status line */ }
  throw new ApiError(r.status, msg);
}

const enc = encodeURIComponent;
const collPath = (name) => '/collections/' + enc(name);

// ---- small helpers -------------------------------------------------------------------

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k === 'data') Object.assign(e.dataset, v);
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : String(k ?? ''));
  return e;
}

function fmtBytes(n) {
  if (n === undefined || n === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : n) + ' ' + u[i];
}

const fmtInt = (n) => (n === undefined || n === null ? '–' : Number(n).toLocaleString('en-US'));
const fmtScore = (s) => (s === null || s === undefined ? 'null' : Math.abs(s) < 1000 ? s.toFixed(6) : s.toPrecision(7));
const fmtUs = (us) => (us < 1000 ? Math.round(us) + ' µs' : (us / 1000).toFixed(us < 10000 ? 2 : 1) + ' ms');

// payload as one line of JSON, cut at 240 characters (the whole of it in the tooltip)
function payloadCell(p) {
  if (p === null || p === undefined) return el('td', { class: 'muted' }, '–');
  const s = JSON.stringify(p);
  const td = el('td', { class: 'payload' }, el('code', {}, s.length > 240 ? s.slice(0, 239) + '…' : s));
  if (s.length > 240) td.title = s;
  return td;
}

function banner(msg) {
  const b = $('#banner');
  b.textContent = msg || '';
  b.hidden = !msg;
}

function info(sel, msg, isError) {
  const e = $(sel);
  e.textContent = msg;
  e.classList.toggle('err', !!isError);
}

function indexSummary(ix) {
  if (!ix) return '?';
  if (ix.type === 'hnsw') return `hnsw · m ${ix.m} · ef_c ${ix.ef_construction}`;
  if (ix.type === 'ivf') return `ivf · nlist ${ix.nlist ?? 'auto'} · nprobe ${ix.nprobe}`;
  return ix.type;
}

// the search knob a recall probe turns
const knobOf = (ix) => (ix && ix.type === 'ivf' ? 'nprobe' : 'ef');

// ---- collections table -----------------------------------------------------------------

async function loadCollections() {
  let list;
  try {
    list = (await api('GET', '/collections')).collections;
  } catch (e) {
    banner(e.status !== 401 ? e.message : state.key ? 'The server refused this API key (401): check it and press Use.'
      : 'This server needs an API key: type it above and press Use.');
    return;
  }
  banner('');
  const infos = await Promise.all(list.map((c) => api('GET', collPath(c.name)).catch(() => c)));
  state.infos = new Map(infos.map((i) => [i.name, i]));
  const body = $('#collections tbody');
  body.replaceChildren(...infos.map((i) => {
    const tr = el('tr', { data: { name: i.name }, tabindex: '0' },
      el('td', { class: 'name' }, i.name), el('td', { class: 'num' }, fmtInt(i.dim)), el('td', {}, i.metric),
      el('td', {}, indexSummary(i.index)), el('td', { class: 'num count' }, fmtInt(i.count)),
      el('td', { class: 'num' }, fmtBytes(i.memory_bytes)));
    tr.classList.toggle('sel', i.name === state.selected);
    tr.addEventListener('click', () => select(i.name));
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') select(i.name); });
    return tr;
  }));
  $('#no-collections').hidden = infos.length > 0;
  const points = infos.reduce((s, i) => s + (i.count || 0), 0), mem = infos.reduce((s, i) => s + (i.memory_bytes || 0), 0);
  $('#coll-summary').textContent = `${infos.length} collection${infos.length === 1 ? '' : 's'} · ` +
    `${fmtInt(points)} points · ${fmtBytes(mem)}`;
  if (state.selected && !state.infos.has(state.selected)) {
    state.selected = null;
    $('#coll-card').hidden = true;
  } else if (state.selected) {
    renderConfig(state.infos.get(state.selected));
  }
}

// ---- one collection ----------------------------------------------------------------------

function select(name) {
  const first = state.selected !== name;
  state.selected = name;
  for (const tr of document.querySelectorAll('#collections tbody tr')) tr.classList.toggle('sel', tr.dataset.name === name);
  const i = state.infos.get(name);
  $('#coll-card').hidden = false;
  $('#coll-title').textContent = name;
  renderConfig(i);
  if (first) {
    state.pages = [];
    state.page = null;
    state.recall = [];
    $('#points tbody').replaceChildren();
    $('#hits').hidden = true;
    info('#search-info', '');
    $('#recall tbody').replaceChildren();
    info('#recall-info', '');
    const knob = knobOf(i.index);
    for (const k of document.querySelectorAll('.knob')) k.textContent = knob;
    $('#r-values').value = knob === 'nprobe' ? '1,2,4,8,16,32' : '10,20,40,80,160';
    drawRecall([], knob);
  }
  $('#q-ef').placeholder = i.index && i.index.ef_search ? 'index: ' + i.index.ef_search : 'index';
  $('#q-nprobe').placeholder = i.index && i.index.nprobe ? 'index: ' + i.index.nprobe : 'index';
  showTab(state.tab);
}

function renderConfig(i) {
  const rows = [['Name', i.name], ['Dimension', fmtInt(i.dim)], ['Metric', i.metric], ['Points', fmtInt(i.count)],
    ['Index memory', fmtBytes(i.memory_bytes)], ['Last write (sequence)', i.last_seq === undefined ? '–' : fmtInt(i.last_seq)]];
  for (const [k, v] of Object.entries(i.index || {})) rows.push(['index.' + k, v === null ? 'auto' : String(v)]);
  $('#config').replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const pi = Object.entries(i.payload_index || {});
  $('#payload-index tbody').replaceChildren(...pi.map(([f, t]) => el('tr', {}, el('td', {}, f), el('td', {}, t))));
  $('#payload-index').hidden = !pi.length;
  $('#no-payload-index').hidden = pi.length > 0;
}

function showTab(tab) {
  state.tab = tab;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('on', b.dataset.tab === tab);
  for (const t of document.querySelectorAll('.tab')) t.hidden = t.id !== 'tab-' + tab;
  if (tab === 'points' && state.page === null) loadPage(0);
  if (tab === 'recall') drawRecall(state.recall || [], knobOf(state.infos.get(state.selected)?.index));
}

// ---- point browser ----------------------------------------------------------------------

async function loadPage(offset) {
  const name = state.selected;
  info('#points-info', 'loading…');
  let r;
  try {
    r = await api('POST', collPath(name) + '/points/scroll', { offset, limit: state.pageSize, with_payload: true });
  } catch (e) {
    info('#points-info', e.message, true);
    return;
  }
  if (name !== state.selected) return;
  state.page = { offset, next: r.next_offset, total: r.total };
  const before = state.pages.length;
  $('#points tbody').replaceChildren(...r.points.map((p) =>
    el('tr', {}, el('td', { class: 'num' }, p.id), payloadCell(p.payload))));
  const from = before * state.pageSize + 1, to = before * state.pageSize + r.points.length;
  info('#points-info', r.points.length ? `points ${fmtInt(from)}–${fmtInt(to)} of ${fmtInt(r.total)} (in id order)`
    : 'no points');
  $('#points-prev').disabled = before === 0;
  $('#points-next').disabled = r.next_offset === null;
}

// ---- search -----------------------------------------------------------------------------

function parseVector(text, dim) {
  let v;
  try { v = JSON.parse(text); } catch { v = text.trim().split(/[\s,;[\]]+/).filter(Boolean).map(Number); }
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'number' || !isFinite(x)))
    throw new Error('the vector must be a JSON array of numbers');
  if (v.length !== dim) throw new Error(`the vector has ${v.length} numbers; the collection's dimension is ${dim}`);
  return v;
}

async function search(ev) {
  ev.preventDefault();
  const name = state.selected, ci = state.infos.get(name);
  const body = { k: Number($('#q-k').value) || 10, with_payload: true };
  try {
    if (document.querySelector('input[name=by]:checked').value === 'id') {
      const id = $('#q-id').value.trim();
      if (!/^\d+$/.test(id)) throw new Error('a point id is a non-negative integer');
      body.vector = (await api('GET', collPath(name) + '/points/' + id)).vector;
    } else {
      body.vector = parseVector($('#q-vector').value, ci.dim);
    }
    if ($('#q-ef').value !== '') body.ef = Number($('#q-ef').value);
    if ($('#q-nprobe').value !== '') body.nprobe = Number($('#q-nprobe').value);
    if ($('#q-exact').checked) body.exact = true;
    const f = $('#q-filter').value.trim();
    if (f) {
      try { body.filter = JSON.parse(f); } catch (e) { throw new Error('the filter is not JSON: ' + e.message); }
    }
  } catch (e) {
    info('#search-info', e.message, true);
    return;
  }
  info('#search-info', 'searching…');
  const t0 = performance.now();
  let r;
  try {
    r = await api('POST', collPath(name) + '/search', body);
  } catch (e) {
    info('#search-info', e.message, true);
    return;
  }
  const rt = performance.now() - t0;
  $('#hits tbody').replaceChildren(...r.hits.map((h, i) => el('tr', { data: { id: h.id } },
    el('td', { class: 'num muted' }, i + 1), el('td', { class: 'num' }, h.id), el('td', { class: 'num score' }, fmtScore(h.score)),
    payloadCell(h.payload))));
  $('#hits').hidden = false;
  const plan = r.took && r.took.plan && r.took.plan !== 'none' ? ` · filter plan ${r.took.plan}` : '';
  info('#search-info', `${r.hits.length} hit${r.hits.length === 1 ? '' : 's'} · ${fmtUs(r.took_us)} in quiverd · ` +
    `${fmtUs(rt * 1000)} round trip${plan}`);
}

// ---- recall probe -------------------------------------------------------------------------

function drawRecall(rows, knob) {
  const lo = rows.length ? Math.min(...rows.map((r) => r.recall)) : 0.9;
  drawChart($('#recall-chart'), {
    series: [{ name: 'recall@k', color: '#7c3aed', points: rows.map((r) => [r.value, r.recall]) }],
    xLog: true, xTicks: rows.map((r) => r.value), dots: true, yMax: 1, yMin: Math.min(0.9, Math.floor(lo * 10) / 10),
    yFormat: (v) => v.toFixed(2), xFormat: (v) => knob + ' ' + v, empty: 'run the probe to plot recall',
  });
}

// n distinct random picks of arr
function sample(arr, n) {
  const a = arr.slice();
  for (let i = 0; i < Math.min(n, a.length); i++) {
    const j = i + Math.floor(Math.random() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, n);
}

async function recallProbe(ev) {
  ev.preventDefault();
  const name = state.selected, ci = state.infos.get(name), knob = knobOf(ci.index);
  const n = Math.max(1, Math.min(500, Number($('#r-n').value) || 50)), k = Math.max(1, Number($('#r-k').value) || 10);
  const values = $('#r-values').value.split(/[\s,]+/).filter(Boolean).map(Number);
  if (!values.length || values.some((v) => !Number.isInteger(v) || v < 1)) {
    info('#recall-info', `the ${knob} values are positive integers, like 10,20,40`, true);
    return;
  }
  values.sort((a, b) => a - b);
  const button = $('#recall-form button');
  button.disabled = true;
  try {
    info('#recall-info', 'sampling points…');
    // queries: stored points, drawn from the first 10000 ids
    const ids = (await api('POST', collPath(name) + '/points/scroll', { limit: 10000, with_payload: false })).points.map((p) => p.id);
    if (!ids.length) throw new Error('the collection has no points');
    const picked = sample(ids, n);
    const vectors = [];
    for (let i = 0; i < picked.length; i += 32)
      vectors.push(...await Promise.all(picked.slice(i, i + 32).map((id) => api('GET', collPath(name) + '/points/' + id).then((p) => p.vector))));
    info('#recall-info', 'exact answers…');
    const exact = await api('POST', collPath(name) + '/search/batch', { searches: vectors.map((vector) => ({ vector, k, exact: true })) });
    const truth = exact.results.map((r) => new Set(r.hits.map((h) => h.id)));
    const rows = [];
    state.recall = rows;
    for (const value of values) {
      info('#recall-info', `${knob} ${value}…`);
      const r = await api('POST', collPath(name) + '/search/batch', { searches: vectors.map((vector) => ({ vector, k, [knob]: value })) });
      let found = 0, want = 0;
      r.results.forEach((res, i) => {
        want += truth[i].size;
        found += res.hits.filter((h) => truth[i].has(h.id)).length;
      });
      rows.push({ value, recall: want ? found / want : 1, us: r.took_us / vectors.length });
      if (name !== state.selected) return;
      $('#recall tbody').replaceChildren(...rows.map((x) => el('tr', {}, el('td', { class: 'num' }, x.value),
        el('td', { class: 'num recall' }, x.recall.toFixed(3)), el('td', { class: 'num' }, x.us.toFixed(1)))));
      drawRecall(rows, knob);
    }
    $('#r-k-cap').textContent = k;
    info('#recall-info', `${vectors.length} queries, k ${k}, against exact answers` +
      (ci.index && ci.index.type === 'flat' ? ' (a flat index is exact: recall 1 at any ef)' : ''));
  } catch (e) {
    info('#recall-info', e.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- live metrics -------------------------------------------------------------------------

// The dashboard's own traffic is left out of the charts.
const OWN = new Set(['metrics', 'dashboard']);

// per endpoint: requests (all codes) and the cumulative latency buckets {le: count}
function parseMetrics(text) {
  const req = {}, buckets = {};
  for (const line of text.split('\n')) {
    let m = line.match(/^quiver_http_requests_total\{endpoint="([^"]+)",code="\d+"\} (\d+)/);
    if (m) { req[m[1]] = (req[m[1]] || 0) + Number(m[2]); continue; }
    m = line.match(/^quiver_http_request_duration_seconds_bucket\{endpoint="([^"]+)",le="([^"]+)"\} (\d+)/);
    if (m) (buckets[m[1]] ||= {})[m[2]] = Number(m[3]);
  }
  return { req, buckets };
}

// quantile q of the requests between two scrapes, from the bucket counts (linear within
// a bucket, as Prometheus' histogram_quantile does); null when there were none
function quantile(q, cum) {
  const total = cum[cum.length - 1][1];
  if (!total) return null;
  const rank = q * total;
  let i = 0;
  while (cum[i][1] < rank) i++;
  const lo = i ? cum[i - 1][0] : 0, below = i ? cum[i - 1][1] : 0, hi = cum[i][0];
  if (hi === Infinity) return lo;
  return lo + (hi - lo) * (rank - below) / (cum[i][1] - below);
}

const live = { prev: null, rps: [], search: [], p50: [], p95: [], p99: [] };

function sampleMetrics(cur, t) {
  const prev = live.prev;
  live.prev = { ...cur, t };
  if (!prev) return;
  const dt = (t - prev.t) / 1000;
  let all = 0, searches = 0, reset = false;
  for (const [ep, n] of Object.entries(cur.req)) {
    const d = n - (prev.req[ep] || 0);
    if (d < 0) reset = true;
    if (OWN.has(ep)) continue;
    all += d;
    if (ep === 'search' || ep === 'search_batch') searches += d;
  }
  if (reset) return;                        // quiverd restarted: counters began again
  // bucket deltas summed over the endpoints, as [upper bound in s, cumulative count]
  const sum = new Map();
  for (const [ep, b] of Object.entries(cur.buckets)) {
    if (OWN.has(ep)) continue;
    for (const [le, n] of Object.entries(b)) sum.set(le, (sum.get(le) || 0) + n - ((prev.buckets[ep] || {})[le] || 0));
  }
  const cum = [...sum].map(([le, n]) => [le === '+Inf' ? Infinity : Number(le), n]).sort((a, b) => a[0] - b[0]);
  const x = t / 1000;
  live.first ??= x;
  live.rps.push([x, all / dt]);
  live.search.push([x, searches / dt]);
  for (const [q, s] of [[0.5, live.p50], [0.95, live.p95], [0.99, live.p99]]) {
    const v = cum.length ? quantile(q, cum) : null;
    s.push([x, v === null ? null : v * 1000]);
  }
  for (const s of [live.rps, live.search, live.p50, live.p95, live.p99])
    while (s.length && s[0][0] < x - WINDOW_S) s.shift();
}

function drawLive() {
  const now = performance.now() / 1000;
  const rel = (s) => s.map(([x, y]) => [x - now, y]);
  // the window grows with the history, up to WINDOW_S, so that a fresh page is not one thin line
  const span = Math.min(WINDOW_S, Math.max(10 * POLL_MS / 1000, live.first === undefined ? 0 : now - live.first));
  const common = { xMin: -span, xMax: 0, xFormat: (v) => (v === 0 ? 'now' : v + ' s') };
  const rate = (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, ''));
  drawChart($('#rps-chart'), { ...common, yFormat: rate, empty: 'waiting for requests…', series: [
    { name: 'all requests', color: '#2563eb', fill: 'rgba(37, 99, 235, 0.12)', points: rel(live.rps) },
    { name: 'searches', color: '#16a34a', points: rel(live.search) }] });
  const ms = (v) => (v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2).replace(/\.?0+$/, ''));
  drawChart($('#lat-chart'), { ...common, yFormat: ms, empty: 'no requests in the window', series: [
    { name: 'p50', color: '#0891b2', points: rel(live.p50) },
    { name: 'p95', color: '#ea580c', points: rel(live.p95) },
    { name: 'p99', color: '#dc2626', points: rel(live.p99) }] });
}

async function pollMetrics() {
  try {
    const text = await api('GET', '/metrics');
    sampleMetrics(parseMetrics(text), performance.now());
    $('#health').textContent = 'connected';
    $('#health').className = 'pill ok';
  } catch (e) {
    $('#health').textContent = e.status === 401 ? 'API key needed' : 'unreachable';
    $('#health').className = 'pill bad';
  }
  drawLive();
  setTimeout(pollMetrics, POLL_MS);
}

// ---- wiring -----------------------------------------------------------------------------

function init() {
  $('#api-key').value = state.key;
  $('#key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.key = $('#api-key').value.trim();
    if (state.key) sessionStorage.setItem(KEY_ITEM, state.key); else sessionStorage.removeItem(KEY_ITEM);
    loadCollections();
  });
  $('#refresh').addEventListener('click', loadCollections);
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('#points-next').addEventListener('click', () => {
    if (state.page && state.page.next !== null) { state.pages.push(state.page.offset); loadPage(state.page.next); }
  });
  $('#points-prev').addEventListener('click', () => { if (state.pages.length) loadPage(state.pages.pop()); });
  $('#points-size').addEventListener('change', () => {
    state.pageSize = Number($('#points-size').value);
    state.pages = [];
    loadPage(0);
  });
  for (const r of document.querySelectorAll('input[name=by]')) r.addEventListener('change', () => {
    const byId = document.querySelector('input[name=by]:checked').value === 'id';
    $('#by-id').hidden = !byId;
    $('#by-vector').hidden = byId;
  });
  $('#search-form').addEventListener('submit', search);
  $('#recall-form').addEventListener('submit', recallProbe);
  $('#poll-s').textContent = POLL_MS >= 1000 ? POLL_MS / 1000 + ' s' : POLL_MS + ' ms';
  window.addEventListener('resize', () => { drawLive(); if (state.selected) drawRecall(state.recall || [], knobOf(state.infos.get(state.selected)?.index)); });
  loadCollections();
  setInterval(loadCollections, TABLE_EVERY_MS);
  pollMetrics();
}

init();
