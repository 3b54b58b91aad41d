"""A hot standby made with pg_basebackup -R: it receives what trek applies
on the primary, plans and reports revisions itself, and refuses to apply."""

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import MIGRATION_LOG, Cluster, chain, history, tables, wait_for


@pytest.fixture
def standby(cluster, database):
    """A standby of the test cluster, made after `database` exists."""
    s = Cluster.replica_of("standby", cluster)
    try:
        yield s.start()
    finally:
        s.destroy()


def caught_up(primary, standby):
    lsn = primary.query("SELECT pg_current_wal_lsn()")[0][0]
    wait_for(lambda: standby.query(
        "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0],
        30, "the standby to replay %s" % lsn)


def test_standby(cluster, database, make_folder, standby):
    folder = make_folder(chain(3))
    dir = str(folder)
    with cluster.connect(database) as primary:
        primary.execute(MIGRATION_LOG)
        primary.execute("SELECT trek_execute(trek_plan(%s, 'rev2'))", (dir,))
    caught_up(cluster, standby)

    with standby.connect(database) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        # the standby has what trek applied on the primary ...
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev2"
        assert [r[1] for r in history(conn)] == ["rev1", "rev2"]
        assert tables(conn) == ["t1", "t2"]
        # ... plans on its own, up or down ...
        down = conn.execute("SELECT trek_plan(%s, 'initial')",
                            (dir,)).fetchone()[0]
        assert [s["file"] for s in down["steps"]] == [
            "20240102_rev2_down_rev1.sql", "20240101_rev1_down_initial.sql"]
        plan = conn.execute("SELECT trek_plan(%s, 'head')", (dir,)).fetchone()[0]
        assert (plan["from"], plan["to"], len(plan["steps"])) == \
            ("rev2", "rev3", 1)
        # ... checks a plan against its own catalog (the safety gate) ...
        assert conn.execute(
            "SELECT relation::text, lock, hazard FROM trek_check(%s)"
            " WHERE relation::text LIKE 't%%' ORDER BY step",
            (Jsonb(down),)).fetchall() == [
            ("t2", "AccessExclusiveLock", None),
            ("t1", "AccessExclusiveLock", None)]
        # ... and refuses to apply, saying why
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT trek_execute(%s)", (Jsonb(plan),))
        assert err.value.sqlstate == "25006"    # read_only_sql_transaction
        assert err.value.diag.message_primary == \
            "cannot execute trek_execute() during recovery"
        assert err.value.diag.message_hint == (
            "Connect to the primary server to apply migrations;"
            " standbys receive them through replication.")

    # a plan made on the standby runs on the primary, and comes back
    with cluster.connect(database) as primary:
        assert primary.execute("SELECT trek_execute(%s)",
                               (Jsonb(plan),)).fetchone()[0] == "rev3"
    caught_up(cluster, standby)
    with standby.connect(database) as conn:
        assert conn.execute("SELECT trek_current()").fetchone()[0] == "rev3"
        assert tables(conn) == ["t1", "t2", "t3"]
        assert conn.execute("SELECT file FROM migration_log ORDER BY id"
                            ).fetchall() == [
            ("20240101_initial_up_rev1.sql",), ("20240102_rev1_up_rev2.sql",),
            ("20240103_rev2_up_rev3.sql",)]


def test_read_only_transaction(cluster, database, make_folder):
    """On a primary, a read-only transaction is refused as such."""
    folder = make_folder(chain(1))
    with cluster.connect(database, autocommit=False) as conn:
        conn.execute(MIGRATION_LOG)
        conn.commit()
        conn.read_only = True
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT trek_execute(trek_plan(%s, 'head'))",
                         (str(folder),))
        assert err.value.sqlstate == "25006"
        assert err.value.diag.message_primary == \
            "cannot execute trek_execute() in a read-only transaction"
        conn.rollback()
        conn.read_only = False
        assert conn.execute("SELECT trek_current(), to_regclass('t1')"
                            ).fetchone() == ("initial", None)
