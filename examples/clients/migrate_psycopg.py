"""Bring a database to a revision of its migration folder with psycopg 3.

    python3 migrate_psycopg.py ./migrations [target]

The folder is the application's own, where this program runs: its files
are sent to the server in the call.  Connection settings come from the PG*
environment variables.  Call migrate_sent() at application start-up, from
every replica at once if you like: trek lets one of them apply each step
and the others find the work done.
"""
import json
import logging
import pathlib
import sys
import time

import psycopg

log = logging.getLogger("trek")

# Errors a concurrent caller can meet; planning again in a new transaction
# resolves them: serialization_failure, deadlock_detected, lock_not_available
# (lock_timeout) and object_not_in_prerequisite_state (a stale plan).
RETRYABLE = {"40001", "40P01", "55P03", "55000"}


def migrate(conn, folder, target="head", attempts=5):
    """Plan and apply in one transaction; return the revision reached."""
    for attempt in range(1, attempts + 1):
        try:
            with conn.transaction():
                return conn.execute("SELECT trek_execute(trek_plan(%s, %s))",
                                    (folder, target)).fetchone()[0]
        except psycopg.Error as e:
            if e.sqlstate not in RETRYABLE or attempt == attempts:
                raise
            log.warning("%s (retrying)", e.diag.message_primary)
            time.sleep(0.1 * attempt)


def migrate_in_steps(conn, folder, target="head"):
    """One step per transaction, for production: each step commits with its
    history row, and trek bounds and retries lock waits (trek.lock_timeout).
    After a failure the steps before it stay applied, and calling again
    goes on from there.  conn must be in autocommit mode."""
    conn.execute("CALL trek_migrate(%s, %s)", (folder, target))
    return conn.execute("SELECT trek_current()").fetchone()[0]


def read_folder(folder):
    """The folder's files as trek takes a sent folder: name -> text."""
    return {p.name: p.read_text(encoding="utf-8")
            for p in pathlib.Path(folder).iterdir() if p.is_file()}


def migrate_sent(conn, folder, target="head"):
    """The start-up call: send the application's own folder and migrate in
    steps, as migrate_in_steps() does with a folder on the server.  conn
    must be in autocommit mode."""
    conn.execute("CALL trek_migrate(%s::jsonb, %s)",
                 (json.dumps(read_folder(folder)), target))
    return conn.execute("SELECT trek_current()").fetchone()[0]


def log_notice(diag):
    log.info("%s%s", diag.message_primary,
             " (%s)" % diag.message_detail if diag.message_detail else "")


def main(folder, target="head"):
    with psycopg.connect(autocommit=True) as conn:
        conn.add_notice_handler(log_notice)
        print(migrate_sent(conn, folder, target))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main(*sys.argv[1:])
    except psycopg.Error as e:
        sys.exit("%s: %s\n%s" % (e.sqlstate, e.diag.message_primary,
                                 e.diag.context or ""))
