// Opens and closes a position through the gates: npx tsx examples/open-close.ts --symbol BTCUSDT --qty 0.002
// (REDIS_URL and P3_KEY_EXIT_BRAIN name the stack). Exit 0 only when both plans EXECUTED.
import { parseArgs } from 'node:util';
import { P3Client } from 'quantum-p3';

const { values: a } = parseArgs({ options: { symbol: { type: 'string', default: 'BTCUSDT' }, qty: { type: 'string', default: '0.002' } } });
const client = P3Client.fromEnv();
const open = await client.submit({ symbol: a.symbol!, action: 'OPEN', side: 'BUY', qty: a.qty! });
console.log('open ', open.status, open.status === 'EXECUTED' ? `${open.filledQty} @ ${open.avgPrice}` : `${open.reason} ${open.detail}`);
const close = await client.submit({ symbol: a.symbol!, action: 'FULL_CLOSE' });
console.log('close', close.status, close.status === 'EXECUTED' ? `${close.filledQty} @ ${close.avgPrice}` : `${close.reason} ${close.detail}`);
await client.close();
process.exit(open.status === 'EXECUTED' && close.status === 'EXECUTED' ? 0 : 1);
