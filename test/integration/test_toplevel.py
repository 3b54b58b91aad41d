"""Steps outside a transaction, in detail: a failed concurrent index build
drops only the index it made itself, never another session's; memory does
not grow with the number of statements; and the statements that run are
the ones that were checked, whatever a statement of the step changes."""

import threading
import time

import psycopg
import pytest

from conftest import history, wait_for

MIGRATE = "CALL trek_migrate(%s, %s)"
WAITING = ("SELECT wait_event_type = 'Lock' FROM pg_stat_activity"
           " WHERE pid = %s")


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

    def waits_for_a_lock(self, watcher):
        return watcher.execute(WAITING, (self.pid,)).fetchone()[0]


def index_state(conn, name):
    """(exists, valid) of index public.name"""
    row = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid ="
                       " to_regclass(%s)", ("public." + name,)).fetchone()
    return (False, None) if row is None else (True, row[0])


def dropped(call):
    return [m for _, m in call.notices if m.startswith("dropped invalid index")]


def test_another_sessions_index_build_survives_our_failing_build(
        cluster, database, make_folder):
    """While our CREATE UNIQUE INDEX CONCURRENTLY waits, another session
    starts one of its own (INVALID until it is done); ours fails on
    duplicates: only our index is dropped, theirs is built."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "CREATE TABLE ours_t (v int);\n"
            "INSERT INTO ours_t VALUES (1), (1);\n"
            "CREATE TABLE theirs_t (v int);\n"
            "INSERT INTO theirs_t SELECT generate_series(1, 100);\n",
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\n"
            "CREATE UNIQUE INDEX CONCURRENTLY ours_key ON ours_t (v);\n",
    })
    with cluster.connect(database) as watcher:
        watcher.execute(MIGRATE, (str(folder), "rev1"))
        # a writer of ours_t holds our build back, one of theirs_t theirs
        hold_ours = cluster.connect(database, autocommit=False)
        hold_ours.execute("LOCK ours_t IN ROW EXCLUSIVE MODE")
        hold_theirs = cluster.connect(database, autocommit=False)
        hold_theirs.execute("LOCK theirs_t IN ROW EXCLUSIVE MODE")
        try:
            ours = Call(cluster, database, folder, "rev2",
                        settings=["SET trek.lock_timeout = '60s'"])
            ours.start()
            wait_for(lambda: ours.waits_for_a_lock(watcher), 30,
                     "our build to wait for the writer")
            theirs = Call(cluster, database, sql="CREATE UNIQUE INDEX"
                          " CONCURRENTLY theirs_key ON theirs_t (v)")
            theirs.start()
            wait_for(lambda: theirs.waits_for_a_lock(watcher), 30,
                     "their build to wait for the writer")
            assert index_state(watcher, "theirs_key") == (True, False)
            hold_ours.commit()
            # ours fails, and has nothing of theirs to wait for
            ours.join(20)
            assert not ours.is_alive()
        finally:
            hold_ours.close()
            hold_theirs.close()
        theirs.join(30)
        ours.join(30)
        assert isinstance(ours.outcome, psycopg.errors.UniqueViolation)
        assert theirs.outcome == "done"
        assert index_state(watcher, "theirs_key") == (True, True)
        assert index_state(watcher, "ours_key") == (False, None)
        assert dropped(ours) == [
            "dropped invalid index public.ours_key, left by the failed statement"]
        assert watcher.execute("SELECT trek_current()").fetchone()[0] == "rev1"


def test_an_invalid_index_from_before_is_left_and_ours_dropped(
        cluster, database, make_folder):
    """An INVALID index that was there before the statement is not the
    statement's: it stays, without a WARNING, and ours goes."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "CREATE TABLE ours_t (v int);\n"
            "INSERT INTO ours_t VALUES (1), (1);\n",
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\n"
            "CREATE UNIQUE INDEX CONCURRENTLY ours_key ON ours_t (v);\n",
    })
    with cluster.connect(database) as conn:
        conn.execute("CREATE TABLE before_t (v int)")
        conn.execute("INSERT INTO before_t VALUES (1), (1)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY before_key"
                         " ON before_t (v)")
        assert index_state(conn, "before_key") == (True, False)
        conn.execute(MIGRATE, (str(folder), "rev1"))

    call = Call(cluster, database, folder, "rev2")
    call.run()
    assert isinstance(call.outcome, psycopg.errors.UniqueViolation)
    assert [n for n in call.notices if n[0] == "WARNING"] == []
    assert dropped(call) == [
        "dropped invalid index public.ours_key, left by the failed statement"]
    with cluster.connect(database) as conn:
        assert index_state(conn, "ours_key") == (False, None)
        assert index_state(conn, "before_key") == (True, False)


