"""Cancellation, timeouts and very large files, against the test cluster.

Needs a second session, so it lives here rather than in pg_regress: one
session runs a migration, another cancels or terminates it, and the tests
check that nothing was applied and that the next call works.  The server
runs as another OS user, so the migration folders are made world-readable.
"""
import os
import shutil
import tempfile
import threading
import time

import psycopg
import pytest
from psycopg import errors

DB = "trek_cancel_test"

MIGRATIONS = {
    "20240101_initial_up_one.sql":
        "CREATE TABLE cancel_t (id int);\nINSERT INTO cancel_t VALUES (1);\n",
    # the sleep is set per test through a placeholder setting
    "20240102_one_up_two.sql":
        "INSERT INTO cancel_t VALUES (2);\n"
        "SELECT pg_sleep(coalesce(nullif(current_setting('trek_test.sleep',"
        " true), ''), '0')::float8);\n",
    "20240103_two_up_three.sql": "INSERT INTO cancel_t VALUES (3);\n",
}


def _connect(dbname=DB, **kw):
    return psycopg.connect(dbname=dbname, autocommit=True, **kw)


@pytest.fixture(scope="module")
def folder():
    path = tempfile.mkdtemp(prefix="trek-cancel-")
    os.chmod(path, 0o755)
    for name, text in MIGRATIONS.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(text)
        os.chmod(os.path.join(path, name), 0o644)
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="module")
def database():
    with _connect("postgres") as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB}")
        admin.execute(f"CREATE DATABASE {DB}")
    with _connect() as conn:
        conn.execute("CREATE EXTENSION trek")
    yield DB
    with _connect("postgres") as admin:
        admin.execute(f"DROP DATABASE {DB} WITH (FORCE)")


@pytest.fixture
def track(database, request):
    """A fresh track per test, and a clean cancel_t."""
    name = request.node.name.replace("[", "_").replace("]", "")
    with _connect() as conn:
        conn.execute("DROP TABLE IF EXISTS cancel_t")
    return name


def _state(conn, track):
    current = conn.execute("SELECT trek_current(%s)", (track,)).fetchone()[0]
    rows = conn.execute(
        "SELECT count(*) FROM trek.history WHERE track = %s",
        (track,)).fetchone()[0]
    table = conn.execute(
        "SELECT to_regclass('cancel_t') IS NOT NULL").fetchone()[0]
    return current, rows, table


def _wait_for(conn, pid, what, timeout=30):
    """Wait until backend pid is sleeping (what='PgSleep') or waiting for a
    lock (what='advisory')."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
            (pid,)).fetchone()
        if row and row[0] == what:
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} never reached wait event {what}")


def _run_in_thread(fn):
    box = {}

    def target():
        try:
            box["result"] = fn()
        except Exception as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target)
    t.start()
    return t, box


def _execute_sleeping(conn, folder, track, seconds):
    conn.execute(f"SET trek_test.sleep = {seconds}")
    return conn.execute(
        "SELECT trek_execute(trek_plan(%s, 'three', track => %s))",
        (folder, track)).fetchone()[0]


def test_cancel_during_migration_rolls_back(folder, track):
    with _connect() as victim, _connect() as killer:
        pid = victim.info.backend_pid
        t, box = _run_in_thread(
            lambda: _execute_sleeping(victim, folder, track, 60))
        _wait_for(killer, pid, "PgSleep")
        killer.execute("SELECT pg_cancel_backend(%s)", (pid,))
        t.join(30)
        assert not t.is_alive()
        err = box.get("error")
        assert isinstance(err, errors.QueryCanceled), box
        assert err.sqlstate == "57014"
        # the context names the migration, its step and line
        assert ('migration "20240102_one_up_two.sql", step 2 of 3, line 2'
                in (err.diag.context or ""))
        # steps 1 and 2 are undone, history too
        assert _state(killer, track) == ("initial", 0, False)
        # and the same session goes on working
        victim.execute("RESET trek_test.sleep")
        assert victim.execute(
            "SELECT trek_execute(trek_plan(%s, 'three', track => %s))",
            (folder, track)).fetchone()[0] == "three"
        assert _state(killer, track) == ("three", 3, True)
        assert killer.execute(
            "SELECT array_agg(id ORDER BY id) FROM cancel_t"
        ).fetchone()[0] == [1, 2, 3]


def test_statement_timeout_rolls_back(folder, track):
    with _connect() as conn:
        conn.execute("SET statement_timeout = '300ms'")
        with pytest.raises(errors.QueryCanceled) as exc:
            _execute_sleeping(conn, folder, track, 30)
        assert "statement timeout" in str(exc.value)
        assert _state(conn, track) == ("initial", 0, False)
        conn.execute("RESET statement_timeout")
        conn.execute("RESET trek_test.sleep")
        assert conn.execute(
            "SELECT trek_execute(trek_plan(%s, 'two', track => %s))",
            (folder, track)).fetchone()[0] == "two"
        assert _state(conn, track) == ("two", 2, True)


def test_timeout_inside_callers_transaction(folder, track):
    """A timeout in the caller's transaction block aborts that block."""
    with _connect() as conn:
        conn.execute("BEGIN")
        conn.execute("SET LOCAL statement_timeout = '300ms'")
        with pytest.raises(errors.QueryCanceled):
            _execute_sleeping(conn, folder, track, 30)
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT trek_current(%s)", (track,))
        conn.execute("ROLLBACK")
        assert _state(conn, track) == ("initial", 0, False)


