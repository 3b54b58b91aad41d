"""Bring a database to a revision of its migration folder with asyncpg.

    python3 migrate_asyncpg.py ./migrations [target]

The folder is the application's own, where this program runs: its files
are sent to the server in the call.  Connection settings come from the PG*
environment variables.  Call migrate_sent() at application start-up, from
every replica at once if you like: trek lets one of them apply each step
and the others find the work done.
"""
import asyncio
import json
import logging
import pathlib
import sys

import asyncpg

log = logging.getLogger("trek")

# Errors a concurrent caller can meet; planning again in a new transaction
# resolves them: serialization_failure, deadlock_detected, lock_not_available
# (lock_timeout) and object_not_in_prerequisite_state (a stale plan).
RETRYABLE = {"40001", "40P01", "55P03", "55000"}


async def migrate(conn, folder, target="head", attempts=5):
    """Plan and apply in one statement; return the revision reached."""
    for attempt in range(1, attempts + 1):
        try:
            return await conn.fetchval(
                "SELECT trek_execute(trek_plan($1, $2))", folder, target)
        except asyncpg.PostgresError as e:
            if e.sqlstate not in RETRYABLE or attempt == attempts:
                raise
            log.warning("%s (retrying)", e)
            await asyncio.sleep(0.1 * attempt)


async def migrate_in_steps(conn, folder, target="head"):
    """One step per transaction, for production: each step commits with its
    history row, and trek bounds and retries lock waits (trek.lock_timeout).
    After a failure the steps before it stay applied, and calling again
    goes on from there.  conn must not be inside a transaction."""
    await conn.execute("CALL trek_migrate($1, $2)", folder, target)
    return await conn.fetchval("SELECT trek_current()")


def read_folder(folder):
    """The folder's files as trek takes a sent folder: name -> text."""
    return {p.name: p.read_text(encoding="utf-8")
            for p in pathlib.Path(folder).iterdir() if p.is_file()}


async def migrate_sent(conn, folder, target="head"):
    """The start-up call: send the application's own folder and migrate in
    steps, as migrate_in_steps() does with a folder on the server."""
    await conn.execute("CALL trek_migrate($1::jsonb, $2)",
                       json.dumps(read_folder(folder)), target)
    return await conn.fetchval("SELECT trek_current()")


def log_notice(conn, msg):
    log.info("%s%s", msg.message, " (%s)" % msg.detail if msg.detail else "")


async def main(folder, target="head"):
    conn = await asyncpg.connect()
    conn.add_log_listener(log_notice)
    try:
        print(await migrate_sent(conn, folder, target))
    finally:
        await conn.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        asyncio.run(main(*sys.argv[1:]))
    except asyncpg.PostgresError as e:
        sys.exit("%s: %s\n%s" % (e.sqlstate, e.message, e.context or ""))
