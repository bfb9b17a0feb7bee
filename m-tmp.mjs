const st=()=>{const s=(require_fs()).readFileSync('/proc/self/status','utf8');return (/VmHWM:\s+(\d+)/.exec(s)[1]/1024|0)+'/'+(/VmRSS:\s+(\d+)/.exec(s)[1]/1024|0)};
import * as fs from 'node:fs'; function require_fs(){return fs}
console.log('start', st(), process.memoryUsage().heapUsed/1e6|0);
const m = await import('/work/wt-perf-mem/dist/bf071861ca936c71//src/adapters/exchange/ccxt-module.js');
const c = await m.loadCcxt();
console.log('loaded', st(), process.memoryUsage().heapUsed/1e6|0);
const a = new c.binanceusdm({});
console.log('1 instance', st(), process.memoryUsage().heapUsed/1e6|0);
const b = new c.binanceusdm({});
console.log('2 instances', st(), process.memoryUsage().heapUsed/1e6|0);
globalThis.gc?.();
console.log('gc', st(), process.memoryUsage().heapUsed/1e6|0);
