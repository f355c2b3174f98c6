/**
 * The health and metrics listener of `lexus start` (HEALTH_PORT, default 9464; off when 0):
 *   GET /livez    200 when the process makes progress: no scheduling round and no action stuck
 *                 past its bound (liveness.ts); 503 saying which. A database outage the daemon
 *                 rides out is not a failure of liveness.
 *   GET /readyz   200 when the database has answered within the last 30 s and the fleet's
 *                 accounts are driven (some process holds a live lease on one, or there is none
 *                 to drive); 503 saying why.
 *   GET /healthz  the same as /livez (the image's HEALTHCHECK asks it).
 *   GET /metrics  Prometheus text (metrics.ts).
 * The database is probed every 5 s on connections of its own; only a change of health is
 * logged. Nothing here ever shows a secret.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { Clock } from '../clock';
import type { Logger } from '../logger';
import { countDrivenAccounts } from '../sql/fleet';
import { liveness } from './liveness';
import { DATABASE_DEADLINE_MS, type LoopView, loopLagMs, withDeadline } from './metrics';

/** Readiness holds through a database blip shorter than this. */
export const READY_DATABASE_MS = 30_000;
const PROBE_EVERY_MS = 5_000;

export interface HealthReport {
  status: 'ok' | 'unhealthy';
  problems: string[];
}

export interface LivenessReport extends HealthReport {
  /** Seconds since the loop's last round (since the start, before the first). */
  loop_lag_s: number;
  /** How long the oldest action in flight has been running. */
  oldest_action_s: number;
}

export interface ReadinessReport extends HealthReport {
  database: 'up' | 'down';
  /** Seconds since the database last answered (null: never yet). */
  database_answered_s_ago: number | null;
  accounts: { drivable: number; driven: number } | null;
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

/** Liveness now (liveness.ts), with the loop's lag and the oldest action's age. */
export function checkLiveness(options: Pick<HealthOptions, 'loop' | 'clock' | 'startedAt'>): LivenessReport {
  const progress = options.loop.progress();
  const live = liveness(progress);
  return {
    status: live.ok ? 'ok' : 'unhealthy',
    problems: live.problems,
    loop_lag_s: loopLagMs(options.loop, options.startedAt, options.clock.now()) / 1000,
    oldest_action_s: progress.oldestActionMs / 1000,
  };
}

/** What the readiness probe last learnt of the database and the fleet. */
export class ReadinessProbe {
  private answeredAt: number | undefined;
  private lastError = 'not asked yet';
  private accounts: { drivable: number; driven: number } | null = null;

  constructor(private readonly options: Pick<HealthOptions, 'dataSource' | 'clock'>) {}

  /** Asks the database (within DATABASE_DEADLINE_MS): does it answer, how many accounts are driven. */
  async probe(): Promise<void> {
    const now = this.options.clock.now();
    try {
      const accounts = await withDeadline(countDrivenAccounts(this.options.dataSource, now), DATABASE_DEADLINE_MS);
      this.answeredAt = now.getTime();
      this.accounts = accounts;
    } catch (error) {
      this.lastError = (error as Error).message;
    }
  }

  report(): ReadinessReport {
    const now = this.options.clock.now().getTime();
    const ago = this.answeredAt === undefined ? null : now - this.answeredAt;
    const problems: string[] = [];
    const up = ago !== null && ago <= READY_DATABASE_MS;
    if (!up)
      problems.push(
        `database: ${ago === null ? 'has not answered yet' : `no answer for ${Math.round(ago / 1000)} s`} (${this.lastError})`,
      );
    if (up && this.accounts && this.accounts.drivable > 0 && this.accounts.driven === 0) {
      problems.push(`accounts: none of the ${this.accounts.drivable} that can be driven is driven by any process`);
    }
    return {
      status: problems.length === 0 ? 'ok' : 'unhealthy',
      problems,
      database: up ? 'up' : 'down',
      database_answered_s_ago: ago === null ? null : ago / 1000,
      accounts: this.accounts,
    };
  }
}

export interface HealthServer {
  /** The port it listens on (the one asked for, or the one the system gave for 0). */
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  options: HealthOptions,
  listen: { host: string; port: number },
): Promise<HealthServer> {
  const readiness = new ReadinessProbe(options);
  // Only a change is logged, on whichever way it was noticed (a request, or the probe).
  const said = new Map<string, string>();
  const sayChange = (what: 'liveness' | 'readiness', report: HealthReport) => {
    const key = report.status === 'ok' ? 'ok' : report.problems.map((p) => p.replace(/\d+ s/g, 'N s')).join('; ');
    if (said.get(what) === key) return;
    const first = !said.has(what);
    said.set(what, key);
    if (report.status === 'ok') {
      if (!first) options.log.info({ event: `health.${what}_ok` }, `${what}: ok again`);
    } else {
      options.log.warn(
        { event: `health.${what}_failed`, problems: report.problems },
        `${what}: ${report.problems.join('; ')}`,
      );
    }
  };
  await readiness.probe();
  const prober = setInterval(() => {
    void readiness.probe().then(() => {
      sayChange('readiness', readiness.report());
      sayChange('liveness', checkLiveness(options));
    });
  }, PROBE_EVERY_MS);
  prober.unref();

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const json = (report: HealthReport) =>
      reply(report.status === 'ok' ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
    if (request.method !== 'GET' && request.method !== 'HEAD') return reply(405, 'text/plain', 'GET only\n');
    if (path === '/livez' || path === '/healthz') {
      const report = checkLiveness(options);
      sayChange('liveness', report);
      return json(report);
    }
    if (path === '/readyz') {
      void readiness.probe().then(() => {
        const report = readiness.report();
        sayChange('readiness', report);
        json(report);
      });
      return;
    }
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, options.registry.contentType, text),
        (error: unknown) => reply(500, 'text/plain', `metrics failed: ${(error as Error).message}\n`),
      );
      return;
    }
    reply(404, 'text/plain', 'not found: GET /livez, /readyz, /healthz or /metrics\n');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `cannot listen on ${listen.host}:${listen.port} for health and metrics (HEALTH_PORT, HEALTH_HOST): ${error.code ?? error.message}`,
          { cause: error },
        ),
      ),
    );
    server.listen(listen.port, listen.host, () => resolve());
  }).catch((error: unknown) => {
    clearInterval(prober);
    throw error;
  });
  const port = (server.address() as AddressInfo).port;
  options.log.info(
    { event: 'health.listening', host: listen.host, port },
    `health and metrics on http://${listen.host}:${port}/livez, /readyz and /metrics`,
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(prober);
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
