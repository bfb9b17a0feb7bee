/**
 * The ccxt-shaped facade's entry point (`import { P3Exchange } from 'quantum-p3/ccxt'`): separate from the
 * main entry because it loads ccxt (with every exchange of the library), which `P3Client` alone does not need.
 */
export { P3Exchange, CCXT_ERROR_MAPPING, ccxtErrorFor, exchangeId, unifiedSymbol, type P3ExchangeOptions, type P3Market, type P3Order, type P3Position } from './ccxt-facade.js';
