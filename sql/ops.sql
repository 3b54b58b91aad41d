-- operating a track: status, verification, stamps, pictures; what changes
-- or moves files during the test is in test/integration/test_ops_files.py
-- (in a database of their own, out of reach of the failed runs another
-- file may leave in shared memory)
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set drift :fixtures '/ops_drift'
\set adopt :fixtures '/ops_adopt'
\set regress_db :DBNAME
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app, regress_trek_reader, regress_trek_nobody;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
CREATE ROLE regress_trek_reader LOGIN IN ROLE pg_read_server_files;
CREATE ROLE regress_trek_nobody LOGIN;
CREATE DATABASE regress_trek_ops;
\c regress_trek_ops
CREATE EXTENSION trek;
\set masked :abs_srcdir '/test/regress/masked.sql'
\i :masked
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text)
	TO regress_trek_app, regress_trek_reader;
GRANT CREATE ON SCHEMA public TO regress_trek_app, regress_trek_reader;

-- the new functions, like the others, are not granted to PUBLIC
SET ROLE regress_trek_nobody;
SELECT * FROM trek_status(:'drift');
SELECT trek_verify(:'drift');
SELECT trek_stamp(:'drift', 'a');
SELECT trek_graph(:'drift');
RESET ROLE;
GRANT EXECUTE ON FUNCTION trek_status(text, text), trek_verify(text, text),
	trek_stamp(text, text, text), trek_graph(text, text, text)
	TO regress_trek_app, regress_trek_reader;

--
-- trek_status and trek_verify
--
-- a new track: at initial, three steps from head, nothing applied
SELECT * FROM trek_status(:'drift', 'ops');
SELECT trek_verify(:'drift', 'ops');
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'drift', 'c', track => 'ops'));
\set VERBOSITY default
SELECT * FROM trek_status(:'drift', 'ops');
SELECT trek_verify(:'drift', 'ops');
-- the last run's state: failed, and interrupted (a running row whose
-- backend is gone)
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/example', 'rev4bad', track => 'ops_fail');
\set VERBOSITY default
SELECT current, last_run FROM trek_status(:'fixtures' || '/example', 'ops_fail');
INSERT INTO trek.runs (track, dir, from_revision, target, call, state,
					   steps_done, steps_planned, started_at, run_by, pid,
					   backend_start)
VALUES ('ops_fail', :'fixtures' || '/example', 'initial', 'rev1', 'migrate',
		'running', 0, 1, now(), 'nobody', 0, now());
SELECT current, last_run FROM trek_status(:'fixtures' || '/example', 'ops_fail');
-- several heads, or none: the row says so, nothing fails
SELECT current, head, steps_to_head, note FROM trek_status(:'fixtures' || '/graph', 'ops_graph');
SELECT current, head, steps_to_head, note FROM trek_status(:'fixtures' || '/cycle', 'ops_graph');
-- a revision from which no path leads to head
SELECT trek_stamp(:'fixtures' || '/ops_branch', 'x', 'ops_branch');
SELECT current, head, steps_to_head, note FROM trek_status(:'fixtures' || '/ops_branch', 'ops_branch');
-- bad input
SELECT * FROM trek_status('relative/path');
SELECT masked(:'fixtures' || '/ops_nope', $$SELECT * FROM trek_status($1)$$);
SELECT masked(:'fixtures' || '/noinitial', $$SELECT * FROM trek_status($1)$$);
SELECT * FROM trek_status(NULL);
SELECT * FROM trek_status(:'drift', NULL);
SELECT trek_verify(NULL);

--
-- trek_stamp
--
SET trek.allowed_directories = :'adopt';
SET ROLE regress_trek_app;
-- unknown, invalid, or ambiguous revisions are refused; nothing recorded
SELECT masked(:'adopt', $$SELECT trek_stamp($1, 'rev4', 'ops_stamp')$$);
SELECT trek_stamp(:'adopt', 'rev 1', 'ops_stamp');
SELECT trek_stamp(:'adopt', NULL, 'ops_stamp');
SELECT trek_stamp(:'adopt', 'rev1', NULL);
-- folders outside trek.allowed_directories, as for planning
SELECT masked(:'fixtures' || '/app', $$SELECT trek_stamp($1, 'one', 'ops_stamp')$$);
SELECT masked(:'fixtures' || '/app', $$SELECT * FROM trek_status($1, 'ops_stamp')$$);
SELECT masked(:'fixtures' || '/app', $$SELECT trek_graph($1, 'dot', 'ops_stamp')$$);
SELECT masked(:'fixtures' || '/app', $$SELECT trek_verify($1, 'ops_stamp')$$);
-- not in a read-only transaction
BEGIN READ ONLY;
SELECT trek_stamp(:'adopt', 'rev1', 'ops_stamp');
ROLLBACK;
RESET ROLE;
SELECT count(*) FROM trek.history WHERE track = 'ops_stamp';
SELECT count(*) FROM trek.tracks WHERE track = 'ops_stamp';
-- a stamp on a new track makes the caller its owner; nothing runs
SET ROLE regress_trek_app;
SELECT trek_stamp(:'adopt', 'rev1', 'ops_stamp');
SELECT to_regclass('ops_people') AS ops_people;
SELECT * FROM trek_status(:'adopt', 'ops_stamp');
RESET ROLE;
SELECT track, owner FROM trek.tracks WHERE track = 'ops_stamp';
SELECT track, from_revision, to_revision, direction, file, sha256, applied_by,
	   duration, dir = :'adopt' AS dir_recorded
  FROM trek.history WHERE track = 'ops_stamp' ORDER BY id;
