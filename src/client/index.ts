/**
 * The package's public API (`import { P3Client } from 'quantum-p3'`): the strategy client, its result types
 * and errors, and the ccxt-shaped facade. Semver applies to what this module exports (CHANGELOG.md).
 */
export { P3Client, type P3ClientOptions } from './client.js';
export { P3ClientError, P3InvalidPlanError, P3TimeoutError, P3AbortError, P3ClosedError } from './errors.js';
export { HOLD_REASONS, TRANSIENT_REASONS, isFinalStatus, parsePermitDecisions, toP3Result } from './result.js';
export type { P3Result, ExecutedResult, DenyResult, SkippedResult, RejectedResult, FailedResult, PermitOutcome } from './result.js';
export type { PlanRequest, SubmitOptions, HoldEvent, PositionView, SymbolStatus } from './types.js';
export { DEFAULT_TIMING, type ProducerTiming } from './producer.js';
export { canonicalJson, signPlan, keyEnvName, type PlanInput, type SignedPlanFields } from '../domain/plan.js';
