/**
 * Raw HTTP/1.1 over a net.Socket: the request line and headers go out exactly as written (fetch and
 * node:http would normalise the path or refuse an absolute-form target, hiding what a hostile client
 * can send). Also a pino logger whose lines the test can read.
 */
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A parsed answer. `json` is null when the body is not JSON. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  json: Record<string, unknown> | null;
}

/**
 * Sends one request and reads the answer until the server closes the connection.
 * @param head request line and header lines, without the final blank line (`Connection: close` is added)
 * @param body sent as is after the blank line (with a Content-Length added when given)
 */
export function rawRequest(port: number, head: string[], body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const lines = [...head, 'Connection: close'];
    if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
    const sock = connect(port, '127.0.0.1', () => sock.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`));
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const headLines = (split < 0 ? text : text.slice(0, split)).split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(headLines[0] ?? '')?.[1] ?? 0);
      const headers: Record<string, string> = {};
      for (const l of headLines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      let resBody = split < 0 ? '' : text.slice(split + 4);
      if (/chunked/i.test(headers['transfer-encoding'] ?? '')) resBody = dechunk(resBody);
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(resBody) as Record<string, unknown>;
      } catch {
        json = null;
      }
      resolve({ status, headers, body: resBody, json });
    });
  });
}

function dechunk(s: string): string {
  let out = '';
  let rest = s;
  for (;;) {
    const i = rest.indexOf('\r\n');
    if (i < 0) return out;
    const n = parseInt(rest.slice(0, i), 16);
    if (!(n > 0)) return out;
    out += rest.slice(i + 2, i + 2 + n);
    rest = rest.slice(i + 2 + n + 2);
  }
}

/** A pino logger (level info) keeping every line as parsed JSON in `lines`. */
export function captureLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, dest), lines };
}
