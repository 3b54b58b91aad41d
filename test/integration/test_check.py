"""The safety gate: trek_check()'s predictions against trek_rehearse()'s
observations, statement by statement.

CORPUS is every ALTER TABLE subcommand the grammar of the server under test
has (SET EXPRESSION from 17, NOT NULL as a table constraint from 18), each
on a table with and without the condition that decides whether it rewrites
or scans (a binary-coercible type, a volatile default, a validated CHECK,
NOT VALID, USING INDEX, a partition's implying CHECK, ...), and the other
statements the gate knows (indexes, triggers, TRUNCATE, CLUSTER, REINDEX,
REFRESH MATERIALIZED VIEW, LOCK, DML, partitions, COMMENT, policies).
Each case gets tables of its own, so that one case's locks do not hide the
next one's.  With trek.large_table = 0 every table is large, so the hazards
are compared too.  A disagreement on any column, or a relation that the
rehearsal saw locked beyond reading that the check did not name, fails.
"""

import psycopg
import pytest
from psycopg.types.json import Jsonb

from conftest import PG_MAJOR

# (name, extra setup, statement, what the table must show: {column: value})
# The setup has {t} (a table of 50 rows: id primary key, a int, b text,
# v varchar(10), n numeric(10,2), ts timestamp, r int) and {p} (a table
# with a primary key id) at hand.
CORPUS = [
    # ---- ALTER TABLE: columns ----
    ("add column", "", "ALTER TABLE {t} ADD COLUMN x int", {"rewrites": False}),
    ("add column constant default", "", "ALTER TABLE {t} ADD COLUMN x int DEFAULT 5",
     {"rewrites": False}),
    ("add column stable default", "",
     "ALTER TABLE {t} ADD COLUMN x timestamptz DEFAULT now()", {"rewrites": False}),
    ("add column volatile default", "",
     "ALTER TABLE {t} ADD COLUMN x float8 DEFAULT random()", {"rewrites": True}),
    ("add column serial", "", "ALTER TABLE {t} ADD COLUMN x serial", {"rewrites": True}),
    ("add column identity", "",
     "ALTER TABLE {t} ADD COLUMN x int GENERATED ALWAYS AS IDENTITY", {"rewrites": True}),
    ("add column stored generated", "",
     "ALTER TABLE {t} ADD COLUMN x int GENERATED ALWAYS AS (a * 2) STORED",
     {"rewrites": True}),
    ("add column not null default", "",
     "ALTER TABLE {t} ADD COLUMN x int NOT NULL DEFAULT 0", {"rewrites": False}),
    ("add column check", "", "ALTER TABLE {t} ADD COLUMN x int CHECK (x > 0)", {}),
    ("add column unique", "", "ALTER TABLE {t} ADD COLUMN x int UNIQUE", {}),
    ("add column references", "", "ALTER TABLE {t} ADD COLUMN x int REFERENCES {p} (id)", {}),
    ("add column domain with check", "CREATE DOMAIN {t}_d AS int CHECK (VALUE > 0)",
     "ALTER TABLE {t} ADD COLUMN x {t}_d", {}),
    ("add column domain without check", "CREATE DOMAIN {t}_d AS int",
     "ALTER TABLE {t} ADD COLUMN x {t}_d", {"rewrites": False}),
    ("add two columns", "", "ALTER TABLE {t} ADD COLUMN x int, ADD COLUMN y text",
     {"rewrites": False}),
    ("drop column", "", "ALTER TABLE {t} DROP COLUMN b", {"rewrites": False}),
    ("set default", "", "ALTER TABLE {t} ALTER COLUMN a SET DEFAULT 1", {"rewrites": False}),
    ("drop default", "ALTER TABLE {t} ALTER COLUMN a SET DEFAULT 1",
     "ALTER TABLE {t} ALTER COLUMN a DROP DEFAULT", {}),
    ("set not null", "", "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL",
     {"scans": True, "hazard": "scan"}),
    ("set not null after a validated check",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_nn CHECK (a IS NOT NULL)",
     "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL", {"scans": False}),
    ("set not null after a NOT VALID check",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_nn CHECK (a IS NOT NULL) NOT VALID",
     "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL", {"scans": True}),
    ("set not null when already", "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL",
     "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL", {"scans": False}),
    ("drop not null", "ALTER TABLE {t} ALTER COLUMN a SET NOT NULL",
     "ALTER TABLE {t} ALTER COLUMN a DROP NOT NULL", {}),
    ("type int to bigint", "", "ALTER TABLE {t} ALTER COLUMN a TYPE bigint",
     {"rewrites": True, "lock": "AccessExclusiveLock", "hazard": "rewrite"}),
    ("type int to bigint, indexed", "CREATE INDEX ON {t} (a)",
     "ALTER TABLE {t} ALTER COLUMN a TYPE bigint", {"rewrites": True}),
    ("type varchar longer", "", "ALTER TABLE {t} ALTER COLUMN v TYPE varchar(20)",
     {"rewrites": False}),
    ("type varchar shorter", "", "ALTER TABLE {t} ALTER COLUMN v TYPE varchar(5)",
     {"rewrites": True}),
    ("type varchar to text", "", "ALTER TABLE {t} ALTER COLUMN v TYPE text",
     {"rewrites": False}),
    ("type text to varchar", "", "ALTER TABLE {t} ALTER COLUMN b TYPE varchar(100)",
     {"rewrites": True}),
    ("type numeric wider", "", "ALTER TABLE {t} ALTER COLUMN n TYPE numeric(12,2)",
     {"rewrites": False}),
    ("type numeric other scale", "", "ALTER TABLE {t} ALTER COLUMN n TYPE numeric(12,3)",
     {"rewrites": True}),
    ("type timestamp to timestamptz", "",
     "ALTER TABLE {t} ALTER COLUMN ts TYPE timestamptz", {}),
    ("type with USING the column", "",
     "ALTER TABLE {t} ALTER COLUMN v TYPE varchar(20) USING v", {"rewrites": False}),
    ("type with USING an expression", "",
     "ALTER TABLE {t} ALTER COLUMN a TYPE bigint USING a + 1", {"rewrites": True}),
    ("type int to text", "", "ALTER TABLE {t} ALTER COLUMN a TYPE text",
     {"rewrites": True}),
    ("set statistics", "", "ALTER TABLE {t} ALTER COLUMN a SET STATISTICS 100", {}),
    ("set storage", "", "ALTER TABLE {t} ALTER COLUMN b SET STORAGE EXTERNAL", {}),
    ("set compression", "", "ALTER TABLE {t} ALTER COLUMN b SET COMPRESSION pglz", {}),
    ("set column options", "", "ALTER TABLE {t} ALTER COLUMN a SET (n_distinct = 10)", {}),
    ("reset column options", "", "ALTER TABLE {t} ALTER COLUMN a RESET (n_distinct)", {}),
    ("add identity", "ALTER TABLE {t} ALTER COLUMN r SET NOT NULL",
     "ALTER TABLE {t} ALTER COLUMN r ADD GENERATED BY DEFAULT AS IDENTITY", {}),
    ("set identity", "ALTER TABLE {t} ALTER COLUMN r SET NOT NULL;"
     " ALTER TABLE {t} ALTER COLUMN r ADD GENERATED BY DEFAULT AS IDENTITY",
     "ALTER TABLE {t} ALTER COLUMN r SET GENERATED ALWAYS", {}),
    ("drop identity", "ALTER TABLE {t} ALTER COLUMN r SET NOT NULL;"
     " ALTER TABLE {t} ALTER COLUMN r ADD GENERATED BY DEFAULT AS IDENTITY",
     "ALTER TABLE {t} ALTER COLUMN r DROP IDENTITY", {}),
    ("drop expression", "ALTER TABLE {t} ADD COLUMN g int GENERATED ALWAYS AS (a) STORED",
     "ALTER TABLE {t} ALTER COLUMN g DROP EXPRESSION", {"rewrites": False}),
    # ---- ALTER TABLE: constraints ----
    ("add check", "", "ALTER TABLE {t} ADD CONSTRAINT {t}_c CHECK (a > -1)",
     {"scans": True}),
    ("add check not valid", "",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_c CHECK (a > -1) NOT VALID", {"scans": False}),
    ("validate check", "ALTER TABLE {t} ADD CONSTRAINT {t}_c CHECK (a > -1) NOT VALID",
     "ALTER TABLE {t} VALIDATE CONSTRAINT {t}_c",
     {"scans": True, "lock": "ShareUpdateExclusiveLock", "hazard": None}),
    ("add foreign key", "",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id)",
     {"scans": True}),
    ("add foreign key not valid", "",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id) NOT VALID",
     {"scans": False}),
    ("validate foreign key",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id) NOT VALID",
     "ALTER TABLE {t} VALIDATE CONSTRAINT {t}_f", {"scans": True}),
    ("add unique", "", "ALTER TABLE {t} ADD CONSTRAINT {t}_u UNIQUE (a)", {"scans": True}),
    ("add unique using index", "CREATE UNIQUE INDEX {t}_ui ON {t} (a)",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_u UNIQUE USING INDEX {t}_ui", {"scans": False}),
    ("add primary key", "ALTER TABLE {t} DROP CONSTRAINT {t}_pkey",
     "ALTER TABLE {t} ADD PRIMARY KEY (id)", {"scans": True}),
    ("add exclusion", "",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_x EXCLUDE USING btree (a WITH =)", {"scans": True}),
    ("drop constraint", "ALTER TABLE {t} ADD CONSTRAINT {t}_c CHECK (a > -1)",
     "ALTER TABLE {t} DROP CONSTRAINT {t}_c", {}),
    ("alter constraint",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id)",
     "ALTER TABLE {t} ALTER CONSTRAINT {t}_f DEFERRABLE", {}),
    ("rename constraint", "ALTER TABLE {t} ADD CONSTRAINT {t}_c CHECK (a > -1)",
     "ALTER TABLE {t} RENAME CONSTRAINT {t}_c TO {t}_c2", {}),
    # ---- ALTER TABLE: the table ----
    ("rename column", "", "ALTER TABLE {t} RENAME COLUMN b TO b2", {}),
    ("rename table", "", "ALTER TABLE {t} RENAME TO {t}_renamed", {}),
    ("set schema", "CREATE SCHEMA {t}_s", "ALTER TABLE {t} SET SCHEMA {t}_s", {}),
    ("set unlogged", "", "ALTER TABLE {t} SET UNLOGGED", {"rewrites": True}),
    ("set logged", "ALTER TABLE {t} SET UNLOGGED", "ALTER TABLE {t} SET LOGGED",
     {"rewrites": True}),
    ("set logged when logged", "", "ALTER TABLE {t} SET LOGGED", {"rewrites": False}),
    ("cluster on", "CREATE INDEX {t}_i ON {t} (a)", "ALTER TABLE {t} CLUSTER ON {t}_i", {}),
    ("set without cluster", "CREATE INDEX {t}_i ON {t} (a); ALTER TABLE {t} CLUSTER ON {t}_i",
     "ALTER TABLE {t} SET WITHOUT CLUSTER", {}),
    ("set fillfactor", "", "ALTER TABLE {t} SET (fillfactor = 70)", {}),
    ("reset fillfactor", "", "ALTER TABLE {t} RESET (fillfactor)", {}),
    ("set autovacuum", "", "ALTER TABLE {t} SET (autovacuum_enabled = false)", {}),
    ("set access method heap", "", "ALTER TABLE {t} SET ACCESS METHOD heap",
     {"rewrites": False}),
    ("set tablespace same", "", "ALTER TABLE {t} SET TABLESPACE pg_default",
     {"rewrites": False}),
    ("disable trigger all", "", "ALTER TABLE {t} DISABLE TRIGGER ALL", {}),
    ("enable replica trigger",
     "CREATE FUNCTION {t}_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
     " CREATE TRIGGER {t}_tr BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_f()",
     "ALTER TABLE {t} ENABLE REPLICA TRIGGER {t}_tr", {}),
    ("disable rule", "CREATE RULE {t}_r AS ON UPDATE TO {t} DO ALSO NOTHING",
     "ALTER TABLE {t} DISABLE RULE {t}_r", {}),
    ("enable row level security", "", "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY", {}),
    ("force row level security", "", "ALTER TABLE {t} FORCE ROW LEVEL SECURITY", {}),
    ("replica identity full", "", "ALTER TABLE {t} REPLICA IDENTITY FULL", {}),
    ("owner to", "", "ALTER TABLE {t} OWNER TO CURRENT_USER", {}),
    ("inherit", "CREATE TABLE {t}_parent (a int)", "ALTER TABLE {t} INHERIT {t}_parent", {}),
    ("no inherit", "CREATE TABLE {t}_parent (a int); ALTER TABLE {t} INHERIT {t}_parent",
     "ALTER TABLE {t} NO INHERIT {t}_parent", {}),
    ("of type", "CREATE TABLE {t}_o (id int); CREATE TYPE {t}_ty AS (id int)",
     "ALTER TABLE {t}_o OF {t}_ty", {}),
    ("attach partition",
     "CREATE TABLE {t}_pt (k int, w int) PARTITION BY RANGE (k);"
     " CREATE TABLE {t}_p1 (k int, w int); INSERT INTO {t}_p1 SELECT g, g FROM generate_series(1, 50) g",
     "ALTER TABLE {t}_pt ATTACH PARTITION {t}_p1 FOR VALUES FROM (1) TO (100)", {}),
    ("attach partition with its check",
     "CREATE TABLE {t}_pt (k int, w int) PARTITION BY RANGE (k);"
     " CREATE TABLE {t}_p1 (k int NOT NULL, w int, CHECK (k >= 1 AND k < 100));"
     " INSERT INTO {t}_p1 SELECT g, g FROM generate_series(1, 50) g",
     "ALTER TABLE {t}_pt ATTACH PARTITION {t}_p1 FOR VALUES FROM (1) TO (100)", {}),
    ("detach partition",
     "CREATE TABLE {t}_pt (k int, w int) PARTITION BY RANGE (k);"
     " CREATE TABLE {t}_p1 PARTITION OF {t}_pt FOR VALUES FROM (1) TO (100)",
     "ALTER TABLE {t}_pt DETACH PARTITION {t}_p1", {}),
    ("alter index set", "CREATE INDEX {t}_i ON {t} (a)",
     "ALTER INDEX {t}_i SET (fillfactor = 80)", {}),
    ("alter index rename", "CREATE INDEX {t}_i ON {t} (a)",
     "ALTER INDEX {t}_i RENAME TO {t}_i2", {}),
    # ---- other statements ----
    ("create index", "", "CREATE INDEX ON {t} (a)",
     {"scans": True, "lock": "ShareLock", "hazard": "index build"}),
    ("create unique index", "", "CREATE UNIQUE INDEX ON {t} (a)", {"scans": True}),
    ("drop index", "CREATE INDEX {t}_i ON {t} (a)", "DROP INDEX {t}_i", {}),
    ("reindex table", "CREATE INDEX {t}_i ON {t} (a)", "REINDEX TABLE {t}", {}),
    ("reindex index", "CREATE INDEX {t}_i ON {t} (a)", "REINDEX INDEX {t}_i", {}),
    ("create trigger",
     "CREATE FUNCTION {t}_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$",
     "CREATE TRIGGER {t}_tr BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_f()", {}),
    ("drop trigger",
     "CREATE FUNCTION {t}_f() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;"
     " CREATE TRIGGER {t}_tr BEFORE INSERT ON {t} FOR EACH ROW EXECUTE FUNCTION {t}_f()",
     "DROP TRIGGER {t}_tr ON {t}", {}),
    ("truncate", "", "TRUNCATE {t}", {"rewrites": True}),
    ("cluster", "CREATE INDEX {t}_i ON {t} (a)", "CLUSTER {t} USING {t}_i",
     {"rewrites": True}),
    ("analyze", "", "ANALYZE {t}", {}),
    ("refresh materialized view", "CREATE MATERIALIZED VIEW {t}_mv AS SELECT * FROM {t}",
     "REFRESH MATERIALIZED VIEW {t}_mv", {"rel": "{t}_mv", "rewrites": True}),
    ("refresh materialized view concurrently",
     "CREATE MATERIALIZED VIEW {t}_mv AS SELECT * FROM {t}; CREATE UNIQUE INDEX ON {t}_mv (id)",
     "REFRESH MATERIALIZED VIEW CONCURRENTLY {t}_mv",
     {"rel": "{t}_mv", "rewrites": False, "lock": "ExclusiveLock"}),
    ("lock share", "", "LOCK TABLE {t} IN SHARE MODE", {}),
    ("lock access exclusive", "", "LOCK TABLE {t}", {}),
    ("update every row", "", "UPDATE {t} SET a = a + 1", {"scans": True}),
    ("delete every row", "", "DELETE FROM {t}", {"scans": True, "hazard": "all rows"}),
    ("delete some rows", "", "DELETE FROM {t} WHERE id < 5", {"scans": None}),
    ("insert select", "", "INSERT INTO {p} SELECT id + 1000 FROM {t}", {}),
    ("create table referencing", "",
     "CREATE TABLE {t}_new (id int, pid int REFERENCES {p} (id))", {}),
    ("create table partition of",
     "CREATE TABLE {t}_pt (k int, w int) PARTITION BY RANGE (k)",
     "CREATE TABLE {t}_p1 PARTITION OF {t}_pt FOR VALUES FROM (1) TO (100)", {}),
    ("create table inherits", "", "CREATE TABLE {t}_child (z int) INHERITS ({t})", {}),
    ("comment on table", "", "COMMENT ON TABLE {t} IS 'x'", {}),
    ("comment on column", "", "COMMENT ON COLUMN {t}.a IS 'x'", {}),
    ("create policy", "", "CREATE POLICY {t}_pol ON {t} USING (true)", {}),
    ("drop policy", "CREATE POLICY {t}_pol ON {t} USING (true)", "DROP POLICY {t}_pol ON {t}", {}),
    ("drop rule", "CREATE RULE {t}_r AS ON UPDATE TO {t} DO ALSO NOTHING",
     "DROP RULE {t}_r ON {t}", {}),
    ("merge", "", "MERGE INTO {t} USING {p} ON {t}.id = {p}.id"
     " WHEN MATCHED THEN UPDATE SET a = 0", {"lock": "RowExclusiveLock"}),
    ("analyze two tables", "", "ANALYZE {t}, {p}", {}),
    ("drop table", "", "DROP TABLE {t}", {}),
    # ---- foreign keys' other table, indexes a type change rebuilds, ----
    # ---- names the same step renames or creates ----
    ("add column references with a default", "",
     "ALTER TABLE {t} ADD COLUMN x int DEFAULT 1 REFERENCES {p} (id)", {"scans": True}),
    ("drop foreign key",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id)",
     "ALTER TABLE {t} DROP CONSTRAINT {t}_f", {}),
    ("drop column of a foreign key",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id)",
     "ALTER TABLE {t} DROP COLUMN a", {}),
    ("drop a foreign key, then its column",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id)",
     "ALTER TABLE {t} DROP CONSTRAINT {t}_f; ALTER TABLE {t} DROP COLUMN a", {}),
    ("drop table with a foreign key",
     "ALTER TABLE {t} ADD CONSTRAINT {t}_f FOREIGN KEY (a) REFERENCES {p} (id)",
     "DROP TABLE {t}", {}),
    ("type change keeping an index", "CREATE INDEX ON {t} (v)",
     "ALTER TABLE {t} ALTER COLUMN v TYPE text", {"rewrites": False, "scans": False}),
    ("type change rebuilding an expression index", "CREATE INDEX ON {t} (lower(v))",
     "ALTER TABLE {t} ALTER COLUMN v TYPE text", {"rewrites": False, "scans": True}),
    ("type change rebuilding an index of another operator class",
     "SET timezone = 'UTC'; CREATE INDEX ON {t} (ts)",
     "SET LOCAL timezone = 'UTC'; ALTER TABLE {t} ALTER COLUMN ts TYPE timestamptz", {}),
    ("rename, then alter by the new name", "",
     "ALTER TABLE {t} RENAME TO {t}_r; ALTER TABLE {t}_r ALTER COLUMN a SET NOT NULL", {}),
    ("create index if not exists, existing", "CREATE INDEX {t}_i ON {t} (a)",
     "CREATE INDEX IF NOT EXISTS {t}_i ON {t} (a)", {"scans": False}),
    ("default of a function the step creates", "",
     "CREATE FUNCTION {t}_one() RETURNS int LANGUAGE sql AS 'SELECT 1';"
     " ALTER TABLE {t} ADD COLUMN x int DEFAULT {t}_one()", {}),
    ("column of a type the step creates", "",
     "CREATE TYPE {t}_e AS ENUM ('x'); ALTER TABLE {t} ADD COLUMN x {t}_e", {}),
    ("default of an inlined volatile-declared SQL function",
     "CREATE FUNCTION {t}_now() RETURNS bigint LANGUAGE sql"
     " AS 'SELECT extract(epoch FROM now())::bigint'",
     "ALTER TABLE {t} ADD COLUMN x bigint DEFAULT {t}_now()", {"rewrites": False}),
]

