"""Folders sent by the client as jsonb, where one session is not enough to
show it: sixteen clients at once, a folder over the total, and what a large
sent folder costs the server in memory.  sql/sent.sql has the rest."""

import json
import threading

import psycopg
import pytest

from conftest import MIGRATION_LOG, TREK_LOCK_KIND, chain, history, tables, \
    wait_for

SENT = "(sent by the client)"
CALLERS = 16
GATE = 4343
GATE_SQL = "SELECT pg_advisory_xact_lock(%d);\n" % GATE


def test_sixteen_clients_at_once(cluster, database):
    """Sixteen app replicas start together and each sends its folder with
    CALL trek_migrate: one applies every step, once; the others wait for the
    track and find the work done.  A gate (an advisory lock the first step
    takes) holds the first caller inside its run until all are queued."""
    files = chain(4, extra=GATE_SQL)
    cluster.query(MIGRATION_LOG, dbname=database)
    barrier = threading.Barrier(CALLERS)
    outcome = [None] * CALLERS
    notices = [[] for _ in range(CALLERS)]

    def caller(i):
        try:
            with cluster.connect(database, options="-c statement_timeout=60s") as conn:
                conn.add_notice_handler(
                    lambda d: notices[i].append(d.message_primary))
                barrier.wait(timeout=30)
                conn.execute("CALL trek_migrate(%s::jsonb, 'head')",
                             (json.dumps(files),))
                outcome[i] = conn.execute("SELECT trek_current()").fetchone()[0]
        except Exception as e:          # reported below, not lost in a thread
            outcome[i] = e

    threads = [threading.Thread(target=caller, args=(i,), daemon=True)
               for i in range(CALLERS)]
    with cluster.connect(database) as gate:
        gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
        for t in threads:
            t.start()

        def queued():
            at_gate, on_track = gate.execute(
                "SELECT count(*) FILTER (WHERE classid = 0 AND objid = %s),"
                "       count(*) FILTER (WHERE objsubid = %s)"
                "  FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                (GATE, TREK_LOCK_KIND)).fetchone()
            return at_gate == 1 and on_track == CALLERS - 1
        wait_for(queued, 30, "%d callers queued on the track" % CALLERS)
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
    for t in threads:
        t.join(timeout=90)
    assert outcome == ["rev4"] * CALLERS, outcome

    applied = [[n for n in ns if n.startswith("applied migration")]
               for ns in notices]
    assert sorted(len(a) for a in applied) == [0] * (CALLERS - 1) + [4]
    with cluster.connect(database) as conn:
        assert [h[3] for h in history(conn)] == sorted(
            f for f in files if "_up_" in f)
        log = [r[0] for r in conn.execute(
            "SELECT file FROM migration_log ORDER BY id")]
        assert log == [h[3] for h in history(conn)]
        assert tables(conn) == ["t1", "t2", "t3", "t4"]
        assert conn.execute("SELECT array_agg(DISTINCT dir) FROM trek.history"
                            ).fetchone()[0] == [SENT]


def test_folder_over_the_total(cluster, database):
    """A sent folder holds at most 128 MB of file text: over it, a clear
    error before anything is planned or applied."""
    big = "-- " + "x" * (16 * 1024 * 1024 - 4) + "\n"
    files = {"20240101_initial_up_a.sql": "CREATE TABLE a (i int);"}
    for k in range(8):
        files["padding_%d.txt" % k] = big
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute("CALL trek_migrate(%s::jsonb, 'head')",
                         (json.dumps(files),))
        assert e.value.sqlstate == "54000"
        assert e.value.diag.message_primary == "sent migration folder is too large"
        assert "134217728 bytes" in e.value.diag.message_detail
        assert conn.execute("SELECT trek_current(), to_regclass('a'),"
                            " (SELECT count(*) FROM trek.history)").fetchone() \
            == ("initial", None, 0)
        # one file less is within the total, and migrates
        del files["padding_7.txt"]
        conn.execute("CALL trek_migrate(%s::jsonb, 'head')",
                     (json.dumps(files),))
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "a"


def peak_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for backend %d" % pid)


def test_memory_of_a_large_sent_folder(cluster, database):
    """Migrating from a sent folder of 200 files of 100 kB (20 MB of text)
    costs the backend no more than parsing that jsonb alone does, and at
    most a small multiple of the folder's size (bench/sent.sh measures
    100 MB)."""
    files = {}
    prev = "initial"
    for k in range(1, 201):
        rev = "r%03d" % k
        files["20240101_%s_up_%s.sql" % (prev, rev)] = \
            "-- " + "x" * 99990 + "\nSELECT 1;\n"
        prev = rev
    text = json.dumps(files)
    size_kb = sum(len(v) for v in files.values()) / 1024

    def growth(sql):
        with cluster.connect(database) as conn:
            conn.execute("SET client_min_messages = warning")
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            before = peak_kb(pid)
            conn.execute(sql, (text,))
            return peak_kb(pid) - before

    parse = growth("SELECT count(*) FROM jsonb_object_keys(%s::jsonb)")
    migrate = growth("CALL trek_migrate(%s::jsonb, 'head')")
    with cluster.connect(database) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "r200"
    assert migrate <= parse * 1.25 + 4096, (migrate, parse)
    assert migrate <= 6 * size_kb, (migrate, size_kb)
