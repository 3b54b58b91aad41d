"""Steps outside a transaction, in detail: memory does not grow with the
number of statements; and the statements that run are the ones that were
checked, whatever a statement of the step changes."""

import threading
import time

import psycopg
import pytest

from conftest import history

MIGRATE = "CALL trek_migrate(%s, %s)"


class Call(threading.Thread):
    """One session running sql (CALL trek_migrate(folder, target) unless
    given), after the settings; keeps its NOTICEs and WARNINGs, and its
    outcome: "done" or the error."""

    def __init__(self, cluster, db, folder=None, target=None, sql=None,
                 settings=()):
        super().__init__(daemon=True)
        self.conn = cluster.connect(db)
        self.pid = self.conn.info.backend_pid
        self.sql = sql
        self.params = None if sql else (str(folder), target)
        self.settings = settings
        self.notices = []
        self.outcome = None
        self.conn.add_notice_handler(lambda d: self.notices.append(
            (d.severity_nonlocalized, d.message_primary)))

    def run(self):
        try:
            for s in self.settings:
                self.conn.execute(s)
            self.conn.execute(self.sql or MIGRATE, self.params)
            self.outcome = "done"
        except psycopg.Error as e:
            self.outcome = e
        finally:
            self.conn.close()


def rss_anon_kb(pid):
    """The private memory of process pid, in kB, or None if not readable."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def test_memory_does_not_grow_with_the_statements(cluster, database,
                                                  make_folder):
    """50,000 statements outside a transaction: the backend's memory is the
    file's parse trees and not much more (each statement's own memory goes
    when it is done; it used to stay until the run ended, 10 kB each)."""
    n = 50000
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "-- trek:no-transaction\n" + "SELECT 1;\n" * n,
    })
    call = Call(cluster, database, folder, "rev1")
    before = rss_anon_kb(call.pid)
    if before is None:
        call.conn.close()
        pytest.skip("the server's /proc is not readable here")
    peak = [before]
    call.start()
    while call.is_alive():
        peak[0] = max(peak[0], rss_anon_kb(call.pid) or 0)
        time.sleep(0.005)
    call.join()
    assert call.outcome == "done"
    grown_mb = (peak[0] - before) / 1024
    # the parse trees of the file take about 30 MB
    assert grown_mb < 150, "the backend grew by %.0f MB" % grown_mb
    with cluster.connect(database) as conn:
        assert [r[1] for r in history(conn)] == ["rev1"]


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
