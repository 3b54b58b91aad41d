"""Steps outside a transaction, from several sessions: cancel and terminate
of the caller stop the statement (which the caller's own backend runs) and
leave nothing running, a lock timeout is retried, and sixteen callers build a
concurrent index once."""

import threading
import time

import psycopg
import pytest

from conftest import history, wait_for

MIGRATE = "CALL trek_migrate(%s, %s)"
# any other session of the database than the watcher's own: a run outside a
# transaction must leave no process behind (nor start one)
OTHERS = ("SELECT count(*) FROM pg_stat_activity"
          " WHERE datname = current_database() AND pid <> pg_backend_pid()")

SLOW = {
    "20240101_initial_up_rev1.sql": "CREATE TABLE slow_t (id int);\n",
    "20240102_rev1_up_rev2.sql":
        "-- trek:no-transaction\nSELECT pg_sleep(60);\n",
}


def start_call(cluster, db, folder, target):
    outcome = {}
    ready = threading.Event()

    def run():
        with cluster.connect(db) as conn:
            outcome["pid"] = conn.info.backend_pid
            ready.set()
            t = time.monotonic()
            try:
                conn.execute(MIGRATE, (str(folder), target))
                outcome["result"] = "done"
            except psycopg.Error as e:
                outcome["result"] = e
            outcome["seconds"] = time.monotonic() - t

    t = threading.Thread(target=run, daemon=True)
    t.start()
    ready.wait(30)
    return t, outcome


@pytest.mark.parametrize("how", ["cancel", "terminate"])
def test_cancel_and_terminate_stop_the_statement(cluster, database, make_folder,
                                                how):
    folder = make_folder(SLOW)
    with cluster.connect(database) as watcher:
        t, outcome = start_call(cluster, database, folder, "rev2")
        # the caller's own backend sleeps, and says which step it is at
        wait_for(lambda: watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
            " AND wait_event = 'PgSleep' AND query LIKE"
            " 'trek_migrate: track \"default\", step 2 of 2, 20240102_rev1_up_rev2.sql'",
            (outcome["pid"],)).fetchone()[0] == 1, 30, "the statement to run")
        assert watcher.execute(OTHERS).fetchone()[0] == 1
        started = time.monotonic()
        fn = "pg_cancel_backend" if how == "cancel" else "pg_terminate_backend"
        watcher.execute("SELECT %s(%s)" % (fn, outcome["pid"]))
        t.join(30)
        assert not t.is_alive()
        assert time.monotonic() - started < 5
        err = outcome["result"]
        if how == "cancel":
            assert isinstance(err, psycopg.errors.QueryCanceled)
        else:
            assert isinstance(err, psycopg.OperationalError)
        # nothing of the run is left running, and the track did not move
        wait_for(lambda: watcher.execute(OTHERS).fetchone()[0] == 0, 10,
                 "the caller's backend to go or to be idle")
        assert watcher.execute("SELECT trek_current()").fetchone()[0] == "rev1"


def test_lock_timeout_is_retried_outside_a_transaction(cluster, database,
                                                       make_folder):
    folder = make_folder({
        "20240101_initial_up_rev1.sql": "CREATE TABLE lt (id int);\n",
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\nALTER TABLE lt ADD COLUMN note text;\n",
    })
    with cluster.connect(database) as conn:
        conn.execute(MIGRATE, (str(folder), "rev1"))
    blocker = cluster.connect(database, autocommit=False)
    blocker.execute("SELECT count(*) FROM lt").fetchone()
    blocker_pid = blocker.info.backend_pid
    notices = []
    outcome = {}

    def run():
        with cluster.connect(database) as conn:
            conn.add_notice_handler(lambda d: notices.append(
                (d.message_primary, d.message_detail)))
            conn.execute("SET trek.lock_timeout = '200ms'")
            conn.execute("SET trek.lock_retries = 30")
            conn.execute(MIGRATE, (str(folder), "rev2"))
            outcome["result"] = "done"

    t = threading.Thread(target=run, daemon=True)
    t.start()
    wait_for(lambda: len([n for n in notices
                          if "timed out waiting for a lock" in n[0]]) >= 2,
             30, "two retries")
    blocker.commit()
    t.join(60)
    blocker.close()
    retries = [n for n in notices if "timed out waiting for a lock" in n[0]]
    assert len(retries) >= 2
    assert all("pid %d " % blocker_pid in (d or "")
               for _, d in retries), retries
    assert outcome["result"] == "done"
    with cluster.connect(database) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"


