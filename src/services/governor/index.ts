/** Entry point of the `governor` service (`p3 run governor`). Not implemented yet. */
import type { Env } from '../../config/env.js';
import type { Service } from '../runtime.js';

/** Builds the governor service from the environment. @throws ConfigError for a bad variable */
export async function createGovernorService(_env: Env): Promise<Service> {
  throw new Error('governor is not implemented yet');
}
