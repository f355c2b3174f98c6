/**
 * The alerts (ops/prometheus/alerts.yml) and the dashboard (ops/grafana/lexus.json) name only
 * metrics a running `lexus start` exports, and the alerts pass their unit tests
 * (ops/prometheus/alerts.test.yml, with promtool where it is installed; .ci/run installs it).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, run, startLexus } from './helpers/cli';
import { AS_SOON_AS_ALLOWED_ENV } from './helpers/daemon';
import { createTestDatabase } from './helpers/database';
import { databaseUrl, freePort } from './helpers/net';

const RULES = path.join(ROOT, 'ops/prometheus/alerts.yml');
const DASHBOARD = path.join(ROOT, 'ops/grafana/lexus.json');

/** The lexus_* metric names an expression reads (a counter's _total kept as written). */
const metricsIn = (expr: string) => [...expr.matchAll(/\blexus_[a-z_]+\b/g)].map((m) => m[0]);

function ruleExpressions(): { name: string; expr: string }[] {
  const file = parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  return file.groups.flatMap((g) => g.rules.map((r) => ({ name: r.alert, expr: r.expr })));
}

function dashboardExpressions(): { name: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
  };
  return dashboard.panels.flatMap((p) => p.targets.map((t) => ({ name: p.title, expr: t.expr })));
}

/** The metric names a real lexus start exports, scraped once it runs. */
async function exportedByADaemon(): Promise<Set<string>> {
  const db = await createTestDatabase();
  const port = await freePort();
  const daemon = startLexus(['start'], {
    env: {
      DATABASE_URL: databaseUrl(db.connection),
      LEXUS_FAKE_TELEGRAM: '1',
      ...AS_SOON_AS_ALLOWED_ENV,
      HEALTH_PORT: String(port),
      LEXUS_BASE_DIR: ROOT,
      LEXUS_MESSAGES_FILE: path.join(ROOT, 'config/messages/cars/messages.json'),
    },
  });
  try {
    let text = '';
    await expect
      .poll(
        async () => {
          text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
            (r) => r.text(),
            () => '',
          );
          return text.includes('lexus_database_up 1');
        },
        { timeout: 30_000, interval: 250 },
      )
      .toBe(true);
    return new Set([...text.matchAll(/^(lexus_[a-z_]+)[{ ]/gm)].map((m) => m[1]!));
  } finally {
    await daemon.stop('SIGTERM');
    await db.close();
  }
}

describe('the alerts and the dashboard', () => {
  it('name only metrics a running daemon exports, every one of those it names', async () => {
    const exported = await exportedByADaemon();
    const named = [...ruleExpressions(), ...dashboardExpressions()].flatMap(({ name, expr }) =>
      metricsIn(expr).map((metric) => ({ name, metric })),
    );
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter(({ metric }) => !exported.has(metric))).toEqual([]);
    // And the dashboard shows the metrics the alerts are about.
    const onDashboard = new Set(dashboardExpressions().flatMap(({ expr }) => metricsIn(expr)));
    expect(
      ruleExpressions()
        .flatMap(({ expr }) => metricsIn(expr))
        .filter((m) => m !== 'lexus_build_info' && !onDashboard.has(m)),
    ).toEqual([]);
  }, 90_000);

  it('the dashboard is a Grafana dashboard to import: panels with a Prometheus data source to choose', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      __inputs: { name: string; pluginId: string }[];
      uid: string;
      panels: { id: number; datasource: { uid: string }; targets: unknown[] }[];
    };
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', pluginId: 'prometheus' })]);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    for (const panel of dashboard.panels) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's own placeholder for the data source chosen at import
      expect(panel.datasource.uid).toBe('${DS_PROMETHEUS}');
      expect(panel.targets.length).toBeGreaterThan(0);
    }
  });

  const promtool = run('promtool', ['--version']);
  it.skipIf(promtool.error !== undefined)(
    `pass their unit tests (promtool test rules)${promtool.error ? ' - skipped: promtool is not installed here (apt-get install prometheus); .ci/run installs it' : ''}`,
    () => {
      const check = run('promtool', ['check', 'rules', RULES]);
      expect(check.stdout + check.stderr).toContain('SUCCESS');
      expect(check.status).toBe(0);
      const test = run('promtool', ['test', 'rules', path.join(ROOT, 'ops/prometheus/alerts.test.yml')]);
      expect(test.stdout + test.stderr).toContain('SUCCESS');
      expect(test.status).toBe(0);
    },
  );
});
