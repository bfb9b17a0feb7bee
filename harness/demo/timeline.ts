/**
 * The demo's timeline: what happened to each scenario's symbol, with milliseconds since the scenario's
 * injection, printed as text a person can follow (or JSON lines with `--json`).
 */

/** Kinds of timeline entries, in the order a heal usually goes through them. */
export type TimelineKind =
  | 'INJECTED'
  | 'NOTICED'
  | 'STATUS'
  | 'HOLD_SET'
  | 'PERMITS'
  | 'CLOSE_PUBLISHED'
  | 'ORDER_FILLED'
  | 'RESULT'
  | 'LEDGER_REPAIRED'
  | 'LEDGER_EVENT'
  | 'HOLD_CLEARED'
  | 'HEALED'
  | 'TIMEOUT';

/** One line of the timeline. */
export interface TimelineEntry {
  type: 'event';
  scenario: string;
  symbol: string;
  kind: TimelineKind;
  /** Milliseconds since the scenario's (current phase's) injection. */
  t_ms: number;
  /** Wall clock, epoch ms. */
  ts_ms: number;
  detail: string;
  data?: Record<string, unknown>;
}

/** Prints timeline entries as text or JSON lines. */
export class TimelinePrinter {
  constructor(
    private readonly json: boolean,
    private readonly out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  ) {}

  /** Prints any JSON-able record in JSON mode, or `text` otherwise. */
  line(record: Record<string, unknown>, text: string): void {
    this.out(this.json ? JSON.stringify(record) : text);
  }

  /** Prints one timeline entry. */
  event(e: TimelineEntry): void {
    const t = `+${String(e.t_ms).padStart(6)} ms`;
    this.line(e as unknown as Record<string, unknown>, `${t}  ${e.scenario.padEnd(18)} ${e.symbol.padEnd(8)} ${e.kind.padEnd(15)} ${e.detail}`);
  }

  /** Prints the summary table. */
  summary(rows: Array<{ scenario: string; symbol: string; healed: boolean; noticed_by: string | null; time_to_hold_ms: number | null; time_to_heal_ms: number | null; closes: string[] }>): void {
    if (this.json) {
      this.out(JSON.stringify({ type: 'summary', scenarios: rows, all_healed: rows.every((r) => r.healed) }));
      return;
    }
    const head = ['scenario', 'symbol', 'healed', 'noticed by', 'time to hold', 'time to heal', 'close orders'];
    const body = rows.map((r) => [
      r.scenario,
      r.symbol,
      r.healed ? 'yes' : 'NO',
      r.noticed_by ?? '-',
      r.time_to_hold_ms === null ? '-' : `${r.time_to_hold_ms} ms`,
      r.time_to_heal_ms === null ? '-' : `${r.time_to_heal_ms} ms`,
      r.closes.join(', ') || '-',
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
    const fmtRow = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
    this.out('');
    this.out(fmtRow(head));
    this.out(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of body) this.out(fmtRow(b));
    this.out('');
  }
}
