#!/usr/bin/env node
'use strict';
// The `lexus` command. The TypeScript sources are compiled to dist/ by `npm run build`,
// which `npm ci` / `npm install` run automatically (the `prepare` script).
try {
  require.resolve('../dist/cli.js');
} catch {
  process.stderr.write('lexus: dist/ is missing; run `npm run build` (npm ci does it for you).\n');
  process.exit(70);
}
require('../dist/cli.js')
  .main(process.argv)
  .then(
    (code) => {
      process.exitCode = code;
      // Everything is closed by now; a handle some library left open must not keep us alive.
      setTimeout(() => process.exit(code), 3000).unref();
    },
    (error) => {
      process.stderr.write(`lexus: ${error?.stack ? error.stack : error}\n`);
      process.exitCode = 70;
    },
  );
