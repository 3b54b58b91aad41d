"""Python migrations and files that change under them.

sql/python.sql runs the Python fixtures read in place; here a copy of
test/fixtures/python_types is changed between planning and executing.
"""

import hashlib
import shutil

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import ROOT

TYPES = "20240101_initial_up_types.py"


@pytest.fixture
def pydb(cluster, database):
    """A database with trek and plpython3u."""
    cluster.query("CREATE EXTENSION plpython3u", dbname=database)
    return database


def test_changed_py_file_is_refused_like_a_sql_file(cluster, pydb, make_folder):
    folder = make_folder()
    for src in sorted((ROOT / "test" / "fixtures" / "python_types").iterdir()):
        shutil.copyfile(src, folder.path / src.name)
        (folder.path / src.name).chmod(0o644)
    with cluster.connect(pydb) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'types', track => 'pyscratch')",
                            (str(folder),)).fetchone()[0]
        planned = hashlib.sha256((folder.path / TYPES).read_bytes()).hexdigest()
        with open(folder.path / TYPES, "a") as f:
            f.write("# changed\n")
        now = hashlib.sha256((folder.path / TYPES).read_bytes()).hexdigest()
        # the values the pg_regress output showed
        assert (planned, now) == (
            "745488401dd4463efb0f9d189fde75ae54479fdd8f98cebc7299fc5c73b8be08",
            "8cc884093a50696a4496827ab38e8afcb9c51cdc11dd5c6c75d161d6736c96fc")
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT trek_execute(%s)", (Jsonb(plan),))
        d = e.value.diag
        assert e.value.sqlstate == "55000"
        assert d.message_primary == (
            'migration file "%s" changed since the plan was made' % TYPES)
        assert d.message_detail == (
            "The plan has SHA-256 %s, the file now has %s." % (planned, now))
        assert d.message_hint == "Make a new plan with trek_plan()."
        assert d.context == 'migration "%s", step 1 of 1' % TYPES
        # nothing was written
        assert conn.execute(
            "SELECT trek_current('pyscratch'), to_regclass('py_types'),"
            " (SELECT count(*) FROM trek.history WHERE track = 'pyscratch')"
        ).fetchone() == ("initial", None, 0)
