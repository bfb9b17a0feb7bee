/** Entry point of the `apply-layer` service (`p3 run apply-layer`). Not implemented yet. */
import type { Env } from '../../config/env.js';
import type { Service } from '../runtime.js';

/** Builds the apply-layer service from the environment. @throws ConfigError for a bad variable */
export async function createApplyLayerService(_env: Env): Promise<Service> {
  throw new Error('apply-layer is not implemented yet');
}
