// Bring a database to a revision of its migration folder with node-postgres.
//
//     node migrate.js ./migrations [target]
//
// The folder is the application's own, where this program runs: its files
// are sent to the server in the call.  Connection settings come from the
// PG* environment variables.  Call migrateSent() at application start-up,
// from every replica at once if you like: trek lets one of them apply each
// step and the others find the work done.
const fs = require('fs');
const path = require('path');
const { Client } = require('pg');

// Errors a concurrent caller can meet; planning again in a new transaction
// resolves them: serialization_failure, deadlock_detected, lock_not_available
// (lock_timeout) and object_not_in_prerequisite_state (a stale plan).
const RETRYABLE = new Set(['40001', '40P01', '55P03', '55000']);

async function migrate(client, folder, target = 'head', attempts = 5) {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await client.query(
        'SELECT trek_execute(trek_plan($1, $2)) AS revision', [folder, target]);
      return res.rows[0].revision;
    } catch (err) {
      if (!RETRYABLE.has(err.code) || attempt >= attempts) throw err;
      console.warn(`${err.message} (retrying)`);
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
}

// One step per transaction, for production: each step commits with its
// history row, and trek bounds and retries lock waits (trek.lock_timeout).
// After a failure the steps before it stay applied, and calling again goes
// on from there.  The client must not be inside a transaction.
async function migrateInSteps(client, folder, target = 'head') {
  await client.query('CALL trek_migrate($1, $2)', [folder, target]);
  const res = await client.query('SELECT trek_current() AS revision');
  return res.rows[0].revision;
}

// The folder's files as trek takes a sent folder: name -> text.
function readFolder(folder) {
  const files = {};
  for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
    if (entry.isFile()) {
      files[entry.name] = fs.readFileSync(path.join(folder, entry.name), 'utf8');
    }
  }
  return files;
}

// The start-up call: send the application's own folder and migrate in
// steps, as migrateInSteps() does with a folder on the server.
async function migrateSent(client, folder, target = 'head') {
  await client.query('CALL trek_migrate($1::jsonb, $2)',
    [JSON.stringify(readFolder(folder)), target]);
  const res = await client.query('SELECT trek_current() AS revision');
  return res.rows[0].revision;
}

async function main(folder, target = 'head') {
  const client = new Client();
  client.on('notice', (msg) =>
    console.log(msg.message + (msg.detail ? ` (${msg.detail})` : '')));
  await client.connect();
  try {
    console.log(await migrateSent(client, folder, target));
  } finally {
    await client.end();
  }
}

if (require.main === module) {
  main(...process.argv.slice(2)).catch((err) => {
    console.error(`${err.code}: ${err.message}${err.where ? `\n${err.where}` : ''}`);
    process.exitCode = 1;
  });
}

module.exports = { migrate, migrateInSteps, migrateSent, readFolder };
