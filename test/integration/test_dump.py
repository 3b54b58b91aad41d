"""pg_dump and pg_restore keep trek.history: trek continues from the
restored revision."""

import subprocess

import psycopg
from psycopg.types.json import Jsonb

from conftest import MIGRATION_LOG, PGBIN, chain

HISTORY = ("SELECT id, track, from_revision, to_revision, direction, file,"
           " sha256, applied_at, applied_by, duration"
           " FROM trek.history ORDER BY id")
HISTORY_DIR = HISTORY.replace(" FROM", ", dir FROM")


def client(cluster, program, *args):
    subprocess.run([str(PGBIN / program), "-h", cluster.host, "-p",
                    str(cluster.port), "-U", "postgres", *args],
                   check=True, capture_output=True, text=True)


def test_dump_and_restore(cluster, database, make_folder, tmp_path):
    app = make_folder(chain(3))
    other = make_folder(chain(2, prefix="o"))
    with cluster.connect(database) as conn:
        conn.execute(MIGRATION_LOG)
        conn.execute("SELECT trek_execute(trek_plan(%s, 'rev3'))", (str(app),))
        conn.execute("SELECT trek_execute(trek_plan(%s, 'rev2'))", (str(app),))
        conn.execute("SELECT trek_execute(trek_plan(%s, 'head', track => 'other'))",
                     (str(other),))
        before = conn.execute(HISTORY).fetchall()
    assert len(before) == 6

    dump = tmp_path / "trek.dump"
    client(cluster, "pg_dump", "-Fc", "-f", str(dump), database)
    restored = cluster.create_database("trek_restored", extension=False)
    try:
        client(cluster, "pg_restore", "--exit-on-error", "-d", restored,
               str(dump))
        with cluster.connect(restored) as conn:
            assert conn.execute(HISTORY).fetchall() == before
            assert conn.execute(
                "SELECT trek_current(), trek_current('other')").fetchone() \
                == ("rev2", "rev2")
            # the plan starts where the dump left off, and the new history
            # row gets a fresh id (the id sequence came along)
            plan = conn.execute("SELECT trek_plan(%s, 'head')",
                                (str(app),)).fetchone()[0]
            assert (plan["from"], plan["to"]) == ("rev2", "rev3")
            assert conn.execute("SELECT trek_execute(%s)",
                                (Jsonb(plan),)).fetchone()[0] == "rev3"
            rows = conn.execute(HISTORY).fetchall()
            assert rows[:6] == before
            assert rows[6][0] > before[-1][0]
            assert rows[6][2:5] == ("rev2", "rev3", "up")
            assert conn.execute("SELECT to_regclass('t3') IS NOT NULL"
                                ).fetchone()[0]
    finally:
        cluster.drop_database(restored)



def test_dump_and_restore_after_update(cluster, make_folder, tmp_path):
    """A 0.1 database updated to 0.2 and 0.3 keeps its history through pg_dump and
    pg_restore, and so do the track owners the update gave it: the restored
    database enforces them."""
    app = make_folder(chain(2))
    db = cluster.create_database(extension=False)
    owner = "regress_trek_dump_owner"
    other = "regress_trek_dump_other"
    restored = None
    try:
        with cluster.connect(db) as conn:
            for role in (owner, other):
                conn.execute('DROP ROLE IF EXISTS "%s"' % role)
                conn.execute('CREATE ROLE "%s" IN ROLE pg_read_server_files'
                             % role)
            conn.execute(MIGRATION_LOG)
            conn.execute("CREATE EXTENSION trek VERSION '0.1'")
            conn.execute('GRANT CREATE ON SCHEMA public TO "%s", "%s"'
                         % (owner, other))
            conn.execute('GRANT ALL ON migration_log, migration_log_id_seq'
                         ' TO "%s", "%s"' % (owner, other))
            conn.execute('GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),'
                         ' trek_execute(jsonb), trek_current(text) TO "%s", "%s"'
                         % (owner, other))
            conn.execute('SET ROLE "%s"' % owner)
            conn.execute("SELECT trek_execute(trek_plan(%s, 'rev1'))", (str(app),))
            conn.execute("RESET ROLE")
            conn.execute("ALTER EXTENSION trek UPDATE")
            conn.execute('SET ROLE "%s"' % owner)
            conn.execute("SELECT trek_execute(trek_plan(%s, 'rev2'))", (str(app),))
            conn.execute("RESET ROLE")
            history = conn.execute(HISTORY_DIR).fetchall()
            tracks = conn.execute("SELECT track, owner::text FROM trek.tracks"
                                  ).fetchall()
        assert tracks == [("default", owner)]
        assert [h[-1] for h in history] == [None, str(app.path)]

        dump = tmp_path / "trek.dump"
        client(cluster, "pg_dump", "-Fc", "-f", str(dump), db)
        restored = cluster.create_database("trek_restored", extension=False)
        client(cluster, "pg_restore", "--exit-on-error", "-d", restored,
               str(dump))
        with cluster.connect(restored) as conn:
            assert conn.execute("SELECT extversion FROM pg_extension"
                                " WHERE extname = 'trek'").fetchone()[0] == "0.3"
            assert conn.execute(HISTORY_DIR).fetchall() == history
            assert conn.execute("SELECT track, owner::text FROM trek.tracks"
                                ).fetchall() == tracks
            conn.execute('SET ROLE "%s"' % other)
            try:
                conn.execute("SELECT trek_execute(trek_plan(%s, 'initial'))",
                             (str(app),))
                raise AssertionError("another role moved the owner's track")
            except psycopg.errors.InsufficientPrivilege as e:
                assert owner in e.diag.message_detail
            conn.execute("RESET ROLE")
            assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"
    finally:
        if restored:
            cluster.drop_database(restored)
        cluster.drop_database(db)
        for role in (owner, other):
            cluster.query('DROP ROLE IF EXISTS "%s"' % role)


def test_grant_of_trek_runs_survives_update_and_dump(cluster, tmp_path):
    """0.3 creates trek_runs() again (its columns change): a role it was
    granted to in 0.2 keeps the grant, also through pg_dump and pg_restore,
    which dump only what differs from trek's own initial privileges."""
    db = cluster.create_database(extension=False)
    role = "regress_trek_dump_runs"
    restored = None
    try:
        with cluster.connect(db) as conn:
            conn.execute('DROP ROLE IF EXISTS "%s"' % role)
            conn.execute('CREATE ROLE "%s"' % role)
            conn.execute("CREATE EXTENSION trek VERSION '0.2'")
            conn.execute('GRANT EXECUTE ON FUNCTION trek_runs(text) TO "%s"' % role)
            conn.execute("ALTER EXTENSION trek UPDATE")
            assert conn.execute(
                "SELECT has_function_privilege(%s, 'trek_runs(text)', 'EXECUTE')",
                (role,)).fetchone()[0]
        dump = tmp_path / "runs.dump"
        client(cluster, "pg_dump", "-Fc", "-f", str(dump), db)
        restored = cluster.create_database("trek_restored", extension=False)
        client(cluster, "pg_restore", "--exit-on-error", "-d", restored,
               str(dump))
        with cluster.connect(restored) as conn:
            assert conn.execute(
                "SELECT has_function_privilege(%s, 'trek_runs(text)', 'EXECUTE'),"
                " has_function_privilege('public', 'trek_runs(text)', 'EXECUTE')",
                (role,)).fetchone() == (True, False)
    finally:
        if restored:
            cluster.drop_database(restored)
        cluster.drop_database(db)
        cluster.query('DROP ROLE IF EXISTS "%s"' % role)
