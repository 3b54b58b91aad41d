"""The same scenario from asyncpg, psycopg 3 and node-postgres.

Each client runs the migrate() function of its example in
examples/clients/ (the code doc/deployment.md shows): up two steps, the same target
again, down to initial, then up three steps of which the third fails.  The
error must keep its SQLSTATE and name the file, step and line, the NOTICEs
must reach the client, and the failure must undo the whole plan.  Then the
same in steps (CALL trek_migrate), from a folder on the server and from the
client's own folder, which the server cannot read, sent as jsonb.
"""

import asyncio
import importlib.util
import json
import os
import re
import shutil
import subprocess

import psycopg
import pytest

from conftest import IS_ROOT, ROOT, history

SENT = "(sent by the client)"

EXAMPLES = ROOT / "examples" / "clients"
NODE_DIR = ROOT / "test" / "integration" / "node"

FILES = {
    "20240101_initial_up_rev1.sql":
        "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);\n",
    "20240101_rev1_down_initial.sql":
        "DROP TABLE accounts;\n",
    "20240102_rev1_up_rev2.sql":
        "ALTER TABLE accounts ADD COLUMN email text;\n"
        "INSERT INTO accounts VALUES (1, 'ada', 'ada@example.org');\n",
    "20240102_rev2_down_rev1.sql":
        "DELETE FROM accounts;\n"
        "ALTER TABLE accounts DROP COLUMN email;\n",
    "20240103_rev2_up_rev3.sql":
        "-- rev3 reads a table nobody made\n"
        "CREATE TABLE audit (id int);\n"
        "INSERT INTO audit SELECT id FROM no_such_table;\n",
}
TARGETS = ["rev2", "rev2", "initial", "head"]
UP = ['applied migration "20240101_initial_up_rev1.sql" (initial -> rev1)',
      'applied migration "20240102_rev1_up_rev2.sql" (rev1 -> rev2)']
DOWN = ['applied migration "20240102_rev2_down_rev1.sql" (rev2 -> rev1)',
        'applied migration "20240101_rev1_down_initial.sql" (rev1 -> initial)']
NOTHING = 'track "default" is already at revision "rev2", nothing to do'


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(steps, cluster, database):
    """What every client must have seen, and the database afterwards."""
    assert [s["target"] for s in steps] == TARGETS
    results = [s.get("result") for s in steps]
    assert results == ["rev2", "rev2", "initial", None], steps
    # the last plan reports steps 1 and 2 as they run, then fails in step 3
    messages = [[n["message"] for n in s["notices"]] for s in steps]
    assert messages == [UP, [NOTHING], DOWN, UP]
    for s in steps:
        n_steps = 3 if s["target"] == "head" else 2
        for n in s["notices"]:
            assert (n["severity"], n["sqlstate"]) == ("NOTICE", "00000")
            if n["message"].startswith("applied migration"):
                assert re.fullmatch(r"Step [12] of %d took \d+\.\d{3} ms\."
                                    % n_steps, n["detail"]), n
    error = steps[-1]["error"]
    assert error["sqlstate"] == "42P01"         # undefined_table, kept
    assert error["message"] == 'relation "no_such_table" does not exist'
    assert 'migration "20240103_rev2_up_rev3.sql", step 3 of 3, line 3' \
        in error["context"]
    # the failure undid the whole plan: steps 1 and 2 too
    with cluster.connect(database) as conn:
        assert conn.execute("SELECT trek_current(), to_regclass('accounts'),"
                            " to_regclass('audit')").fetchone() \
            == ("initial", None, None)
        assert [r[1] for r in history(conn)] == [
            "rev1", "rev2", "rev1", "initial"]


IN_STEPS_TARGETS = ["head", "rev2"]


