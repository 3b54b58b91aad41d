"""trek_runs() and trek_status().last_run tell the truth about every run.

A trek_execute() run lives in its caller's transaction: trek keeps it in
shared memory (src/runs.c) so that other sessions see it from before its
first step, a terminated session's run shows "interrupted", a failed one
keeps its error although its transaction rolled back, and no background
worker is started for it.  A trek_migrate() run that fails anywhere (a
step, a cancel during a lock-retry pause, a deferred constraint at commit,
the folder gone between steps) says "failed" with its file and line.
"""

import threading
import time

import psycopg
import pytest

from conftest import Cluster, wait_for

GATE = 8_310_001
PLAN = "SELECT trek_execute(trek_plan(%s, %s))"
MIGRATE = "CALL trek_migrate(%s, %s)"

GATED = {
    "20240101_initial_up_rev1.sql": "CREATE TABLE e1 (id int);\n",
    "20240102_rev1_up_rev2.sql":
        "CREATE TABLE e2 (id int);\n"
        "SELECT pg_advisory_xact_lock(%d);\n" % GATE,
    "20240103_rev2_up_rev3.sql": "CREATE TABLE e3 (id int);\n",
}

FAILING = {
    "20240101_initial_up_rev1.sql": "CREATE TABLE f1 (id int);\n",
    "20240102_rev1_up_rev2.sql":
        "CREATE TABLE f2 (id int);\n"
        "\n"
        "SELECT * FROM no_such_table;\n",
}


def last_run(conn, track="default"):
    return conn.execute(
        "SELECT id, call, state, steps_done, steps_planned, current_file, line,"
        " sqlstate, message FROM trek_runs(%s) LIMIT 1", (track,)).fetchone()


def wait_at_gate(conn):
    return wait_for(lambda: conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = 0 AND objid = %s", (GATE,)).fetchone(), 60,
        "the run to reach the gate")[0]


