/**
 * Account and balance endpoints of the paper exchange (docs/architecture.md#exchange-and-paper-exchange-fidelity), shaped as Binance USDⓈ-M
 * documents them, single-asset mode, one USDT wallet, cross margin, leverage 20:
 * - `GET /fapi/v3/balance` and `GET /fapi/v2/balance` — "Futures Account Balance V3 (USER_DATA)", weight 5
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Futures-Account-Balance-V3):
 *   `[{accountAlias, asset, balance, crossWalletBalance, crossUnPnl, availableBalance, maxWithdrawAmount,
 *   marginAvailable, updateTime}]`;
 * - `GET /fapi/v3/account` and `GET /fapi/v2/account` — "Account Information V3 (USER_DATA)", weight 5
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Account-Information-V3):
 *   totals (`totalWalletBalance`, `totalUnrealizedProfit`, `totalMarginBalance`, `availableBalance`, ...),
 *   `assets[]` and `positions[]` (only symbols with a position, as V3 does).
 * Decimals are strings as Binance sends them. The wallet is the user stream hub's (10000 USDT plus
 * realized PnL), so `ACCOUNT_UPDATE` `wb` and these answers agree.
 */
import { Decimal, fmt } from '../../src/domain/decimal.js';
import type { PaperBook } from './state.js';

/** Leverage of every paper position (initial margin = notional / 20). */
const LEVERAGE = 20;

interface Totals {
  wallet: Decimal;
  upnl: Decimal;
  initial: Decimal;
  positions: Array<{ symbol: string; amt: Decimal; upnl: Decimal; notional: Decimal; initial: Decimal; updateTime: number }>;
}

function totals(book: PaperBook, wallet: Decimal): Totals {
  let upnl = new Decimal(0);
  let initial = new Decimal(0);
  const positions: Totals['positions'] = [];
  for (const symbol of book.rules.keys()) {
    const p = book.positionOf(symbol);
    if (p.amt.isZero()) continue;
    const mark = book.markOf(symbol);
    const u = p.amt.mul(mark.minus(p.entry));
    const notional = p.amt.mul(mark);
    const im = notional.abs().div(LEVERAGE);
    upnl = upnl.plus(u);
    initial = initial.plus(im);
    positions.push({ symbol, amt: p.amt, upnl: u, notional, initial: im, updateTime: p.updateTime });
  }
  return { wallet, upnl, initial, positions };
}

const d8 = (d: Decimal) => d.toFixed(8);

/** `GET /fapi/v3/balance` (and v2). */
export function balanceV3(book: PaperBook, wallet: Decimal, nowMs: number): unknown[] {
  const t = totals(book, wallet);
  const available = Decimal.max(0, t.wallet.plus(t.upnl).minus(t.initial));
  return [{ accountAlias: 'SgsR', asset: 'USDT', balance: d8(t.wallet), crossWalletBalance: d8(t.wallet), crossUnPnl: d8(t.upnl), availableBalance: d8(available), maxWithdrawAmount: d8(available), marginAvailable: true, updateTime: nowMs }];
}

/** `GET /fapi/v3/account` (and v2). */
export function accountV3(book: PaperBook, wallet: Decimal, nowMs: number): unknown {
  const t = totals(book, wallet);
  const margin = t.wallet.plus(t.upnl);
  const available = Decimal.max(0, margin.minus(t.initial));
  return {
    totalInitialMargin: d8(t.initial),
    totalMaintMargin: '0.00000000',
    totalWalletBalance: d8(t.wallet),
    totalUnrealizedProfit: d8(t.upnl),
    totalMarginBalance: d8(margin),
    totalPositionInitialMargin: d8(t.initial),
    totalOpenOrderInitialMargin: '0.00000000',
    totalCrossWalletBalance: d8(t.wallet),
    totalCrossUnPnl: d8(t.upnl),
    availableBalance: d8(available),
    maxWithdrawAmount: d8(available),
    assets: [
      { asset: 'USDT', walletBalance: d8(t.wallet), unrealizedProfit: d8(t.upnl), marginBalance: d8(margin), maintMargin: '0.00000000', initialMargin: d8(t.initial), positionInitialMargin: d8(t.initial), openOrderInitialMargin: '0.00000000', crossWalletBalance: d8(t.wallet), crossUnPnl: d8(t.upnl), availableBalance: d8(available), maxWithdrawAmount: d8(available), updateTime: nowMs },
    ],
    positions: t.positions.map((p) => ({ symbol: p.symbol, positionSide: book.dualSidePosition ? (p.amt.isNeg() ? 'SHORT' : 'LONG') : 'BOTH', positionAmt: fmt(p.amt), unrealizedProfit: d8(p.upnl), isolatedMargin: '0', notional: fmt(p.notional), isolatedWallet: '0', initialMargin: d8(p.initial), maintMargin: '0', updateTime: p.updateTime })),
  };
}
