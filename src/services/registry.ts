/**
 * The services `p3 run` knows, each built by a factory in its own folder from the environment.
 * Factories throw `ConfigError` (exit 2) for a bad variable.
 */
import type { Env } from '../config/env.js';
import type { Service } from './runtime.js';

/** The four services, in start order (also the systemd unit suffixes `quantum-<name>`). */
export const SERVICE_NAMES = ['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer'] as const;
/** One of {@link SERVICE_NAMES}. */
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Builds one service from the environment. */
export type ServiceFactory = (env: Env) => Promise<Service>;

const FACTORIES: Record<ServiceName, () => Promise<ServiceFactory>> = {
  governor: async () => (await import('./governor/index.js')).createGovernorService,
  'position-state-brain': async () => (await import('./position-state-brain/index.js')).createPositionStateBrainService,
  'reconcile-engine': async () => (await import('./reconcile-engine/index.js')).createReconcileEngineService,
  'apply-layer': async () => (await import('./apply-layer/index.js')).createApplyLayerService,
};

/** Expands `all` and validates names. @throws Error for an unknown service name */
export function resolveServiceNames(names: string[]): ServiceName[] {
  const out: ServiceName[] = [];
  for (const n of names) {
    if (n === 'all') out.push(...SERVICE_NAMES);
    else if ((SERVICE_NAMES as readonly string[]).includes(n)) out.push(n as ServiceName);
    else throw new Error(`unknown service ${n}; expected one of ${SERVICE_NAMES.join(', ')} or all`);
  }
  return [...new Set(out)];
}

/** Builds the named services from `env`. @throws ConfigError */
export async function buildServices(names: ServiceName[], env: Env): Promise<Service[]> {
  const out: Service[] = [];
  for (const n of names) out.push(await (await FACTORIES[n]())(env));
  return out;
}