def check_in_steps(steps, cluster, database, dir=None):
    """CALL trek_migrate from a client: steps 1 and 2 commit and report as
    they run, step 3 fails with its SQLSTATE and context and leaves the
    track at rev2; the same target again is a no-op that says so.  The
    history rows name the folder dir (if given)."""
    assert [s["target"] for s in steps] == IN_STEPS_TARGETS
    assert [s.get("result") for s in steps] == [None, "rev2"], steps
    assert [[n["message"] for n in s["notices"]] for s in steps] == \
        [UP, [NOTHING]]
    error = steps[0]["error"]
    assert error["sqlstate"] == "42P01"
    assert error["message"] == 'relation "no_such_table" does not exist'
    assert 'migration "20240103_rev2_up_rev3.sql", step 3 of 3, line 3' \
        in error["context"]
    with cluster.connect(database) as conn:
        assert conn.execute("SELECT trek_current(), to_regclass('accounts')"
                            " IS NOT NULL, to_regclass('audit')").fetchone() \
            == ("rev2", True, None)
        assert [r[1] for r in history(conn)] == ["rev1", "rev2"]
        assert conn.execute("SELECT state, sqlstate FROM trek_runs() LIMIT 1"
                            ).fetchone() == ("failed", "42P01")
        if dir is not None:
            assert conn.execute("SELECT array_agg(DISTINCT dir) FROM trek.history"
                                ).fetchone()[0] == [dir]
            assert conn.execute("SELECT dir FROM trek_runs() LIMIT 1"
                                ).fetchone()[0] == dir


MODES = ["trek_execute", "trek_migrate", "sent"]


@pytest.fixture
def client_folder(tmp_path, cluster):
    """The scenario's folder where the client runs and the server cannot
    read it (mode 700, when the server runs as another OS user, as it does
    when the tests run as root): only a sent folder reaches the server, and
    its history rows say so (check_in_steps)."""
    path = tmp_path / "app" / "migrations"
    path.mkdir(parents=True)
    for name, sql in FILES.items():
        (path / name).write_text(sql)
    (tmp_path / "app").chmod(0o700)
    if IS_ROOT:
        with cluster.connect("postgres") as conn:
            with pytest.raises(psycopg.Error) as e:
                conn.execute("SELECT pg_stat_file(%s)", (str(path),))
            assert e.value.sqlstate == "42501", e.value   # permission denied
    return str(path)


@pytest.fixture
def folder(make_folder):
    return str(make_folder(FILES))


@pytest.mark.parametrize("mode", MODES)
def test_asyncpg(cluster, database, folder, client_folder, mode):
    import asyncpg
    example = load("migrate_asyncpg")
    run = {"trek_execute": example.migrate,
           "trek_migrate": example.migrate_in_steps,
           "sent": example.migrate_sent}[mode]
    in_steps = mode != "trek_execute"
    targets = IN_STEPS_TARGETS if in_steps else TARGETS
    if mode == "sent":
        folder = client_folder

    async def scenario():
        conn = await asyncpg.connect(host=cluster.host, port=cluster.port,
                                     user="postgres", database=database)
        notices = []
        conn.add_log_listener(lambda c, m: notices.append({
            "severity": m.severity, "sqlstate": m.sqlstate,
            "message": m.message, "detail": m.detail}))
        steps = []
        for target in targets:
            notices.clear()
            step = {"target": target}
            try:
                step["result"] = await run(conn, folder, target)
            except asyncpg.PostgresError as e:
                step["error"] = {"sqlstate": e.sqlstate, "message": e.message,
                                 "context": e.context}
            await asyncio.sleep(0)      # listeners run from the event loop
            step["notices"] = list(notices)
            steps.append(step)
        await conn.close()
        return steps

    finish(mode, asyncio.run(scenario()), cluster, database, folder)


def finish(mode, steps, cluster, database, folder):
    if mode == "trek_execute":
        check(steps, cluster, database)
    else:
        check_in_steps(steps, cluster, database,
                       SENT if mode == "sent" else folder)


@pytest.mark.parametrize("mode", MODES)
def test_psycopg(cluster, database, folder, client_folder, mode):
    example = load("migrate_psycopg")
    run = {"trek_execute": example.migrate,
           "trek_migrate": example.migrate_in_steps,
           "sent": example.migrate_sent}[mode]
    in_steps = mode != "trek_execute"
    if mode == "sent":
        folder = client_folder
    notices = []
    steps = []
    with cluster.connect(database) as conn:
        conn.add_notice_handler(lambda d: notices.append({
            "severity": d.severity_nonlocalized, "sqlstate": d.sqlstate,
            "message": d.message_primary, "detail": d.message_detail}))
        for target in IN_STEPS_TARGETS if in_steps else TARGETS:
            notices.clear()
            step = {"target": target}
            try:
                step["result"] = run(conn, folder, target)
            except psycopg.Error as e:
                step["error"] = {"sqlstate": e.sqlstate,
                                 "message": e.diag.message_primary,
                                 "context": e.diag.context}
            step["notices"] = list(notices)
            steps.append(step)
    finish(mode, steps, cluster, database, folder)


