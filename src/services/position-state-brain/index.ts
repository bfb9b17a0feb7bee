/**
 * Entry point of the `position-state-brain` service (`p3 run position-state-brain`, P3.3): "does our
 * state match the exchange right now?" The service is a list of components sharing one context (logger,
 * Redis, metrics registry); each has `start()` / `stop()` / `readiness()`:
 * - the snapshot publisher (`snapshot.ts`): exchange positions → `quantum:position:snapshot:<SYM>`;
 * - the user data stream (`user-stream.ts`, unless `P33_USER_STREAM=false`): pushed positions →
 *   the same snapshots within milliseconds (`source=stream`); REST then only verifies;
 * - the venue journal (`venue-journal/`, with the stream unless `P33_VENUE_JOURNAL=false`): every fill on the
 *   account → `quantum:stream:exchange.fills` once by trade id; REST `userTrades` closes the gaps;
 * - the permit consumer (`permits.ts`): plans → `quantum:permit:p33:<plan_id>`.
 * Add a component by appending it to `components` below. Variables: `config.ts` (service, snapshots),
 * `permits-config.ts` (permits), `src/adapters/exchange/factory.ts` (`EXCHANGE_*`).
 */
import type { Env } from '../../config/env.js';
import { withSharedBackoff } from '../../adapters/exchange/backoff.js';
import { createExchangeGateway, parseExchangeConfig } from '../../adapters/exchange/factory.js';
import type { ExchangeGateway } from '../../ports/exchange.js';
import { createServiceContext } from '../../host/context.js';
import { parseRedisTarget } from '../../config/redis.js';
import type { Service } from '../../host/service.js';
import { parseBrainConfig } from './config.js';
import { parsePermitsConfig } from './permits-config.js';
import { PermitConsumer } from './permits.js';
import { SnapshotPublisher } from './snapshot.js';
import { UserStreamSnapshots } from './user-stream.js';
import { VenueJournalComponent } from './venue-journal/index.js';
import { sharedBackoffHooks, userStreamEndpoints } from '../../adapters/exchange/user-stream/endpoints.js';

/** One part of the brain service. */
export interface BrainComponent {
  start(): Promise<void>;
  /** Stops after the work in hand; must not close the shared Redis connection. */
  stop(): Promise<void>;
  readiness(): Record<string, boolean>;
}

/**
 * Builds the position-state-brain service from the environment.
 * @throws ConfigError for a bad variable (the CLI exits 2 naming it)
 */
export async function createPositionStateBrainService(env: Env): Promise<Service> {
  const cfg = parseBrainConfig(env);
  // parse every variable before opening anything
  const exchangeCfg = cfg.snapshots.enabled ? parseExchangeConfig(env) : null;
  const permitsCfg = parsePermitsConfig(env);
  const permitConsumerFactory = (c: ReturnType<typeof createServiceContext>) => new PermitConsumer({ redis: c.redis, logger: c.logger, registry: c.registry, instanceId: c.instanceId }, env, permitsCfg);
  const ctx = createServiceContext('position-state-brain', { redis: parseRedisTarget(env), logLevel: cfg.logLevel, instanceId: cfg.instanceId });

  const components: BrainComponent[] = [];
  let gateway: ExchangeGateway | null = null;
  if (exchangeCfg) {
    gateway = withSharedBackoff(createExchangeGateway(exchangeCfg), ctx.redis, ctx.logger);
    const publisher = new SnapshotPublisher(ctx, gateway, cfg.snapshots);
    components.push(publisher);
    if (cfg.snapshots.userStream.enabled) {
      const ep = userStreamEndpoints(exchangeCfg, cfg.snapshots.userStream.wsUrl);
      const stream = new UserStreamSnapshots({ redis: ctx.redis, logger: ctx.logger, registry: ctx.registry, instanceId: ctx.instanceId }, publisher, cfg.snapshots, {
        ...ep,
        apiKey: exchangeCfg.apiKey,
        keepaliveMs: cfg.snapshots.userStream.keepaliveMs,
        httpTimeoutMs: exchangeCfg.timeoutMs,
        ...sharedBackoffHooks(ctx.redis, ctx.logger),
      });
      components.push(stream);
      if (cfg.snapshots.userStream.venueJournal) {
        const venue = new VenueJournalComponent(ctx, gateway, { symbols: cfg.snapshots.allowlist, verifyIntervalMs: cfg.snapshots.userStream.venueVerifyIntervalMs, mapToLocal: (ms) => stream.mapToLocal(ms) });
        stream.attachVenue(venue);
        components.push(venue);
      }
    }
  }
  components.push(permitConsumerFactory(ctx));

  let stopped = false;
  return {
    name: 'position-state-brain',
    registry: ctx.registry,
    metricsPort: cfg.metricsPort,
    redis: ctx.redis,
    instanceId: ctx.instanceId,
    async start() {
      for (const c of components) await c.start();
      ctx.logger.info({ instance: ctx.instanceId, snapshots: cfg.snapshots.enabled, user_stream: cfg.snapshots.enabled && cfg.snapshots.userStream.enabled, allowlist: cfg.snapshots.allowlist, exchange: exchangeCfg?.exchange ?? null }, 'position-state-brain started');
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of [...components].reverse()) await c.stop().catch((err: Error) => ctx.logger.warn({ err: err.message }, 'component stop failed'));
      await gateway?.close();
      ctx.redis.disconnect();
    },
    readiness() {
      const out: Record<string, boolean> = { redis: ctx.redis.status === 'ready' };
      for (const c of components) Object.assign(out, c.readiness());
      return out;
    },
  };
}
