"""The extension's own life: drop and create again, update, other schemas."""

import psycopg
import pytest

from conftest import MIGRATION_LOG, chain, history, tables


def test_drop_and_create_again(cluster, database, make_folder):
    app = str(make_folder(chain(2)))
    other = str(make_folder(chain(1, prefix="o")))
    with cluster.connect(database) as a, cluster.connect(database) as b:
        a.execute(MIGRATION_LOG)
        assert a.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                         (app,)).fetchone()[0] == "rev2"

        # DROP EXTENSION takes trek's schema and history with it; the
        # migrated schema stays
        b.execute("DROP EXTENSION trek")
        assert b.execute("SELECT to_regnamespace('trek'),"
                         " to_regproc('trek_plan')").fetchone() == (None, None)
        assert tables(b) == ["t1", "t2"]

        b.execute("CREATE EXTENSION trek")
        assert b.execute("SELECT trek_current()").fetchone()[0] == "initial"
        # a session that used trek before the drop writes to the new history
        assert a.execute(
            "SELECT trek_execute(trek_plan(%s, 'head', track => 'other'))",
            (other,)).fetchone()[0] == "rev1"
        assert [r[3] for r in history(b, "other")] == [
            "20240101_initial_up_rev1.sql"]
        assert b.execute("SELECT count(*) FROM trek.history").fetchone()[0] == 1
        assert tables(b, "o") == ["o1"]


def extension_objects(conn):
    return sorted(r[0] for r in conn.execute(
        "SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend"
        " WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'"
        "   AND refobjid = (SELECT oid FROM pg_extension"
        "                    WHERE extname = 'trek')"))


def test_update_paths(cluster, database, make_folder):
    """Every older version updates to the default one and then has the
    objects a fresh install has."""
    folder = str(make_folder(chain(1)))
    with cluster.connect(database) as conn:
        default = conn.execute("SELECT default_version FROM"
                               " pg_available_extensions WHERE name = 'trek'"
                               ).fetchone()[0]
        fresh = extension_objects(conn)
        older = [r[0] for r in conn.execute(
            "SELECT version FROM pg_available_extension_versions"
            " WHERE name = 'trek' AND version <> %s", (default,))]
        for source in older:
            path = conn.execute(
                "SELECT path FROM pg_extension_update_paths('trek')"
                " WHERE source = %s AND target = %s",
                (source, default)).fetchone()
            assert path and path[0], "no update path from %s" % source

        # at the default version, UPDATE is a no-op that says so
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("ALTER EXTENSION trek UPDATE")
        assert notices == ['version "%s" of extension "trek" is already'
                           ' installed' % default]

    for source in older:
        db = cluster.create_database(extension=False)
        try:
            with cluster.connect(db) as conn:
                conn.execute(MIGRATION_LOG)
                conn.execute("CREATE EXTENSION trek VERSION '%s'" % source)
                conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                             (folder,))
                conn.execute("ALTER EXTENSION trek UPDATE")
                assert conn.execute("SELECT extversion FROM pg_extension"
                                    " WHERE extname = 'trek'").fetchone()[0] \
                    == default
                assert extension_objects(conn) == fresh
                assert conn.execute("SELECT trek_current()").fetchone()[0] \
                    == "rev1"
        finally:
            cluster.drop_database(db)


def test_other_schema(cluster, make_folder):
    folder = str(make_folder(chain(2)))
    db = cluster.create_database(extension=False)
    try:
        with cluster.connect(db) as conn:
            conn.execute(MIGRATION_LOG)
            conn.execute("CREATE SCHEMA tools")
            conn.execute("CREATE EXTENSION trek SCHEMA tools")
            assert set(conn.execute(
                "SELECT proname, pronamespace::regnamespace::text FROM pg_proc"
                " WHERE proname LIKE 'trek\\_%'").fetchall()) >= {
                ("trek_current", "tools"), ("trek_execute", "tools"),
                ("trek_plan", "tools"), ("trek_status", "tools"),
                ("trek_verify", "tools"), ("trek_stamp", "tools"),
                ("trek_graph", "tools")}
            assert {r[0] for r in conn.execute(
                "SELECT DISTINCT pronamespace::regnamespace::text FROM pg_proc"
                " WHERE proname LIKE 'trek\\_%'").fetchall()} == {"tools"}
            # state stays in schema trek; the functions need no search path
            conn.execute("SET search_path = public")
            assert conn.execute(
                "SELECT tools.trek_execute(tools.trek_plan(%s, 'head'))",
                (folder,)).fetchone()[0] == "rev2"
            assert conn.execute("SELECT tools.trek_current()").fetchone()[0] \
                == "rev2"
            assert [r[1] for r in history(conn)] == ["rev1", "rev2"]
            with pytest.raises(psycopg.errors.UndefinedFunction):
                conn.execute("SELECT trek_current()")
            # not relocatable once installed
            with pytest.raises(psycopg.errors.FeatureNotSupported) as err:
                conn.execute("ALTER EXTENSION trek SET SCHEMA public")
            assert err.value.diag.message_primary == \
                'extension "trek" does not support SET SCHEMA'
    finally:
        cluster.drop_database(db)


def test_schema_name_taken(cluster):
    db = cluster.create_database(extension=False)
    try:
        with cluster.connect(db) as conn:
            conn.execute("CREATE SCHEMA trek")
            with pytest.raises(psycopg.errors.DuplicateSchema) as err:
                conn.execute("CREATE EXTENSION trek")
            assert err.value.diag.message_primary == \
                'schema "trek" already exists'
            assert conn.execute("SELECT count(*) FROM pg_extension"
                                " WHERE extname = 'trek'").fetchone()[0] == 0
    finally:
        cluster.drop_database(db)


def test_history_readable_when_granted(cluster, database, make_folder):
    """README's admin endpoint: a role granted USAGE on schema trek and
    SELECT on trek.history reads the history, and nothing more."""
    folder = str(make_folder(chain(1)))
    role = "regress_trek_audit_%s" % database[-8:]
    cluster.query(MIGRATION_LOG, dbname=database)
    cluster.query("CREATE ROLE %s LOGIN" % role)
    try:
        with cluster.connect(database) as conn:
            conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                         (folder,))
            conn.execute("SET ROLE %s" % role)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM trek.history")
            conn.execute("RESET ROLE")
            conn.execute("GRANT USAGE ON SCHEMA trek TO %s" % role)
            conn.execute("GRANT SELECT ON trek.history TO %s" % role)
            conn.execute("SET ROLE %s" % role)
            assert conn.execute("SELECT file, applied_by FROM trek.history"
                                ).fetchall() == [
                ("20240101_initial_up_rev1.sql", "postgres")]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM trek.history")
    finally:
        cluster.drop_database(database)
        cluster.query("DROP ROLE %s" % role)