if PG_MAJOR >= 17:
    CORPUS += [
        ("set expression",
         "ALTER TABLE {t} ADD COLUMN g int GENERATED ALWAYS AS (a) STORED",
         "ALTER TABLE {t} ALTER COLUMN g SET EXPRESSION AS (a * 3)", {"rewrites": True}),
    ]
if PG_MAJOR >= 18:
    CORPUS += [
        ("add not null constraint", "",
         "ALTER TABLE {t} ADD CONSTRAINT {t}_nn NOT NULL a", {"scans": True}),
        ("add virtual generated column", "",
         "ALTER TABLE {t} ADD COLUMN x int GENERATED ALWAYS AS (a * 2) VIRTUAL",
         {"rewrites": False}),
    ]

BASE = """
CREATE TABLE {p} (id int PRIMARY KEY);
INSERT INTO {p} SELECT g FROM generate_series(1, 50) g;
CREATE TABLE {t} (id int PRIMARY KEY, a int, b text, v varchar(10),
                  n numeric(10,2), ts timestamp, r int);
INSERT INTO {t} SELECT g, g, 'x' || g, 'v', g, '2026-01-01', g
  FROM generate_series(1, 50) g;
"""

COMPARED = ("lock", "blocks", "rewrites", "scans", "hazard")


