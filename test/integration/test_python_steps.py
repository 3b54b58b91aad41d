"""Python migrations seen from clients: concurrent callers, cancellation,
and trek called through asyncpg.

Runs against the test cluster (conftest.py points PGHOST, PGPORT and
PGUSER at it); each test module gets a database of its own with trek and plpython3u.
Migration folders are written under /tmp, readable by the server's OS user.
"""

import asyncio
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

def conninfo(dbname):
    return dict(host=os.environ["PGHOST"], port=os.environ.get("PGPORT"),
                user=os.environ.get("PGUSER", "postgres"), dbname=dbname)


@pytest.fixture(scope="module")
def pydb():
    name = "trek_python_%s" % uuid.uuid4().hex[:8]
    with psycopg.connect(**conninfo("postgres"), autocommit=True) as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        with psycopg.connect(**conninfo(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION trek")
            conn.execute("CREATE EXTENSION plpython3u")
        yield name
    finally:
        with psycopg.connect(**conninfo("postgres"), autocommit=True) as admin:
            admin.execute('DROP DATABASE "%s" WITH (FORCE)' % name)


@pytest.fixture
def folder():
    """make(files) writes a migration folder the server can read."""
    made = []

    def make(files):
        path = Path(tempfile.mkdtemp(prefix="trek-python-", dir="/tmp"))
        made.append(path)
        path.chmod(0o755)
        for name, text in files.items():
            (path / name).write_text(text)
            (path / name).chmod(0o644)
        return str(path)

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


# fourth key field of trek's lock on a track (src/state.c), pg_locks' objsubid
TREK_LOCK_KIND = 0x7472


def wait_for_track_lock(dbname, timeout=20):
    """Wait until some session holds one of trek's track locks."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(**conninfo(dbname), autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = "
                            "'advisory' AND objsubid = %s AND granted",
                            [TREK_LOCK_KIND]).fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("no session took trek's lock")


def history(dbname, track):
    with psycopg.connect(**conninfo(dbname)) as conn:
        return conn.execute(
            "SELECT file FROM trek.history WHERE track = %s ORDER BY id",
            [track]).fetchall()


SLOW_STEP = """\
async def run_migration(conn):
    await conn.execute("INSERT INTO {table} VALUES ($1)", 1)
    await conn.execute("SELECT pg_sleep($1)", {seconds})
    await conn.execute("INSERT INTO {table} VALUES ($1)", 2)
"""


def test_concurrent_callers_apply_a_python_step_once(pydb, folder):
    """Two sessions run the same plan at once, the second under REPEATABLE
    READ with a snapshot taken before the first commits: the Python step is
    applied once, and the second caller is told the work is done."""
    dirname = folder({
        "20240101_initial_up_one.sql": "CREATE TABLE conc_t (i int);\n",
        "20240102_one_up_two.py": SLOW_STEP.format(table="conc_t",
                                                   seconds=1.0),
    })
    results, notices, errors = {}, {}, []

    def caller(name, isolation):
        try:
            with psycopg.connect(**conninfo(pydb)) as conn:
                conn.isolation_level = isolation
                notices[name] = []
                conn.add_notice_handler(
                    lambda d: notices[name].append(d.message_primary))
                conn.execute("SELECT 1")        # the snapshot starts here
                if name == "second":
                    wait_for_track_lock(pydb)   # the first is running
                plan = conn.execute("SELECT trek_plan(%s, 'head', track => 'conc')",
                                    [dirname]).fetchone()[0]
                results[name] = conn.execute(
                    "SELECT trek_execute(%s)", [psycopg.types.json.Jsonb(plan)]
                ).fetchone()[0]
                conn.commit()
        except Exception as exc:                # reported by the main thread
            errors.append(exc)

    # the second caller plans while the first is still running, so its plan
    # is initial -> two too, and then waits for the first
    second = threading.Thread(
        target=caller, args=("second", psycopg.IsolationLevel.REPEATABLE_READ))
    second.start()
    first = threading.Thread(
        target=caller, args=("first", psycopg.IsolationLevel.READ_COMMITTED))
    first.start()
    first.join(30)
    second.join(30)
    assert errors == []
    assert results == {"first": "two", "second": "two"}
    assert len([m for m in notices["first"] if m.startswith("applied")]) == 2
    assert notices["second"] == [
        'track "conc" is already at revision "two", nothing to do']
    assert history(pydb, "conc") == [("20240101_initial_up_one.sql",),
                                     ("20240102_one_up_two.py",)]
    with psycopg.connect(**conninfo(pydb)) as conn:
        assert conn.execute("SELECT count(*) FROM conc_t").fetchone()[0] == 2


@pytest.mark.parametrize("how", ["pg_cancel_backend", "statement_timeout"])
def test_cancelling_a_python_step(pydb, folder, how):
    """A Python step waiting in SQL can be cancelled; the error is the
    cancel's, names the file and line, and nothing of the plan stays."""
    table = "cancel_%s" % how
    dirname = folder({
        "20240101_initial_up_one.sql": "CREATE TABLE %s (i int);\n" % table,
        "20240102_one_up_two.py": SLOW_STEP.format(table=table, seconds=60),
    })
    track = "cancel_" + how
    with psycopg.connect(**conninfo(pydb)) as conn:
        pid = conn.info.backend_pid
        if how == "statement_timeout":
            conn.execute("SET statement_timeout = '500ms'")
        else:
            def cancel():
                time.sleep(0.5)
                with psycopg.connect(**conninfo(pydb), autocommit=True) as other:
                    other.execute("SELECT pg_cancel_backend(%s)", [pid])
            threading.Thread(target=cancel).start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled) as info:
            conn.execute("SELECT trek_execute(trek_plan(%s, 'head', track => %s))",
                         [dirname, track])
        assert time.monotonic() - started < 30
        diag = info.value.diag
        assert diag.sqlstate == "57014"
        assert 'migration "20240102_one_up_two.py", step 2 of 2, line 3' in diag.context
        conn.rollback()
        assert conn.execute("SELECT trek_current(%s), to_regclass(%s)",
                            [track, table]).fetchone() == ("initial", None)


def test_trek_called_through_asyncpg(pydb, folder):
    """trek_execute called from an asyncpg client runs .sql and .py steps
    (the .py ones written for asyncpg-trek) and reports them as NOTICEs."""
    asyncpg = pytest.importorskip("asyncpg")
    dirname = folder({
        "20220410_initial_up_rev1.sql":
            "CREATE TABLE people (id serial PRIMARY KEY, name text NOT NULL);\n",
        "20220411_rev1_up_rev2.py": (
            "import asyncpg\n\n\n"
            "async def run_migration(conn: asyncpg.Connection) -> None:\n"
            "    await conn.execute(\"CREATE INDEX name_idx ON people(name)\")\n"
            "    await conn.execute(\"INSERT INTO people(name) VALUES ('Anakin')\")\n"),
    })

    async def main():
        info = conninfo(pydb)
        info["database"] = info.pop("dbname")
        conn = await asyncpg.connect(**info)
        messages = []
        conn.add_log_listener(lambda c, m: messages.append(m.message))
        try:
            to = await conn.fetchval(
                "SELECT trek_execute(trek_plan($1, 'head', track => 'client'))",
                dirname)
            names = await conn.fetch("SELECT name FROM people")
            return to, [r["name"] for r in names], messages
        finally:
            await conn.close()

    to, names, messages = asyncio.run(main())
    assert to == "rev2"
    assert names == ["Anakin"]
    assert [m for m in messages if m.startswith("applied")] == [
        'applied migration "20220410_initial_up_rev1.sql" (initial -> rev1)',
        'applied migration "20220411_rev1_up_rev2.py" (rev1 -> rev2)']


MERGE_STEP = """\
async def run_migration(conn):
    await conn.execute("CREATE TABLE py_merge (id int PRIMARY KEY, v text)")
    await conn.execute("INSERT INTO py_merge VALUES (1, 'a')")
    merge = ("MERGE INTO py_merge t"
             " USING (VALUES (1, 'b'), (2, 'c')) AS s(id, v) ON t.id = s.id"
             " WHEN MATCHED THEN UPDATE SET v = s.v"
             " WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)"
             " RETURNING merge_action() AS action, t.id, t.v")
    rows = await conn.fetch(merge)
    got = sorted((r["action"], r["id"], r["v"]) for r in rows)
    assert got == [("INSERT", 2, "c"), ("UPDATE", 1, "b")], got
    row = await conn.fetchrow(merge.replace("'b'", "'d'"))
    assert row["id"] in (1, 2), dict(row)
    status = await conn.execute(merge.replace("'b'", "'d'").replace("'c'", "'d'"))
    assert status == "MERGE 2", status
"""


def test_merge_returning_in_a_python_step(pydb, folder):
    """MERGE ... RETURNING (PostgreSQL 17 on) hands its rows to fetch() and
    fetchrow(), and execute() returns asyncpg's "MERGE n" status."""
    with psycopg.connect(**conninfo(pydb)) as conn:
        if conn.info.server_version < 170000:
            pytest.skip("MERGE ... RETURNING needs PostgreSQL 17")
    dirname = folder({"20240101_initial_up_merge.py": MERGE_STEP})
    with psycopg.connect(**conninfo(pydb), autocommit=True) as conn:
        assert conn.execute("SELECT trek_execute(trek_plan(%s, 'head',"
                            " track => 'merge'))", [dirname]
                            ).fetchone()[0] == "merge"
        assert conn.execute("SELECT id, v FROM py_merge ORDER BY id"
                            ).fetchall() == [(1, "d"), (2, "d")]
