-- operating a track: status, verification, stamps, pictures
-- (in a database of their own, so that history ids are the same every run)
\getenv regress_dir TREK_REGRESS_DIR
\set fixtures :regress_dir '/fixtures'
\set ops :regress_dir '/ops'
\set drift :ops '/drift'
\set adopt :ops '/adopt'
\setenv OPS :ops
\! rm -rf "$OPS" && mkdir -p "$OPS/drift" "$OPS/adopt" "$OPS/branch" && chmod 755 "$OPS" "$OPS/drift" "$OPS/adopt" "$OPS/branch"
\! cd "$OPS/branch" && echo 'SELECT 1;' > 20240101_initial_up_a.sql && echo 'SELECT 1;' > 20240102_x_up_y.sql && chmod 644 *
\! cd "$OPS/drift" && echo 'CREATE TABLE ops_t (i int);' > 20240101_initial_up_a.sql && echo 'DROP TABLE ops_t;' > 20240101_a_down_initial.sql && echo 'INSERT INTO ops_t VALUES (1);' > 20240102_a_up_b.sql && echo 'DELETE FROM ops_t WHERE i = 1;' > 20240102_b_down_a.sql && echo 'INSERT INTO ops_t VALUES (2);' > 20240103_b_up_c.sql && echo 'DELETE FROM ops_t WHERE i = 2;' > 20240103_c_down_b.sql && chmod 644 *
\! cd "$OPS/adopt" && echo 'CREATE TABLE ops_people (id int PRIMARY KEY, name text);' > 20220410_initial_up_rev1.sql && echo 'DROP TABLE ops_people;' > 20220410_rev1_down_initial.sql && echo "INSERT INTO ops_people VALUES (1, 'Ada');" > 20220411_rev1_up_rev2.sql && echo 'ALTER TABLE ops_people ADD email text;' > 20220412_rev2_up_rev3.sql && echo 'DELETE FROM ops_people;' > 20220411_rev2_down_rev1.sql && echo 'ALTER TABLE ops_people DROP email;' > 20220412_rev3_down_rev2.sql && chmod 644 *
\set regress_db :DBNAME
CREATE DATABASE regress_trek_ops;
\c regress_trek_ops
CREATE EXTENSION trek;
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
-- an applied file edited after it ran
\! echo '-- edited' >> "$OPS/drift/20240102_a_up_b.sql"
SELECT track, current, changed_files, missing_files FROM trek_status(:'drift', 'ops');
SELECT trek_verify(:'drift', 'ops');
-- verify changes nothing
SELECT count(*) AS rows, max(to_revision) AS newest FROM trek.history WHERE track = 'ops';
-- down, edit, up again: the file is judged against its newest run
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'drift', 'a', track => 'ops'));
\set VERBOSITY default
SELECT current, steps_to_head, changed_files FROM trek_status(:'drift', 'ops');
\! echo '-- edited again' >> "$OPS/drift/20240102_a_up_b.sql"
SELECT current, changed_files FROM trek_status(:'drift', 'ops');
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'drift', 'head', track => 'ops'));
\set VERBOSITY default
SELECT current, steps_to_head, changed_files, missing_files FROM trek_status(:'drift', 'ops');
SELECT trek_verify(:'drift', 'ops');
-- an applied file gone from the folder, and one changed
\! mv "$OPS/drift/20240103_b_up_c.sql" "$OPS/drift/20240103_b_up_c.sql.bak"
\! echo '-- edited' >> "$OPS/drift/20240101_initial_up_a.sql"
SELECT current, current_known, head, steps_to_head, changed_files, missing_files, note
  FROM trek_status(:'drift', 'ops');
SELECT trek_verify(:'drift', 'ops');
-- the revision the track is at no longer in the folder: a row saying so
\! mv "$OPS/drift/20240103_c_down_b.sql" "$OPS/drift/20240103_c_down_b.sql.bak"
SELECT current, current_known, head, steps_to_head, missing_files, note
  FROM trek_status(:'drift', 'ops');
SELECT trek_verify(:'drift', 'ops');
SELECT trek_current('ops');
\! cd "$OPS/drift" && mv 20240103_b_up_c.sql.bak 20240103_b_up_c.sql && mv 20240103_c_down_b.sql.bak 20240103_c_down_b.sql
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
SELECT trek_stamp(:'ops' || '/branch', 'x', 'ops_branch');
SELECT current, head, steps_to_head, note FROM trek_status(:'ops' || '/branch', 'ops_branch');
-- bad input
SELECT * FROM trek_status('relative/path');
SELECT * FROM trek_status(:'ops' || '/nope');
SELECT * FROM trek_status(:'fixtures' || '/noinitial');
SELECT * FROM trek_status(NULL);
SELECT * FROM trek_status(:'drift', NULL);
SELECT trek_verify(NULL);

--
-- trek_stamp
--
SET trek.allowed_directories = :'ops';
SET ROLE regress_trek_app;
-- unknown, invalid, or ambiguous revisions are refused; nothing recorded
SELECT trek_stamp(:'adopt', 'rev4', 'ops_stamp');
SELECT trek_stamp(:'adopt', 'rev 1', 'ops_stamp');
SELECT trek_stamp(:'adopt', NULL, 'ops_stamp');
SELECT trek_stamp(:'adopt', 'rev1', NULL);
-- folders outside trek.allowed_directories, as for planning
SELECT trek_stamp(:'fixtures' || '/app', 'one', 'ops_stamp');
SELECT * FROM trek_status(:'fixtures' || '/app', 'ops_stamp');
SELECT trek_graph(:'fixtures' || '/app', 'dot', 'ops_stamp');
SELECT trek_verify(:'fixtures' || '/app', 'ops_stamp');
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
SELECT trek_stamp(:'fixtures' || '/graph', 'head', 'ops_stamp');
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
-- only what trek applied is judged for drift: rev2 -> rev3
\! echo '-- edited' >> "$OPS/adopt/20220411_rev1_up_rev2.sql"
SELECT current, changed_files FROM trek_status(:'adopt', 'adopt_app');
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
SELECT trek_graph(:'fixtures' || '/nope');
SELECT trek_graph(:'fixtures' || '/dup');
-- none of it wrote anything
SELECT count(*) FROM trek.history WHERE track IN ('ops_none', 'ops_graph');
RESET trek.allowed_directories;

\c :regress_db
DROP DATABASE regress_trek_ops;
