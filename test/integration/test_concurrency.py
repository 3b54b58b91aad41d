"""Sixteen sessions migrating one database at the same moment.

This is what many app replicas do when they all run
SELECT trek_execute(trek_plan(dir, 'head')) at start-up.  A gate (an
advisory lock the test holds, taken by the first migration step) keeps the
first caller inside its plan until every other caller is queued behind it,
so the callers really overlap.  Afterwards trek.history, a log table the
migrations write to and the tables they create must show every migration
applied exactly once.
"""

import random
import threading
import time

import psycopg
import pytest
from psycopg import IsolationLevel

from conftest import MIGRATION_LOG, TREK_LOCK_KIND, chain, history, tables, \
    wait_for

CALLERS = 16
GATE = 4242
LEVELS = {
    "read committed": IsolationLevel.READ_COMMITTED,
    "repeatable read": IsolationLevel.REPEATABLE_READ,
    "serializable": IsolationLevel.SERIALIZABLE,
}
# What a concurrent caller may get instead of success (README, "Errors
# concurrent callers can get"): a stale plan, a serialization failure or a
# deadlock.  Planning again in a new transaction resolves each of them.
RETRYABLE = {"55000", "40001", "40P01"}
GATE_SQL = "SELECT pg_advisory_xact_lock(%d);\n" % GATE


class Caller(threading.Thread):
    """One session: plan and execute, retrying what README calls retryable."""

    def __init__(self, cluster, db, folder, target, level, barrier, attempts):
        super().__init__(daemon=True)
        self.args = (cluster, db, str(folder), target, level, barrier)
        self.attempts = attempts
        self.target = target
        self.result = None          # revision returned by trek_execute
        self.seen = None            # trek_current() later in its transaction
        self.errors = []            # (SQLSTATE, message) of failed attempts
        self.notices = []
        self.crash = None           # anything unexpected

    def run(self):
        cluster, db, folder, target, level, barrier = self.args
        try:
            conn = cluster.connect(db, autocommit=False,
                                   options="-c statement_timeout=60s")
            conn.isolation_level = level
            conn.add_notice_handler(
                lambda d: self.notices.append(d.message_primary))
            barrier.wait(timeout=30)
            for _ in range(self.attempts):
                try:
                    row = conn.execute(
                        "SELECT trek_execute(trek_plan(%s, %s))",
                        (folder, target)).fetchone()
                    # what the rest of the caller's transaction sees
                    self.seen = conn.execute(
                        "SELECT trek_current()").fetchone()[0]
                    conn.commit()
                    self.result = row[0]
                    break
                except psycopg.Error as e:
                    conn.rollback()
                    self.errors.append((e.sqlstate, e.diag.message_primary))
                    if e.sqlstate not in RETRYABLE:
                        break
                    time.sleep(random.uniform(0, 0.02))
            conn.close()
        except Exception as e:      # reported by the test, not lost in a thread
            self.crash = e

    def applied(self):
        return [n for n in self.notices if n.startswith("applied migration")]


