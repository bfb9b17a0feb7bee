// Per-symbol chart of the last hour (zoomed in while less history is known): exchange amount, ledger amount (step lines) and holds (shaded),
// as inline SVG. Fed by the events of /api/events (exchange_amt / ledger_amt / new_ledger_amt,
// HOLD_SET / HOLD_CLEARED) and by the live symbols table (one sample per update).

const NS = 'http://www.w3.org/2000/svg';
const WINDOW_MS = 3600_000;
const W = 320;
const H = 90;
const PAD = { l: 44, r: 6, t: 6, b: 14 };

/** symbol -> {ex: [[t, v]], led: [[t, v]], holds: [[start, end|null]]} */
const series = new Map();

function get(symbol) {
  let s = series.get(symbol);
  if (!s) series.set(symbol, (s = { ex: [], led: [], holds: [] }));
  return s;
}

const num = (v) => (v === undefined || v === null || v === '' || v === 'invalid' ? null : Number(v));

function push(arr, t, v) {
  if (v === null || !Number.isFinite(v)) return;
  const last = arr[arr.length - 1];
  if (last && last[0] > t) {
    arr.push([t, v]);
    arr.sort((a, b) => a[0] - b[0]);
    return;
  }
  if (last && last[1] === v && t - last[0] < 5000) return;
  arr.push([t, v]);
}

function trim(s, now) {
  const from = now - WINDOW_MS;
  for (const arr of [s.ex, s.led]) {
    // keep one point before the window so the line starts at its left edge
    while (arr.length > 1 && arr[1][0] < from) arr.shift();
  }
  s.holds = s.holds.filter(([, end]) => end === null || end >= from);
}

/** Adds a timeline event (see src/read-model/console.ts TimelineEvent). */
export function addEvent(e) {
  if (e.stream !== 'reconcile' || !e.symbol) return;
  const s = get(e.symbol);
  const f = e.fields;
  push(s.ex, e.ts_ms, num(f.exchange_amt));
  push(s.led, e.ts_ms, num(f.new_ledger_amt ?? f.ledger_amt));
  if (e.kind === 'HOLD_SET') {
    const open = s.holds.find(([, end]) => end === null);
    if (!open) s.holds.push([e.ts_ms, null]);
  } else if (e.kind === 'HOLD_CLEARED') {
    const open = s.holds.find(([, end]) => end === null);
    if (open) open[1] = e.ts_ms;
    else s.holds.push([e.ts_ms - 1, e.ts_ms]);
  }
}

/** Adds one sample per symbol from the live table. */
export function addSample(row, now) {
  const s = get(row.symbol);
  push(s.ex, now, num(row.exchange_amt));
  push(s.led, now, num(row.ledger_amt));
  const open = s.holds.find(([, end]) => end === null);
  if (row.hold.active && !open) s.holds.push([now, null]);
  if (!row.hold.active && open) open[1] = now;
}

function el(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** Shown span, ms: the last hour, zoomed in to the data while there is less (at least 5 min; same for every chart). */
function spanMs(now) {
  let first = now;
  for (const s of series.values()) for (const arr of [s.ex, s.led]) if (arr.length) first = Math.min(first, arr[0][0]);
  for (const s of series.values()) for (const [start] of s.holds) first = Math.min(first, start);
  return Math.min(WINDOW_MS, Math.max(5 * 60_000, now - first));
}

function stepPath(points, x, y, now, span) {
  if (points.length === 0) return '';
  let d = '';
  let prevY = null;
  for (const [t, v] of points) {
    const px = x(Math.max(t, now - span));
    const py = y(v);
    d += prevY === null ? `M${px.toFixed(1)},${py.toFixed(1)}` : `H${px.toFixed(1)}V${py.toFixed(1)}`;
    prevY = py;
  }
  return `${d}H${x(now).toFixed(1)}`;
}

const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : String(Number(v.toPrecision(4))));

/** Renders (or re-renders) the SVG of `symbol` into `host`. */
export function render(host, symbol, now) {
  const s = get(symbol);
  trim(s, now);
  const vals = [...s.ex, ...s.led].map(([, v]) => v);
  let lo = Math.min(0, ...vals);
  let hi = Math.max(0, ...vals);
  if (hi === lo) hi = lo + 1;
  const padv = (hi - lo) * 0.08;
  lo -= padv;
  hi += padv;
  const span = spanMs(now);
  const x = (t) => PAD.l + ((t - (now - span)) / span) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - (v - lo) / (hi - lo)) * (H - PAD.t - PAD.b);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `${symbol}: exchange vs ledger, last hour` });
  for (const [start, end] of s.holds) {
    const x0 = x(Math.max(start, now - span));
    const x1 = x(end ?? now);
    svg.append(el('rect', { x: x0, y: PAD.t, width: Math.max(2, x1 - x0), height: H - PAD.t - PAD.b, class: 'c-hold' }));
  }
  svg.append(el('line', { x1: PAD.l, x2: W - PAD.r, y1: y(0), y2: y(0), class: 'c-zero' }));
  svg.append(el('path', { d: stepPath(s.ex, x, y, now, span), class: 'c-ex' }));
  svg.append(el('path', { d: stepPath(s.led, x, y, now, span), class: 'c-led' }));
  for (const v of [hi - padv, lo + padv]) {
    const t = el('text', { x: PAD.l - 4, y: y(v) + 3, class: 'c-axis', 'text-anchor': 'end' });
    t.textContent = fmt(v);
    svg.append(t);
  }
  const l = el('text', { x: PAD.l, y: H - 2, class: 'c-axis' });
  l.textContent = `-${Math.round(span / 60_000)} min`;
  const r = el('text', { x: W - PAD.r, y: H - 2, class: 'c-axis', 'text-anchor': 'end' });
  r.textContent = 'now';
  svg.append(l, r);
  host.replaceChildren(svg);
}
