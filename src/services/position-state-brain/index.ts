/** Entry point of the `position-state-brain` service (`p3 run position-state-brain`). Not implemented yet. */
import type { Env } from '../../config/env.js';
import type { Service } from '../runtime.js';

/** Builds the position-state-brain service from the environment. @throws ConfigError for a bad variable */
export async function createPositionStateBrainService(_env: Env): Promise<Service> {
  throw new Error('position-state-brain is not implemented yet');
}
