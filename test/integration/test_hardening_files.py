"""Hostile and broken folders that git cannot hold, or that change.

sql/hardening.sql tests what the committed fixtures can show; here are the
folders it cannot: file names that are odd or not UTF-8 and a name of 255
bytes, symbolic link loops, dangling and absolute links, files and folders
of mode 000 (which denies even their owner: only root ignores modes, and the
server never runs as root), a folder deeper than MAXPGPATH, FIFOs, and a
folder that changes between planning and execution.  Each error is checked
with its message, detail, hint and context as sql/hardening.sql showed them,
and each failed call is checked to have written nothing.
"""

import os
import shutil

import pytest
from psycopg.types.json import Jsonb

from conftest import ROOT, error_of

NAME_DETAIL = ('Migration file names look like "YYYYMMDD_<from>_up_<to>.sql" or '
               '"YYYYMMDD_<from>_down_<to>.py", where revision names are ASCII '
               'letters, digits and underscores.')
OUTSIDE_DETAIL = ('Only roles with privileges of the "pg_read_server_files" role '
                  'may use folders outside "trek.allowed_directories".')
LONG = "x" * 237            # 20240102_a_up_<LONG>.sql has 255 bytes


def copy_fixture(name, dest):
    """A copy of test/fixtures/<name> at dest, readable by every user."""
    shutil.copytree(ROOT / "test" / "fixtures" / name, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def write(path, text):
    """Write a file (path may be bytes, for names that are not UTF-8)."""
    with open(path, "wb") as f:
        f.write(text.encode())
    os.chmod(path, 0o644)


def steps(plan):
    return [s["file"] for s in plan["steps"]]


#
# File names
#

@pytest.fixture
def names(area):
    """Migrations named at the edges of the grammar; one name is not UTF-8."""
    folder = area / "names"
    folder.mkdir()
    write(folder / "20240101_initial_up_a.sql", "SELECT 1;\n")
    write(folder / ("20240102_a_up_%s.sql" % LONG), "SELECT 2;\n")
    for n in ["20240103_a b_up_c.sql", "20240104_a_up_it's.sql",
              "20240105_a_up_x;DROP TABLE t.sql", "20240106_a_up_ünï.sql",
              "20240107__up_c.sql", "20240108_a_Up_c.sql", "20240109_a_up_c.Sql",
              "20240110_a_up_c.PY", "2024011_a_up_c.sql", "20240111_a_up_.sql",
              '20240112_a_up_b"c.sql']:
        write(folder / n, "SELECT 3;\n")
    write(os.path.join(bytes(folder), b"20240113_a_up_\xff.sql"), "SELECT 3;\n")
    for n in ["20240114_a_up__c.sql", "20240115_a_up_b_up_c.sql",
              "20240116_a_up_c.sql.orig", "20240117_a_up_c", ".20240118_a_up_c.sql"]:
        write(folder / n, "SELECT 4;\n")
    return folder


def test_odd_file_names_warn_and_are_ignored(cluster, database, names):
    """Names with spaces, quotes, ";", non-ASCII letters (or bytes not
    valid UTF-8), an empty revision or upper-case parts warn and are
    ignored; other extensions and hidden files are ignored silently."""
    seen = []
    with cluster.connect(database) as conn:
        conn.add_notice_handler(lambda d: seen.append(
            (d.severity_nonlocalized, d.message_primary, d.message_detail)))
        plan = conn.execute("SELECT trek_plan(%s, 'a', track => 'hard')",
                            (str(names),)).fetchone()[0]
    assert steps(plan) == ["20240101_initial_up_a.sql"]
    ignored = ["20240103_a b_up_c.sql", "20240104_a_up_it's.sql",
               "20240105_a_up_x;DROP TABLE t.sql", "20240106_a_up_ünï.sql",
               "20240107__up_c.sql", "20240108_a_Up_c.sql", "20240109_a_up_c.Sql",
               "20240110_a_up_c.PY", "20240111_a_up_.sql", '20240112_a_up_b"c.sql',
               "20240113_a_up_\\xff.sql", "2024011_a_up_c.sql"]
    assert seen == [("WARNING", 'ignoring file "%s" in migration folder "%s"'
                     % (n, names), NAME_DETAIL) for n in ignored]


def test_longest_file_name_is_a_migration(cluster, database, names):
    """The longest name a file system allows (255 bytes) is a migration
    like any other."""
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = error")
        plan = conn.execute("SELECT trek_plan(%s, %s, track => 'hard')",
                            (str(names), LONG)).fetchone()[0]
    assert steps(plan)[1] == "20240102_a_up_%s.sql" % LONG
    assert len(steps(plan)[1]) == 255


def test_up_twice_splits_greedily(cluster, database, names):
    """"_c" (from 20240114_a_up__c.sql) and "a_up_b" (the greedy "from" of
    20240115_a_up_b_up_c.sql) are revisions; "b" is not."""
    with cluster.connect(database) as conn:
        conn.execute("SET client_min_messages = error")
        plan = conn.execute("SELECT trek_plan(%s, '_c', track => 'hard')",
                            (str(names),)).fetchone()[0]
        assert steps(plan)[1] == "20240114_a_up__c.sql"
        diag = error_of(conn, "SELECT trek_plan(%s, 'b', track => 'hard')",
                        (str(names),))
        assert diag.message_primary == \
            'revision "b" does not exist in migration folder "%s"' % names
        assert diag.message_hint == 'Perhaps you meant "a", "c".'
        diag = error_of(conn, "SELECT trek_plan(%s, 'a_up_b', track => 'hard')",
                        (str(names),))
        assert diag.message_primary == 'no path from "initial" to "a_up_b"'
        assert diag.message_hint == ('Going up from there reaches "a", "%s", "_c";'
                                     ' going down reaches nothing.' % LONG)


#
# Folders
#

def test_link_loop_as_the_folder(cluster, database, area):
    """A symbolic link loop as the folder, or above it: no such folder
    (58P01), not an internal error."""
    os.symlink("loop", area / "loop")
    with cluster.connect(database) as conn:
        for path in [area / "loop", area / "loop" / "sub"]:
            diag = error_of(conn, "SELECT trek_plan(%s, 'head', track => 'hard')",
                            (str(path),))
            assert diag.message_primary == ('could not open migration folder "%s":'
                                            ' Too many levels of symbolic links' % path)
            assert diag.sqlstate == "58P01"


def test_link_loop_and_dangling_link_as_migrations(cluster, database, area):
    """A link loop and a dangling (absolute) link named like migrations."""
    app = ROOT / "test" / "fixtures" / "app"
    for sub in ("linkfile", "dangling"):
        (area / sub).mkdir()
        (area / sub).chmod(0o755)
        shutil.copy(app / "20240101_initial_up_one.sql", area / sub)
        (area / sub / "20240101_initial_up_one.sql").chmod(0o644)
    os.symlink("20240102_one_up_two.sql", area / "linkfile" / "20240102_one_up_two.sql")
    os.symlink(area / "nowhere.sql", area / "dangling" / "20240102_one_up_two.sql")
    with cluster.connect(database) as conn:
        diag = error_of(conn, "SELECT trek_plan(%s, 'head', track => 'hard')",
                        (str(area / "linkfile"),))
        assert diag.message_primary == (
            'could not stat migration file "%s/linkfile/20240102_one_up_two.sql":'
            ' Too many levels of symbolic links' % area)
        assert diag.sqlstate == "58P01"
        diag = error_of(conn, "SELECT trek_plan(%s, 'head', track => 'hard')",
                        (str(area / "dangling"),))
        assert diag.message_primary == (
            'could not stat migration file "%s/dangling/20240102_one_up_two.sql":'
            ' No such file or directory' % area)


def test_folder_the_server_may_not_read_or_enter(cluster, database, area):
    """A folder of mode 000, and one inside a folder of mode 000."""
    copy_fixture("app", area / "closed").chmod(0o000)
    copy_fixture("app", area / "noentry" / "inner")
    (area / "noentry").chmod(0o000)
    with cluster.connect(database) as conn:
        for path in [area / "closed", area / "noentry" / "inner"]:
            diag = error_of(conn, "SELECT trek_plan(%s, 'head', track => 'hard')",
                            (str(path),))
            assert diag.message_primary == \
                'could not open migration folder "%s": Permission denied' % path


def test_only_the_files_of_the_plan_are_opened(cluster, database, area):
    """A file of mode 000 stops only the plans that include it."""
    folder = copy_fixture("app", area / "closedfile")
    (folder / "20240102_one_up_two.sql").chmod(0o000)
    with cluster.connect(database) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'one', track => 'hard')",
                            (str(folder),)).fetchone()[0]
        assert steps(plan) == ["20240101_initial_up_one.sql"]
        diag = error_of(conn, "SELECT trek_plan(%s, 'two', track => 'hard')",
                        (str(folder),))
        assert diag.message_primary == (
            'could not open migration file "%s/20240102_one_up_two.sql":'
            ' Permission denied' % folder)


