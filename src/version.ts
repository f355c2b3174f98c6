/** This version of lexus (package.json), for `lexus --version`, the start-up log and lexus_build_info. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const VERSION: string = (
  JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }
).version;
