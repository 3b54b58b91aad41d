"""Python migrations and files that change under them.

sql/python.sql runs the Python fixtures read in place; here a copy of
test/fixtures/python_types is changed between planning and executing.
"""

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import check_changed_file, copy_fixture, sha256

TYPES = "20240101_initial_up_types.py"


@pytest.fixture
def pydb(cluster, database):
    """A database with trek and plpython3u."""
    cluster.query("CREATE EXTENSION plpython3u", dbname=database)
    return database


def test_changed_py_file_is_refused_like_a_sql_file(cluster, pydb, make_folder):
    folder = copy_fixture(make_folder, "python_types")
    with cluster.connect(pydb) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'types', track => 'pyscratch')",
                            (str(folder),)).fetchone()[0]
        planned = sha256(folder.path / TYPES)
        with open(folder.path / TYPES, "a") as f:
            f.write("# changed\n")
        now = sha256(folder.path / TYPES)
        # the values the pg_regress output showed
        assert (planned, now) == (
            "745488401dd4463efb0f9d189fde75ae54479fdd8f98cebc7299fc5c73b8be08",
            "8cc884093a50696a4496827ab38e8afcb9c51cdc11dd5c6c75d161d6736c96fc")
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT trek_execute(%s)", (Jsonb(plan),))
        check_changed_file(e.value, TYPES, planned, now,
                           'migration "%s", step 1 of 1' % TYPES)
        # nothing was written
        assert conn.execute(
            "SELECT trek_current('pyscratch'), to_regclass('py_types'),"
            " (SELECT count(*) FROM trek.history WHERE track = 'pyscratch')"
        ).fetchone() == ("initial", None, 0)
