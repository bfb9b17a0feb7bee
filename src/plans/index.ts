/** Plans library: submit signed plans, read them from the stream, read and write permits. */
export { buildStrategyPlan, submitPlan, submitSignedPlan, planKeyFromEnv, newPlanId, EXIT_ACTIONS, DEFAULT_PLAN_SOURCE, type StrategyAction, type StrategyPlanRequest } from './submit.js';
export { planFromEntry, PLAN_POISON_REASONS } from './entry.js';
export { writePermitOnce, readPermit, permitKey, type StoredPermit } from './permit-store.js';
