"""trek.lock_timeout and trek.lock_retries: a superuser sets the defaults,
other roles may lower them but not raise them.

A superuser's ALTER DATABASE/ROLE ... SET reaches a session of another role
in two ways: as a placeholder that trek takes over when a call loads the
library, or directly when the library is already loaded
(shared_preload_libraries).  Both are tested, each in a cluster of this
module.
"""

import re
import subprocess
import uuid

import psycopg
import pytest

from conftest import PGBIN, ROOT, Cluster

SETTINGS = {"trek.lock_timeout": ("30s", "30s"),
            "trek.lock_retries": ("50", "50")}


@pytest.fixture(scope="module")
def preloaded():
    """A cluster that loads trek at server start."""
    cluster = Cluster.create("preload", {"shared_preload_libraries": "trek"})
    try:
        yield cluster.start()
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def not_preloaded():
    """A cluster where a call loads trek (the shared one preloads it on
    PostgreSQL 15 and 16, for its runs in shared memory)."""
    cluster = Cluster.create("call", {"shared_preload_libraries": ""})
    try:
        yield cluster.start()
    finally:
        cluster.destroy()


@pytest.fixture(params=["call", "preload"])
def site(request, not_preloaded, preloaded):
    """(cluster, database, role, loaded): a database with trek, a login
    role that is no superuser and may call trek_current, and whether the
    role's sessions start with trek loaded."""
    c = not_preloaded if request.param == "call" else preloaded
    db = c.create_database()
    role = "trek_app_%s" % uuid.uuid4().hex[:8]
    c.query('CREATE ROLE "%s" LOGIN' % role)
    c.query('GRANT EXECUTE ON FUNCTION trek_current(text) TO "%s"' % role,
            dbname=db)
    yield c, db, role, request.param == "preload"
    c.drop_database(db)
    c.query('DROP ROLE "%s"' % role)


def connect_as(c, db, role):
    """A session of role, with the messages the server sends it."""
    conn = psycopg.connect(**{**c.conninfo(db), "user": role},
                           autocommit=True)
    conn.messages = []
    conn.add_notice_handler(
        lambda d: conn.messages.append("%s: %s" % (d.severity, d.message_primary)))
    return conn


def load(conn):
    """Load trek in this session by calling one of its functions."""
    conn.execute("SELECT trek_current('none')")


def show(conn, name):
    return conn.execute("SHOW %s" % name).fetchone()[0]


def trek_warnings(c, log_from):
    """WARNINGs about trek's settings in the server log since offset (none
    known for a cluster this module did not start)."""
    if c.base is None:
        return []
    return [line for line in c.log_text()[log_from:].splitlines()
            if "WARNING" in line and "trek." in line]


@pytest.mark.parametrize("where", ["database", "role", "role_in_database"])
def test_superuser_defaults_apply(site, where):
    """A superuser's ALTER DATABASE/ROLE ... SET of both settings is the
    default of another role's sessions, without a WARNING, whether the
    session loads trek with a call or has it loaded already."""
    c, db, role, loaded = site
    target = {"database": 'DATABASE "%s"' % db,
              "role": 'ROLE "%s"' % role,
              "role_in_database": 'ROLE "%s" IN DATABASE "%s"' % (role, db)}[where]
    for name, (value, _) in SETTINGS.items():
        c.query("ALTER %s SET %s = '%s'" % (target, name, value))
    log_from = len(c.log_text()) if c.base else 0
    with connect_as(c, db, role) as conn:
        load(conn)
        for name, (_, shown) in SETTINGS.items():
            assert show(conn, name) == shown, name
        assert conn.messages == []
    assert trek_warnings(c, log_from) == []


def test_lower_not_raise(site):
    """Under a superuser's default, another role lowers both settings with
    SET and set_config (also in parallel workers, which take the lowered
    value over) but cannot raise them, nor set no limit at all."""
    c, db, role, loaded = site
    c.query("ALTER DATABASE \"%s\" SET trek.lock_timeout = '30s'" % db)
    c.query('ALTER DATABASE "%s" SET trek.lock_retries = 50' % db)
    with connect_as(c, db, role) as conn:
        load(conn)
        for sql in ["SET trek.lock_timeout = '31s'",
                    "SET trek.lock_timeout = 0",
                    "SELECT set_config('trek.lock_timeout', '0', false)",
                    "SET trek.lock_retries = 51"]:
            with pytest.raises(psycopg.errors.InvalidParameterValue,
                               match="invalid value for parameter"):
                conn.execute(sql)
        assert show(conn, "trek.lock_timeout") == "30s"
        assert show(conn, "trek.lock_retries") == "50"

        # 10s: lower than the database's 30s, higher than the built-in 5s
        conn.execute("SET trek.lock_timeout = '10s'")
        conn.execute("SELECT set_config('trek.lock_retries', '20', false)")
        assert show(conn, "trek.lock_timeout") == "10s"
        assert show(conn, "trek.lock_retries") == "20"
        parallel = ("debug_parallel_query"
                    if conn.info.server_version >= 160000
                    else "force_parallel_mode")
        conn.execute("SET %s = on" % parallel)
        conn.execute("SELECT count(*) FROM pg_class").fetchone()
        conn.execute("RESET %s" % parallel)
        conn.execute("RESET trek.lock_timeout")
        assert show(conn, "trek.lock_timeout") == "30s"
        assert conn.messages == []