def run_in_thread(cluster, db, sql, params, outcome):
    def run():
        try:
            with cluster.connect(db) as conn:
                conn.execute(sql, params)
            outcome["result"] = "done"
        except psycopg.Error as e:
            outcome["result"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def start_at_gate(gate, cluster, db, sql, folder, outcome):
    """Close the gate, run sql to head in a thread, and return the thread
    and the backend's pid once it waits at the gate."""
    gate.execute("SELECT pg_advisory_lock(%s)", (GATE,))
    t = run_in_thread(cluster, db, sql, (str(folder), "head"), outcome)
    return t, wait_at_gate(gate)


def test_execute_run_seen_while_it_runs(cluster, database, make_folder):
    folder = make_folder(GATED)
    outcome = {}
    with cluster.connect(database) as gate:
        t, pid = start_at_gate(gate, cluster, database, PLAN, folder, outcome)
        run = gate.execute(
            "SELECT call, state, steps_done, steps_planned, current_file, pid,"
            " current_since IS NOT NULL, finished_at IS NULL FROM trek_runs()"
        ).fetchall()
        assert run == [("execute", "running", 1, 3,
                        "20240102_rev1_up_rev2.sql", pid, True, True)]
        assert gate.execute("SELECT last_run FROM trek_status(%s)",
                            (str(folder),)).fetchone()[0] == "running"
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        t.join(60)
        assert outcome["result"] == "done"
        rows = gate.execute("SELECT call, state, steps_done, current_file"
                            " FROM trek_runs()").fetchall()
        assert rows == [("execute", "done", 3, None)]
        # written once, with its transaction
        assert gate.execute("SELECT count(*) FROM trek.runs").fetchone()[0] == 1


def test_terminated_execute_run_is_interrupted(cluster, database, make_folder):
    folder = make_folder(GATED)
    outcome = {}
    with cluster.connect(database) as gate:
        t, pid = start_at_gate(gate, cluster, database, PLAN, folder, outcome)
        gate.execute("SELECT pg_terminate_backend(%s)", (pid,))
        t.join(60)
        assert isinstance(outcome["result"], psycopg.Error)
        wait_for(lambda: not gate.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone(),
            30, "the session to end")
        run = last_run(gate)
        assert run[1:6] == ("execute", "interrupted", 0, 3,
                            "20240102_rev1_up_rev2.sql")
        gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
        # the next run writes it into trek.runs, and goes on from initial
        assert gate.execute(PLAN, (str(folder), "head")).fetchone()[0] == "rev3"
        assert gate.execute("SELECT state FROM trek.runs ORDER BY id"
                            ).fetchall() == [("interrupted",), ("done",)]


def test_failed_execute_run_keeps_its_error(cluster, database, make_folder):
    folder = make_folder(FAILING)
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute(PLAN, (str(folder), "head"))
        run = last_run(conn)
        # nothing stayed applied: 0 steps done; the failing file and line
        assert run[1:] == ("execute", "failed", 0, 2,
                           "20240102_rev1_up_rev2.sql", 3, "42P01",
                           'relation "no_such_table" does not exist')
        assert conn.execute("SELECT last_run FROM trek_status(%s)",
                            (str(folder),)).fetchone()[0] == "failed"
        # fail, then succeed: the success is the newest run, also once the
        # failure is written after it started
        folder.add("20240102_rev1_up_rev2.sql", "CREATE TABLE f2 (id int);\n")
        assert conn.execute(PLAN, (str(folder), "head")).fetchone()[0] == "rev2"
        states = conn.execute("SELECT state FROM trek_runs()").fetchall()
        assert states == [("done",), ("failed",)]
        assert conn.execute("SELECT last_run FROM trek_status(%s)",
                            (str(folder),)).fetchone()[0] == "done"
        assert conn.execute("SELECT state FROM trek.runs ORDER BY id"
                            ).fetchall() == [("failed",), ("done",)]


def test_failed_run_of_a_dropped_trek_stays_out_of_the_new_one(cluster, database,
                                                               make_folder):
    """A failure kept in shared memory belongs to the trek that began it:
    after DROP EXTENSION and CREATE EXTENSION it is neither shown nor
    written into the new trek.runs, where its id would be another run's."""
    folder = make_folder(FAILING)
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute(PLAN, (str(folder), "head"))
        assert last_run(conn)[2] == "failed"
        conn.execute("DROP EXTENSION trek")
        conn.execute("CREATE EXTENSION trek")
        assert conn.execute("SELECT count(*) FROM trek_runs()").fetchone()[0] == 0
    folder.add("20240102_rev1_up_rev2.sql", "CREATE TABLE f2 (id int);\n")
    # another session runs (and so writes what shared memory holds) twice;
    # before, the old failure went in with id 1 and the new ids collided
    with cluster.connect(database) as other:
        assert other.execute(PLAN, (str(folder), "rev1")).fetchone()[0] == "rev1"
        assert other.execute(PLAN, (str(folder), "head")).fetchone()[0] == "rev2"
        assert other.execute("SELECT id, state FROM trek.runs ORDER BY id"
                             ).fetchall() == [(1, "done"), (2, "done")]
        assert [r[0] for r in other.execute("SELECT state FROM trek_runs()")] == \
            ["done", "done"]


def test_execute_rolled_back_by_its_caller(cluster, database, make_folder):
    folder = make_folder(GATED)
    with cluster.connect(database, autocommit=False) as conn:
        assert conn.execute(PLAN, (str(folder), "rev1")).fetchone()[0] == "rev1"
        conn.rollback()
        conn.autocommit = True
        run = last_run(conn)
        assert run[1:4] == ("execute", "failed", 0)
        assert "rolled back" in run[8]
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "initial"
        # inside a savepoint rolled back: the same
        conn.autocommit = False
        conn.execute("SAVEPOINT s")
        conn.execute(PLAN, (str(folder), "rev1"))
        conn.execute("ROLLBACK TO SAVEPOINT s")
        conn.commit()
        conn.autocommit = True
        assert last_run(conn)[2] == "failed"
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "initial"


def test_failure_loop_writes_and_starts_nothing(cluster, database, make_folder):
    """A role looping failing runs: no worker, no log line, no growth."""
    folder = make_folder(FAILING)
    cluster.query("CREATE ROLE regress_trek_flood LOGIN")
    try:
        with cluster.connect(database) as su:
            su.execute("GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),"
                       " trek_execute(jsonb), trek_runs(text) TO regress_trek_flood")
            su.execute("GRANT CREATE ON SCHEMA public TO regress_trek_flood")
            su.execute("GRANT pg_read_server_files TO regress_trek_flood")
            plan = su.execute("SELECT trek_plan(%s, 'head')::text",
                              (str(folder),)).fetchone()[0]
        info = cluster.conninfo(database)
        info["user"] = "regress_trek_flood"
        failures = 0
        workers_seen = 0
        with psycopg.connect(**info, autocommit=True) as flood, \
                cluster.connect(database) as watch:
            stop = time.monotonic() + 4
            while time.monotonic() < stop:
                with pytest.raises(psycopg.Error):
                    flood.execute("SELECT trek_execute(%s::jsonb)", (plan,))
                failures += 1
                workers_seen += watch.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE backend_type NOT IN ('client backend')"
                    " AND backend_type LIKE 'trek%%'").fetchone()[0]
            assert failures > 50
            assert workers_seen == 0
            # one record per session, whatever the count of failures
            assert len(flood.execute("SELECT * FROM trek_runs()").fetchall()) == 1
            assert watch.execute("SELECT count(*) FROM trek.runs").fetchone()[0] == 0
    finally:
        cluster.query("DROP OWNED BY regress_trek_flood", dbname=database)
        cluster.query("DROP ROLE regress_trek_flood")


