// Drives the client scenario of test_clients.py through node-postgres and
// examples/clients/migrate.js: migrate to each target given, in order, and
// print what happened as JSON (result or error, and the notices seen).
//
//     node scenario.js FOLDER '["rev2", "initial", ...]' [in-steps]
//
// With "in-steps", migrateInSteps() (CALL trek_migrate) runs instead; with
// "sent", migrateSent() (the folder read here and sent as jsonb).
//
// Connection settings come from the PG* environment variables.
const path = require('path');
const { Client } = require('pg');
const { migrate, migrateInSteps, migrateSent } = require(path.join(__dirname, '..', '..', '..', 'examples', 'clients', 'migrate.js'));

async function main(folder, targets, mode) {
  const run = { 'in-steps': migrateInSteps, sent: migrateSent }[mode] ?? migrate;
  const client = new Client();
  let notices = [];
  client.on('notice', (msg) => notices.push({
    severity: msg.severity, sqlstate: msg.code, message: msg.message,
    detail: msg.detail ?? null,
  }));
  await client.connect();
  const steps = [];
  for (const target of JSON.parse(targets)) {
    notices = [];
    const step = { target };
    try {
      step.result = await run(client, folder, target);
    } catch (err) {
      step.error = {
        sqlstate: err.code, message: err.message, context: err.where ?? null,
      };
    }
    step.notices = notices;
    steps.push(step);
  }
  await client.end();
  process.stdout.write(JSON.stringify(steps));
}

main(...process.argv.slice(2)).catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