@pytest.fixture(scope="session")
def node_pg():
    """node-postgres in test/integration/node/node_modules (npm ci)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed (scripts/lib.sh installs them)"
    if not (NODE_DIR / "node_modules" / "pg" / "package.json").exists():
        p = subprocess.run([npm, "ci", "--no-audit", "--no-fund"],
                           cwd=NODE_DIR, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, "npm ci failed:\n" + p.stdout + p.stderr
    return node


def client_env(cluster, database):
    """Environment of a client program: libpq's PG* variables, and where
    node finds node-postgres."""
    return dict(os.environ, PGHOST=cluster.host, PGPORT=str(cluster.port),
                PGUSER="postgres", PGDATABASE=database,
                NODE_PATH=str(NODE_DIR / "node_modules"))


@pytest.mark.parametrize("mode", MODES)
def test_node_pg(cluster, database, folder, client_folder, node_pg, mode):
    env = client_env(cluster, database)
    if mode == "sent":
        folder = client_folder
    args = [json.dumps(TARGETS)] if mode == "trek_execute" else \
        [json.dumps(IN_STEPS_TARGETS), "in-steps" if mode == "trek_migrate"
         else "sent"]
    p = subprocess.run([node_pg, str(NODE_DIR / "scenario.js"), folder] + args,
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    finish(mode, json.loads(p.stdout), cluster, database, folder)


def test_psql_and_jq(cluster, database, client_folder):
    """examples/clients/migrate.sh: the folder made into JSON by jq and sent
    by psql, from where the server cannot read it; a failing step is the
    script's failure, and what committed before it stays."""
    env = client_env(cluster, database)
    script = str(EXAMPLES / "migrate.sh")
    p = subprocess.run(["sh", script, client_folder, "rev2"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["rev2"]
    assert UP[0] in p.stderr and UP[1] in p.stderr
    p = subprocess.run(["sh", script, client_folder], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert 'relation "no_such_table" does not exist' in p.stderr
    with cluster.connect(database) as conn:
        assert conn.execute("SELECT trek_current(), array_agg(DISTINCT dir)"
                            " FROM trek.history").fetchone() == ("rev2", [SENT])


@pytest.mark.parametrize("name", ["migrate_asyncpg.py", "migrate_psycopg.py",
                                  "migrate.js"])
def test_examples_as_programs(cluster, database, client_folder, node_pg, name):
    """Each example runs on its own, as README says: it sends its folder,
    prints the NOTICEs and the revision, or the error, and exits non-zero on
    failure."""
    folder = client_folder
    env = client_env(cluster, database)
    run = [node_pg] if name.endswith(".js") else ["/usr/bin/python3"]
    p = subprocess.run(run + [str(EXAMPLES / name), folder, "rev2"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "rev2"
    assert UP[0] in p.stdout + p.stderr
    p = subprocess.run(run + [str(EXAMPLES / name), folder], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert 'relation "no_such_table" does not exist' in p.stderr


def readme_part(name):
    """The part of an example README must show: from the comment above
    RETRYABLE to the line before main()."""
    text = (EXAMPLES / name).read_text()
    start = re.search(r"^(#|//) Errors a concurrent caller", text, re.M).start()
    end = re.search(r"^(async def|def|async function) main", text, re.M).start()
    return text[start:end].strip()


@pytest.mark.parametrize("name", ["migrate_asyncpg.py", "migrate_psycopg.py",
                                  "migrate.js", "migrate.sh"])
def test_readme_shows_examples(name):
    part = (EXAMPLES / name).read_text().strip() if name.endswith(".sh") \
        else readme_part(name)
    assert part in (ROOT / "doc" / "deployment.md").read_text()