def test_cancel_while_waiting_for_track_lock(folder, track):
    with _connect() as holder, _connect() as waiter, _connect() as killer:
        holder.execute("BEGIN")
        holder.execute(
            "SELECT trek_execute(trek_plan(%s, 'one', track => %s))",
            (folder, track))
        plan = waiter.execute(
            "SELECT trek_plan(%s, 'two', track => %s)",
            (folder, track)).fetchone()[0]
        pid = waiter.info.backend_pid
        t, box = _run_in_thread(lambda: waiter.execute(
            "SELECT trek_execute(%s)", (psycopg.types.json.Jsonb(plan),)
        ).fetchone()[0])
        _wait_for(killer, pid, "advisory")
        killer.execute("SELECT pg_cancel_backend(%s)", (pid,))
        t.join(30)
        assert isinstance(box.get("error"), errors.QueryCanceled), box
        holder.execute("COMMIT")
        assert _state(killer, track) == ("one", 1, True)
        # the cancelled plan is stale now; a new one works
        with pytest.raises(errors.ObjectNotInPrerequisiteState):
            waiter.execute("SELECT trek_execute(%s)",
                           (psycopg.types.json.Jsonb(plan),))
        assert waiter.execute(
            "SELECT trek_execute(trek_plan(%s, 'two', track => %s))",
            (folder, track)).fetchone()[0] == "two"


def test_lock_timeout_on_busy_track(folder, track):
    with _connect() as holder, _connect() as waiter:
        holder.execute("BEGIN")
        holder.execute(
            "SELECT trek_execute(trek_plan(%s, 'one', track => %s))",
            (folder, track))
        waiter.execute("SET lock_timeout = '200ms'")
        with pytest.raises(errors.LockNotAvailable):
            waiter.execute(
                "SELECT trek_execute(trek_plan(%s, 'one', track => %s))",
                (folder, track))
        holder.execute("ROLLBACK")
        assert _state(waiter, track) == ("initial", 0, False)


def test_terminate_during_migration(folder, track):
    with _connect() as killer:
        started = killer.execute(
            "SELECT pg_postmaster_start_time()").fetchone()[0]
        victim = _connect()
        pid = victim.info.backend_pid
        t, box = _run_in_thread(
            lambda: _execute_sleeping(victim, folder, track, 60))
        _wait_for(killer, pid, "PgSleep")
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))
        t.join(30)
        assert isinstance(box.get("error"), psycopg.OperationalError), box
        victim.close()
        # only that session ended: the server did not restart
        assert killer.execute(
            "SELECT pg_postmaster_start_time()").fetchone()[0] == started
        assert _state(killer, track) == ("initial", 0, False)


def _peak_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_200mb_file(database, track):
    """A 200 MB migration: refused by the default trek.max_file_size when
    planning, and with the limit raised it runs in bounded memory, with
    the failing statement's line counted right."""
    path = tempfile.mkdtemp(prefix="trek-big-")
    os.chmod(path, 0o755)
    name = os.path.join(path, "20240101_initial_up_big.sql")
    line = b"-- " + b"x" * 60 + b"\n"
    n = 200 * 1024 * 1024 // len(line)
    try:
        with open(name, "wb") as f:
            f.write(b"CREATE TABLE cancel_t (id int);\n")
            f.write(line * n)
            f.write(b"INSERT INTO cancel_t VALUES ('not a number');\n")
        os.chmod(name, 0o644)
        size = os.path.getsize(name)
        assert size > 200 * 1000 * 1000
        with _connect() as conn:
            with pytest.raises(errors.ProgramLimitExceeded) as exc:
                conn.execute("SELECT trek_plan(%s, 'big', track => %s)",
                             (path, track))
            assert "trek.max_file_size" in exc.value.diag.message_detail
            conn.execute("SET trek.max_file_size = '256MB'")
            pid = conn.info.backend_pid
            before = _peak_rss_kb(pid)
            with pytest.raises(errors.InvalidTextRepresentation) as exc:
                conn.execute(
                    "SELECT trek_execute(trek_plan(%s, 'big', track => %s))",
                    (path, track))
            assert (f'migration "20240101_initial_up_big.sql", step 1 of 1, '
                    f'line {n + 2}' in exc.value.diag.context)
            peak = _peak_rss_kb(pid)
            # the file is held once for parsing and once by the scanner;
            # nothing grows with the number of lines beyond that
            print(f"peak RSS {before} kB -> {peak} kB for {size} bytes")
            assert (peak - before) * 1024 < 3 * size, (before, peak)
            assert _state(conn, track) == ("initial", 0, False)
    finally:
        shutil.rmtree(path)