def waiting_locks(conn):
    """(waiting on trek's track lock, waiting on the gate) in this database."""
    return conn.execute(
        "SELECT count(*) FILTER (WHERE objsubid = %s),"
        "       count(*) FILTER (WHERE classid = 0 AND objid = %s)"
        "  FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        "   AND database = (SELECT oid FROM pg_database"
        "                    WHERE datname = current_database())",
        (TREK_LOCK_KIND, GATE)).fetchone()


def run_callers(cluster, db, folder, targets, level, attempts):
    """Start one caller per target with the gate closed, wait until all of
    them are queued, open the gate and wait for them all to finish."""
    barrier = threading.Barrier(len(targets))
    callers = [Caller(cluster, db, folder, t, level, barrier, attempts)
               for t in targets]
    with cluster.connect(db) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        for c in callers:
            c.start()
        # one caller is inside its plan waiting at the gate, the others wait
        # for trek's lock on the track (or, with nothing to do, are done)
        def queued():
            on_track, at_gate = waiting_locks(gate)
            done = sum(not c.is_alive() for c in callers)
            return at_gate == 1 and on_track + done == len(targets) - 1
        wait_for(queued, 30, "%d callers queued on the track" % len(targets))
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
    for c in callers:
        c.join(timeout=90)
    hung = [c.target for c in callers if c.is_alive()]
    assert not hung, "callers still running after 90 s: %s" % hung
    for c in callers:
        assert c.crash is None, repr(c.crash)
    return callers


@pytest.mark.parametrize("level", LEVELS)
def test_start_up_race(cluster, database, make_folder, level):
    """16 app instances start at once on a fresh database."""
    folder = make_folder(chain(4, extra=GATE_SQL))
    cluster.query(MIGRATION_LOG, dbname=database)

    callers = run_callers(cluster, database, folder, ["head"] * CALLERS,
                          LEVELS[level], attempts=3)

    for c in callers:
        assert c.result == "rev4", (c.errors, c.notices)
        assert {s for s, _ in c.errors} <= RETRYABLE, c.errors
    # one caller did the work, the others found it done
    workers = [c for c in callers if c.applied()]
    assert len(workers) == 1
    assert len(workers[0].applied()) == 4
    for c in callers:
        if c is not workers[0]:
            assert 'track "default" is already at revision "rev4", nothing to do' \
                in c.notices, c.notices
            # the rest of a waiting caller's transaction sees the work done
            # only under READ COMMITTED; the others keep their snapshot
            # (README, "At application start-up")
            assert c.seen == ("rev4" if level == "read committed" or c.errors
                              else "initial")
    assert workers[0].seen == "rev4"

    with cluster.connect(database) as conn:
        assert history(conn) == [
            ("initial", "rev1", "up", "20240101_initial_up_rev1.sql"),
            ("rev1", "rev2", "up", "20240102_rev1_up_rev2.sql"),
            ("rev2", "rev3", "up", "20240103_rev2_up_rev3.sql"),
            ("rev3", "rev4", "up", "20240104_rev3_up_rev4.sql"),
        ]
        log = [r[0] for r in conn.execute(
            "SELECT file FROM migration_log ORDER BY id")]
        assert log == [h[3] for h in history(conn)]
        assert tables(conn) == ["t1", "t2", "t3", "t4"]


@pytest.mark.parametrize("level", LEVELS)
def test_mixed_targets(cluster, database, make_folder, level):
    """16 callers at once, some going up and some down from rev2; each
    retries until it reaches its own target."""
    folder = make_folder(chain(4, extra=GATE_SQL))
    cluster.query(MIGRATION_LOG, dbname=database)
    with cluster.connect(database) as conn:
        conn.execute("SELECT trek_execute(trek_plan(%s, 'rev2'))",
                     (str(folder),))
        start = len(history(conn))
    targets = (["head", "initial", "rev1", "rev3", "rev2", "rev4", "rev1",
                "initial"] * 2)[:CALLERS]

    callers = run_callers(cluster, database, folder, targets, LEVELS[level],
                          attempts=60)

    for c in callers:
        want = "rev4" if c.target == "head" else c.target
        assert c.result == want, (c.target, c.errors)
        assert {s for s, _ in c.errors} <= RETRYABLE, c.errors
    stale = [m for c in callers for s, m in c.errors if s == "55000"]
    assert stale, "no caller met a stale plan: the callers did not overlap"
    assert all(m.startswith("plan is stale: ") for m in stale), stale

    with cluster.connect(database) as conn:
        rows = history(conn)
        # history is one unbroken walk from initial ...
        assert rows[0][0] == "initial"
        for prev, row in zip(rows, rows[1:]):
            assert row[0] == prev[1], rows
        # ... each row is a migration that ran once and committed ...
        log = [r[0] for r in conn.execute(
            "SELECT file FROM migration_log ORDER BY id")]
        assert log == [r[3] for r in rows]
        assert sum(len(c.applied()) for c in callers) == len(rows) - start
        # ... and the schema is the one of the revision the track is at
        current = conn.execute("SELECT trek_current()").fetchone()[0]
        k = 0 if current == "initial" else int(current[3:])
        assert current == rows[-1][1]
        assert tables(conn) == ["t%d" % i for i in range(1, k + 1)]


def test_lock_timeout(cluster, database, make_folder):
    """A caller that will not wait long (lock_timeout) gets 55P03 while
    another session applies a plan; retried later, it finds the work done."""
    folder = str(make_folder(chain(2, extra=GATE_SQL)))
    cluster.query(MIGRATION_LOG, dbname=database)
    barrier = threading.Barrier(1)
    with cluster.connect(database) as gate, \
            cluster.connect(database, options="-c lock_timeout=200ms") as impatient:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        first = Caller(cluster, database, folder, "head",
                       IsolationLevel.READ_COMMITTED, barrier, attempts=1)
        first.start()
        wait_for(lambda: waiting_locks(gate) == (0, 1), 30,
                 "the first caller to reach the gate")
        with pytest.raises(psycopg.errors.LockNotAvailable) as err:
            impatient.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                              (folder,))
        assert err.value.sqlstate == "55P03"
        assert err.value.diag.message_primary == \
            "canceling statement due to lock timeout"
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        first.join(60)
        assert first.result == "rev2", first.errors
        notices = []
        impatient.add_notice_handler(lambda d: notices.append(d.message_primary))
        assert impatient.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                                 (folder,)).fetchone()[0] == "rev2"
        assert notices == [
            'track "default" is already at revision "rev2", nothing to do']
        assert [r[1] for r in history(gate)] == ["rev1", "rev2"]


