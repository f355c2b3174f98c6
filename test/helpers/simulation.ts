/** lexus simulate on a scratch database of its own, dropped after the run. */
import { loadMessages } from '../../src/daemon/messages';
import { createLogger } from '../../src/logger';
import { type SimulationOptions, type SimulationResult, simulate } from '../../src/simulate/simulation';
import { TEST_SETTINGS } from './daemon';
import { createEmptyDatabase } from './database';

const messages = loadMessages(TEST_SETTINGS.messagesFile, TEST_SETTINGS.baseDir);

/** A silent simulation of `defaults` overridden by `options`, with the tests' settings. */
export async function simulateOnScratch(
  defaults: Omit<Partial<SimulationOptions>, 'connection'>,
  options: Partial<SimulationOptions> = {},
): Promise<SimulationResult> {
  const database = await createEmptyDatabase();
  try {
    return await simulate({
      accounts: 4,
      groups: 40,
      days: 3,
      seed: 7,
      chaos: 'none',
      replicas: 1,
      settings: TEST_SETTINGS,
      messages,
      log: createLogger({ level: 'silent', pretty: false }),
      ...defaults,
      connection: database.connection,
      ...options,
    });
  } finally {
    await database.drop();
  }
}
