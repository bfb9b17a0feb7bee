/**
 * JSON logs (pino) to stdout. Every line carries `service`; the message text keeps the seeds' shapes
 * (`P3.3 DENY plan <id> reason=...`, `[RECONCILE_CLOSE_AUDIT] ...`) so operators' greps keep working.
 */
import { pino, type Logger } from 'pino';

/** Log levels accepted in `*_LOG_LEVEL` variables (seed 001 uses upper-case `INFO`). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Creates the logger of one service (`service` field on every line). Writes synchronously to fd 1. */
export function createLogger(service: string, level: LogLevel = 'info'): Logger {
  return pino({ level, base: { service }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
}

export type { Logger };
