"""Status and verification of a track whose files change under it.

sql/ops.sql checks trek_status() and trek_verify() on folders that stay as
committed (test/fixtures/ops_drift, ops_adopt); here copies of the same
folders are edited and their files moved away between the calls: an
applied file edited, edited again while it is not applied, gone, and the
revision the track is at gone.  Each test replays, in a database of its
own, the steps that lead to its state, so that the history ids the messages
name are the same every run.
"""

import psycopg
import pytest

from conftest import copy_fixture

VERIFY_HINT = ("Put the files back as they were applied (trek.history keeps"
               " their SHA-256); trek_status() shows the whole state.")
PLAN = "SELECT trek_execute(trek_plan(%s, %s, track => %s))"


def append(folder, name, text):
    with open(folder.path / name, "a") as f:
        f.write(text)


def move(folder, name, to):
    (folder.path / name).rename(folder.path / to)


def connect(cluster, database):
    """A session that collects the primary text of its notices."""
    conn = cluster.connect(database)
    conn.notices = []
    conn.add_notice_handler(lambda d: conn.notices.append(d.message_primary))
    return conn


def execute(conn, folder, target, track):
    """trek_execute() of a plan to target: its result and its notices."""
    del conn.notices[:]
    result = conn.execute(PLAN, (str(folder), target, track)).fetchone()[0]
    return result, list(conn.notices)


def status(conn, folder, columns, track="ops"):
    return conn.execute("SELECT %s FROM trek_status(%%s, %%s)" % columns,
                        (str(folder), track)).fetchone()


def verify_error(conn, folder, track="ops"):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
        conn.execute("SELECT trek_verify(%s, %s)", (str(folder), track))
    diag = e.value.diag
    assert diag.sqlstate == "55000"
    assert diag.message_hint == VERIFY_HINT
    return diag.message_primary, diag.message_detail


def applied_and_edited(conn, folder):
    """The drift folder applied up to c, then 20240102_a_up_b.sql edited."""
    assert execute(conn, folder, "c", "ops") == ("c", [
        'applied migration "20240101_initial_up_a.sql" (initial -> a)',
        'applied migration "20240102_a_up_b.sql" (a -> b)',
        'applied migration "20240103_b_up_c.sql" (b -> c)'])
    append(folder, "20240102_a_up_b.sql", "-- edited\n")


def down_past_the_edit(conn, folder):
    """Down to a, through the edited file: planning refuses it while the
    applied files are checked (nothing applied), and goes with the check
    off."""
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as e:
        execute(conn, folder, "a", "ops")
    assert e.value.diag.message_detail == \
        'File "20240102_a_up_b.sql" (history id 2) changed since it was applied.'
    assert conn.execute("SELECT trek_current('ops')").fetchone() == ("c",)
    conn.execute("SET trek.check_applied = off")
    assert execute(conn, folder, "a", "ops") == ("a", [
        'applied migration "20240103_c_down_b.sql" (c -> b)',
        'applied migration "20240102_b_down_a.sql" (b -> a)'])
    conn.execute("RESET trek.check_applied")


def applied_again(conn, folder):
    """...then down to a, the file edited again, and up to head again."""
    applied_and_edited(conn, folder)
    down_past_the_edit(conn, folder)
    append(folder, "20240102_a_up_b.sql", "-- edited again\n")
    assert execute(conn, folder, "head", "ops") == ("c", [
        'applied migration "20240102_a_up_b.sql" (a -> b)',
        'applied migration "20240103_b_up_c.sql" (b -> c)'])


def one_gone_one_changed(conn, folder):
    """...then 20240103_b_up_c.sql moved away and the first file edited."""
    applied_again(conn, folder)
    move(folder, "20240103_b_up_c.sql", "20240103_b_up_c.sql.bak")
    append(folder, "20240101_initial_up_a.sql", "-- edited\n")


def test_an_applied_file_edited_after_it_ran(cluster, database, make_folder):
    folder = copy_fixture(make_folder, "ops_drift")
    with connect(cluster, database) as conn:
        applied_and_edited(conn, folder)
        assert status(conn, folder, "track, current, changed_files,"
                      " missing_files") == \
            ("ops", "c", ["20240102_a_up_b.sql"], [])
        assert verify_error(conn, folder) == (
            'track "ops" has 1 applied migration file that changed or is gone',
            'File "20240102_a_up_b.sql" (history id 2) changed since it was'
            ' applied.')
        # verify changes nothing
        assert conn.execute(
            "SELECT count(*), max(to_revision) FROM trek.history"
            " WHERE track = 'ops'").fetchone() == (3, "c")