def corpus_folder():
    files = {}
    prev = "initial"
    for i, (name, setup, stmt, _) in enumerate(CORPUS):
        t, p = "t%03d" % i, "p%03d" % i
        files["2026%04d_%s_up_c%03d.sql" % (i, prev, i)] = \
            "-- %s\n%s;\n" % (name, stmt.format(t=t, p=p).replace("; ", ";\n"))
        prev = "c%03d" % i
    return files


def setup_sql():
    parts = []
    for i, (name, setup, stmt, _) in enumerate(CORPUS):
        t, p = "t%03d" % i, "p%03d" % i
        parts.append(BASE.format(t=t, p=p))
        if setup:
            parts.append(setup.format(t=t, p=p) + ";")
    return "\n".join(parts) + "\nANALYZE;\n"


def rows_by_relation(cur, sql, params):
    cur.execute(sql, params)
    out = {}
    for r in cur.fetchall():
        step, line, rel = r[0], r[1], r[2]
        if rel is None:
            continue
        out[(step, line, rel)] = dict(zip(COMPARED, r[3:]))
    return out


QUERY = ("SELECT step, line, relation::text, lock, blocks, rewrites, scans,"
         " hazard FROM {fn}(%s) ORDER BY step")


@pytest.fixture
def corpus_db(cluster):
    name = cluster.create_database()
    with cluster.connect(name) as conn:
        conn.execute(setup_sql())
    yield name
    cluster.drop_database(name)