def attempt(conn, folder, outcome, key):
    """One try in conn's own transaction: the revision, or the SQLSTATE."""
    try:
        outcome[key] = conn.execute(
            "SELECT trek_execute(trek_plan(%s, 'head'))",
            (folder,)).fetchone()[0]
        conn.commit()
    except psycopg.Error as e:
        conn.rollback()
        outcome[key] = e.sqlstate


def test_deadlock(cluster, database, make_folder):
    """A caller that holds a lock a migration needs, and then waits for the
    track, deadlocks with the session applying the plan.  PostgreSQL aborts
    one of them with 40P01; retried, the plan is applied once."""
    folder = str(make_folder({
        "20240101_initial_up_rev1.sql": "CREATE TABLE accounts (id int);\n",
        "20240102_rev1_up_rev2.sql":
            GATE_SQL + "ALTER TABLE accounts ADD COLUMN email text;\n",
    }))
    with cluster.connect(database) as conn:
        conn.execute("SELECT trek_execute(trek_plan(%s, 'rev1'))", (folder,))
    opts = "-c deadlock_timeout=100ms -c statement_timeout=60s"
    outcome = {}
    with cluster.connect(database) as gate, \
            cluster.connect(database, autocommit=False, options=opts) as a, \
            cluster.connect(database, autocommit=False, options=opts) as b:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        ta = threading.Thread(target=attempt, args=(a, folder, outcome, "a"))
        ta.start()
        wait_for(lambda: waiting_locks(gate) == (0, 1), 30,
                 "session a to reach the gate")
        # b reads accounts, keeping a lock on it to the end of its
        # transaction, then waits for the track that a holds; a, once
        # through the gate, wants to alter accounts
        b.execute("SELECT count(*) FROM accounts")
        tb = threading.Thread(target=attempt, args=(b, folder, outcome, "b"))
        tb.start()
        wait_for(lambda: waiting_locks(gate) == (1, 1), 30,
                 "session b to wait for the track")
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        ta.join(60)
        tb.join(60)
        assert not ta.is_alive() and not tb.is_alive()
    # one of them lost, the other applied the plan
    assert sorted(outcome.values()) == ["40P01", "rev2"], outcome
    with cluster.connect(database) as conn:
        # the loser's retry finds the work done
        assert conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                            (folder,)).fetchone()[0] == "rev2"
        assert [r[1] for r in history(conn)] == ["rev1", "rev2"]
        assert conn.execute("SELECT count(*) FROM information_schema.columns"
                            " WHERE table_name = 'accounts'").fetchone()[0] == 2


def test_older_instance_meets_newer_database(cluster, database, make_folder):
    """During a rolling deploy, an instance still carrying the old folder
    starts after a new one migrated further: trek refuses to plan rather
    than take the database anywhere."""
    old = str(make_folder(chain(2)))
    new = str(make_folder(chain(3)))
    cluster.query(MIGRATION_LOG, dbname=database)
    with cluster.connect(database) as conn:
        conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))", (new,))
        with pytest.raises(psycopg.errors.UndefinedObject) as err:
            conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))", (old,))
        assert err.value.diag.message_primary == (
            'track "default" is at revision "rev3", which migration folder'
            ' "%s" does not know' % old)
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev3"
        assert tables(conn) == ["t1", "t2", "t3"]
