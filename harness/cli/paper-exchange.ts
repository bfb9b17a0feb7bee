/**
 * `p3 paper-exchange --port N [--host H] [--symbols A,B] [--positions SYM=AMT,...] [--mark-prices SYM=P,...]
 * [--api-key K --api-secret S] [--taker-fee-rate R] [--ws-max-connection-ms MS]`: runs the Binance-USDⓈ-M-compatible paper exchange (docs/architecture.md#interfaces) until
 * SIGINT/SIGTERM. The key pair is the one given, else `EXCHANGE_API_KEY`/`EXCHANGE_API_SECRET`, else a
 * generated pair printed at start. Exit 2 on a bad option.
 */
import type { Command } from 'commander';
import { ConfigError } from '../../src/config/errors.js';
import { parseDecimal } from '../../src/domain/decimal.js';

/** Parses `SYM=AMT,SYM=AMT` into a record of decimal strings. @throws ConfigError naming `option` */
export function parsePairs(option: string, raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [sym, amt] = part.split('=');
    if (!sym || amt === undefined || parseDecimal(amt) === null || !/^[A-Za-z0-9]{2,30}$/.test(sym.trim())) {
      throw new ConfigError(option, `expected SYM=DECIMAL[,SYM=DECIMAL...], got ${JSON.stringify(part)}`);
    }
    out[sym.trim().toUpperCase()] = amt.trim();
  }
  return out;
}

/** Registers `p3 paper-exchange`. */
export function registerPaperExchangeCommand(program: Command): void {
  program
    .command('paper-exchange')
    .description('run the Binance-USDⓈ-M-compatible paper exchange (admin API under /admin, loopback only)')
    .option('--port <n>', 'TCP port (0 = any free port)', '0')
    .option('--host <addr>', 'bind address', '127.0.0.1')
    .option('--symbols <list>', 'comma-separated symbols', 'BTCUSDT,ETHUSDT')
    .option('--positions <list>', 'initial signed positions, SYM=AMT,...')
    .option('--mark-prices <list>', 'mark prices, SYM=PRICE,...')
    .option('--api-key <key>', 'API key accepted (else EXCHANGE_API_KEY, else generated)')
    .option('--api-secret <secret>', 'API secret (else EXCHANGE_API_SECRET, else generated)')
    .option('--taker-fee-rate <rate>', 'taker commission of every fill, a fraction of its quote quantity in [0, 0.01]', '0.0005')
    .option('--ws-max-connection-ms <ms>', 'user-stream connection lifetime before the server cuts it (Binance: 24 h)', String(24 * 3_600_000))
    .action(async (o: { port: string; host: string; symbols: string; positions?: string; markPrices?: string; apiKey?: string; apiSecret?: string; takerFeeRate: string; wsMaxConnectionMs: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('--port', `must be an integer 0..65535, got ${JSON.stringify(o.port)}`);
      const symbols = o.symbols.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
      for (const s of symbols) if (!/^[A-Z0-9]{2,30}$/.test(s)) throw new ConfigError('--symbols', `bad symbol ${s}`);
      const fee = parseDecimal(o.takerFeeRate);
      if (!fee || fee.lt(0) || fee.gt('0.01')) throw new ConfigError('--taker-fee-rate', `must be a decimal in [0, 0.01], got ${JSON.stringify(o.takerFeeRate)}`);
      const wsMax = Number(o.wsMaxConnectionMs);
      if (!Number.isInteger(wsMax) || wsMax <= 0) throw new ConfigError('--ws-max-connection-ms', `must be a positive integer, got ${JSON.stringify(o.wsMaxConnectionMs)}`);
      const apiKey = o.apiKey ?? process.env.EXCHANGE_API_KEY ?? undefined;
      const apiSecret = o.apiSecret ?? process.env.EXCHANGE_API_SECRET ?? undefined;
      if ((apiKey === undefined) !== (apiSecret === undefined)) throw new ConfigError('--api-key/--api-secret', 'give both the key and the secret, or neither');
      // loaded here: the paper exchange (fastify, ws) is only needed by this command
      const { startPaperExchange } = await import('../paper-exchange/index.js');
      const { waitForSignal } = await import('../../src/host/lifecycle.js');
      const px = await startPaperExchange({
        port,
        host: o.host,
        symbols,
        positions: parsePairs('--positions', o.positions),
        markPrices: parsePairs('--mark-prices', o.markPrices),
        apiKey: apiKey || undefined,
        apiSecret: apiSecret || undefined,
        takerFeeRate: o.takerFeeRate,
        wsMaxConnectionMs: wsMax,
      });
      const info: Record<string, unknown> = { url: px.url, port: px.port, symbols: [...px.book.rules.keys()], api_key: px.apiKey };
      if (!apiKey) info.api_secret = px.apiSecret; // generated: print it so clients can sign
      // one write: a reader that sees the start line also sees the env line (two writes can arrive apart)
      const envLine = apiKey ? '' : `EXCHANGE=paper EXCHANGE_BASE_URL=${px.url} EXCHANGE_API_KEY=${px.apiKey} EXCHANGE_API_SECRET=${px.apiSecret}\n`;
      process.stdout.write(`${JSON.stringify({ msg: 'paper exchange listening', ...info })}\n${envLine}`);
      const sig = await waitForSignal();
      process.stdout.write(`${JSON.stringify({ msg: 'paper exchange stopping', signal: sig })}\n`);
      await px.close();
    });
}
