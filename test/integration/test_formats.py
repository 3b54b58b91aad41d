"""Other tools' folders reach the schema their own tool reaches.

For each tool, a folder written for this test (test/fixtures/tools/<tool>,
using the rules of that tool: its markers, sections, wrappers, version
order, repeatables) is applied three ways by test/histories/compare.py:
the way the tool itself applies it (its transactions emulated through
libpq's simple query protocol), by trek from the server folder, and by
trek from the folder sent as jsonb.  The schemas (pg_dump) must be equal,
and again after trek took the database down to "initial" and up again; no
trek call may fail.  The same script replays real public histories by hand
(test/histories/README.md).
"""

import os
import random
import subprocess
import sys

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PGBIN, ROOT

TOOLS = ["golang-migrate", "flyway", "dbmate", "goose", "sqlx", "diesel"]


@pytest.mark.parametrize("tool", TOOLS)
def test_same_schema_as_the_tool(cluster, staged, tool):
    folder = staged("test/fixtures/tools/%s" % tool)
    env = dict(os.environ, PATH="%s:%s" % (PGBIN, os.environ["PATH"]))
    args = [sys.executable, str(ROOT / "test/histories/compare.py"), tool,
            str(folder), "--db", "fmt_%s" % tool.replace("-", "_")]
    if tool == "sqlx":
        # its up and down pairs are named as golang-migrate names them
        args += ["--format", "sqlx"]
    p = subprocess.run(args, capture_output=True, text=True, env=env,
                       timeout=300)
    out = p.stdout + p.stderr
    print(out)
    assert p.returncode == 0, out
    assert "schema A = B:" in out and "SERVER CRASHED" not in out
    assert "down to initial ok" in out, out


# ---- random folders of other tools: errors, never a crash ----

NAMES = {
    "golang-migrate": ["{v}_{t}.up.sql", "{v}_{t}.down.sql", "{v}_.up.sql",
                       "{v}{t}.up.sql", "{v}_{t}.up.txt"],
    "flyway": ["V{fv}__{t}.sql", "U{fv}__{t}.sql", "R__{t}.sql",
               "V{fv}__{t}.sql.conf", "V{fv}.sql", "V__{t}.sql", "v{fv}__x.SQL"],
    "dbmate": ["{v}_{t}.sql", "{v}.sql", "{v}{t}.sql"],
    "goose": ["{v}_{t}.sql", "{v}_{t}.go", "{v}.sql", "0_{t}.sql"],
    "sqlx": ["{v}_{t}.sql", "{v}_{t}.up.sql", "{v}_{t}.down.sql", "x{v}_{t}.sql"],
    "diesel": ["{dv}_{t}/up.sql", "{dv}_{t}/down.sql", "{dv}_{t}/metadata.toml",
               "{dv}/up.sql", "{dv}_{t}/sub/up.sql", "_{t}/up.sql"],
}
LINES = [
    "-- migrate:up", "-- migrate:down", "-- migrate:up transaction:false",
    "--migrate:down transaction:false", "-- +goose Up", "-- +goose Down",
    "-- +goose up", "  -- +goose Down", "-- +goose StatementBegin",
    "-- +goose StatementEnd", "-- +goose NO TRANSACTION", "-- +goose ENVSUB ON",
    "-- +goose +goose Up", "-- no-transaction", "executeInTransaction=false",
    "executeInTransaction=true", "executeInTransaction = nope",
    "run_in_transaction = false", "run_in_transaction = true",
    "BEGIN;", "COMMIT;", "END;", "ROLLBACK;", "START TRANSACTION;",
    "SAVEPOINT s;", "SELECT 1;", "CREATE TABLE IF NOT EXISTS fz (i int);",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS fz_i ON fz (i);",
    "VACUUM fz;", "DO $$ BEGIN PERFORM 1; END $$;", "SELECT 'a;b';",
    "$$", "'", "/*", "\\set x 1", "", "\r", "\ufeff", "é",
]


def outcome(outcomes, conn, what, run):
    """Count what run() gave: "ok" or the SQLSTATE of a clean error; fail
    the test on an internal error, and on a lost session (a crash)."""
    try:
        run()
        outcomes["ok"] = outcomes.get("ok", 0) + 1
    except psycopg.errors.InternalError_ as e:
        pytest.fail("internal error for %r: %s" % (what, e))
    except psycopg.Error as e:
        if e.sqlstate is None or conn.closed:
            raise       # the session is gone: the server crashed
        outcomes[e.sqlstate] = outcomes.get(e.sqlstate, 0) + 1


def random_folder(rng, tool):
    files = {}
    for _ in range(rng.randint(0, 8)):
        name = rng.choice(NAMES[tool]).format(
            v=rng.choice(["1", "01", "2", "10", "99999999999999999999",
                          "9223372036854775808", "0", "3"]),
            fv=rng.choice(["1", "1.0", "1.10", "1_9", "1..2", "2", ".1", "1a"]),
            dv=rng.choice(["2024-01-01-000000", "20240101000000", "1", "1-", "9"]),
            t=rng.choice(["a", "b_c", "", "é", "a", "b_c"] + ["x" * 300] * (rng.random() < 0.05)))
        lines = [rng.choice(LINES) for _ in range(rng.randint(0, 12))]
        files[name] = "\n".join(lines)
    return files


