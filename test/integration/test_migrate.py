"""CALL trek_migrate against real servers: many callers at once, crashes,
lock safety and progress seen from other sessions."""

import os
import random
import signal
import threading
import time

import psycopg
import pytest
from psycopg import IsolationLevel

from conftest import MIGRATION_LOG, Cluster, chain, history, tables, wait_for

CALLERS = 16
GATE = 4244
RETRYABLE = {"55000", "40001", "40P01"}
MIGRATE = "CALL trek_migrate(%s, %s)"
EXECUTE = "SELECT trek_execute(trek_plan(%s, %s))"


class Caller(threading.Thread):
    """One session: CALL trek_migrate in autocommit, or trek_execute in a
    transaction of the given isolation level; retries what is retryable."""

    def __init__(self, cluster, db, folder, target, how, level, barrier):
        super().__init__(daemon=True)
        self.args = (cluster, db, str(folder), target, how, level, barrier)
        self.errors = []
        self.crash = None
        self.done = False

    def run(self):
        cluster, db, folder, target, how, level, barrier = self.args
        try:
            conn = cluster.connect(db, autocommit=(how == "migrate"),
                                   options="-c statement_timeout=120s")
            if how == "execute":
                conn.isolation_level = level
            else:
                conn.execute("SET default_transaction_isolation = '%s'"
                             % level.name.replace("_", " ").lower())
            barrier.wait(timeout=30)
            for _ in range(20):
                try:
                    if how == "migrate":
                        conn.execute(MIGRATE, (folder, target))
                    else:
                        conn.execute(EXECUTE, (folder, target))
                        conn.commit()
                    self.done = True
                    break
                except psycopg.Error as e:
                    if how == "execute":
                        conn.rollback()
                    self.errors.append((e.sqlstate, e.diag.message_primary))
                    if e.sqlstate not in RETRYABLE:
                        break
                    time.sleep(random.uniform(0, 0.02))
            conn.close()
        except Exception as e:
            self.crash = e


@pytest.mark.parametrize("level", [IsolationLevel.READ_COMMITTED,
                                   IsolationLevel.REPEATABLE_READ,
                                   IsolationLevel.SERIALIZABLE])
def test_migrate_and_execute_race_exactly_once(cluster, database, make_folder,
                                               level):
    """Sixteen sessions, half CALL trek_migrate and half trek_execute, all
    to head at once: every migration is applied exactly once, and history
    is one unbroken chain."""
    files = chain(6, extra="SELECT pg_sleep(0.02);\n")
    folder = make_folder(files)
    with cluster.connect(database) as conn:
        conn.execute(MIGRATION_LOG)
    barrier = threading.Barrier(CALLERS)
    callers = [Caller(cluster, database, folder, "head",
                      "migrate" if i % 2 else "execute", level, barrier)
               for i in range(CALLERS)]
    for c in callers:
        c.start()
    for c in callers:
        c.join(180)
    assert not [c.crash for c in callers if c.crash]
    assert all(c.done for c in callers), [c.errors for c in callers]
    with cluster.connect(database) as conn:
        log = [r[0] for r in conn.execute(
            "SELECT file FROM migration_log ORDER BY id")]
        assert log == sorted(f for f in files if "_up_" in f)
        rows = history(conn)
        assert [(r[0], r[1]) for r in rows] == \
            [("initial" if k == 1 else "rev%d" % (k - 1), "rev%d" % k)
             for k in range(1, 7)]
        assert tables(conn) == ["t%d" % k for k in range(1, 7)]


@pytest.fixture(scope="module")
def crash_cluster():
    c = Cluster.create("migcrash", {"restart_after_crash": "on", "fsync": "off"})
    try:
        yield c.start()
    finally:
        c.destroy()


GATED = {
    "20240101_initial_up_rev1.sql": "CREATE TABLE m1 (id int);\n",
    "20240102_rev1_up_rev2.sql": "CREATE TABLE m2 (id int);\n",
    "20240103_rev2_up_rev3.sql":
        "CREATE TABLE m3 (id int);\n"
        "SELECT pg_advisory_xact_lock(%d);\n"
        "INSERT INTO m3 VALUES (3);\n" % GATE,
    "20240104_rev3_up_rev4.sql": "CREATE TABLE m4 (id int);\n",
}


def start_migrate_at_gate(cluster, db, folder):
    """CALL trek_migrate to head in a thread; return once step 3 of 4 waits
    at the gate, after steps 1 and 2 committed."""
    outcome = {}

    def run():
        try:
            with cluster.connect(db) as conn:
                conn.execute(MIGRATE, (str(folder), "head"))
            outcome["result"] = "done"
        except psycopg.Error as e:
            outcome["result"] = e

    gate = cluster.connect(db)
    gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    pid = wait_for(lambda: gate.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = 0 AND objid = %s", (GATE,)).fetchone(), 60,
        "the run to reach the gate")[0]
    return t, pid, outcome, gate


