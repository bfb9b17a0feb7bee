/**
 * Where orders would go, from the exchange variables alone: a loopback simulator, Binance's demo/testnet
 * endpoints, or production (real money). Used to decide defaults and guards that must not depend on a
 * mode's name: `APPLY_MODE=testnet` with `EXCHANGE=binanceusdm` and no demo flag sends real orders.
 * When unsure (no exchange set, an unknown host, a paper exchange on another machine) the answer is
 * `production` or `unknown`, never a safe kind.
 *
 * | kind | when |
 * |---|---|
 * | `local` | `EXCHANGE_BASE_URL` on a loopback host (127.0.0.0/8, localhost, [::1]) and `EXCHANGE` not `binanceusdm`: the paper exchange |
 * | `demo` | `EXCHANGE_BASE_URL` on Binance's demo/testnet hosts, or `EXCHANGE=binanceusdm` with `EXCHANGE_DEMO`/`EXCHANGE_TESTNET` true and no base URL |
 * | `production` | any other base URL, or `EXCHANGE=binanceusdm` without the demo flag (a loopback URL included: a proxy) |
 * | `unknown` | neither `EXCHANGE_BASE_URL` nor a known `EXCHANGE` (e.g. unset) |
 */

/** See the module comment. */
export type EndpointKind = 'local' | 'demo' | 'production' | 'unknown';

/** Hosts of Binance's USDⓈ-M futures test environments (no real money). */
export const DEMO_HOSTS: readonly string[] = ['demo-fapi.binance.com', 'testnet.binancefuture.com'];

const TRUE = ['true', '1', 'yes', 'on'];

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Classifies the exchange endpoint of `env` (see the module comment).
 * @returns the kind and a sentence saying why (for logs, errors and `p3 doctor`)
 */
export function exchangeEndpoint(env: Record<string, string | undefined>): { kind: EndpointKind; why: string } {
  const exchange = (env.EXCHANGE ?? '').trim().toLowerCase();
  const baseUrl = (env.EXCHANGE_BASE_URL ?? '').trim();
  const demoFlag = TRUE.includes((env.EXCHANGE_DEMO ?? '').trim().toLowerCase()) || TRUE.includes((env.EXCHANGE_TESTNET ?? '').trim().toLowerCase());
  if (baseUrl !== '') {
    let host: string;
    try {
      host = new URL(baseUrl).hostname;
    } catch {
      return { kind: 'unknown', why: `EXCHANGE_BASE_URL ${JSON.stringify(baseUrl)} is not a URL` };
    }
    // loopback is the paper exchange only when EXCHANGE says so (it defaults to paper): binanceusdm through a
    // local proxy or tunnel is still Binance, production unless the demo flag says otherwise
    if (isLoopback(host) && exchange !== 'binanceusdm') return { kind: 'local', why: `EXCHANGE_BASE_URL is on this machine (${host})` };
    if (isLoopback(host)) return demoFlag ? { kind: 'demo', why: `EXCHANGE=binanceusdm on a loopback URL (${host}) with EXCHANGE_DEMO` } : { kind: 'production', why: `EXCHANGE=binanceusdm on a loopback URL (${host}): a proxy or tunnel to Binance, not the paper exchange` };
    if (DEMO_HOSTS.includes(host.toLowerCase())) return { kind: 'demo', why: `EXCHANGE_BASE_URL is Binance's test environment (${host})` };
    return { kind: 'production', why: `EXCHANGE_BASE_URL ${host} is neither loopback nor a known demo/testnet host (${DEMO_HOSTS.join(', ')})` };
  }
  if (exchange === 'binanceusdm') {
    return demoFlag ? { kind: 'demo', why: 'EXCHANGE=binanceusdm with EXCHANGE_DEMO (demo-fapi.binance.com)' } : { kind: 'production', why: 'EXCHANGE=binanceusdm without EXCHANGE_DEMO: Binance production' };
  }
  return { kind: 'unknown', why: exchange === '' ? 'EXCHANGE and EXCHANGE_BASE_URL are not set' : `EXCHANGE=${exchange} without EXCHANGE_BASE_URL` };
}

/** True when the endpoint certainly moves no real money (`local` or `demo`). */
export function isSafeEndpoint(kind: EndpointKind): boolean {
  return kind === 'local' || kind === 'demo';
}
