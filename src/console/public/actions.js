// The action dialog (hold set / clear, ledger set with typed confirmation, flatten with typed confirmation) and the trading-state form.
// Every action needs the token and an operator name; the server refuses otherwise and the message is shown.

import { api, auth } from './api.js';
import { h, fill, toast } from './dom.js';

const dlg = () => document.getElementById('action-dialog');
let current = null;

function field(label, input) {
  return h('label', {}, label, input);
}

function show(message, kind) {
  const m = document.getElementById('action-message');
  m.textContent = message;
  m.className = `message message-${kind}`;
  m.hidden = !message;
}

function needWho() {
  if (!auth.operator) return 'enter your name under "Operator & token" first (it is recorded with the action)';
  return '';
}

/** Opens the dialog for `kind` (hold-set | hold-clear | ledger-set | flatten) on `row` (a symbols row). */
export function openAction(kind, row, info) {
  const symbol = row.symbol;
  current = { kind, symbol, forceAsked: false };
  const title = { 'hold-set': `Hold ${symbol}`, 'hold-clear': `Clear the hold of ${symbol}`, 'ledger-set': `Set the ledger of ${symbol}`, flatten: `Flatten ${symbol}` }[kind];
  document.getElementById('action-title').textContent = title;
  const fields = [];
  if (kind === 'hold-set') fields.push(field('TTL (seconds)', h('input', { name: 'ttl_sec', type: 'number', min: 1, value: info?.hold_ttl_sec ?? 900 })));
  if (kind === 'ledger-set') {
    fields.push(h('p', { class: 'muted' }, `exchange says ${row.exchange_amt || '–'}, ledger says ${row.ledger_amt || '–'}; signed amount, -0.002 is short`));
    fields.push(field('Amount', h('input', { name: 'amount', autocomplete: 'off', value: row.exchange_amt || '', required: true })));
  }
  if (kind === 'hold-clear' && row.hold.owner === 'engine') fields.push(h('p', { class: 'muted' }, 'An engine hold: if the drift is still there, the engine holds again on its next pass.'));
  if (kind === 'flatten') fields.push(h('p', { class: 'message message-error' }, `Closes the whole position of ${symbol} (exchange says ${row.exchange_amt || '–'}) with one reduce-only market order NOW, in every trading state and under any hold.`));
  fields.push(field('Reason', h('input', { name: 'reason', autocomplete: 'off', required: true, placeholder: 'why (recorded)' })));
  fill(document.getElementById('action-fields'), fields);
  document.getElementById('confirm-box').hidden = kind !== 'flatten';
  document.getElementById('confirm-input').value = '';
  document.getElementById('confirm-text').textContent = kind === 'flatten' ? `Type ${symbol} to flatten it` : `Type ${symbol} to write anyway`;
  document.getElementById('action-submit').textContent = 'Apply';
  show(needWho(), 'error');
  dlg().showModal();
  document.querySelector('#action-fields input[name=reason]')?.focus();
}

async function submit(ev) {
  ev.preventDefault();
  if (!current) return;
  const form = document.getElementById('action-form');
  const val = (n) => form.querySelector(`[name=${n}]`)?.value?.trim() ?? '';
  const reason = val('reason');
  const { kind, symbol } = current;
  let res;
  if (kind === 'hold-set') res = await api.holdSet(symbol, { reason, ...(val('ttl_sec') ? { ttl_sec: Number(val('ttl_sec')) } : {}) });
  else if (kind === 'hold-clear') res = await api.holdClear(symbol, { reason });
  else if (kind === 'flatten') res = await api.flatten({ symbols: [symbol], reason, confirm: document.getElementById('confirm-input').value.trim() });
  else {
    const body = { amount: val('amount'), reason };
    if (current.forceAsked) Object.assign(body, { force: true, confirm: document.getElementById('confirm-input').value.trim() });
    res = await api.ledgerSet(symbol, body);
    if (res.status === 409) {
      current.forceAsked = true;
      document.getElementById('confirm-box').hidden = false;
      document.getElementById('action-submit').textContent = 'Force write';
      show(res.body.message, 'error');
      document.getElementById('confirm-input').focus();
      return;
    }
  }
  if (res.ok) {
    dlg().close();
    toast(res.body.message + (res.body.warning ? ` (warning: ${res.body.warning})` : ''), 'ok');
  } else {
    show(`refused (${res.status} ${res.body.error}): ${res.body.message}`, 'error');
  }
}

/** Wires the dialog and the trading-state form. */
export function initActions(onDone) {
  document.getElementById('action-form').addEventListener('submit', async (ev) => {
    await submit(ev);
    onDone();
  });
  document.getElementById('action-cancel').addEventListener('click', () => dlg().close());
  document.getElementById('trading-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const res = await api.tradingState({ state: f.state.value, reason: f.reason.value.trim(), ...(f.symbol.value ? { symbol: f.symbol.value } : {}) });
    if (res.ok) {
      f.reason.value = '';
      toast(res.body.message, 'ok');
    } else toast(`refused (${res.status} ${res.body.error}): ${res.body.message}`, 'error');
    onDone();
  });
}