def assert_resumes(cluster, db, folder):
    with cluster.connect(db) as conn:
        # the committed steps stay, the cut step left nothing
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"
        assert conn.execute("SELECT to_regclass('m2') IS NOT NULL,"
                            " to_regclass('m3') IS NULL").fetchone() == (True, True)
        run = conn.execute("SELECT state, steps_done, current_file"
                           " FROM trek_runs() LIMIT 1").fetchone()
        assert run == ("interrupted", 2, "20240103_rev2_up_rev3.sql")
        conn.execute(MIGRATE, (str(folder), "head"))
        assert [r[1] for r in history(conn)] == ["rev1", "rev2", "rev3", "rev4"]
        assert conn.execute("SELECT array_agg(id) FROM m3").fetchone()[0] == [3]
        assert conn.execute("SELECT state FROM trek_runs() LIMIT 1"
                            ).fetchone()[0] == "done"


def test_backend_killed_mid_step(crash_cluster, make_folder):
    folder = make_folder(GATED)
    db = crash_cluster.create_database()
    log_before = len(crash_cluster.log_text())
    t, pid, outcome, gate = start_migrate_at_gate(crash_cluster, db, folder)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    assert isinstance(outcome["result"], psycopg.OperationalError)
    gate.close()
    wait_for(lambda: "all server processes terminated; reinitializing"
             in crash_cluster.log_text()[log_before:], 60, "reinitialization")
    wait_for(crash_cluster.ready, 60, "the server after the crash")
    assert_resumes(crash_cluster, db, folder)
    crash_cluster.drop_database(db)


def test_immediate_shutdown_mid_step(crash_cluster, make_folder):
    folder = make_folder(GATED)
    db = crash_cluster.create_database()
    t, pid, outcome, gate = start_migrate_at_gate(crash_cluster, db, folder)
    crash_cluster.stop("immediate")
    t.join(60)
    assert isinstance(outcome["result"], psycopg.OperationalError)
    gate.close()
    crash_cluster.start()
    assert_resumes(crash_cluster, db, folder)
    crash_cluster.drop_database(db)


LOCKED = {
    "20240101_initial_up_rev1.sql":
        "CREATE TABLE hot (id int PRIMARY KEY);\n"
        "INSERT INTO hot SELECT generate_series(1, 100);\n",
    "20240102_rev1_up_rev2.sql": "ALTER TABLE hot ADD COLUMN note text;\n",
}


class Reader(threading.Thread):
    """Queries the table all the time; records the slowest query."""

    def __init__(self, cluster, db):
        super().__init__(daemon=True)
        self.cluster, self.db = cluster, db
        self.stop = threading.Event()
        self.slowest = 0.0
        self.done_at = []       # when each query completed

    def run(self):
        with self.cluster.connect(self.db) as conn:
            while not self.stop.is_set():
                t = time.monotonic()
                conn.execute("SELECT count(*) FROM hot").fetchone()
                self.slowest = max(self.slowest, time.monotonic() - t)
                self.done_at.append(time.monotonic())
                time.sleep(0.01)