def test_an_index_of_the_same_name_being_built_elsewhere_is_not_dropped(
        cluster, database, make_folder):
    """Another session builds an index of the name our step's CREATE INDEX
    CONCURRENTLY gives, on the same table: INVALID while it is built, like
    the leftover of an earlier attempt, but not one; it is built, and our
    statement fails because the name is taken."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "CREATE TABLE same_t (v int);\n"
            "INSERT INTO same_t SELECT generate_series(1, 100);\n",
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\n"
            "CREATE INDEX CONCURRENTLY same_idx ON same_t (v);\n",
    })
    with cluster.connect(database) as watcher:
        watcher.execute(MIGRATE, (str(folder), "rev1"))
        hold = cluster.connect(database, autocommit=False)
        hold.execute("LOCK same_t IN ROW EXCLUSIVE MODE")
        try:
            theirs = Call(cluster, database, sql="CREATE UNIQUE INDEX"
                          " CONCURRENTLY same_idx ON same_t (v)")
            theirs.start()
            wait_for(lambda: theirs.waits_for_a_lock(watcher), 30,
                     "their build to wait for the writer")
            assert index_state(watcher, "same_idx") == (True, False)
            # (our deadlock check runs before their build is done)
            ours = Call(cluster, database, folder, "rev2",
                        settings=["SET trek.lock_timeout = '60s'",
                                  "SET deadlock_timeout = '100ms'"])
            ours.start()
            wait_for(lambda: ours.waits_for_a_lock(watcher), 30,
                     "our step to wait for their build")
            time.sleep(0.3)
            hold.commit()
        finally:
            hold.close()
        theirs.join(30)
        ours.join(30)
        assert theirs.outcome == "done"
        assert isinstance(ours.outcome, psycopg.errors.DuplicateTable)
        assert dropped(ours) == []
        assert [n for n in ours.notices if n[0] == "WARNING"] == []
        assert watcher.execute(
            "SELECT indisvalid, indisunique FROM pg_index"
            " WHERE indexrelid = 'same_idx'::regclass").fetchone() == (True, True)
        assert watcher.execute("SELECT trek_current()").fetchone()[0] == "rev1"


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


@pytest.mark.parametrize("call", ["execute", "migrate"])
def test_an_ordinary_step_runs_only_what_was_checked(cluster, database,
                                                     make_folder, call):
    """The same file in a transaction: SPI parses each statement's text
    again, so a statement that would read differently is refused with a
    clear error, and nothing of the step stays."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "SET standard_conforming_strings = off;\n" + SNEAKY +
            "CREATE TABLE after_sneaky (id int);\n",
    })
    sql = ("SELECT trek_execute(trek_plan(%s, 'rev1'))" if call == "execute"
           else MIGRATE)
    params = (str(folder),) if call == "execute" else (str(folder), "rev1")
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.errors.FeatureNotSupported) as e:
            conn.execute(sql, params)
        assert "reads differently" in e.value.diag.message_primary
        assert "20240101_initial_up_rev1.sql" in e.value.diag.message_primary
        assert history(conn) == []
        assert conn.execute("SELECT to_regclass('sneaky'),"
                            " to_regclass('hidden')").fetchone() == (None, None)


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