def test_folder_deeper_than_maxpgpath(cluster, database, area):
    """A folder whose path has more than MAXPGPATH (1024) bytes is fine,
    reached through a link."""
    deep = area / "long"
    for _ in range(12):
        deep = deep / ("d" * 99)
    deep.mkdir(parents=True)
    for p in [area / "long", *(area / "long").rglob("*")]:
        p.chmod(0o755)
    for f in (ROOT / "test" / "fixtures" / "app").iterdir():
        shutil.copy(f, deep)
        (deep / f.name).chmod(0o644)
    os.symlink(deep.relative_to(area), area / "longlink")
    with cluster.connect(database) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'head', track => 'hard')",
                            (str(area / "longlink"),)).fetchone()[0]
    assert plan["dir"] == str(deep)
    assert len(plan["dir"]) == len(str(area)) + len("/long") + 12 * 100 > 1024


def test_fifo_named_like_a_migration_is_not_one(cluster, database, area):
    """A FIFO named like a migration is not a migration (and opening one
    would wait for a writer)."""
    folder = copy_fixture("app", area / "fifo")
    os.mkfifo(folder / "20240103_two_up_three.sql")
    with cluster.connect(database) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'head', track => 'hard')",
                            (str(folder),)).fetchone()[0]
    assert plan["to"] == "two"


