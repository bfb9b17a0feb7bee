/** Plans library: submit signed plans, read them from the stream, read and write permits. */
export { buildExitPlan, submitPlan, submitSignedPlan, planKeyFromEnv, newPlanId, EXIT_ACTIONS, DEFAULT_PLAN_SOURCE, type ExitAction, type ExitPlanRequest } from './submit.js';
export { planFromEntry, PLAN_POISON_REASONS } from './entry.js';
export { writePermitOnce, readPermit, permitKey, type StoredPermit } from './permit-store.js';
