/** Entry point of the `reconcile-engine` service (`p3 run reconcile-engine`). Not implemented yet. */
import type { Env } from '../../config/env.js';
import type { Service } from '../runtime.js';

/** Builds the reconcile-engine service from the environment. @throws ConfigError for a bad variable */
export async function createReconcileEngineService(_env: Env): Promise<Service> {
  throw new Error('reconcile-engine is not implemented yet');
}
