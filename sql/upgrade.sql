-- a 0.1 database: the new library works with its objects as 0.1 did, then
-- ALTER EXTENSION trek UPDATE brings it to 0.2 with its history, and the
-- tracks it had belong to the roles that started them
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set regress_db :DBNAME
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app, regress_trek_reader;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
CREATE ROLE regress_trek_reader LOGIN IN ROLE pg_read_server_files;
CREATE DATABASE regress_trek_upgrade;
\c regress_trek_upgrade
CREATE EXTENSION trek VERSION '0.1';
SELECT extversion FROM pg_extension WHERE extname = 'trek';
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text)
	TO regress_trek_app, regress_trek_reader;
GRANT CREATE ON SCHEMA public TO regress_trek_app, regress_trek_reader;
SET trek.allowed_directories = :'fixtures';
SET ROLE regress_trek_app;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => 'up_app'));
RESET ROLE;
SELECT trek_execute(trek_plan(:'fixtures' || '/example', 'rev1'));
\set VERBOSITY default
-- a row written by a role that no longer exists
INSERT INTO trek.history (track, from_revision, to_revision, direction, file,
						  sha256, applied_by, duration)
VALUES ('up_gone', 'initial', 'one', 'up', '20240101_initial_up_one.sql',
		repeat('0', 64), 'regress_trek_no_such_role', '0');
SELECT id, track, to_revision, applied_by FROM trek.history ORDER BY id;

ALTER EXTENSION trek UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'trek';
\dx+ trek
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid WHERE e.extname = 'trek' ORDER BY 1;
-- each track belongs to the role of its first step, or to the extension's
-- owner where that role is gone; the history is all there, without folders
SELECT track, owner FROM trek.tracks ORDER BY track;
SELECT id, track, to_revision, applied_by, dir FROM trek.history ORDER BY id;
SELECT trek_current('up_app'), trek_current(), trek_current('up_gone');

-- the owners' rules hold from now on
SET ROLE regress_trek_reader;
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'two', track => 'up_app'));
RESET ROLE;
SET ROLE regress_trek_app;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'two', track => 'up_app'));
\set VERBOSITY default
SELECT trek_execute(trek_plan(:'fixtures' || '/example', 'initial'));
RESET ROLE;
SELECT track, to_revision, applied_by, dir = :'fixtures' || '/app' AS dir_recorded
  FROM trek.history WHERE id > 3 ORDER BY id;

-- stamps, status and pictures work on the updated objects, and the
-- history takes stamp rows
SELECT pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'trek.history'::regclass AND contype = 'c' ORDER BY conname;
SELECT trek_stamp(:'fixtures' || '/app', 'two', 'up_gone');
SELECT track, current, current_known, head, steps_to_head, changed_files,
	   missing_files FROM trek_status(:'fixtures' || '/app', 'up_app');
SELECT trek_verify(:'fixtures' || '/app', 'up_app');
SELECT length(trek_graph(:'fixtures' || '/app', 'dot', 'up_gone')) > 0 AS drawn;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_run
  FROM pg_proc p WHERE p.proname LIKE 'trek\_%' ORDER BY 1;

\c :regress_db
DROP DATABASE regress_trek_upgrade;

-- a 0.2 database with history, runs and a grant of trek_runs: ALTER
-- EXTENSION trek UPDATE brings it to 0.3; the grant stays, and trek's own
-- initial privileges are those of a fresh install
CREATE DATABASE regress_trek_upgrade2;
\c regress_trek_upgrade2
CREATE EXTENSION trek VERSION '0.2';
GRANT EXECUTE ON FUNCTION trek_runs(text) TO regress_trek_app;
SET trek.allowed_directories = :'fixtures';
SET client_min_messages = warning;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/example', 'rev1'));
CALL trek_migrate(:'fixtures' || '/example', 'head');
\set VERBOSITY default
RESET client_min_messages;
SELECT call, state, steps_done, steps_planned FROM trek_runs() ORDER BY id;
-- the safety gate works on 0.2's objects: a hazard is refused, one its
-- file accepts runs; trek.history records it once it has the column
SET trek.large_table = '64kB';
SET client_min_messages = error;
CALL trek_migrate(:'fixtures' || '/check', 'a', track => 'gate');
CALL trek_migrate(:'fixtures' || '/check', 'b', track => 'gate');
SET trek.hazards = warn;
CALL trek_migrate(:'fixtures' || '/check', 'b', track => 'gate');
RESET trek.hazards;
CALL trek_migrate(:'fixtures' || '/check', 'c', track => 'gate');
RESET client_min_messages;
SELECT trek_current('gate');
ALTER EXTENSION trek UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'trek';
SELECT to_revision, accepted FROM trek.history WHERE track = 'gate' ORDER BY id;
SET client_min_messages = warning;
CALL trek_migrate(jsonb_build_object(
	'20240101_initial_up_x.sql', '-- trek:allow rewrite' || chr(10) || 'ALTER TABLE orders ALTER COLUMN total TYPE bigint;'),
	'x', track => 'gate2');
RESET client_min_messages;
SELECT to_revision, accepted FROM trek.history WHERE track = 'gate2' ORDER BY id;
SELECT call, state, steps_done, steps_planned, line FROM trek_runs() ORDER BY id;
SELECT has_function_privilege('regress_trek_app', 'trek_runs(text)', 'EXECUTE') AS app_may_run,
	   has_function_privilege('public', 'trek_runs(text)', 'EXECUTE') AS public_may_run;
SELECT pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'trek.runs'::regclass AND conname = 'runs_state_check';
-- the app's grant is the administrator's, not trek's: pg_dump keeps it
SELECT array_length(i.initprivs, 1) AS init_entries,
	   EXISTS (SELECT FROM aclexplode(i.initprivs) a
				WHERE a.grantee = 'regress_trek_app'::regrole) AS app_in_init
  FROM pg_init_privs i WHERE i.objoid = 'trek_runs(text)'::regprocedure;
-- a fresh install's initial privileges of trek_runs, for comparison
\c :regress_db
CREATE DATABASE regress_trek_fresh;
\c regress_trek_fresh
CREATE EXTENSION trek;
SELECT array_length(i.initprivs, 1) AS init_entries
  FROM pg_init_privs i WHERE i.objoid = 'trek_runs(text)'::regprocedure;
\d trek.runs
\c :regress_db
DROP DATABASE regress_trek_upgrade2;
DROP DATABASE regress_trek_fresh;

-- leave no role behind
DROP OWNED BY regress_trek_app, regress_trek_reader;
DROP ROLE regress_trek_app, regress_trek_reader;
