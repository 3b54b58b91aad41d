"""A plan cut short by a crash leaves no trace, and the same call then
completes.

The plan goes from rev1 to rev3: step 1 builds a 200,000-row table, step 2
creates another table and then waits at a gate (an advisory lock the test
holds).  While it waits, the server loses the backend (SIGKILL, after which
the postmaster reinitialises) or stops at once (pg_ctl stop -m immediate).
These tests run on a cluster of their own, since both take every session
of the server down.
"""

import os
import signal
import threading

import psycopg
import pytest

from conftest import Cluster, history, wait_for

GATE = 4243
FILES = {
    "20240101_initial_up_rev1.sql":
        "CREATE TABLE base (id int PRIMARY KEY);\n"
        "INSERT INTO base VALUES (1);\n",
    "20240102_rev1_up_rev2.sql":
        "CREATE TABLE big AS\n"
        "  SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g;\n"
        "ALTER TABLE big ADD PRIMARY KEY (id);\n"
        "UPDATE base SET id = 2;\n",
    "20240103_rev2_up_rev3.sql":
        "CREATE TABLE t3 (id int);\n"
        "SELECT pg_advisory_xact_lock(%d);\n"
        "INSERT INTO t3 VALUES (3);\n" % GATE,
}
CALL = "SELECT trek_execute(trek_plan(%s, 'head'))"


@pytest.fixture(scope="module")
def crash_cluster():
    # fsync only matters when the operating system goes down; a crashed
    # server still replays its WAL on restart, which is what is tested
    c = Cluster.create("crash", {"restart_after_crash": "on", "fsync": "off"})
    try:
        yield c.start()
    finally:
        c.destroy()


@pytest.fixture
def crash_db(crash_cluster, make_folder):
    folder = make_folder(FILES)
    db = crash_cluster.create_database()
    with crash_cluster.connect(db) as conn:
        conn.execute("SELECT trek_execute(trek_plan(%s, 'rev1'))",
                     (str(folder),))
    yield db, folder
    wait_for(crash_cluster.ready, 60, "the crash cluster")
    crash_cluster.drop_database(db)


def start_plan_and_wait_at_gate(cluster, db, folder):
    """Run CALL in a thread; return (thread, backend pid) once step 2 of 2
    waits at the gate, inside a transaction that has done step 1."""
    outcome = {}

    def run():
        try:
            with cluster.connect(db) as conn:
                conn.execute(CALL, (str(folder),))
            outcome["result"] = "committed"
        except psycopg.Error as e:
            outcome["result"] = e

    gate = cluster.connect(db)
    gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    pid = wait_for(lambda: gate.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = 0 AND objid = %s", (GATE,)).fetchone(), 60,
        "the plan to reach the gate")[0]
    # the plan's own transaction holds step 1's work, uncommitted
    assert gate.execute("SELECT to_regclass('big') IS NULL").fetchone()[0]
    return t, pid, outcome, gate


def assert_untouched_then_complete(cluster, db, folder):
    with cluster.connect(db) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev1"
        assert history(conn) == [
            ("initial", "rev1", "up", "20240101_initial_up_rev1.sql")]
        assert conn.execute(
            "SELECT to_regclass('big'), to_regclass('t3'),"
            " (SELECT array_agg(id) FROM base)").fetchone() == (None, None, [1])
        # the very same call now completes
        assert conn.execute(CALL, (str(folder),)).fetchone()[0] == "rev3"
        assert [r[1] for r in history(conn)] == ["rev1", "rev2", "rev3"]
        assert conn.execute(
            "SELECT (SELECT count(*) FROM big), (SELECT array_agg(id) FROM t3),"
            " (SELECT array_agg(id) FROM base)").fetchone() == (200000, [3], [2])


def test_backend_killed(crash_cluster, crash_db):
    db, folder = crash_db
    log_before = len(crash_cluster.log_text())
    t, pid, outcome, gate = start_plan_and_wait_at_gate(crash_cluster, db,
                                                        folder)
    os.kill(pid, signal.SIGKILL)
    t.join(60)
    assert not t.is_alive()
    assert isinstance(outcome["result"], psycopg.OperationalError)
    gate.close()

    # the postmaster notices the loss, stops every backend, recovers
    wait_for(lambda: "all server processes terminated; reinitializing"
             in crash_cluster.log_text()[log_before:], 60,
             "the postmaster to reinitialize")
    wait_for(crash_cluster.ready, 60, "the server to restart after the crash")
    log = crash_cluster.log_text()[log_before:]
    assert "(PID %d) was terminated by signal 9" % pid in log
    assert_untouched_then_complete(crash_cluster, db, folder)


def test_immediate_shutdown(crash_cluster, crash_db):
    db, folder = crash_db
    t, pid, outcome, gate = start_plan_and_wait_at_gate(crash_cluster, db,
                                                        folder)
    crash_cluster.stop("immediate")
    t.join(60)
    assert not t.is_alive()
    assert isinstance(outcome["result"], psycopg.OperationalError)
    gate.close()

    log_before = len(crash_cluster.log_text())
    crash_cluster.start()
    assert "automatic recovery in progress" in \
        crash_cluster.log_text()[log_before:]
    assert_untouched_then_complete(crash_cluster, db, folder)
