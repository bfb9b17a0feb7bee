// The console's JSON API and live stream. The token lives in sessionStorage (this tab only); no cookies.

const TOKEN_KEY = 'p3.console.token';
const OPERATOR_KEY = 'p3.console.operator';

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  },
  set token(v) {
    if (v) sessionStorage.setItem(TOKEN_KEY, v);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  get operator() {
    return localStorage.getItem(OPERATOR_KEY) ?? '';
  },
  set operator(v) {
    if (v) localStorage.setItem(OPERATOR_KEY, v);
    else localStorage.removeItem(OPERATOR_KEY);
  },
};

function headers(extra = {}) {
  const h = { ...extra };
  if (auth.token) h.authorization = `Bearer ${auth.token}`;
  if (auth.operator) h['x-p3-operator'] = auth.operator;
  return h;
}

/** An API answer: {ok, status, body}. Never throws for HTTP errors (body.message says why). */
async function call(method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (err) {
    return { ok: false, status: 0, body: { error: 'network', message: `the console did not answer: ${err.message}` } };
  }
  let json = null;
  try {
    json = await res.json();
  } catch {
    json = { error: 'bad_answer', message: `HTTP ${res.status}` };
  }
  return { ok: res.ok, status: res.status, body: json };
}

export const api = {
  symbols: () => call('GET', '/api/symbols'),
  services: () => call('GET', '/api/services'),
  events: (q = {}) => call('GET', `/api/events?${new URLSearchParams(Object.entries(q).filter(([, v]) => v !== undefined && v !== ''))}`),
  plan: (id) => call('GET', `/api/plans/${encodeURIComponent(id)}`),
  holdSet: (symbol, body) => call('POST', `/api/holds/${encodeURIComponent(symbol)}`, body),
  holdClear: (symbol, body) => call('DELETE', `/api/holds/${encodeURIComponent(symbol)}`, body),
  ledgerSet: (symbol, body) => call('POST', `/api/ledger/${encodeURIComponent(symbol)}`, body),
  tradingState: (body) => call('POST', '/api/trading-state', body),
  flatten: (body) => call('POST', '/api/flatten', body),
};

/**
 * Follows /api/stream (server-sent events read with fetch, so the token can go in a header) and
 * reconnects after a failure. onMessage(event, data); onState('live' | 'down', detail).
 */
export async function follow(onMessage, onState) {
  for (;;) {
    try {
      const res = await fetch('/api/stream', { headers: headers(), cache: 'no-store' });
      if (!res.ok || !res.body) {
        let msg = `HTTP ${res.status}`;
        try {
          msg = (await res.json()).message ?? msg;
        } catch {
          /* not JSON */
        }
        throw new Error(msg);
      }
      onState('live', '');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of chunk.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) onMessage(event, JSON.parse(data));
        }
      }
      onState('down', 'stream ended');
    } catch (err) {
      onState('down', err.message);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}