def test_prediction_matches_rehearsal(cluster, corpus_db):
    """Every statement of the corpus: the same lock, blocked traffic,
    rewrite, scan and hazard on every relation, predicted and observed."""
    folder = Jsonb(corpus_folder())
    with cluster.connect(corpus_db) as conn:
        conn.prepare_threshold = None
        cur = conn.cursor()
        cur.execute("SET trek.large_table = 0")
        cur.execute("SELECT trek_plan(%s, 'head')", (folder,))
        plan = cur.fetchone()[0]
        assert len(plan["steps"]) == len(CORPUS)
        predicted = rows_by_relation(cur, QUERY.format(fn="trek_check"),
                                     (Jsonb(plan),))
        observed = rows_by_relation(cur, QUERY.format(fn="trek_rehearse"),
                                    (Jsonb(plan),))
        # the rehearsal left nothing behind
        cur.execute("SELECT trek_current()")
        assert cur.fetchone()[0] == "initial"
        cur.execute("SELECT count(*) FROM pg_class WHERE relname = 't000'"
                    " AND relnatts = 7")
        assert cur.fetchone()[0] == 1

    problems = []
    for (step, line, rel), p in sorted(predicted.items()):
        name = CORPUS[step - 1][0]
        o = observed.get((step, line, rel))
        if o is None:
            problems.append("%s (%s): rehearsal did not see %s" % (name, rel, p))
            continue
        for col in COMPARED:
            # NULL: the check cannot tell (a WHERE clause's plan decides)
            if p[col] is not None and p[col] != o[col]:
                problems.append("%s (%s): %s predicted %r, observed %r"
                                % (name, rel, col, p[col], o[col]))
    for (step, line, rel), o in sorted(observed.items()):
        if (step, line, rel) not in predicted and \
                o["lock"] not in (None, "AccessShareLock"):
            problems.append("%s (%s): not predicted, observed %s"
                            % (CORPUS[step - 1][0], rel, o["lock"]))
    # what each case must show on its table, whatever the major
    for i, (name, _, stmt, expect) in enumerate(CORPUS):
        main = expect.get("rel", "{t}").format(t="t%03d" % i)
        row = [v for (step, _, rel), v in predicted.items()
               if step == i + 1 and rel == main]
        row = row[-1] if row else None
        for col, want in expect.items():
            if col == "rel":
                continue
            if row is None:
                problems.append("%s: no row for %s" % (name, main))
            elif row[col] != want:
                problems.append("%s: %s is %r, expected %r"
                                % (name, col, row[col], want))
    assert not problems, "%d disagreements in %d statements:\n%s" % (
        len(problems), len(CORPUS), "\n".join(problems))
    # the corpus is counted in bench/README.md
    print("corpus: %d statements, %d relations compared"
          % (len(CORPUS), len(predicted)))