def test_a_file_is_judged_against_its_newest_run(cluster, database,
                                                 make_folder):
    folder = copy_fixture(make_folder, "ops_drift")
    with connect(cluster, database) as conn:
        applied_and_edited(conn, folder)
        # down, edit, up again
        down_past_the_edit(conn, folder)
        assert status(conn, folder, "current, steps_to_head,"
                      " changed_files") == ("a", 2, [])
        append(folder, "20240102_a_up_b.sql", "-- edited again\n")
        assert status(conn, folder, "current, changed_files") == ("a", [])
        assert execute(conn, folder, "head", "ops") == ("c", [
            'applied migration "20240102_a_up_b.sql" (a -> b)',
            'applied migration "20240103_b_up_c.sql" (b -> c)'])
        assert status(conn, folder, "current, steps_to_head, changed_files,"
                      " missing_files") == ("c", 0, [], [])
        # nothing to report: void, which psycopg reads as ''
        assert conn.execute("SELECT trek_verify(%s, 'ops')",
                            (str(folder),)).fetchone() == ("",)


def test_an_applied_file_gone_and_one_changed(cluster, database, make_folder):
    folder = copy_fixture(make_folder, "ops_drift")
    with connect(cluster, database) as conn:
        one_gone_one_changed(conn, folder)
        assert status(conn, folder, "current, current_known, head,"
                      " steps_to_head, changed_files, missing_files, note") == \
            ("c", True, "b", 1, ["20240101_initial_up_a.sql"],
             ["20240103_b_up_c.sql"], None)
        assert verify_error(conn, folder) == (
            'track "ops" has 2 applied migration files that changed or are'
            ' gone',
            'File "20240101_initial_up_a.sql" (history id 1) changed since it'
            ' was applied.\n'
            'File "20240103_b_up_c.sql" (history id 7) is no longer in the'
            ' folder.')


def test_the_current_revision_gone_from_the_folder(cluster, database,
                                                   make_folder):
    folder = copy_fixture(make_folder, "ops_drift")
    with connect(cluster, database) as conn:
        one_gone_one_changed(conn, folder)
        move(folder, "20240103_c_down_b.sql", "20240103_c_down_b.sql.bak")
        # a row saying so, nothing fails
        assert status(conn, folder, "current, current_known, head,"
                      " steps_to_head, missing_files, note") == \
            ("c", False, "b", None, ["20240103_b_up_c.sql"],
             'revision "c" is not in the folder')
        assert verify_error(conn, folder) == (
            'track "ops" has 2 applied migration files that changed or are'
            ' gone',
            'The track is at revision "c", which the folder does not know.\n'
            'File "20240101_initial_up_a.sql" (history id 1) changed since it'
            ' was applied.\n'
            'File "20240103_b_up_c.sql" (history id 7) is no longer in the'
            ' folder.')
        assert conn.execute("SELECT trek_current('ops')").fetchone() == ("c",)


def test_an_adopted_track_judges_only_what_trek_applied(cluster, database,
                                                        make_folder):
    """A track stamped at rev2 (as sql/ops.sql adopts asyncpg-trek's
    database), then taken to rev3 by trek: an edit of rev1 -> rev2, which
    trek never ran, is no drift, and the way back down through the stamp
    uses the folder's down files."""
    folder = copy_fixture(make_folder, "ops_adopt")
    with connect(cluster, database) as conn:
        conn.execute("CREATE TABLE ops_people (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO ops_people VALUES (1, 'Ada')")
        assert conn.execute("SELECT trek_stamp(%s, 'rev2', 'adopt_app')",
                            (str(folder),)).fetchone() == ("rev2",)
        assert execute(conn, folder, "head", "adopt_app") == ("rev3", [
            'applied migration "20220412_rev2_up_rev3.sql" (rev2 -> rev3)'])
        append(folder, "20220411_rev1_up_rev2.sql", "-- edited\n")
        assert status(conn, folder, "current, changed_files",
                      "adopt_app") == ("rev3", [])
        assert execute(conn, folder, "initial", "adopt_app") == ("initial", [
            'applied migration "20220412_rev3_down_rev2.sql" (rev3 -> rev2)',
            'applied migration "20220411_rev2_down_rev1.sql" (rev2 -> rev1)',
            'applied migration "20220410_rev1_down_initial.sql"'
            ' (rev1 -> initial)'])
        assert conn.execute("SELECT to_regclass('ops_people')").fetchone() == \
            (None,)
        assert status(conn, folder, "current, steps_to_head, changed_files",
                      "adopt_app") == ("initial", 3, [])
