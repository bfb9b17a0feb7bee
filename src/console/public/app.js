// The operator console page: symbols table, last-hour charts, timeline, services, trading state,
// dead letters, plan page. Live through /api/stream; actions through actions.js.

import { api, auth, follow } from './api.js';
import { openAction, initActions } from './actions.js';
import * as chart from './chart.js';
import { ago, clock, fill, h } from './dom.js';

const state = { info: null, symbols: [], services: null, events: [], filter: '', showSkipped: false, chartHosts: new Map() };
const MAX_EVENTS = 3000;
const $ = (id) => document.getElementById(id);

/** The status shown for a row: MANUAL_REQUIRED wins, then an active hold, then the engine's verdict. */
function shownStatus(r) {
  if (r.status === 'MANUAL_REQUIRED' || r.manual_required) return 'MANUAL_REQUIRED';
  if (r.hold.active) return 'HOLD';
  return r.status;
}

function renderBanner() {
  const b = $('banner');
  const msgs = [];
  if (state.info && !state.info.actions_enabled) msgs.push('Actions are disabled: P3_CONSOLE_TOKEN is not set where `p3 console` runs. This page is read-only.');
  if (state.redisError) msgs.push(state.redisError);
  b.textContent = msgs.join(' ');
  b.hidden = msgs.length === 0;
  for (const btn of document.querySelectorAll('.needs-token')) btn.disabled = Boolean(state.info && !state.info.actions_enabled);
}

const rowEls = new Map();

/** One cell's content as [key, nodes]: the cell is rewritten only when its key changes. */
function cellsOf(r, st) {
  const hold = r.hold.active ? `${r.hold.owner} · ${r.hold.reason || 'no reason'} · ${r.hold.ttl_sec ?? '∞'} s` : '–';
  const diff = r.diff_amt ? `${r.diff_amt}${r.diff_pct ? ` (${r.diff_pct}%)` : ''}` : '–';
  const snap = r.snapshot_age_sec === null ? '–' : `${ago(r.snapshot_age_sec)}${r.snapshot_source ? ` · ${r.snapshot_source}` : ''}`;
  const last = r.last_event ? `${r.last_event.kind}${r.last_event.reason ? ` ${r.last_event.reason}` : ''} · ${clock(r.last_event.ts_ms)}` : '–';
  return [
    [r.symbol, [r.symbol]],
    [`${st}|${r.reason}`, [h('span', { class: `badge b-${st.toLowerCase()}` }, st), r.reason ? h('span', { class: 'reason' }, r.reason) : null]],
    [r.exchange_amt, [r.exchange_amt || '–']],
    [`${r.ledger_amt}|${r.ledger_source}`, [r.ledger_amt || '–', r.ledger_source ? h('span', { class: 'muted' }, ` ${r.ledger_source}`) : null]],
    [diff, [diff]],
    [hold, [hold]],
    [snap, [snap]],
    [last, [last]],
  ];
}

const CELL_CLASS = ['sym', '', 'num', 'num', 'num', 'hold', 'snap', 'last'];

/** Builds the row of a symbol once; its action buttons stay in place (a click is never lost to a re-render). */
function rowFor(symbol) {
  let el = rowEls.get(symbol);
  if (el) return el;
  const current = () => state.symbols.find((x) => x.symbol === symbol);
  const btn = (label, kind) => h('button', { type: 'button', class: 'small needs-token', dataset: { action: kind, symbol }, onclick: () => current() && openAction(kind, current(), state.info) }, label);
  const buttons = { set: btn('Hold', 'hold-set'), clear: btn('Clear hold', 'hold-clear'), ledger: btn('Ledger…', 'ledger-set'), flatten: btn('Flatten…', 'flatten') };
  buttons.flatten.classList.add('danger');
  const cells = CELL_CLASS.map((c) => h('td', { class: c || undefined }));
  const tr = h('tr', { dataset: { symbol } }, cells, h('td', { class: 'actions' }, buttons.set, buttons.clear, buttons.ledger, buttons.flatten));
  el = { tr, cells, keys: [], buttons };
  rowEls.set(symbol, el);
  return el;
}

function renderSymbols() {
  const enabled = Boolean(state.info?.actions_enabled);
  const tbody = $('symbols').tBodies[0];
  const trs = state.symbols.map((r) => {
    const st = shownStatus(r);
    const el = rowFor(r.symbol);
    el.tr.className = `row-${st.toLowerCase()}`;
    el.tr.dataset.status = st;
    el.tr.title = r.hint || '';
    cellsOf(r, st).forEach(([key, nodes], i) => {
      if (el.keys[i] === key) return;
      el.keys[i] = key;
      fill(el.cells[i], nodes);
    });
    for (const b of Object.values(el.buttons)) b.disabled = !enabled;
    el.buttons.clear.hidden = !r.hold.active;
    el.buttons.flatten.hidden = !state.info?.flatten_available;
    return el.tr;
  });
  const same = trs.length === tbody.children.length && trs.every((tr, i) => tbody.children[i] === tr);
  if (!same) fill(tbody, trs.length ? trs : [h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'no symbols yet (set P34_ALLOWLIST, or nothing is in Redis yet)'))]);
  fill($('hints'), state.symbols.filter((r) => r.hint).map((r) => h('div', {}, h('strong', {}, r.symbol), `: ${r.hint}`)));
  syncSymbolSelects();
}