# Steps outside a transaction cannot be rehearsed: trek_check alone.
OUTSIDE = [
    ("CREATE INDEX CONCURRENTLY ON {t} (a)", "ShareUpdateExclusiveLock", None),
    ("VACUUM FULL {t}", "AccessExclusiveLock", "rewrite"),
    ("REINDEX TABLE CONCURRENTLY {t}", "ShareUpdateExclusiveLock", None),
    ("DROP INDEX CONCURRENTLY {t}_i", "ShareUpdateExclusiveLock", None),
]


def test_steps_outside_a_transaction(cluster, database):
    files = {}
    prev = "initial"
    with cluster.connect(database) as conn:
        for i, (stmt, _, _) in enumerate(OUTSIDE):
            t = "o%d" % i
            conn.execute(BASE.format(t=t, p="q%d" % i))
            conn.execute("CREATE INDEX {t}_i ON {t} (a)".format(t=t))
            files["2026%04d_%s_up_o%d.sql" % (i, prev, i)] = \
                "-- trek:no-transaction\n%s;\n" % stmt.format(t=t)
            prev = "o%d" % i
        cur = conn.cursor()
        cur.execute("SET trek.large_table = 0")
        cur.execute("SELECT trek_plan(%s, 'head')", (Jsonb(files),))
        plan = cur.fetchone()[0]
        cur.execute("SELECT step, relation::text, lock, hazard"
                    " FROM trek_check(%s) WHERE relation IS NOT NULL"
                    " AND relation::text LIKE 'o_' ORDER BY step",
                    (Jsonb(plan),))
        got = cur.fetchall()
        assert got == [(i + 1, "o%d" % i, lock, hazard)
                       for i, (_, lock, hazard) in enumerate(OUTSIDE)]
        cur.execute("SELECT DISTINCT hazard FROM trek_rehearse(%s)",
                    (Jsonb(plan),))
        assert cur.fetchall() == [("not rehearsable",)]


