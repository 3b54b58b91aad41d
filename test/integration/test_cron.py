"""pg_cron jobs that keep databases at the head of their migration folders.

Debian's postgresql-15-cron (pg_cron 1.4) is preloaded by the test cluster
and schedules by the minute, so the jobs are scheduled together and the
test waits for the next minute to start: one job picks up a migration
added to its folder, another meets a failing migration, and a third, with
CALL trek_migrate, applies a new migration step by step (one outside a
transaction, which builds an index concurrently) and stops at a failing one
after it, with the good step committed.
"""

import time
import uuid

import pytest
from psycopg import sql

from conftest import MIGRATION_LOG, chain, history, tables, wait_for

GOOD = "20240102_rev1_up_rev2.sql"
BAD = "20240103_rev2_up_rev3.sql"
BAD_SQL = ("CREATE TABLE t3 (id int PRIMARY KEY);\n"
           "INSERT INTO migration_log (file) VALUES ('%s');\n"
           "INSERT INTO t3 SELECT id FROM no_such_table;\n" % BAD)


@pytest.fixture
def cron(cluster):
    """pg_cron in the cluster's cron.database_name; our jobs go afterwards."""
    cron_db = cluster.query("SHOW cron.database_name")[0][0]
    cluster.query("CREATE EXTENSION IF NOT EXISTS pg_cron", dbname=cron_db)
    jobs = []

    def schedule(database, command):
        name = "trek-test-%s" % uuid.uuid4().hex[:8]
        jobid = cluster.query(
            "SELECT cron.schedule_in_database(%s, '* * * * *', %s, %s)",
            (name, command, database), dbname=cron_db)[0][0]
        jobs.append(jobid)
        return jobid

    def runs(jobid):
        return cluster.query(
            "SELECT status, return_message, start_time"
            " FROM cron.job_run_details WHERE jobid = %s ORDER BY runid",
            (jobid,), dbname=cron_db)

    schedule.runs = runs
    yield schedule
    for jobid in jobs:
        cluster.query("SELECT cron.unschedule(%s)", (jobid,), dbname=cron_db)
        cluster.query("DELETE FROM cron.job_run_details WHERE jobid = %s",
                      (jobid,), dbname=cron_db)


def migrate_command(conn, folder, call=False):
    text = "CALL trek_migrate({}, 'head')" if call else \
        "SELECT trek_execute(trek_plan({}, 'head'))"
    return sql.SQL(text).format(sql.Literal(str(folder))).as_string(conn)


def test_cron_job(cluster, cron, make_folder):
    good_db = cluster.create_database("trek_cron")
    bad_db = cluster.create_database("trek_cron")
    steps_db = cluster.create_database("trek_cron")
    try:
        run_cron_job(cluster, cron, make_folder, good_db, bad_db, steps_db)
    finally:
        cluster.drop_database(good_db)
        cluster.drop_database(bad_db)
        cluster.drop_database(steps_db)


def run_cron_job(cluster, cron, make_folder, good_db, bad_db, steps_db):
    files = chain(2)
    good_later = {GOOD: files.pop(GOOD)}
    good = make_folder(files)
    bad = make_folder(files)
    steps = make_folder(files)
    jobs = {}
    for db, folder in ((good_db, good), (bad_db, bad), (steps_db, steps)):
        with cluster.connect(db) as conn:
            conn.execute(MIGRATION_LOG)
            conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                         (str(folder),))
            assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev1"
            jobs[db] = migrate_command(conn, folder, call=(db == steps_db))

    # not too close to a minute's start, so that the files are in place
    # before the next run
    if time.time() % 60 > 55:
        time.sleep(62 - time.time() % 60)
    good_job = cron(good_db, jobs[good_db])
    bad_job = cron(bad_db, jobs[bad_db])
    steps_job = cron(steps_db, jobs[steps_db])
    # the good folder gets a new migration, the bad ones a good one and a
    # failing one
    good.add(GOOD, good_later[GOOD])
    bad.add(GOOD, good_later[GOOD])
    steps.add(GOOD, "-- trek:no-transaction\n" + good_later[GOOD]
              + "CREATE INDEX CONCURRENTLY t1_cron_idx ON t1 (id);\n")
    for folder in (bad, steps):
        folder.add(BAD, BAD_SQL)

    def finished(jobid):
        return [r for r in cron.runs(jobid) if r[0] in ("succeeded", "failed")]

    wait_for(lambda: finished(good_job) and finished(bad_job)
             and finished(steps_job), 75, "the pg_cron jobs to run",
             interval=0.5)

    # CALL trek_migrate: the good step committed, the failing one did not
    status, message, _ = finished(steps_job)[0]
    assert status == "failed"
    assert 'relation "no_such_table" does not exist' in message
    assert 'migration "%s", step 2 of 2, line 3' % BAD in message
    with cluster.connect(steps_db) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"
        assert [r[3] for r in history(conn)] == [
            "20240101_initial_up_rev1.sql", GOOD]
        assert tables(conn) == ["t1", "t2"]
        assert conn.execute("SELECT indisvalid FROM pg_index WHERE"
                            " indexrelid = 't1_cron_idx'::regclass"
                            ).fetchone()[0] is True
        assert conn.execute("SELECT call, state, steps_done, sqlstate"
                            " FROM trek_runs() LIMIT 1").fetchone() == \
            ("migrate", "failed", 1, "42P01")

    status, message, _ = finished(good_job)[0]
    assert (status, message) == ("succeeded", "1 row")
    with cluster.connect(good_db) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"
        assert [r[3] for r in history(conn)] == [
            "20240101_initial_up_rev1.sql", GOOD]
        assert tables(conn) == ["t1", "t2"]

    status, message, _ = finished(bad_job)[0]
    assert status == "failed"
    assert 'relation "no_such_table" does not exist' in message
    assert 'migration "%s", step 2 of 2, line 3' % BAD in message
    with cluster.connect(bad_db) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev1"
        assert [r[3] for r in history(conn)] == [
            "20240101_initial_up_rev1.sql"]
        assert tables(conn) == ["t1"]
        assert conn.execute("SELECT file FROM migration_log").fetchall() == [
            ("20240101_initial_up_rev1.sql",)]
