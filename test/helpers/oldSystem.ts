/** A copy of examples/ (the old system's files) in a temporary folder, to change per test. */
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import type { Clock } from '../../src/clock';
import { formatFinding } from '../../src/import/findings';
import { readOldSystem } from '../../src/import/readOldSystem';
import { type ImportReport, writeImport } from '../../src/import/writeImport';
import { tempDir } from './cli';

export const EXAMPLES = path.resolve(__dirname, '../../examples');

export interface OldSystemCopy {
  dir: string;
  read(file: string): Promise<string>;
  write(file: string, text: string | Uint8Array): Promise<void>;
  // biome-ignore lint/suspicious/noExplicitAny: the tests read the old system's files as whatever shape each one checks
  json<T = any>(file: string): Promise<T>;
  writeJson(file: string, value: unknown): Promise<void>;
  remove(file: string): Promise<void>;
  cleanup(): Promise<void>;
}

export async function copyExamples(): Promise<OldSystemCopy> {
  const dir = await tempDir('lexus-old-');
  await cp(EXAMPLES, dir, { recursive: true });
  const at = (file: string) => path.join(dir, file);
  return {
    dir,
    read: (file) => readFile(at(file), 'utf8'),
    write: (file, text) => writeFile(at(file), text),
    json: async (file) => JSON.parse(await readFile(at(file), 'utf8')),
    writeJson: (file, value) => writeFile(at(file), `${JSON.stringify(value, null, 2)}\n`),
    remove: (file) => rm(at(file), { force: true }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/** readOldSystem + writeImport, as `lexus import` runs them; throws listing the errors if any. */
export async function runImport(
  dataSource: DataSource,
  dir: string,
  clock: Clock,
  dryRun = false,
  options: { seasoned?: boolean } = {},
): Promise<ImportReport> {
  const { data, findings } = await readOldSystem(dir, clock.now());
  if (!data) throw new Error(`import refused:\n${findings.errors.map(formatFinding).join('\n')}`);
  return writeImport(dataSource, data, {
    clock,
    dryRun,
    warnings: findings.warnings.map(formatFinding),
    seasoned: options.seasoned ?? false,
  });
}
