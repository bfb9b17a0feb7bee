/**
 * One small HTTP server per service (node:http): `/metrics` (Prometheus text from the service's own
 * prom-client registry), `/healthz` (process alive) and `/readyz` (Redis reachable and loop running).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Readiness as reported on `/readyz`: ready when every check is true. */
export type ReadinessProbe = () => Record<string, boolean>;

/** A running metrics/health server. */
export interface OpsServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Starts the server on `host:port` (port 0 = any free port).
 * @throws when the port cannot be bound (EADDRINUSE)
 */
export async function startOpsServer(registry: Registry, readiness: ReadinessProbe, port: number, host = '0.0.0.0'): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url === '/metrics') {
      registry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(body);
        })
        .catch((err: Error) => {
          res.writeHead(500);
          res.end(err.message);
        });
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"status":"alive"}');
      return;
    }
    if (url === '/readyz') {
      const checks = readiness();
      const ok = Object.values(checks).every(Boolean);
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: ok ? 'ready' : 'not_ready', checks }));
      return;
    }
    res.writeHead(404);
    res.end('not found');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
