/** The configuration error of every service and command (kept free of dependencies: `p3 --help` loads it). */

/** Thrown for an invalid configuration; `variable` names the offending environment variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`invalid configuration: ${variable}: ${message}`);
  }
}