def test_cannot_store_a_raise(site):
    """A role that may alter itself, or owns the database, cannot store a
    value for later sessions, before trek is loaded (PostgreSQL refuses
    unknown parameters) nor after: stored values are applied as a
    superuser's."""
    c, db, role, loaded = site
    c.query('ALTER DATABASE "%s" OWNER TO "%s"' % (db, role))
    statements = ["ALTER ROLE CURRENT_USER SET trek.lock_timeout = 0",
                  "ALTER ROLE CURRENT_USER SET trek.lock_retries = 1000",
                  "ALTER ROLE CURRENT_USER IN DATABASE \"%s\""
                  " SET trek.lock_timeout = 0" % db,
                  "ALTER DATABASE \"%s\" SET trek.lock_timeout = 0" % db,
                  # even a lower value: it would override a superuser's
                  # stricter default set later, or for another database
                  "ALTER ROLE CURRENT_USER SET trek.lock_timeout = '1s'"]
    with connect_as(c, db, role) as conn:
        for loaded_now in ([True] if loaded else [False, True]):
            if loaded_now:
                load(conn)
            for sql in statements:
                with pytest.raises((psycopg.errors.InvalidParameterValue,
                                    psycopg.errors.InsufficientPrivilege)):
                    conn.execute(sql)
    stored = c.query("SELECT setconfig::text FROM pg_db_role_setting"
                     " WHERE setconfig::text LIKE '%%trek.%%'")
    assert stored == []
    with connect_as(c, db, role) as conn:
        load(conn)
        assert show(conn, "trek.lock_timeout") == "5s"
        assert show(conn, "trek.lock_retries") == "10"


def test_values_set_before_loading(site):
    """SET before trek is loaded: a lowered value is kept when trek takes
    it over, a raised one is refused (with a WARNING) even when a
    superuser's security definer function is what loads trek."""
    c, db, role, loaded = site
    if loaded:
        pytest.skip("trek is loaded before any SET here")
    c.query("ALTER DATABASE \"%s\" SET trek.lock_timeout = '30s'" % db)
    c.query("CREATE FUNCTION load_trek() RETURNS text LANGUAGE sql"
            " SECURITY DEFINER AS $$SELECT trek_current('none')$$",
            dbname=db)
    c.query('GRANT EXECUTE ON FUNCTION load_trek() TO "%s"' % role, dbname=db)
    with connect_as(c, db, role) as conn:
        conn.execute("SET trek.lock_timeout = '10s'")
        load(conn)
        assert show(conn, "trek.lock_timeout") == "10s"
        assert conn.messages == []
    with connect_as(c, db, role) as conn:
        conn.execute("SET trek.lock_timeout = 0")
        conn.execute("SET trek.lock_retries = 11")
        conn.execute("SELECT load_trek()")
        assert show(conn, "trek.lock_timeout") == "30s"
        assert show(conn, "trek.lock_retries") == "10"
        assert len(conn.messages) == 2, conn.messages
        assert all(m.startswith("WARNING: invalid value for parameter")
                   for m in conn.messages), conn.messages


# ---- trek.allowed_directories as README sets it ----

def readme_block(containing):
    """The fenced block of README.md that contains the given text."""
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"^```\w*\n(.*?)^```", text, re.M | re.S):
        if containing in block:
            return block
    raise AssertionError("README.md has no block with %r" % containing)


@pytest.mark.parametrize("how", ["ALTER SYSTEM", "ALTER DATABASE"])
def test_allowed_directories_as_readme_shows(site, how, make_folder):
    """README's statements, as printed, set trek.allowed_directories from a
    fresh superuser session, whether or not the server loads trek at start
    (on PostgreSQL 15 and 16 ALTER SYSTEM needs the LOAD README puts first),
    and a role without file privileges then migrates from the folder."""
    c, db, role, loaded = site
    folder = make_folder({"20240101_initial_up_a.sql": "SELECT 1;\n"})
    block = readme_block({"ALTER SYSTEM": "ALTER SYSTEM SET trek.allowed",
                          "ALTER DATABASE": "ALTER DATABASE app SET trek.allowed"}[how])
    sql = block.replace("/srv/app/migrations", str(folder.path)) \
               .replace("DATABASE app ", 'DATABASE "%s" ' % db)
    if how == "ALTER DATABASE":
        sql = sql.split("\n")[0] + "\n"     # the line of the ALTER itself
    p = subprocess.run([str(PGBIN / "psql"), "-X", "-v", "ON_ERROR_STOP=1",
                        "-h", c.host, "-p", str(c.port), "-U", "postgres",
                        "-d", db], input=sql, capture_output=True, text=True,
                       timeout=60)
    try:
        assert p.returncode == 0, p.stderr
        c.query('GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text)'
                ' TO "%s"' % role, dbname=db)
        with connect_as(c, db, role) as conn:
            assert show(conn, "trek.allowed_directories") == str(folder.path)
            plan = conn.execute("SELECT trek_plan(%s, 'head')",
                                (str(folder.path),)).fetchone()[0]
            assert plan["to"] == "a"
    finally:
        if how == "ALTER SYSTEM":
            with c.connect(db) as conn:
                conn.execute("LOAD 'trek'")
                conn.execute("ALTER SYSTEM RESET trek.allowed_directories")
                conn.execute("SELECT pg_reload_conf()")
