/**
 * The services `p3 run` knows, each built by a factory in its own folder from the environment (their names:
 * src/host/service-names.ts). Factories throw `ConfigError` (exit 2) for a bad variable. Each service is
 * loaded on demand, so `p3 run governor` loads only the governor's modules.
 */
import type { Env } from '../config/env.js';
import type { ServiceName } from '../host/service-names.js';
import type { Service } from '../host/service.js';

/** Builds one service from the environment. */
export type ServiceFactory = (env: Env) => Promise<Service>;

const FACTORIES: Record<ServiceName, () => Promise<ServiceFactory>> = {
  governor: async () => (await import('./governor/index.js')).createGovernorService,
  'position-state-brain': async () => (await import('./position-state-brain/index.js')).createPositionStateBrainService,
  'reconcile-engine': async () => (await import('./reconcile-engine/index.js')).createReconcileEngineService,
  'apply-layer': async () => (await import('./apply-layer/index.js')).createApplyLayerService,
};

/** Builds the named services from `env`. @throws ConfigError */
export async function buildServices(names: ServiceName[], env: Env): Promise<Service[]> {
  const out: Service[] = [];
  for (const n of names) out.push(await (await FACTORIES[n]())(env));
  return out;
}
