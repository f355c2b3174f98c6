/**
 * The health and metrics listener of `lexus start` (HEALTH_PORT, default 9464; off when 0):
 *   GET /healthz  200 {"status":"ok",...} when the database answers and the daemon's loop ran
 *                 recently; else 503 {"status":"unhealthy","problems":[...]} saying why.
 *   GET /metrics  Prometheus text (metrics.ts).
 * Docker's HEALTHCHECK and compose read /healthz; nothing here ever shows a secret.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import { sql } from '../db/sql';
import { DATABASE_DEADLINE_MS, loopLagMs, withDeadline, type LoopView } from './metrics';
import type { Registry } from 'prom-client';

/** The loop runs a round every second; this long without one means it is stuck. */
export const LOOP_STALE_MS = 60_000;

export interface HealthReport {
  status: 'ok' | 'unhealthy';
  database: 'up' | 'down';
  /** Seconds since the loop's last round (since the start, before the first). */
  loop_lag_s: number;
  problems: string[];
}

export interface HealthOptions {
  /** One of its own, with a statement timeout (metrics.ts): never the daemon's connections. */
  dataSource: DataSource;
  loop: LoopView;
  clock: Clock;
  registry: Registry;
  log: Logger;
  /** When the process started (a loop that has not run yet is fine for LOOP_STALE_MS after it). */
  startedAt: Date;
}

/** The health of the daemon now: the database answers a query, and the loop is not stuck. */
export async function checkHealth(options: Omit<HealthOptions, 'registry' | 'log'>): Promise<HealthReport> {
  const problems: string[] = [];
  let database: HealthReport['database'] = 'up';
  try {
    await withDeadline(sql(options.dataSource, 'SELECT 1'), DATABASE_DEADLINE_MS);
  } catch (error) {
    database = 'down';
    problems.push(`database: ${(error as Error).message}`);
  }
  const lag = loopLagMs(options.loop, options.startedAt, options.clock.now());
  if (lag > LOOP_STALE_MS) {
    problems.push(options.loop.lastTickAt ? `loop: no scheduling round for ${Math.round(lag / 1000)} s` : `loop: no scheduling round since the start, ${Math.round(lag / 1000)} s ago`);
  }
  return { status: problems.length === 0 ? 'ok' : 'unhealthy', database, loop_lag_s: lag / 1000, problems };
}

export interface HealthServer {
  /** The port it listens on (the one asked for, or the one the system gave for 0). */
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: HealthOptions, listen: { host: string; port: number }): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, 'text/plain', 'GET only\n');
    if (path === '/healthz') {
      checkHealth(options).then(
        (health) => {
          if (health.status !== 'ok') options.log.warn({ event: 'health.unhealthy', problems: health.problems }, 'health check failed');
          reply(health.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(health)}\n`);
        },
        (error: unknown) => reply(503, 'application/json', `${JSON.stringify({ status: 'unhealthy', problems: [(error as Error).message] })}\n`),
      );
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, options.registry.contentType, text),
        (error: unknown) => reply(500, 'text/plain', `metrics failed: ${(error as Error).message}\n`),
      );
      return;
    }
    reply(404, 'text/plain', 'not found: GET /healthz or /metrics\n');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(new Error(`cannot listen on ${listen.host}:${listen.port} for health and metrics (HEALTH_PORT, HEALTH_HOST): ${error.code ?? error.message}`, { cause: error })),
    );
    server.listen(listen.port, listen.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  options.log.info({ event: 'health.listening', host: listen.host, port }, `health and metrics on http://${listen.host}:${port}/healthz and /metrics`);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
