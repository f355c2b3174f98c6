/** Small helpers for tests that start servers or hand a database to a child process. */
import type { PostgresConnection } from '../../src/config';

export { freePort } from '../../src/ports';

/** The DATABASE_URL of a connection. */
export function databaseUrl(c: PostgresConnection): string {
  return `postgresql://${c.user}:${encodeURIComponent(c.password ?? '')}@${c.host}:${c.port}/${c.database}`;
}