def test_sixteen_callers_build_the_index_once(cluster, database, make_folder):
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "CREATE TABLE many (id int, v int);\n"
            "INSERT INTO many SELECT g, g % 100 FROM generate_series(1, 20000) g;\n",
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\n"
            "CREATE INDEX CONCURRENTLY many_v_idx ON many (v);\n",
        "20240103_rev2_up_rev3.sql": "CREATE TABLE after_index (id int);\n",
    })
    barrier = threading.Barrier(16)
    errors = []

    def caller():
        try:
            with cluster.connect(database) as conn:
                barrier.wait(30)
                conn.execute(MIGRATE, (str(folder), "head"))
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with cluster.connect(database) as conn:
        assert [r[1] for r in history(conn)] == ["rev1", "rev2", "rev3"]
        assert conn.execute(
            "SELECT count(*), bool_and(indisvalid) FROM pg_index"
            " WHERE indrelid = 'many'::regclass").fetchone() == (1, True)
        # no session but this one is left
        wait_for(lambda: conn.execute(OTHERS).fetchone()[0] == 0, 10,
                 "the callers to go")


def test_a_nested_call_refuses_steps_outside_a_transaction(cluster, database,
                                                           make_folder):
    """From a procedure or a DO block trek_migrate() cannot leave its
    transaction: a plan with a step outside one is refused before any step
    runs; ordinary steps still run from there."""
    folder = make_folder(table_then_index("nest"))
    with cluster.connect(database) as conn:
        conn.execute("CREATE PROCEDURE deploy(target text) LANGUAGE plpgsql"
                     " AS $$ BEGIN CALL trek_migrate(%s, target); END $$"
                     % sql_literal(str(folder)))
        for call in ("CALL deploy('head')",
                     "DO $$ BEGIN CALL trek_migrate(%s, 'head'); END $$"
                     % sql_literal(str(folder))):
            with pytest.raises(psycopg.errors.ActiveSqlTransaction) as e:
                conn.execute(call)
            assert "from inside a procedure or a DO block" in str(e.value)
            assert e.value.diag.message_hint.startswith(
                "Call trek_migrate() directly")
            assert conn.execute("SELECT trek_current(), to_regclass('nest')"
                                ).fetchone() == ("initial", None)
        conn.execute("CALL deploy('rev1')")
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev1"
        conn.execute(MIGRATE, (str(folder), "head"))
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def table_then_index(name):
    """rev1 makes table name, rev2 indexes it concurrently"""
    return {
        "20240101_initial_up_rev1.sql": "CREATE TABLE %s (id int);\n" % name,
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\n"
            "CREATE INDEX CONCURRENTLY %s_id_idx ON %s (id);\n" % (name, name),
    }


@pytest.mark.parametrize("forge", ["hide", "add"])
def test_a_plan_that_lies_about_the_marker_is_refused(cluster, database,
                                                      make_folder, forge):
    """trek_migrate(plan) runs a step outside a transaction only when the
    file says so and the plan agrees: a plan edited either way is refused
    before its first step runs (the safety gate reads every step's file
    first), and leaves nothing."""
    folder = make_folder(table_then_index("liar"))
    with cluster.connect(database) as conn:
        plan = conn.execute("SELECT trek_plan(%s, 'head')",
                            (str(folder),)).fetchone()[0]
        steps = plan["steps"]
        if forge == "hide":
            steps[1].pop("no_transaction")
        else:
            steps[0]["no_transaction"] = True
        with pytest.raises(psycopg.errors.InvalidParameterValue) as e:
            conn.execute("CALL trek_migrate(%s::jsonb)",
                         (psycopg.types.json.Jsonb(plan),))
        assert "plan does not match migration" in str(e.value)
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "initial"
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE"
                            " indexname = 'liar_id_idx'").fetchone()[0] == 0


def test_retries_of_a_step_outside_a_transaction_are_counted_once(
        cluster, database, make_folder):
    """trek.lock_retries bounds the retries of each statement; the step
    as a whole is not retried again on top of them."""
    folder = make_folder({
        "20240101_initial_up_rev1.sql": "CREATE TABLE lr (id int);\n",
        "20240102_rev1_up_rev2.sql":
            "-- trek:no-transaction\n"
            "ALTER TABLE lr ADD COLUMN v int;\n",
    })
    with cluster.connect(database) as conn:
        conn.execute(MIGRATE, (str(folder), "rev1"))
    with cluster.connect(database, autocommit=False) as blocker, \
            cluster.connect(database) as conn:
        blocker.execute("SELECT count(*) FROM lr").fetchone()
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("SET trek.lock_timeout = '50ms'")
        conn.execute("SET trek.lock_retries = 2")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            conn.execute(MIGRATE, (str(folder), "rev2"))
        retries = [n for n in notices if "timed out waiting for a lock" in n]
        assert [r.split("(")[-1] for r in retries] == ["retry 1 of 2)",
                                                       "retry 2 of 2)"]
        blocker.rollback()