@pytest.mark.parametrize("blocker_ends", [True, False])
def test_lock_timeout_keeps_traffic_flowing(cluster, database, make_folder,
                                            blocker_ends):
    """A session idle in transaction holds ACCESS SHARE on a table that a
    step alters, while a third session queries the table all the time: the
    third session never waits much longer than trek.lock_timeout, every
    retry names the blocker, and the run completes once the blocker commits
    (or ends with 55P03 and a hint naming it)."""
    folder = make_folder(LOCKED)
    lock_timeout = 0.3
    with cluster.connect(database) as conn:
        conn.execute(MIGRATE, (str(folder), "rev1"))
    blocker = cluster.connect(database, autocommit=False)
    blocker.execute("SELECT count(*) FROM hot").fetchone()     # ACCESS SHARE
    blocker_pid = blocker.info.backend_pid
    reader = Reader(cluster, database)
    reader.start()
    notices = []
    retried_at = []
    outcome = {}

    def notice(d):
        notices.append((d.message_primary, d.message_detail))
        if "timed out waiting for a lock" in d.message_primary:
            retried_at.append(time.monotonic())

    def run():
        with cluster.connect(database) as conn:
            conn.add_notice_handler(notice)
            conn.execute("SET trek.lock_timeout = '%dms'" % (lock_timeout * 1000))
            conn.execute("SET trek.lock_retries = %d" % (30 if blocker_ends else 3))
            try:
                conn.execute(MIGRATE, (str(folder), "rev2"))
                outcome["result"] = "done"
            except psycopg.Error as e:
                outcome["result"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_for(lambda: len([n for n in notices
                          if "timed out waiting for a lock" in n[0]]) >= 2,
             30, "two retries")
    if blocker_ends:
        blocker.commit()
    t.join(120)
    reader.stop.set()
    reader.join(30)
    blocker.close()

    retries = [n for n in notices if "timed out waiting for a lock" in n[0]]
    assert len(retries) >= 2
    assert all("pid %d " % blocker_pid in (d or "") for _, d in retries), retries
    # the reader got through while the step was retrying, and waited at
    # most about one lock timeout at a time
    assert any(retried_at[0] < t < retried_at[-1] for t in reader.done_at), \
        (retried_at, reader.done_at)
    assert reader.slowest < lock_timeout + 1.0, reader.slowest
    with cluster.connect(database) as conn:
        current = conn.execute("SELECT trek_current()").fetchone()[0]
        run = conn.execute("SELECT state, sqlstate FROM trek_runs() LIMIT 1"
                           ).fetchone()
    if blocker_ends:
        assert outcome["result"] == "done"
        assert current == "rev2" and run == ("done", None)
    else:
        err = outcome["result"]
        assert isinstance(err, psycopg.errors.LockNotAvailable)
        assert "pid %d " % blocker_pid in err.diag.message_hint
        assert current == "rev1" and run == ("failed", "55P03")


def test_progress_is_visible_while_a_step_runs(cluster, database, make_folder):
    """While step 2 of 3 runs, another session sees it in pg_stat_activity
    and in trek_runs(); afterwards the run is done, or failed with its
    SQLSTATE and message."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql": "SELECT 1;\n",
        "20240102_rev1_up_rev2.sql":
            "SELECT pg_advisory_xact_lock(%d);\n" % GATE,
        "20240103_rev2_up_rev3.sql": "SELECT 3;\n",
        "20240104_rev3_up_rev4.sql": "SELECT 1 / 0;\n",
    })
    with cluster.connect(database) as watcher:
        watcher.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        outcome = {}

        def run():
            with cluster.connect(database) as conn:
                try:
                    conn.execute(MIGRATE, (str(folder), "rev3"))
                    outcome["result"] = "done"
                except psycopg.Error as e:
                    outcome["result"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        pid = wait_for(lambda: watcher.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
            " AND NOT granted AND classid = 0 AND objid = %s", (GATE,)
        ).fetchone(), 30, "step 2 to wait")[0]
        query = watcher.execute("SELECT query FROM pg_stat_activity"
                                " WHERE pid = %s", (pid,)).fetchone()[0]
        assert query == ('trek_migrate: track "default", step 2 of 3,'
                         ' 20240102_rev1_up_rev2.sql')
        run_row = watcher.execute(
            "SELECT state, steps_done, steps_planned, current_file, pid,"
            " current_since IS NOT NULL FROM trek_runs()").fetchone()
        assert run_row == ("running", 1, 3, "20240102_rev1_up_rev2.sql", pid,
                           True)
        watcher.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        t.join(30)
        assert outcome["result"] == "done"
        assert watcher.execute("SELECT state, steps_done, current_file,"
                               " finished_at IS NOT NULL FROM trek_runs()"
                               ).fetchone() == ("done", 3, None, True)
        with pytest.raises(psycopg.errors.DivisionByZero):
            watcher.execute(MIGRATE, (str(folder), "rev4"))
        assert watcher.execute("SELECT state, sqlstate, message, steps_done"
                               " FROM trek_runs() LIMIT 1").fetchone() == \
            ("failed", "22012", "division by zero", 0)
        # a no-op call writes nothing
        runs = watcher.execute("SELECT count(*) FROM trek_runs()").fetchone()[0]
        watcher.execute(MIGRATE, (str(folder), "rev3"))
        assert watcher.execute("SELECT count(*) FROM trek_runs()"
                               ).fetchone()[0] == runs


def test_failed_execute_run_is_recorded(cluster, database, make_folder):
    """trek_execute's transaction rolls back on failure, its run is still
    recorded (by a short-lived background worker), with the step it failed
    in and the error; a successful run commits its row with the plan, and
    a no-op call records nothing."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql": "CREATE TABLE r1 (id int);\n",
        "20240102_rev1_up_rev2.sql": "CREATE TABLE r2 (id int);\n",
        "20240103_rev2_up_rev3.sql": "SELECT 1 / 0;\n",
    })
    with cluster.connect(database) as conn:
        conn.execute(EXECUTE, (str(folder), "rev2"))
        assert conn.execute("SELECT call, state, steps_done, steps_planned"
                            " FROM trek_runs()").fetchall() == \
            [("execute", "done", 2, 2)]
        conn.execute(EXECUTE, (str(folder), "rev2"))       # no-op
        assert conn.execute("SELECT count(*) FROM trek_runs()").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                conn.execute(EXECUTE, (str(folder), "rev3"))
        row = wait_for(lambda: conn.execute(
            "SELECT call, state, steps_done, steps_planned, current_file,"
            " sqlstate, message, pid = pg_backend_pid() FROM trek_runs()"
            " WHERE state = 'failed'").fetchone(), 30, "the failed run's row")
        assert row == ("execute", "failed", 0, 1, "20240103_rev2_up_rev3.sql",
                       "22012", "division by zero", True)
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"