def test_notice_names_the_sessions_a_step_will_wait_for(cluster, database):
    """Before a step that takes a lock blocking traffic, the sessions that
    hold or wait for a conflicting lock on its table are named."""
    files = {"20260101_initial_up_a.sql": "ALTER TABLE held ADD COLUMN x int;"}
    with cluster.connect(database) as holder, \
            cluster.connect(database) as migrator:
        holder.execute("CREATE TABLE held (id int)")
        holder.autocommit = False
        holder.execute("SELECT * FROM held")          # AccessShareLock, kept
        pid = holder.info.backend_pid
        notices = []
        migrator.add_notice_handler(
            lambda d: notices.append((d.message_primary, d.message_detail or "")))
        migrator.execute("SET trek.lock_timeout = '100ms'")
        migrator.execute("SET trek.lock_retries = 0")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            migrator.execute("CALL trek_migrate(%s, 'head')", (Jsonb(files),))
        holder.rollback()
        found = [n for n in notices
                 if 'takes AccessExclusiveLock on "held"' in n[0]]
        assert found, notices
        assert "pid %d" % pid in found[0][1]
        assert "holds AccessShareLock" in found[0][1]
        assert "SELECT * FROM held" in found[0][1]
        # nothing was applied
        assert migrator.execute("SELECT trek_current()").fetchone()[0] == "initial"
        # with the table free, no such NOTICE, and the step runs
        notices.clear()
        migrator.execute("CALL trek_migrate(%s, 'head')", (Jsonb(files),))
        assert not [n for n in notices if "takes" in n[0]]
        assert migrator.execute("SELECT trek_current()").fetchone()[0] == "a"