function syncSymbolSelects() {
  const names = state.symbols.map((r) => r.symbol);
  for (const [sel, first] of [[$('timeline-filter'), 'all symbols'], [document.querySelector('#trading-form select[name=symbol]'), 'global']]) {
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (have.join() === names.join()) continue;
    const v = sel.value;
    fill(sel, h('option', { value: '' }, first), names.map((n) => h('option', { value: n }, n)));
    sel.value = v;
  }
}

function renderCharts(now = Date.now()) {
  const host = $('charts');
  for (const r of state.symbols) {
    let box = state.chartHosts.get(r.symbol);
    if (!box) {
      box = { wrap: h('figure', { class: 'chart-box', dataset: { symbol: r.symbol } }), svg: h('div') };
      box.wrap.append(h('figcaption', {}, r.symbol), box.svg);
      state.chartHosts.set(r.symbol, box);
      host.append(box.wrap);
    }
    chart.render(box.svg, r.symbol, now);
  }
}

const SHOW_FIELDS = ['reason', 'exchange_amt', 'ledger_amt', 'old_ledger_amt', 'new_ledger_amt', 'diff_amt', 'side', 'qty', 'filled_qty', 'state', 'scope', 'by', 'ttl_sec', 'hold_owner', 'error'];

function eventItem(e) {
  const f = e.fields;
  const planId = f.plan_id;
  const rest = SHOW_FIELDS.filter((k) => f[k] !== undefined && f[k] !== '' && !(k === 'reason' && e.kind === f.reason)).map((k) => `${k}=${f[k]}`).join(' ');
  return h(
    'li',
    { class: `ev ev-${e.stream} k-${e.kind.toLowerCase()}`, dataset: { symbol: e.symbol, kind: e.kind } },
    h('time', {}, clock(e.ts_ms)),
    h('span', { class: 'ev-stream' }, e.stream),
    h('span', { class: 'ev-kind' }, e.kind),
    h('span', { class: 'ev-sym' }, e.symbol || '–'),
    h('span', { class: 'ev-rest' }, rest),
    planId ? h('a', { href: `#/plan/${encodeURIComponent(planId)}`, class: 'ev-plan' }, `plan ${planId}`) : null,
  );
}

function renderTimeline() {
  // SKIPPED results (a plan with nothing to do, e.g. denied while held) are many: hidden unless asked for
  const shown = state.events
    .filter((e) => (!state.filter || e.symbol === state.filter) && (state.showSkipped || !(e.stream === 'result' && e.kind === 'SKIPPED')))
    .slice(-300)
    .reverse();
  fill($('timeline'), shown.length ? shown.map(eventItem) : [h('li', { class: 'muted' }, 'no events yet')]);
}

function addEvents(list) {
  const seen = new Set(state.events.map((e) => `${e.stream}:${e.id}`));
  for (const e of list) {
    const k = `${e.stream}:${e.id}`;
    if (seen.has(k)) continue;
    seen.add(k);
    state.events.push(e);
    chart.addEvent(e);
  }
  state.events.sort((a, b) => a.ts_ms - b.ts_ms);
  if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
}

function renderServices() {
  const v = state.services;
  if (!v) return;
  const now = v.ts_ms;
  const rows = [];
  for (const [name, list] of Object.entries(v.services.alive)) {
    for (const hb of list) rows.push(h('tr', { class: 'ok' }, h('td', {}, name), h('td', {}, h('span', { class: 'badge b-ok' }, 'alive')), h('td', { class: 'muted' }, `${hb.instance} · beat ${hb.lastBeatMs ? ago((now - hb.lastBeatMs) / 1000) : '?'} ago · v${hb.version}`)));
  }
  for (const name of v.services.missing) rows.push(h('tr', { class: 'bad' }, h('td', {}, name), h('td', {}, h('span', { class: 'badge b-hold' }, 'MISSING')), h('td', { class: 'muted' }, 'no live instance')));
  for (const hb of v.services.stale) rows.push(h('tr', { class: 'bad' }, h('td', {}, hb.name), h('td', {}, h('span', { class: 'badge b-drift' }, 'STALE')), h('td', { class: 'muted' }, `${hb.instance}: no recent beat`)));
  fill($('services').tBodies[0], rows);

  const t = v.trading;
  const show = (s) => (s.state === 'INVALID' ? `INVALID (${s.error}; read as HALTED)` : `${s.state}${s.set && s.reason ? ` — ${s.reason}` : ''}${s.by ? ` (by ${s.by})` : ''}`);
  const stClass = (s) => `badge b-${s.state === 'ACTIVE' ? 'ok' : s.state === 'REDUCING' ? 'drift' : 'hold'}`;
  fill(
    $('trading'),
    h('div', { class: 'ts', dataset: { scope: 'global', state: t.global.state } }, h('span', { class: stClass(t.global) }, 'global'), ` ${show(t.global)}`),
    Object.entries(t.symbols).map(([sym, s]) => h('div', { class: 'ts', dataset: { scope: sym, state: s.state } }, h('span', { class: stClass(s) }, sym), ` ${show(s)}`)),
    t.breakers.map((b) => h('div', { class: 'ts' }, h('span', { class: 'badge b-hold' }, b.symbol), ` circuit breaker OPEN (${b.ttlSec} s left)`)),
  );
  fill($('dead-letters'), Object.entries(v.dead_letters).map(([s, n]) => h('li', { class: n ? 'bad' : 'muted' }, `${s.replace('quantum:stream:', '')}: ${n ?? 'unreadable'}`)));
  const verdict = $('verdict');
  verdict.textContent = v.verdict;
  verdict.className = `verdict ${v.verdict.startsWith('trading allowed') ? 'v-ok' : 'v-bad'}`;
}

