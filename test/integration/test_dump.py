"""pg_dump and pg_restore keep trek.history: trek continues from the
restored revision."""

import subprocess

from psycopg.types.json import Jsonb

from conftest import MIGRATION_LOG, PGBIN, chain

HISTORY = ("SELECT id, track, from_revision, to_revision, direction, file,"
           " sha256, applied_at, applied_by, duration"
           " FROM trek.history ORDER BY id")


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