def test_tenants_see_only_their_runs(cluster, database, make_folder):
    a_folder = make_folder(GATED)
    b_folder = make_folder(FAILING)
    for role in ("regress_trek_ta", "regress_trek_tb"):
        cluster.query("CREATE ROLE %s LOGIN" % role)
    try:
        with cluster.connect(database) as su:
            su.execute("GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),"
                       " trek_execute(jsonb), trek_runs(text)"
                       " TO regress_trek_ta, regress_trek_tb")
            su.execute("GRANT CREATE ON SCHEMA public TO regress_trek_ta, regress_trek_tb")
            su.execute("GRANT pg_read_server_files TO regress_trek_ta, regress_trek_tb")

        def connect(role):
            info = cluster.conninfo(database)
            info["user"] = role
            return psycopg.connect(**info, autocommit=True)

        with connect("regress_trek_ta") as a, connect("regress_trek_tb") as b:
            a.execute(PLAN, (str(a_folder), "rev1"))
            with pytest.raises(psycopg.errors.UndefinedTable):
                a.execute("SELECT trek_execute(trek_plan(%s, 'head', track => 'a2'))",
                          (str(b_folder),))
            with pytest.raises(psycopg.errors.UndefinedTable):
                b.execute("SELECT trek_execute(trek_plan(%s, 'head', track => 'b'))",
                          (str(b_folder),))
            assert sorted(r[0] for r in a.execute(
                "SELECT track FROM trek_runs()").fetchall()) == ["a2", "default"]
            assert [r[0] for r in b.execute(
                "SELECT track FROM trek_runs()").fetchall()] == ["b"]
            assert b.execute("SELECT count(*) FROM trek_runs('default')"
                             ).fetchone()[0] == 0
        with cluster.connect(database) as su:
            assert su.execute("SELECT count(*) FROM trek_runs()").fetchone()[0] == 3
    finally:
        for role in ("regress_trek_ta", "regress_trek_tb"):
            cluster.query("DROP OWNED BY %s" % role, dbname=database)
            cluster.query("DROP ROLE %s" % role)


# ---- trek_migrate: failures outside its steps ----

LOCKED = {
    "20240101_initial_up_rev1.sql": "CREATE TABLE l1 (id int);\n",
    "20240102_rev1_up_rev2.sql": "ALTER TABLE busy ADD COLUMN c int;\n",
}


@pytest.mark.parametrize("how", ["cancel", "statement_timeout"])
def test_migrate_stopped_during_a_retry_pause(cluster, database, make_folder, how):
    folder = make_folder(LOCKED)
    outcome = {}
    with cluster.connect(database) as holder, cluster.connect(database) as watch:
        holder.execute("CREATE TABLE busy (id int)")
        holder.execute("BEGIN")
        holder.execute("LOCK busy IN ACCESS SHARE MODE")

        def run():
            try:
                with cluster.connect(database) as conn:
                    conn.execute("SET trek.lock_timeout = '100ms'")
                    conn.execute("SET trek.lock_retries = 100")
                    outcome["pid"] = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                    # the simple query protocol, as psql sends it: the
                    # statement timeout of a CALL sent with the extended
                    # protocol is not PostgreSQL's to enforce across its
                    # commits on every major
                    if how == "statement_timeout":
                        conn.pgconn.exec_(b"SET statement_timeout = '3s'")
                    res = conn.pgconn.exec_(
                        ("CALL trek_migrate('%s', 'head')" % folder).encode())
                    if res.error_message:
                        outcome["result"] = res.error_field(
                            psycopg.pq.DiagnosticField.SQLSTATE).decode()
                        return
                outcome["result"] = "done"
            except psycopg.Error as e:
                outcome["result"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        # wait for a pause between retries (the backend waits on its latch)
        wait_for(lambda: watch.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
            " AND wait_event_type = 'Extension'", (outcome.get("pid"),)).fetchone(),
            30, "a retry pause")
        if how == "cancel":
            watch.execute("SELECT pg_cancel_backend(%s)", (outcome["pid"],))
        t.join(60)
        holder.execute("ROLLBACK")
        assert outcome["result"] == "57014"
        run = last_run(watch)
        # the line of the statement that waited for the lock
        assert run[1:8] == ("migrate", "failed", 1, 2,
                            "20240102_rev1_up_rev2.sql", 1, "57014")
        assert watch.execute("SELECT trek_current()").fetchone()[0] == "rev1"
        assert watch.execute("SELECT last_run FROM trek_status(%s)",
                             (str(folder),)).fetchone()[0] == "failed"


