"""trek_execute and files that change under it.

sql/execute.sql runs the plans of folders read in place; here the folders
are copies that the tests change between planning and executing (a file
edited or removed), or write (a migration over 64 kB).
"""


import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import check_changed_file, copy_fixture, notices, sha256

REV1 = "20220410_initial_up_rev1.sql"


def scratch_state(conn):
    return conn.execute(
        "SELECT trek_current('scratch'),"
        " (SELECT count(*) FROM trek.history WHERE track = 'scratch'),"
        " to_regclass('people')").fetchone()


def test_file_changed_since_planning_is_refused(cluster, database, make_folder):
    folder = copy_fixture(make_folder, "example")
    with cluster.connect(database) as conn:
        seen = notices(conn)
        assert conn.execute(
            "SELECT trek_execute(trek_plan(%s, 'initial', track => 'scratch'))",
            (str(folder),)).fetchone()[0] == "initial"
        assert seen == ['track "scratch" is already at revision "initial", nothing to do']
        plan = conn.execute("SELECT trek_plan(%s, 'rev2', track => 'scratch')",
                            (str(folder),)).fetchone()[0]
        planned = sha256(folder.path / REV1)
        with open(folder.path / REV1, "a") as f:
            f.write("DROP TABLE people;\n")
        now = sha256(folder.path / REV1)
        # the values the pg_regress output showed
        assert (planned, now) == (
            "60aaab62516c49d40bd0957a499dac1435b4f9aecf3bf5bec7d60eadde919df4",
            "9cd65d190587cb705641a4c8841fc2a65f4da5e96d49db112a1fbc6a2177b5ab")
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT trek_execute(%s)", (Jsonb(plan),))
        check_changed_file(e.value, REV1, planned, now,
                           'migration "%s", step 1 of 2' % REV1)
        # nothing was written
        assert scratch_state(conn) == ("initial", 0, None)


def test_file_removed_since_planning_is_refused(cluster, database, make_folder):
    folder = copy_fixture(make_folder, "example")
    with cluster.connect(database) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'rev2', track => 'scratch')",
                            (str(folder),)).fetchone()[0]
        folder.remove(REV1)
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT trek_execute(%s)", (Jsonb(plan),))
        d = e.value.diag
        assert e.value.sqlstate == "58P01"
        assert d.message_primary == (
            'could not open migration file "%s/%s": No such file or directory'
            % (folder, REV1))
        assert d.context == 'migration "%s", step 1 of 2' % REV1
        # nothing was written
        assert scratch_state(conn) == ("initial", 0, None)


def test_small_and_large_files_hash_and_run_whole(cluster, database, make_folder):
    """Small files are read by name in the open folder, files over 64 kB
    by full path in chunks: both give the SHA-256 of the whole file and
    run all of it."""
    small = "20240101_initial_up_small.sql"
    big = "20240102_small_up_big.sql"
    folder = make_folder({
        small: "CREATE TABLE big_t (v text);\n",
        big: "INSERT INTO big_t VALUES ('%s');\n" % ("x" * 70000)})
    assert (folder.path / big).stat().st_size > 64 * 1024
    with cluster.connect(database) as conn:
        seen = notices(conn)
        steps = conn.execute(
            "SELECT s->>'file', s->>'sha256',"
            " s->>'sha256' = encode(sha256(pg_read_binary_file(%s || '/' || (s->>'file'))), 'hex')"
            " FROM jsonb_array_elements(trek_plan(%s, 'head', track => 'big') -> 'steps') AS s",
            (str(folder), str(folder))).fetchall()
        assert steps == [(small, sha256(folder.path / small), True),
                         (big, sha256(folder.path / big), True)]
        assert conn.execute(
            "SELECT trek_execute(trek_plan(%s, 'head', track => 'big'))",
            (str(folder),)).fetchone()[0] == "big"
        assert seen == [
            'applied migration "%s" (initial -> small)' % small,
            'applied migration "%s" (small -> big)' % big]
        assert conn.execute("SELECT length(v) FROM big_t").fetchall() == [(70000,)]
        assert conn.execute(
            "SELECT file, sha256,"
            " sha256 = encode(sha256(pg_read_binary_file(%s || '/' || file)), 'hex')"
            " FROM trek.history WHERE track = 'big' ORDER BY id",
            (str(folder),)).fetchall() == [
                (small, sha256(folder.path / small), True),
                (big, sha256(folder.path / big), True)]
