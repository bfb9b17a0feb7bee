/**
 * A pure model of one symbol's permit/send sequence, to check the send-time gate (`send-gate.ts`) over
 * generated interleavings (test/apply/send-gate.property.test.ts). No I/O, no clock: time is a counter
 * advanced only by `tick`, so events in the same millisecond are modelled too.
 *
 * Actors and what each step means (one step = one atomic action of the real system):
 * - snapshot publisher: `snapStart` sends a positions request (the snapshot's `ts_ms` = now, as
 *   snapshot.ts does), `snapObserve` is the exchange answering it with the CURRENT position, `snapLand`
 *   writes it (never over a newer one, as snapshotWrite-2.lua);
 * - brain + governor: `permit` sizes an exit (a fraction of the landed snapshot, rounded DOWN to whole
 *   lots) with NO check of its own (the worst case: a paused governor releasing old permits);
 * - apply layer: `send` runs the gate and marks the order in flight in one step (applyBegin-13.lua);
 *   `record` removes it and sets `last_fill_ms = now` for a fill (applyRecord-8.lua);
 * - exchange: `fill` executes an order in flight against the position at that moment, `reject` answers
 *   an order without a fill.
 *
 * Checked at every fill (the invariants of docs/architecture.md#send-time-gate): the position the order executes against is the one
 * its permit was sized on (`sized_on_changed_position`), and a reduce-only exit never exceeds it
 * (`exceeds_position`, Binance -2022).
 */
import { sendGate, type SendGateInput, type SendGateVerdict } from '../../src/domain/send-gate.js';

/** One step of the model (indices pick among pending items modulo their count; no item = no-op). */
export type ModelEvent =
  | { kind: 'tick' }
  | { kind: 'snapStart' }
  | { kind: 'snapObserve'; i: number }
  | { kind: 'snapLand'; i: number }
  | { kind: 'permit'; fraction: 0.25 | 0.5 | 0.75 | 1 }
  | { kind: 'send'; i: number }
  | { kind: 'fill'; i: number }
  | { kind: 'reject'; i: number }
  | { kind: 'record'; i: number };

/** A broken invariant, with the step index it happened at. */
export interface ModelViolation {
  step: number;
  kind: 'sized_on_changed_position' | 'exceeds_position';
  detail: string;
}

/** Outcome of {@link runSendGateModel}. */
export interface ModelRun {
  violations: ModelViolation[];
  /** Orders that reached the exchange, and sends the gate refused. */
  sent: number;
  refused: number;
  /** Final position, whole lots. */
  position: number;
}

interface Order {
  cid: string;
  qty: number;
  sizedOn: number;
  state: 'inflight' | 'filled' | 'rejected';
}

/**
 * Runs `events` from a long position of `startLots` lots.
 * @param gate the send-time rule under test (default {@link sendGate}; a test passes `() => ({ok: true})`
 *   to show the invariants break without it)
 */
export function runSendGateModel(events: readonly ModelEvent[], startLots: number, gate: (i: SendGateInput) => SendGateVerdict = sendGate): ModelRun {
  let now = 1;
  let position = startLots;
  let landed: { ts: number; pos: number } | null = { ts: now, pos: position };
  const requests: Array<{ ts: number; observed: number | null }> = [];
  const permits: Array<{ qty: number; snapTs: number; snapPos: number; used: boolean }> = [];
  const orders: Order[] = [];
  const inflight = new Set<string>();
  let lastFill: number | null = null;
  const violations: ModelViolation[] = [];
  let sent = 0;
  let refused = 0;
  const pick = <T>(xs: T[], i: number): T | undefined => (xs.length === 0 ? undefined : xs[Math.abs(i) % xs.length]);

  events.forEach((e, step) => {
    switch (e.kind) {
      case 'tick':
        now += 1;
        break;
      case 'snapStart':
        requests.push({ ts: now, observed: null });
        break;
      case 'snapObserve': {
        const r = pick(requests.filter((x) => x.observed === null), e.i);
        if (r) r.observed = position;
        break;
      }
      case 'snapLand': {
        const ready = requests.filter((x) => x.observed !== null);
        const r = pick(ready, e.i);
        if (!r) break;
        requests.splice(requests.indexOf(r), 1);
        if (!landed || r.ts >= landed.ts) landed = { ts: r.ts, pos: r.observed as number };
        break;
      }
      case 'permit': {
        if (!landed || landed.pos <= 0) break;
        const qty = Math.floor(landed.pos * e.fraction);
        if (qty > 0) permits.push({ qty, snapTs: landed.ts, snapPos: landed.pos, used: false });
        break;
      }
      case 'send': {
        const p = pick(permits.filter((x) => !x.used), e.i);
        if (!p) break;
        p.used = true;
        const cid = `o${orders.length + 1}`;
        const v = gate({ snapshotTsMs: p.snapTs, lastFillMs: lastFill, inflight: [...inflight], ownCid: cid });
        if (!v.ok) {
          refused++;
          break;
        }
        inflight.add(cid);
        orders.push({ cid, qty: p.qty, sizedOn: p.snapPos, state: 'inflight' });
        sent++;
        break;
      }
      case 'fill':
      case 'reject': {
        const o = pick(orders.filter((x) => x.state === 'inflight'), e.i);
        if (!o) break;
        if (e.kind === 'reject') {
          o.state = 'rejected';
          break;
        }
        if (position !== o.sizedOn) violations.push({ step, kind: 'sized_on_changed_position', detail: `order ${o.cid} sized on ${o.sizedOn} lots executes against ${position}` });
        if (o.qty > position) {
          violations.push({ step, kind: 'exceeds_position', detail: `order ${o.cid} of ${o.qty} lots exceeds the position ${position} (-2022)` });
          o.state = 'rejected';
          break;
        }
        position -= o.qty;
        o.state = 'filled';
        break;
      }
      case 'record': {
        const o = pick(orders.filter((x) => x.state !== 'inflight' && inflight.has(x.cid)), e.i);
        if (!o) break;
        inflight.delete(o.cid);
        if (o.state === 'filled') lastFill = Math.max(lastFill ?? 0, now);
        break;
      }
    }
  });
  return { violations, sent, refused, position };
}
