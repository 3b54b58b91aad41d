"""CALL trek_migrate and files that change under it.

sql/migrate.sql calls trek_migrate on the folders read in place; here the
folders are copies that the tests change between calls (a failing step
fixed, a file changed after planning and put back), or write with their
own path in them (a migration that stamps its own track), and the errors
that name a folder are checked whole.
"""

import uuid

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import check_changed_file, copy_fixture, notices, sha256

REV2_REV3 = "20220412_rev2_up_rev3.sql"
REV4BAD = "20220413_rev3_up_rev4bad.sql"
LUKE = "INSERT INTO people (name) VALUES ('Luke');\n"
FOLDER_DETAIL = ('Only roles with privileges of the "pg_read_server_files" '
                 'role may use folders outside "trek.allowed_directories".')


def to_revisions(conn, track):
    return [r[0] for r in conn.execute(
        "SELECT to_revision FROM trek.history WHERE track = %s ORDER BY id",
        (track,))]


def test_fixed_step_goes_on_from_where_the_run_failed(cluster, database,
                                                      make_folder):
    folder = copy_fixture(make_folder, "example")
    with cluster.connect(database) as conn:
        conn.execute("CALL trek_migrate(%s, 'rev2', track => 'mig')", (str(folder),))
        with pytest.raises(psycopg.Error) as e:
            conn.execute("CALL trek_migrate(%s, 'rev4bad', track => 'mig')",
                         (str(folder),))
        assert e.value.sqlstate == "42P01"
        assert conn.execute(
            "SELECT trek_current('mig'), (SELECT count(*) FROM people)"
        ).fetchone() == ("rev3", 0)
        assert conn.execute(
            "SELECT state, steps_done, steps_planned, current_file, sqlstate"
            " FROM trek_runs('mig') LIMIT 1").fetchone() == (
                "failed", 1, 2, REV4BAD, "42P01")
        # fixed, the same call goes on from there
        folder.add(REV4BAD, LUKE)
        seen = notices(conn)
        conn.execute("CALL trek_migrate(%s, 'rev4bad', track => 'mig')", (str(folder),))
        assert seen == ['applied migration "%s" (rev3 -> rev4bad)' % REV4BAD]
        assert conn.execute(
            "SELECT trek_current('mig'),"
            " (SELECT string_agg(name, ', ' ORDER BY id) FROM people)"
        ).fetchone() == ("rev4bad", "Luke")
        assert conn.execute(
            "SELECT state, steps_done, steps_planned FROM trek_runs('mig') LIMIT 1"
        ).fetchone() == ("done", 1, 1)
        assert to_revisions(conn, "mig") == ["rev1", "rev2", "rev3", "rev4bad"]


def test_plan_with_a_changed_file_is_refused_until_put_back(cluster, database,
                                                            make_folder):
    folder = copy_fixture(make_folder, "example")
    folder.add(REV4BAD, LUKE)
    with cluster.connect(database) as conn:
        conn.execute("CALL trek_migrate(%s, 'rev2', track => 'mig_plan')",
                     (str(folder),))
        up = conn.execute("SELECT trek_plan(%s, 'rev4bad', track => 'mig_plan')",
                          (str(folder),)).fetchone()[0]
        path = folder.path / REV2_REV3
        saved = path.read_bytes()
        planned = sha256(path)
        with open(path, "a") as f:
            f.write("-- changed\n")
        now = sha256(path)
        # the values the pg_regress output showed
        assert (planned, now) == (
            "e7fbad11d2105380d4d7facd67330984f1884295cece7fc8e0941e201fb36f5c",
            "b91e29e5c59c36a1d34f080656178603a467054ef5ec00d31ab61b984ffdc921")
        with pytest.raises(psycopg.Error) as e:
            conn.execute("CALL trek_migrate(%s)", (Jsonb(up),))
        check_changed_file(e.value, REV2_REV3, planned, now,
                           'migration "%s", step 1 of 2' % REV2_REV3)
        # nothing was applied
        assert conn.execute("SELECT trek_current('mig_plan')").fetchone()[0] == "rev2"
        assert to_revisions(conn, "mig_plan") == ["rev1", "rev2"]
        # put back, the same plan runs
        path.write_bytes(saved)
        seen = notices(conn)
        conn.execute("CALL trek_migrate(%s)", (Jsonb(up),))
        assert seen == [
            'applied migration "%s" (rev2 -> rev3)' % REV2_REV3,
            'applied migration "%s" (rev3 -> rev4bad)' % REV4BAD]
        assert conn.execute("SELECT trek_current('mig_plan')").fetchone()[0] == "rev4bad"


def test_migration_may_not_stamp_its_own_track(cluster, database, make_folder):
    folder = make_folder()
    stamp = "SELECT trek_stamp('%s', 'a', track => 'mig_nested')" % folder
    folder.add("20240101_initial_up_a.sql", stamp + ";\n")
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.Error) as e:
            conn.execute("CALL trek_migrate(%s, 'head', track => 'mig_nested')",
                         (str(folder),))
        d = e.value.diag
        assert e.value.sqlstate == "0A000"
        assert d.message_primary == "trek_stamp() cannot be called from inside a migration"
        assert d.message_hint == "Stamp the track before or after the run."
        assert d.context == ('SQL statement "%s"\n'
                             'migration "20240101_initial_up_a.sql", step 1 of 1, line 1'
                             % stamp)
        assert conn.execute("SELECT trek_current('mig_nested')").fetchone()[0] == "initial"


def test_folder_rules_refuse_a_role_whole_message(cluster, database, staged):
    """The two refusals sql/migrate.sql shows by SQLSTATE and message only
    (their message names the folder): message and detail here."""
    example = staged("test/fixtures/example")
    enum = staged("test/fixtures/migrate_enum")
    app = staged("test/fixtures/app")
    role = "trek_app_%s" % uuid.uuid4().hex[:8]
    cluster.query('CREATE ROLE "%s" LOGIN' % role)
    try:
        with cluster.connect(database) as conn:
            conn.execute('GRANT EXECUTE ON PROCEDURE trek_migrate(text, text, text, text)'
                         ' TO "%s"' % role)
            for folder, allowed, target in [(example, None, "rev1"),
                                            (app, enum, "one")]:
                if allowed:
                    conn.execute("SELECT set_config('trek.allowed_directories', %s, false)",
                                 (str(allowed),))
                conn.execute('SET ROLE "%s"' % role)
                with pytest.raises(psycopg.Error) as e:
                    conn.execute("CALL trek_migrate(%s, %s, track => 'mig_app')",
                                 (str(folder), target))
                conn.execute("RESET ROLE")
                d = e.value.diag
                assert e.value.sqlstate == "42501"
                assert d.message_primary == (
                    'permission denied to read migrations in "%s"' % folder)
                assert d.message_detail == FOLDER_DETAIL
            assert conn.execute("SELECT count(*) FROM trek.history").fetchone()[0] == 0
    finally:
        cluster.query('DROP OWNED BY "%s"' % role, dbname=database)
        cluster.query('DROP ROLE "%s"' % role)
