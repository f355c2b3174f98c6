/** Small helpers for tests that start servers or hand a database to a child process. */
import { createServer } from 'node:net';
import type { PostgresConnection } from '../../src/config';

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** The DATABASE_URL of a connection. */
export function databaseUrl(c: PostgresConnection): string {
  return `postgresql://${c.user}:${encodeURIComponent(c.password ?? '')}@${c.host}:${c.port}/${c.database}`;
}
