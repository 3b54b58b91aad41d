"""The track lock: no SQL a role can run releases, shares or collides it.

It is an advisory lock of a kind no SQL function takes plus the same tag in
the default lock method, which no SQL function releases, keyed on 64 bits
of the SHA-256 of the track's name (src/state.c).  A step of trek_migrate
that releases every advisory lock of its session (pg_advisory_unlock_all(),
DISCARD ALL) is refused, and no second caller gets in meanwhile.
"""

import hashlib
import struct
import threading
import time

import psycopg
import pytest

from conftest import wait_for

GATE = 8_320_001
TREK_LOCK_KIND = 0x7472
MIGRATE = "CALL trek_migrate(%s, 'head')"


def run_in_thread(cluster, db, sql, params, outcome, key):
    def run():
        try:
            with cluster.connect(db) as conn:
                conn.execute(sql, params)
            outcome[key] = "done"
        except psycopg.Error as e:
            outcome[key] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("release", [
    "SELECT pg_advisory_unlock_all();",
    "DISCARD ALL;",
])
def test_step_releasing_the_lock_lets_nobody_in(cluster, database, make_folder,
                                                release):
    """A step releases every advisory lock of its session while a second
    caller waits for the track: the step is refused, the second caller
    does not get in while the first run lasts, nothing is applied twice."""
    no_txn = release.startswith("DISCARD")
    step2 = ("-- trek:no-transaction\n" if no_txn else "") + \
        "INSERT INTO applied VALUES ('two');\n" + \
        ("SELECT pg_advisory_lock(%d); SELECT pg_advisory_unlock(%d);\n"
         % (GATE, GATE)) + release + "\nSELECT pg_sleep(1);\n"
    folder = make_folder({
        "20240101_initial_up_one.sql": "CREATE TABLE applied (step text);\n",
        "20240102_one_up_two.sql": step2,
    })
    outcome = {}
    with cluster.connect(database) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        first = run_in_thread(cluster, database, MIGRATE, (str(folder),),
                              outcome, "first")
        wait_for(lambda: gate.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = 0 AND objid = %s", (GATE,)).fetchone(), 60,
            "the first run to reach the gate")
        second = run_in_thread(cluster, database, MIGRATE, (str(folder),),
                               outcome, "second")
        wait_for(lambda: gate.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND objsubid = %s", (TREK_LOCK_KIND,)).fetchone(), 60,
            "the second run to wait for the track")
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        first.join(60)
        second.join(60)
        for key in ("first", "second"):
            err = outcome[key]
            assert isinstance(err, psycopg.errors.ObjectNotInPrerequisiteState), err
            assert "released trek's lock" in str(err)
        files = [r[0] for r in gate.execute(
            "SELECT file FROM trek.history ORDER BY id").fetchall()]
        assert files == ["20240101_initial_up_one.sql"]
        rows = [r[0] for r in gate.execute("SELECT step FROM applied").fetchall()]
        if no_txn:
            # statements before the failing one stay done, once per run,
            # one run after the other
            assert rows == ["two", "two"]
        else:
            assert rows == []
        runs = gate.execute("SELECT state, current_file FROM trek_runs()"
                            " ORDER BY id").fetchall()
        assert runs == [("failed", "20240102_one_up_two.sql")] * 2


def test_lock_tag_is_64_bits_of_sha256(cluster, database, make_folder):
    folder = make_folder({
        "20240101_initial_up_one.sql":
            "SELECT pg_advisory_xact_lock(%d);\n" % GATE,
    })
    outcome = {}
    with cluster.connect(database) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        t = run_in_thread(cluster, database,
                          "CALL trek_migrate(%s, 'head', track => 'tenant a')",
                          (str(folder),), outcome, "run")
        rows = wait_for(lambda: gate.execute(
            "SELECT classid::bigint, objid::bigint, granted FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = %s",
            (TREK_LOCK_KIND,)).fetchall(), 60, "the track lock")
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        t.join(60)
        assert outcome["run"] == "done"
    digest = hashlib.sha256(b"tenant a").digest()
    high, low = struct.unpack("=II", digest[:8])
    # both parts of the lock: the advisory one and the default method's
    assert rows == [(high, low, True), (high, low, True)]


def test_tracks_whose_old_keys_collide_do_not_block(cluster, database,
                                                    make_folder):
    """Two track names with the same 32-bit hash (the key of trek 0.2's
    lock): holding one track does not block the other."""
    with cluster.connect(database) as conn:
        pair = conn.execute(
            "SELECT array_agg(n ORDER BY n) FROM (SELECT 't' || i AS n"
            " FROM generate_series(1, 300000) i) s"
            " GROUP BY hashtext(n) HAVING count(*) > 1 LIMIT 1").fetchone()[0]
    assert pair is not None
    folder = make_folder({"20240101_initial_up_one.sql": "SELECT 1;\n"})
    with cluster.connect(database, autocommit=False) as holder, \
            cluster.connect(database) as other:
        holder.execute("SELECT trek_execute(trek_plan(%s, 'head', track => %s))",
                       (str(folder), pair[0]))
        other.execute("SET lock_timeout = '2s'")
        started = time.monotonic()
        assert other.execute(
            "SELECT trek_execute(trek_plan(%s, 'head', track => %s))",
            (str(folder), pair[1])).fetchone()[0] == "one"
        assert time.monotonic() - started < 2
        holder.rollback()