def test_links_out_of_the_allowed_folder_explain_nothing(cluster, database,
                                                         area, app_role):
    """For a role without pg_read_server_files, a missing folder behind a
    link that leads outside the allowed folder is not explained (that would
    tell what exists there), nor is a link loop."""
    allowed = area / "allowed"
    copy_fixture("app", allowed / "app")
    os.symlink(ROOT / "test" / "fixtures" / "names" / "nowhere",
               allowed / "outside_missing")
    os.symlink("loop2", allowed / "loop2")
    with cluster.connect(database) as conn:
        conn.execute("SELECT set_config('trek.allowed_directories', %s, false)",
                     (str(allowed) + "/",))
        conn.execute('SET ROLE "%s"' % app_role)
        for path in [allowed / "outside_missing",
                     allowed / "outside_missing" / "deeper", allowed / "loop2"]:
            diag = error_of(conn, "SELECT trek_plan(%s, 'head', track => 'hard')",
                            (str(path),))
            assert diag.message_primary == \
                'permission denied to read migrations in "%s"' % path
            assert diag.message_detail == OUTSIDE_DETAIL


#
# Plans
#

def test_plan_for_another_folder_names_the_step(cluster, database, staged):
    """A plan whose folder is another one than its steps' files fails at
    the first step, and says which."""
    example, app = staged("test/fixtures/example"), staged("test/fixtures/app")
    with cluster.connect(database) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'rev2', track => 'hard_plans')",
                            (str(example),)).fetchone()[0]
        plan["dir"] = str(app)
        diag = error_of(conn, "SELECT trek_execute(%s)", (Jsonb(plan),))
        assert diag.message_primary == (
            'could not open migration file "%s/20220410_initial_up_rev1.sql":'
            ' No such file or directory' % app)
        assert diag.context == 'migration "20220410_initial_up_rev1.sql", step 1 of 2'
        assert nothing_written(conn, "hard_plans")


#
# The folder changes between planning and execution
#

STEP2 = "20220411_rev1_up_rev2.sql"
STEP2_CONTEXT = 'migration "%s", step 2 of 2' % STEP2