-- other roles may look, not stamp
SET ROLE regress_trek_reader;
SELECT trek_stamp(:'adopt', 'rev2', 'ops_stamp');
SELECT current FROM trek_status(:'adopt', 'ops_stamp');
RESET ROLE;
-- "head" and "initial" are revisions too
SET ROLE regress_trek_app;
SELECT trek_stamp(:'adopt', 'head', 'ops_stamp');
SELECT trek_plan(:'adopt', 'head', track => 'ops_stamp') ->> 'direction' AS direction;
SELECT trek_stamp(:'adopt', 'initial', 'ops_stamp');
SELECT current, steps_to_head FROM trek_status(:'adopt', 'ops_stamp');
RESET ROLE;
SELECT masked(:'fixtures' || '/graph', $$SELECT trek_stamp($1, 'head', 'ops_stamp')$$);
SELECT to_revision FROM trek.history WHERE track = 'ops_stamp' ORDER BY id DESC LIMIT 1;
-- a superuser may stamp any track
SELECT trek_stamp(:'adopt', 'rev2', 'ops_stamp');

--
-- adopting a database that asyncpg-trek migrated: its table, as it
-- creates it, and its rows for rev1 and rev2, applied by hand here
--
CREATE SCHEMA adopt_app;
CREATE TABLE IF NOT EXISTS "adopt_app".migrations (
    id SERIAL PRIMARY KEY,
    from_revision TEXT,
    to_revision TEXT,
    timestamp TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE INDEX IF NOT EXISTS migrations_timestamp_idx ON "adopt_app".migrations(timestamp);
CREATE TABLE ops_people (id int PRIMARY KEY, name text);
INSERT INTO "adopt_app".migrations(from_revision, to_revision) VALUES ('initial', 'rev1');
INSERT INTO ops_people VALUES (1, 'Ada');
INSERT INTO "adopt_app".migrations(from_revision, to_revision) VALUES ('rev1', 'rev2');
-- the one statement
SELECT trek_stamp(:'adopt',
				  coalesce((SELECT to_revision FROM adopt_app.migrations
							 ORDER BY id DESC LIMIT 1), 'initial'),
				  'adopt_app');
-- trek continues from there: only rev2 -> rev3 runs
SELECT trek_plan(:'adopt', 'head', track => 'adopt_app') -> 'steps' -> 0 ->> 'file' AS next,
	   jsonb_array_length(trek_plan(:'adopt', 'head', track => 'adopt_app') -> 'steps') AS steps;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'adopt', 'head', track => 'adopt_app'));
\set VERBOSITY default
SELECT * FROM ops_people;
SELECT current, steps_to_head, changed_files, missing_files FROM trek_status(:'adopt', 'adopt_app');
SELECT trek_verify(:'adopt', 'adopt_app');
SELECT from_revision, to_revision, direction, file FROM trek.history
 WHERE track = 'adopt_app' ORDER BY id;
-- and back down through the stamp, with the folder's down files
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'adopt', 'initial', track => 'adopt_app'));
\set VERBOSITY default
SELECT to_regclass('ops_people') AS ops_people;
SELECT current, steps_to_head, changed_files FROM trek_status(:'adopt', 'adopt_app');
DROP SCHEMA adopt_app CASCADE;

--
-- trek_graph
--
SELECT trek_graph(:'fixtures' || '/app', track => 'ops_none');
SELECT trek_graph(:'fixtures' || '/app', 'dot', 'ops_none');
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => 'ops_graph_app'));
\set VERBOSITY default
SELECT trek_graph(:'fixtures' || '/app', 'mermaid', 'ops_graph_app');
-- several heads are all marked; no head at all is a picture too
SELECT trek_graph(:'fixtures' || '/graph', 'dot', 'ops_none');
SELECT trek_graph(:'fixtures' || '/cycle', 'mermaid', 'ops_none');
-- a track at a revision the folder does not know is drawn apart
SELECT trek_graph(:'fixtures' || '/app', 'dot', 'ops_stamp');
-- the same text on every call
SELECT trek_graph(:'fixtures' || '/graph', 'dot') = trek_graph(:'fixtures' || '/graph', 'dot') AS same;
-- bad input
SELECT trek_graph(:'fixtures' || '/app', 'svg');
SELECT trek_graph(:'fixtures' || '/app', NULL);
SELECT masked(:'fixtures' || '/nope', $$SELECT trek_graph($1)$$);
SELECT trek_graph(:'fixtures' || '/dup');
-- none of it wrote anything
SELECT count(*) FROM trek.history WHERE track IN ('ops_none', 'ops_graph');
RESET trek.allowed_directories;

DROP FUNCTION masked(text, text);
\c :regress_db
DROP DATABASE regress_trek_ops;

-- leave no role behind
DROP OWNED BY regress_trek_app, regress_trek_reader, regress_trek_nobody;
DROP ROLE regress_trek_app, regress_trek_reader, regress_trek_nobody;
