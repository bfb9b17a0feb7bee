/**
 * Request weights of the paper exchange's endpoints, as Binance USDⓈ-M documents them, for the
 * `X-MBX-USED-WEIGHT-1M` header ("Every request will contain X-MBX-USED-WEIGHT-(intervalNum)(intervalLetter)
 * in the response headers which has the current used weight for the IP",
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info, LIMITS / IP Limits).
 *
 * Each weight cites the "Request Weight" section of the endpoint's page under
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/ :
 * - `GET /fapi/v1/ping` 1 (market-data/rest-api/Test-Connectivity), `GET /fapi/v1/time` 1 (Check-Server-Time),
 *   `GET /fapi/v1/exchangeInfo` 1 (Exchange-Information)
 * - `GET /fapi/v1/premiumIndex` 1 with `symbol`, 10 without (market-data/rest-api/Mark-Price)
 * - `GET /fapi/v1/leverageBracket` 1 (account/rest-api/Notional-and-Leverage-Brackets)
 * - `GET /fapi/v2/positionRisk` 5, `GET /fapi/v3/positionRisk` 5 (trade/rest-api/Position-Information-V2, -V3)
 * - `GET /fapi/v2|v3/balance` 5 (account/rest-api/Futures-Account-Balance-V2, -V3),
 *   `GET /fapi/v2|v3/account` 5 (account/rest-api/Account-Information-V2, -V3)
 * - `GET /fapi/v1/positionSide/dual` 30 (account/rest-api/Get-Current-Position-Mode),
 *   `POST /fapi/v1/positionSide/dual` 1 (trade/rest-api/Change-Position-Mode)
 * - `POST /fapi/v1/order` 0: "1 on 10s order rate limit(X-MBX-ORDER-COUNT-10S); 1 on 1min order rate
 *   limit(X-MBX-ORDER-COUNT-1M); 0 on IP rate limit(x-mbx-used-weight-1m)" (trade/rest-api)
 * - `GET /fapi/v1/order` 1 (trade/rest-api/Query-Order)
 * - `GET /fapi/v1/userTrades` 5 (trade/rest-api/Account-Trade-List), `GET /fapi/v1/allOrders` 5 (trade/rest-api/All-Orders)
 * - `POST|PUT|DELETE /fapi/v1/listenKey` 1 (user-data-streams/Start-, Keepalive-, Close-User-Data-Stream)
 * Any other path (answered 404 by the paper exchange) weighs 1.
 */

/** Weight of one request `method path` with its parameters (`symbol` matters for premiumIndex). */
export function requestWeight(method: string, path: string, params: Record<string, string | undefined>): number {
  switch (`${method} ${path}`) {
    case 'POST /fapi/v1/order':
      return 0;
    case 'GET /fapi/v1/premiumIndex':
      return params.symbol === undefined ? 10 : 1;
    case 'GET /fapi/v2/positionRisk':
    case 'GET /fapi/v3/positionRisk':
    case 'GET /fapi/v2/balance':
    case 'GET /fapi/v3/balance':
    case 'GET /fapi/v2/account':
    case 'GET /fapi/v3/account':
    case 'GET /fapi/v1/userTrades':
    case 'GET /fapi/v1/allOrders':
      return 5;
    case 'GET /fapi/v1/positionSide/dual':
      return 30;
    default:
      return 1;
  }
}
