#!/usr/bin/env node
// Writes the fake Telegram sessions of examples/: two Telethon `.session` files (SQLite) and the
// string session in accounts_config.json. The auth keys are derived from a fixed seed: they are
// not real sessions and open nothing. Needs `npm run build` first.
'use strict';
const { createHash } = require('node:crypto');
const { writeFileSync } = require('node:fs');
const path = require('node:path');
const { writeTelethonSessionFile, encodeTelethonStringSession } = require('../dist/import/telethonSession.js');

const fakeKey = (name) =>
  Buffer.concat(Array.from({ length: 8 }, (_, i) => createHash('sha256').update(`lexus example ${name} ${i}`).digest()));
const dir = path.join(__dirname, '..', 'examples', 'sessions');

(async () => {
  for (const [name, dcId, serverAddress] of [
    ['lexus_kyiv_2', 2, '149.154.167.51'],
    ['lexus_odesa_3', 4, '149.154.167.91'],
  ]) {
    const bytes = await writeTelethonSessionFile({ dcId, serverAddress, port: 443, authKey: fakeKey(name) });
    writeFileSync(path.join(dir, `${name}.session`), bytes);
  }
  console.log('string session for lexus_kyiv_1:');
  console.log(encodeTelethonStringSession({ dcId: 2, serverAddress: '149.154.167.50', port: 443, authKey: fakeKey('lexus_kyiv_1') }));
})();
