"""Folders of sql/security.sql that git cannot hold.

Links in an allowed folder that lead outside it (absolute, dangling, to a
file of mode 000, a loop), and a folder whose name is not valid in the
database encoding.  Each answer is checked as sql/security.sql showed it:
message, detail, hint and SQLSTATE.
"""

import os
import shutil

import pytest

from conftest import ROOT, error_of

OUTSIDE_DETAIL = ('Only roles with privileges of the "pg_read_server_files" role '
                  'may use folders outside "trek.allowed_directories".')


def confined(conn, allowed, role):
    conn.execute("SELECT set_config('trek.allowed_directories', %s, false)",
                 (str(allowed),))
    conn.execute('SET ROLE "%s"' % role)
    return conn


@pytest.fixture
def links(fenced):
    """allowed/f: a migration and links named like migrations that lead
    outside: to a file, to nothing, to a folder, to a file of mode 000 (in
    a folder that may be entered but not listed), below a missing folder,
    and a loop."""
    outside = fenced / "outside"
    (outside / "dir").mkdir()
    for name in ("file.sql", "closed.sql"):
        (outside / name).write_text("SELECT 1;\n")
        (outside / name).chmod(0o644)
    (outside / "closed.sql").chmod(0o000)
    outside.chmod(0o711)
    f = fenced / "allowed" / "f"
    f.mkdir()
    f.chmod(0o755)
    (f / "20240101_initial_up_a.sql").write_text("SELECT 1;\n")
    (f / "20240101_initial_up_a.sql").chmod(0o644)
    for rev, target in [("file", outside / "file.sql"),
                        ("missing", outside / "missing.sql"),
                        ("dir", outside / "dir"),
                        ("closed", outside / "closed.sql"),
                        ("nodir", outside / "nodir" / "x.sql")]:
        os.symlink(target, f / ("20240102_a_up_%s.sql" % rev))
    os.symlink("20240102_a_up_loop.sql", f / "20240102_a_up_loop.sql")
    return f


def test_links_out_of_the_allowed_folder_are_not_looked_at_when_listed(
        cluster, database, fenced, links, app_role):
    """The folder plans as if each link were a migration: none was looked
    at."""
    with confined(cluster.connect(database), fenced / "allowed", app_role) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'a', track => 'sec_links')",
                            (str(links),)).fetchone()[0]
    assert plan["to"] == "a"


@pytest.mark.parametrize("rev", ["file", "missing", "dir", "closed", "nodir", "loop"])
def test_links_out_of_the_allowed_folder_give_one_answer(
        cluster, database, fenced, links, app_role, rev):
    """Whatever is, or is not, at the end of a link that leads outside,
    the answer is the same."""
    with confined(cluster.connect(database), fenced / "allowed", app_role) as conn:
        diag = error_of(conn, "SELECT trek_plan(%s, %s, track => 'sec_links')",
                        (str(links), rev))
    assert diag.message_primary == ('permission denied to read migrations in'
                                    ' "%s/20240102_a_up_%s.sql"' % (links, rev))
    assert diag.message_detail == OUTSIDE_DETAIL


@pytest.fixture
def latin1(fenced):
    """allowed/café in LATIN1 (not valid UTF-8), a copy of
    test/fixtures/app, and allowed/latin1, a link to it."""
    folder = os.path.join(bytes(fenced / "allowed"), b"caf\xe9")
    os.mkdir(folder)
    os.chmod(folder, 0o755)
    for f in (ROOT / "test" / "fixtures" / "app").iterdir():
        dest = os.path.join(folder, os.fsencode(f.name))
        shutil.copy(f, dest)
        os.chmod(dest, 0o644)
    os.symlink(b"caf\xe9", os.path.join(bytes(fenced / "allowed"), b"latin1"))
    return fenced / "allowed" / "latin1"


def check_not_valid(diag, fenced):
    assert diag.sqlstate == "22021"
    assert diag.message_primary == ('path of migration folder "%s/allowed/caf\\xe9"'
                                    ' is not valid in encoding "UTF8"' % fenced)
    assert diag.message_detail == \
        "Plans, history rows and messages hold the folder's path as text."
    assert diag.message_hint == ("Rename the folder, or the folders above it, to"
                                 " names valid in the database encoding.")


def test_folder_name_not_valid_in_the_database_encoding(cluster, database,
                                                        fenced, latin1):
    with cluster.connect(database) as conn:
        check_not_valid(error_of(conn, "SELECT trek_plan(%s, 'head')",
                                 (str(latin1),)), fenced)


def test_folder_name_not_valid_for_a_client_in_another_encoding(
        cluster, database, fenced, latin1):
    """A client in another encoding gets the same message."""
    with cluster.connect(database) as conn:
        conn.execute("SET client_encoding = 'LATIN1'")
        check_not_valid(error_of(conn, "SELECT trek_plan(%s, 'head')",
                                 (str(latin1),)), fenced)


def test_folder_name_not_valid_for_a_confined_role(cluster, database, fenced,
                                                   latin1, app_role):
    with confined(cluster.connect(database), fenced / "allowed", app_role) as conn:
        check_not_valid(error_of(conn, "SELECT trek_plan(%s, 'head')",
                                 (str(latin1),)), fenced)
