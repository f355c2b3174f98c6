import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_VARIABLES,
  ConfigError,
  describeUnknownVariable,
  effectiveSettings,
  loadConfig,
  parseDatabaseUrl,
} from '../src/config';

const outside = { inDocker: false, cwd: '/srv/lexus' };

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env, outside);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('uses an embedded PostgreSQL under ./data/postgres when no database is configured', () => {
    const config = loadConfig({}, outside);
    expect(config.database).toEqual({
      mode: 'embedded',
      dataDir: '/srv/lexus/data/postgres',
      port: 54329,
      portExplicit: false,
      sharedDir: undefined,
    });
    expect(loadConfig({ LEXUS_EMBEDDED_PG_PORT: '54329' }, outside).database).toMatchObject({
      port: 54329,
      portExplicit: true,
    });
    expect(config.logLevel).toBe('info');
    expect(config.dbPoolSize).toBe(10);
  });

  it('treats empty variables as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', POSTGRES_HOST: ' ' }, outside).database.mode).toBe('embedded');
  });

  it.each([
    ['postgresql://telegram_user_bali:telegram_password_bali@postgres:5432/telegram_promotion_bali'],
    ['postgres://telegram_user_bali:telegram_password_bali@postgres:5432/telegram_promotion_bali'],
    ['postgresql+asyncpg://telegram_user_bali:telegram_password_bali@postgres:5432/telegram_promotion_bali'],
  ])('accepts the seed URL %s', (url) => {
    const config = loadConfig({ DATABASE_URL: url, POSTGRES_HOST: 'ignored' }, outside);
    expect(config.database).toEqual({
      mode: 'external',
      source: 'DATABASE_URL',
      connection: {
        host: 'postgres',
        port: 5432,
        user: 'telegram_user_bali',
        password: 'telegram_password_bali',
        database: 'telegram_promotion_bali',
        ssl: false,
      },
    });
  });

  it('decodes percent-encoded credentials and reads sslmode', () => {
    const c = parseDatabaseUrl('postgresql://us%40er:p%3Ass%2Fw@db.example.com/lexus?sslmode=require');
    expect(c).toMatchObject({
      user: 'us@er',
      password: 'p:ss/w',
      host: 'db.example.com',
      port: 5432,
      database: 'lexus',
      ssl: 'require',
    });
  });

  it('builds the connection from POSTGRES_* with defaults, host depending on Docker', () => {
    const env = { POSTGRES_USER: 'u', POSTGRES_PASSWORD: 'p', POSTGRES_DB: 'd' };
    expect(loadConfig(env, { inDocker: true }).database).toMatchObject({
      mode: 'external',
      source: 'POSTGRES_*',
      connection: { host: 'postgres', port: 5432, user: 'u', password: 'p', database: 'd' },
    });
    expect(loadConfig(env, { inDocker: false }).database).toMatchObject({ connection: { host: 'localhost' } });
    expect(loadConfig({ POSTGRES_HOST: 'db', POSTGRES_PORT: '6543' }, outside).database).toMatchObject({
      connection: { host: 'db', port: 6543, user: 'postgres', database: 'lexus_promotion' },
    });
  });

  it.each([
    [{ POSTGRES_PORT: 'abc' }, 'POSTGRES_PORT', 'must be a whole number (got "abc")'],
    [{ POSTGRES_PORT: '70000' }, 'POSTGRES_PORT', 'from 1 to 65535'],
    [{ LEXUS_EMBEDDED_PG_PORT: '0' }, 'LEXUS_EMBEDDED_PG_PORT', 'from 1 to 65535'],
    [{ DB_POOL_SIZE: '0' }, 'DB_POOL_SIZE', 'at least 1'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', 'loud'],
    [{ LOG_PRETTY: 'yes' }, 'LOG_PRETTY', 'yes'],
    [{ DATABASE_URL: 'mysql://u:pw@h/db' }, 'DATABASE_URL', 'must start with postgresql://'],
    [{ DATABASE_URL: 'postgresql://u:pw@/db' }, 'DATABASE_URL', 'not a valid URL'],
    [{ DATABASE_URL: 'postgresql:///db' }, 'DATABASE_URL', 'no host'],
    [{ DATABASE_URL: 'postgresql://host/db' }, 'DATABASE_URL', 'no user name'],
    [{ DATABASE_URL: 'postgresql://u:pw@host:99999/db' }, 'DATABASE_URL', 'not a valid URL'],
    [{ DATABASE_URL: 'postgresql://u:pw@host/' }, 'DATABASE_URL', 'no database name'],
    [{ DATABASE_URL: 'postgresql://u:pw@host/db?sslmode=maybe' }, 'DATABASE_URL', 'unknown sslmode'],
  ])('%j is refused, naming %s', (env, variable, message) => {
    const error = configError(env as Record<string, string>);
    expect(error.exitCode).toBe(78);
    expect(error.problems.map((p) => p.variable)).toEqual([variable]);
    expect(error.message).toContain(`${variable}: `);
    expect(error.message).toContain(message);
  });

  it('names every bad variable at once', () => {
    const error = configError({ POSTGRES_PORT: 'x', LOG_LEVEL: 'y' });
    expect(error.problems.map((p) => p.variable).sort()).toEqual(['LOG_LEVEL', 'POSTGRES_PORT']);
  });

  it('never echoes a password or a database URL', () => {
    for (const env of [
      { DATABASE_URL: 'postgresql://user:hunter2secret@host:99999/db' },
      { DATABASE_URL: 'postgresql://user:hunter2secret@host/db?sslmode=hunter2secret' },
      { DATABASE_URL: 'hunter2secret' },
    ]) {
      expect(configError(env).message).not.toContain('hunter2secret');
    }
  });

  it('names a variable that looks like ours but is not, with the closest known one: a typo has no effect', () => {
    const config = loadConfig(
      {
        LEXUS_ACTION_DELAY: '5-10',
        LEXUS_POSTNG_HOURS: '09-21',
        HEALTH_PROT: '9000',
        TG_SOMETHING_ELSE: 'x',
        PATH: '/usr/bin',
        NODE_ENV: 'production',
      },
      outside,
    );
    expect(config.unknownVariables).toEqual([
      { variable: 'HEALTH_PROT', closest: 'HEALTH_PORT' },
      { variable: 'LEXUS_ACTION_DELAY', closest: 'LEXUS_ACTION_DELAY_S' },
      { variable: 'LEXUS_POSTNG_HOURS', closest: 'LEXUS_POSTING_HOURS' },
      { variable: 'TG_SOMETHING_ELSE', closest: null },
    ]);
    expect(config.daemon.actionDelayMs).toEqual({ min: 30_000, max: 90_000 });
    expect(describeUnknownVariable(config.unknownVariables[1]!)).toBe(
      'LEXUS_ACTION_DELAY is not a variable lexus knows, so it has no effect (did you mean LEXUS_ACTION_DELAY_S?)',
    );
    expect(loadConfig({ LEXUS_ACTION_DELAY_S: '5-10' }, outside).unknownVariables).toEqual([]);
  });

  it('states the settings in effect, defaults included, never a secret', () => {
    const settings = effectiveSettings(
      loadConfig(
        {
          DATABASE_URL: 'postgresql://u:hunter2secret@db:5432/x',
          TG_API_ID: '123',
          TG_API_HASH: 'a'.repeat(32),
          LEXUS_POSTING_HOURS: '09-21',
        },
        outside,
      ),
    );
    expect(settings).toMatchObject({
      database: 'postgresql://u@db:5432/x (from DATABASE_URL)',
      TG_API_ID: 123,
      TG_API_HASH: 'set',
      LEXUS_POSTING_HOURS: '09-21',
      LEXUS_TIMEZONE: 'Europe/Kyiv',
      LEXUS_ACTION_DELAY_S: '30-90',
      LEXUS_POST_SPACING_MIN: 20,
      LEXUS_RAMP_UP_START: '2/3',
      LEXUS_SHUTDOWN_GRACE_S: 20,
      HEALTH: '127.0.0.1:9464',
    });
    expect(JSON.stringify(settings)).not.toMatch(/hunter2secret|aaaaaaaa/);
  });

  it('.env.example documents exactly the variables the loader knows', () => {
    const example = readFileSync(path.resolve(__dirname, '../.env.example'), 'utf8');
    const documented = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]).sort();
    expect(documented).toEqual(Object.keys(CONFIG_VARIABLES).sort());
  });
});
