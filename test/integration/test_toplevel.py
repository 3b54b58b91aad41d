"""Steps outside a transaction, in detail: the statements that run are the
ones that were checked, whatever a statement of the step changes."""

import psycopg
import pytest

from conftest import history

MIGRATE = "CALL trek_migrate(%s, %s)"


SNEAKY = ("CREATE TABLE sneaky AS SELECT 'a\\' AS p,"
          " ' ; BEGIN; CREATE TABLE hidden (id int); SELECT ' AS q --'\n;\n")


def test_the_statements_checked_are_the_ones_run(cluster, database,
                                                 make_folder):
    """A step turns standard_conforming_strings off: its next statement,
    read again under that setting, would be four, one of them BEGIN, and
    the step would be reported applied with nothing committed.  What runs
    is what was checked: one CREATE TABLE AS with two string literals."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "-- trek:no-transaction\n"
            "SET standard_conforming_strings = off;\n" + SNEAKY +
            "CREATE TABLE after_sneaky (id int);\n",
    })
    with cluster.connect(database) as conn:
        conn.execute(MIGRATE, (str(folder), "rev1"))
        assert conn.info.transaction_status == \
            psycopg.pq.TransactionStatus.IDLE
    # seen from another session: all committed
    with cluster.connect(database) as other:
        assert [r[1] for r in history(other)] == ["rev1"]
        assert other.execute("SELECT p, q FROM sneaky").fetchone() == (
            "a\\", " ; BEGIN; CREATE TABLE hidden (id int); SELECT ")
        assert other.execute("SELECT to_regclass('hidden'),"
                             " to_regclass('after_sneaky') IS NOT NULL"
                             ).fetchone() == (None, True)


def test_an_error_position_points_into_the_statement(cluster, database,
                                                     make_folder):
    """The position of an error is one in the failing statement's text, shown
    as the internal query, not one in the caller's CALL."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "-- trek:no-transaction\nSELECT 1;\n"
            "SELECT 'é', nosuch\n  FROM pg_class;\n",
    })
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn) as e:
            conn.execute(MIGRATE, (str(folder), "rev1"))
        diag = e.value.diag
        assert diag.statement_position is None
        assert diag.internal_query == "SELECT 'é', nosuch\n  FROM pg_class"
        assert diag.internal_position == "13"
        assert "line 3" in diag.context