function renderPlan(t) {
  $('plan-title').textContent = t.planId;
  const kv = (obj) => h('dl', { class: 'kv' }, Object.entries(obj).flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  const permit = (name, p) => h('div', { class: 'permit' }, h('h4', {}, `${name} permit`), Object.keys(p).length ? kv(p) : h('p', { class: 'muted' }, 'none (never issued, or expired after its 60 s TTL)'));
  const entries = (title, list, empty) => h('div', {}, h('h4', {}, title), list.length ? list.map((e) => h('div', { class: 'entry' }, h('code', {}, `${e.stream} ${e.id}`), kv(e.fields))) : h('p', { class: 'muted' }, empty));
  fill(
    $('plan-body'),
    t.found ? null : h('p', { class: 'message message-error' }, 'nothing found about this plan in the recent streams'),
    entries('Submitted', t.submitted, 'not found in the recent plan streams'),
    h('div', { class: 'permits' }, permit('governor', t.permits.governor), permit('p33', t.permits.p33)),
    t.dedupe ? h('p', {}, `apply stage: ${t.dedupe.split('|')[0]}`) : null,
    entries('Results', t.results, 'none yet'),
    entries('Dead letters', t.deadLetters, 'none'),
  );
}

async function route() {
  const m = /^#\/plan\/(.+)$/.exec(location.hash);
  $('main-view').hidden = Boolean(m);
  $('plan-view').hidden = !m;
  if (!m) return;
  const id = decodeURIComponent(m[1]);
  $('plan-title').textContent = id;
  fill($('plan-body'), h('p', { class: 'muted' }, 'loading…'));
  const res = await api.plan(id);
  if (res.ok) renderPlan(res.body);
  else fill($('plan-body'), h('p', { class: 'message message-error' }, res.body.message));
}

async function loadEvents() {
  const res = await api.events({ symbol: state.filter, since: String(Date.now() - 3600_000), limit: 1000 });
  if (res.ok) addEvents(res.body.events);
  renderTimeline();
  renderCharts();
}

async function refresh() {
  const [s, v] = await Promise.all([api.symbols(), api.services()]);
  if (s.ok) {
    state.info = s.body.console;
    state.symbols = s.body.symbols;
    renderSymbols();
  }
  if (v.ok) {
    state.services = v.body;
    renderServices();
  }
  if (!s.ok) state.redisError = s.body.message;
  renderBanner();
}

function onMessage(event, data) {
  if (event === 'hello') {
    state.info = data.console;
    renderBanner();
  } else if (event === 'symbols') {
    state.redisError = '';
    state.symbols = data.symbols;
    for (const r of data.symbols) chart.addSample(r, data.ts_ms);
    renderSymbols();
    renderBanner();
  } else if (event === 'services') {
    state.services = data;
    renderServices();
  } else if (event === 'event') {
    addEvents([data]);
    renderTimeline();
  } else if (event === 'error') {
    state.redisError = data.message;
    renderBanner();
  }
}

function setConn(s, detail) {
  const c = $('conn');
  c.className = `conn conn-${s}`;
  c.textContent = s === 'live' ? 'live' : `reconnecting (${detail})`;
  c.dataset.state = s;
}

function initAuth() {
  $('operator').value = auth.operator;
  $('token').value = auth.token;
  $('operator').addEventListener('change', (e) => (auth.operator = e.target.value.trim()));
  $('token').addEventListener('change', (e) => (auth.token = e.target.value.trim()));
  if (!auth.operator || !auth.token) $('auth').open = true;
}

function init() {
  initAuth();
  initActions(() => void refresh());
  $('timeline-filter').addEventListener('change', (e) => {
    state.filter = e.target.value;
    void loadEvents();
  });
  $('timeline-skipped').addEventListener('change', (e) => {
    state.showSkipped = e.target.checked;
    renderTimeline();
  });
  $('plan-lookup').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = $('plan-id').value.trim();
    if (id) location.hash = `#/plan/${encodeURIComponent(id)}`;
  });
  window.addEventListener('hashchange', () => void route());
  void route();
  void refresh().then(loadEvents);
  void follow(onMessage, setConn);
  setInterval(() => renderCharts(), 2000);
}

init();