def test_random_folders_give_errors_not_crashes(cluster, database):
    seed = int(os.environ.get("TREK_FUZZ_SEED", "20261207"))
    rng = random.Random(seed)
    outcomes = {}
    with cluster.connect(database) as conn:
        start = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        conn.execute("SET client_min_messages = error")
        for case in range(1200):
            tool = TOOLS[case % len(TOOLS)]
            files = random_folder(rng, tool)
            fmt = rng.choice([tool, "auto"])
            conn.execute("SET trek.format = '%s'" % fmt)
            track = "fz%d" % case
            call = rng.choice(["plan", "migrate", "status", "adopt"])
            sql = {"plan": "SELECT trek_plan(%s, 'head', track => %s)",
                   "migrate": "CALL trek_migrate(%s, 'head', track => %s)",
                   "status": "SELECT * FROM trek_status(%s, %s)",
                   "adopt": "SELECT trek_adopt(%s, %s)"}[call]
            outcome(outcomes, conn, (files, fmt),
                    lambda: conn.execute(sql, (Jsonb(files), track)))
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == start
    print("seed", seed, "outcomes", sorted(outcomes.items()))
    assert outcomes.get("ok", 0) > 0 and len(outcomes) > 3


STATE_TABLES = {
    "golang-migrate": ("schema_migrations", "version bigint, dirty boolean",
                       "(%(n)s, %(b)s)"),
    "dbmate": ("schema_migrations", "version text", "(%(v)s)"),
    "goose": ("goose_db_version", "id serial, version_id bigint, is_applied boolean",
              "(DEFAULT, %(n)s, %(b)s)"),
    "sqlx": ("_sqlx_migrations", "version bigint, description text, success boolean,"
             " checksum bytea, execution_time bigint",
             "(%(n)s, 'x', %(b)s, %(h)s, 1)"),
    "flyway": ("flyway_schema_history", "installed_rank serial, version text,"
               " description text, type text, script text, checksum int,"
               " installed_by text, execution_time int, success boolean",
               "(DEFAULT, %(fv)s, 'd', %(t)s, 's', %(c)s, 'u', 1, %(b)s)"),
    "diesel": ("__diesel_schema_migrations", "version text", "(%(v)s)"),
}


def trace(*what):
    """With TREK_FZ_TRACE set, each case is appended to that file first."""
    if os.environ.get("TREK_FZ_TRACE"):
        with open(os.environ["TREK_FZ_TRACE"], "a") as f:
            f.write(repr(what) + "\n")


def test_random_state_tables_give_errors_not_crashes(cluster, database):
    """trek_adopt on random folders and random rows of each tool's table."""
    seed = int(os.environ.get("TREK_FUZZ_SEED", "20261207"))
    rng = random.Random(seed)
    outcomes = {}
    with cluster.connect(database) as conn:
        conn.prepare_threshold = None   # the tables change shape
        start = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        conn.execute("SET client_min_messages = error")
        conn.execute("CREATE TABLE migrations (id serial, from_revision text,"
                     " to_revision text)")
        for case in range(900):
            tool = TOOLS[case % len(TOOLS)]
            table, columns, row = STATE_TABLES[tool]
            conn.execute("DROP TABLE IF EXISTS %s" % table)
            conn.execute("CREATE TABLE %s (%s)" % (table, columns))
            conn.execute("TRUNCATE migrations")
            for _ in range(rng.randint(0, 6)):
                conn.execute("INSERT INTO %s VALUES %s" % (table, row), {
                    "n": rng.choice([None, 0, 1, 2, 3, 10, -1, 2**62]),
                    "v": rng.choice([None, "1", "01", "2", "x", "", "20240101000000"]),
                    "fv": rng.choice([None, "1", "1.0", "1.10", "2", "x"]),
                    "b": rng.choice([True, False, None]),
                    "h": rng.choice([None, b"", b"\x01" * 48]),
                    "c": rng.choice([None, 0, -1, 2**31 - 1]),
                    "t": rng.choice(["SQL", "BASELINE", "DELETE", "UNDO_SQL",
                                     "SCHEMA", "JDBC", None])})
                conn.execute("INSERT INTO migrations (from_revision, to_revision)"
                             " VALUES (%s, %s)", (rng.choice(["initial", "a", None]),
                                                  rng.choice(["a", "b", None])))
            files = random_folder(rng, tool)
            if rng.random() < 0.2:
                files = {"20240101_initial_up_a.sql": "SELECT 1;",
                         "20240102_a_up_b.sql": "SELECT 2;"}
            fmt = rng.choice([tool, "auto"])
            conn.execute("SET trek.format = '%s'" % fmt)
            trace(case, fmt, files, conn.execute("TABLE %s" % table).fetchall(),
                  conn.execute("TABLE migrations").fetchall())
            outcome(outcomes, conn, files,
                    lambda: conn.execute("SELECT trek_adopt(%s, %s)",
                                         (Jsonb(files), "ad%d" % case)))
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == start
    print("seed", seed, "outcomes", sorted(outcomes.items()))
    assert outcomes.get("ok", 0) > 0 and len(outcomes) > 3