def test_migrate_deferred_constraint_fails_at_commit(cluster, database,
                                                     make_folder):
    folder = make_folder({
        "20240101_initial_up_rev1.sql":
            "CREATE TABLE p (id int PRIMARY KEY);\n"
            "CREATE TABLE c (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n",
        "20240102_rev1_up_rev2.sql": "INSERT INTO c VALUES (42);\n",
    })
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as err:
            conn.execute(MIGRATE, (str(folder), "head"))
        assert "20240102_rev1_up_rev2.sql" in (err.value.diag.context or "")
        run = last_run(conn)
        assert run[1:8] == ("migrate", "failed", 1, 2,
                            "20240102_rev1_up_rev2.sql", None, "23503")
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev1"
        assert conn.execute("SELECT count(*) FROM c").fetchone()[0] == 0


def test_migrate_folder_gone_between_steps(cluster, database, make_folder):
    folder = make_folder({
        "20240101_initial_up_rev1.sql": "CREATE TABLE g1 (id int);\n",
        "20240102_rev1_up_rev2.sql":
            "CREATE TABLE g2 (id int);\n"
            "SELECT pg_advisory_xact_lock(%d);\n" % GATE,
        "20240103_rev2_up_rev3.sql": "CREATE TABLE g3 (id int);\n",
    })
    outcome = {}
    with cluster.connect(database) as gate:
        t, _ = start_at_gate(gate, cluster, database, MIGRATE, folder, outcome)
        hidden = folder.path.with_name(folder.path.name + ".gone")
        folder.path.rename(hidden)
        try:
            gate.execute("SELECT pg_advisory_unlock(%s)", (GATE,))
            t.join(60)
        finally:
            hidden.rename(folder.path)
        assert isinstance(outcome["result"], psycopg.Error)
        run = last_run(gate)
        assert run[1:4] == ("migrate", "failed", 2)
        assert run[7] == "58P01"
        assert gate.execute("SELECT trek_current()").fetchone()[0] == "rev2"


def test_migrate_failed_step_names_file_and_line(cluster, database, make_folder):
    folder = make_folder(FAILING)
    with cluster.connect(database) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute(MIGRATE, (str(folder), "head"))
        assert last_run(conn)[1:] == (
            "migrate", "failed", 1, 2, "20240102_rev1_up_rev2.sql", 3, "42P01",
            'relation "no_such_table" does not exist')


# ---- without shared memory (PostgreSQL 15 and 16 without the preload) ----

def test_execute_without_shared_memory(make_folder):
    """Without slots, trek_execute works and its committed runs are listed;
    on PostgreSQL 17 and later the registry provides the slots anyway."""
    own = Cluster.create("noshm", {"shared_preload_libraries": ""})
    try:
        own.start()
        db = own.create_database()
        folder = make_folder(FAILING)
        with own.connect(db) as conn:
            assert conn.execute(PLAN, (str(folder), "rev1")).fetchone()[0] == "rev1"
            with pytest.raises(psycopg.errors.UndefinedTable):
                conn.execute(PLAN, (str(folder), "head"))
            states = [r[0] for r in conn.execute(
                "SELECT state FROM trek_runs()").fetchall()]
            major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
            assert states == (["failed", "done"] if major >= 17 else ["done"])
    finally:
        own.destroy()


def test_failed_write_of_a_record_is_tried_again(cluster, database,
                                                 make_folder):
    """A session whose first write of another session's failed run fails
    (a trigger trek did not create on trek.runs) writes it at its next
    run: nothing of the failed attempt is left behind in the session."""
    folder = make_folder(FAILING)
    with cluster.connect(database) as failing:
        with pytest.raises(psycopg.errors.UndefinedTable):
            failing.execute(PLAN, (str(folder), "head"))
        failed_id = last_run(failing)[0]
    with cluster.connect(database) as su:
        su.execute("CREATE FUNCTION trek_noop() RETURNS trigger"
                   " LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$")
        su.execute("CREATE TRIGGER foreign_t BEFORE INSERT ON trek.runs"
                   " FOR EACH ROW EXECUTE FUNCTION trek_noop()")
    with cluster.connect(database) as writer:
        # a fresh session: its first trek call is this refused write
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
            writer.execute(MIGRATE, (str(folder), "rev1"))
        with cluster.connect(database) as su:
            su.execute("DROP TRIGGER foreign_t ON trek.runs")
        writer.execute(MIGRATE, (str(folder), "rev1"))
        writer.execute(MIGRATE, (str(folder), "rev1"))
        assert writer.execute(
            "SELECT state FROM trek.runs WHERE id = %s", (failed_id,)
        ).fetchone() == ("failed",)
        assert writer.execute("SELECT trek_current()").fetchone()[0] == "rev1"