@pytest.fixture
def moving(cluster, database, area):
    """A copy of test/fixtures/example, its plan to rev2 and a session."""
    folder = copy_fixture("example", area / "moving")
    conn = cluster.connect(database)
    plan = conn.execute("SELECT trek_plan(%s, 'rev2', track => 'hard_moving')",
                        (str(folder),)).fetchone()[0]
    yield folder, Jsonb(plan), conn
    conn.close()


def nothing_written(conn, track):
    """The track is where it was, and step 1 (which runs before step 2
    fails) left no table."""
    return conn.execute(
        "SELECT trek_current(%s), to_regclass('people'),"
        " (SELECT count(*) FROM trek.history WHERE track = %s)",
        (track, track)).fetchone() == ("initial", None, 0)


def test_planned_file_renamed(moving):
    folder, plan, conn = moving
    (folder / STEP2).rename(folder / (STEP2 + ".moved"))
    diag = error_of(conn, "SELECT trek_execute(%s)", (plan,))
    assert diag.message_primary == ('could not open migration file "%s/%s":'
                                    ' No such file or directory' % (folder, STEP2))
    assert diag.context == STEP2_CONTEXT
    assert nothing_written(conn, "hard_moving")


def test_planned_file_replaced_by_a_fifo(moving):
    """Refused without waiting for a writer."""
    folder, plan, conn = moving
    (folder / STEP2).unlink()
    os.mkfifo(folder / STEP2)
    conn.execute("SET statement_timeout = '20s'")
    diag = error_of(conn, "SELECT trek_execute(%s)", (plan,))
    assert diag.message_primary == \
        'migration "%s/%s" is not a regular file' % (folder, STEP2)
    assert diag.context == STEP2_CONTEXT
    assert nothing_written(conn, "hard_moving")


def test_planned_file_replaced_by_a_folder(moving):
    folder, plan, conn = moving
    (folder / STEP2).unlink()
    (folder / STEP2).mkdir()
    diag = error_of(conn, "SELECT trek_execute(%s)", (plan,))
    assert diag.message_primary == \
        'migration "%s/%s" is not a regular file' % (folder, STEP2)
    assert diag.context == STEP2_CONTEXT
    assert nothing_written(conn, "hard_moving")


def test_planned_file_replaced_by_a_link_outside(moving, area, app_role):
    """A link to the same contents outside the allowed folder: superusers
    may follow links anywhere, other roles only inside allowed folders."""
    folder, plan, conn = moving
    (folder / STEP2).rename(area / "saved.sql")
    os.symlink(area / "saved.sql", folder / STEP2)
    conn.execute("SELECT set_config('trek.allowed_directories', %s, false)",
                 (str(folder),))
    conn.execute('SET ROLE "%s"' % app_role)
    diag = error_of(conn, "SELECT trek_execute(%s)", (plan,))
    conn.execute("RESET ROLE")
    assert diag.message_primary == \
        'permission denied to read migrations in "%s/%s"' % (folder, STEP2)
    assert diag.message_detail == OUTSIDE_DETAIL
    assert diag.context == STEP2_CONTEXT
    assert nothing_written(conn, "hard_moving")


def test_folder_gone_or_replaced_by_a_file(moving):
    folder, plan, conn = moving
    folder.rename(folder.with_name("moving.away"))
    folder.touch()
    diag = error_of(conn, "SELECT trek_execute(%s)", (plan,))
    assert diag.message_primary == \
        'could not open migration folder "%s": Not a directory' % folder
    assert nothing_written(conn, "hard_moving")


def test_new_file_is_not_in_the_plan(moving):
    """A file added after planning: the plan does not include it, and
    still runs."""
    folder, plan, conn = moving
    write(folder / "20220411_rev1_up_sideways.sql",
          "CREATE TABLE hard_new_t (id int);\n")
    notices = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    with conn.transaction(force_rollback=True):
        assert conn.execute("SELECT trek_execute(%s)", (plan,)).fetchone()[0] == "rev2"
        assert conn.execute(
            "SELECT trek_current('hard_moving'), to_regclass('hard_new_t'),"
            " (SELECT count(*) FROM people)").fetchone() == ("rev2", None, 1)
    assert notices == [
        'applied migration "20220410_initial_up_rev1.sql" (initial -> rev1)',
        'applied migration "20220411_rev1_up_rev2.sql" (rev1 -> rev2)']
    assert nothing_written(conn, "hard_moving")
