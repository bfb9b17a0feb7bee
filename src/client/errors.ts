/**
 * Errors of the strategy client. None of them means the plan was withdrawn: once added, a plan is decided
 * by the gates whatever the caller does (it expires by age, `APPLY_MAX_PLAN_AGE_SEC`, default 120 s); its result still reaches
 * `onResult` while the client is open.
 */

/** Base class: every client error carries the plan id when there is one. */
export class P3ClientError extends Error {
  constructor(
    message: string,
    /** The plan concerned ('' when none). */
    readonly planId = '',
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The plan is malformed (the plan schema refused it): nothing was submitted. `issues` are zod's messages. */
export class P3InvalidPlanError extends P3ClientError {
  constructor(
    message: string,
    readonly issues: string[],
  ) {
    super(message);
  }
}

/** No final result within the submit's `timeoutMs`: the plan may still execute. */
export class P3TimeoutError extends P3ClientError {}

/** The caller's AbortSignal fired while waiting: the plan may still execute. */
export class P3AbortError extends P3ClientError {}

/** The client was closed (or never reached Redis) before the plan's final result. */
export class P3ClosedError extends P3ClientError {}
