/**
 * The names of the services `p3 run` knows, in start order. The services themselves are built by
 * `buildServices` (src/services/index.ts), which imports each service's folder; the names live here so the
 * ACL users, `p3 doctor`, the harness and the tests can name a service without loading any.
 */

/** The four services, in start order (also the systemd unit suffixes `quantum-<name>`). */
export const SERVICE_NAMES = ['governor', 'position-state-brain', 'reconcile-engine', 'apply-layer'] as const;
/** One of {@link SERVICE_NAMES}. */
export type ServiceName = (typeof SERVICE_NAMES)[number];

/** Expands `all` and validates names. @throws Error for an unknown service name */
export function resolveServiceNames(names: string[]): ServiceName[] {
  const out: ServiceName[] = [];
  for (const n of names) {
    if (n === 'all') out.push(...SERVICE_NAMES);
    else if ((SERVICE_NAMES as readonly string[]).includes(n)) out.push(n as ServiceName);
    else throw new Error(`unknown service ${n}; expected one of ${SERVICE_NAMES.join(', ')} or all`);
  }
  return [...new Set(out)];
}
