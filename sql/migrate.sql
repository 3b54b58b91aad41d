-- CALL trek_migrate: one step, one commit
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
CREATE EXTENSION trek;
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text) TO regress_trek_app;
CREATE SCHEMA mig_s;
GRANT USAGE, CREATE ON SCHEMA mig_s TO regress_trek_app;
SET search_path = mig_s, public;
\set dir :fixtures '/example'

-- not inside a transaction block or a function: nothing applied
BEGIN;
CALL trek_migrate(:'dir', 'rev3', track => 'mig');
ROLLBACK;
\echo :LAST_ERROR_SQLSTATE
CREATE FUNCTION mig_call() RETURNS void LANGUAGE plpgsql AS $$
BEGIN CALL trek_migrate('/nowhere', 'head'); END $$;
SELECT mig_call();
SELECT trek_current('mig'), count(*) FROM trek.history WHERE track = 'mig';

-- each step commits with its history row; a run is recorded
\set VERBOSITY terse
CALL trek_migrate(:'dir', 'rev2', track => 'mig');
\set VERBOSITY default
SELECT from_revision, to_revision, direction, file, dir = :'dir' AS dir_ok
  FROM trek.history WHERE track = 'mig' ORDER BY id;
SELECT track, from_revision, target, call, state, steps_done, steps_planned,
	   current_file, run_by, pid = pg_backend_pid() AS my_pid,
	   finished_at >= started_at AS timed, sqlstate
  FROM trek_runs('mig');

-- already there: a NOTICE, and nothing written
CALL trek_migrate(:'dir', 'rev2', track => 'mig');
SELECT count(*) AS runs FROM trek_runs('mig');

-- a failing step: the steps before it stay applied and recorded, the error
-- keeps its SQLSTATE and context, and the track is at the step's "from"
SET client_min_messages = warning;
CALL trek_migrate(:'dir', 'rev4bad', track => 'mig');
RESET client_min_messages;
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('mig'), (SELECT count(*) FROM people) AS people;
SELECT to_revision FROM trek.history WHERE track = 'mig' ORDER BY id;
SELECT state, steps_done, steps_planned, current_file, sqlstate, message
  FROM trek_runs('mig') LIMIT 1;
-- fixed, the same call goes on from there: test_migrate_files.py

-- a plan: stale plans and changed files are refused as in trek_execute; a
-- plan an earlier run took part of the way goes on where the track is
-- (each track builds its own "people", in a schema of its own)
CREATE SCHEMA mig_p;
CREATE SCHEMA mig_r;
SET search_path = mig_p, public;
SELECT trek_plan(:'dir', 'rev1', track => 'mig_plan') AS stale \gset
\set VERBOSITY terse
CALL trek_migrate(:'dir', 'rev2', track => 'mig_plan');
\set VERBOSITY default
CALL trek_migrate(:'stale'::jsonb);
-- (a file changed since planning, then put back: test_migrate_files.py)
SET search_path = mig_r, public;
SELECT trek_plan(:'dir', 'rev3', track => 'mig_resume') AS whole \gset
\set VERBOSITY terse
CALL trek_migrate(:'dir', 'rev1', track => 'mig_resume');
CALL trek_migrate(:'whole'::jsonb);
\set VERBOSITY default
SELECT to_revision FROM trek.history WHERE track = 'mig_resume' ORDER BY id;
SET search_path = mig_s, public;
CALL trek_migrate(NULL::jsonb);
CALL trek_migrate('{"format": 2}'::jsonb);

-- a new enum value used by a later step: one transaction cannot, one step
-- per transaction can
-- (test/fixtures/migrate_enum: a creates type mig_s.mood, b adds 'happy' to
-- it, c makes it the default of a column)
\set enum :fixtures '/migrate_enum'
-- (the type exists before the plan: PostgreSQL 17 allows new values of a
-- type created in the same transaction)
\set VERBOSITY terse
CALL trek_migrate(:'enum', 'a', track => 'mig_enum');
\set VERBOSITY default
SET client_min_messages = warning;
SELECT trek_execute(trek_plan(:'enum', 'head', track => 'mig_enum'));
RESET client_min_messages;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
CALL trek_migrate(:'enum', 'head', track => 'mig_enum');
\set VERBOSITY default
SELECT trek_current('mig_enum'), pg_get_expr(adbin, adrelid) AS feel_default
  FROM pg_attrdef WHERE adrelid = 'mig_s.feel'::regclass;

-- the lock settings: superusers set the defaults, other roles may lower
-- them but not raise them
SHOW trek.lock_timeout;
SHOW trek.lock_retries;
SET ROLE regress_trek_app;
SET trek.lock_timeout = '1s';
SET trek.lock_retries = 2;
SET trek.lock_timeout = '10s';
SET trek.lock_timeout = 0;
SET trek.lock_retries = 11;
SHOW trek.lock_timeout;
RESET ROLE;
SET trek.lock_timeout = '1min';
SET trek.lock_timeout = 0;
RESET trek.lock_timeout;
RESET trek.lock_retries;

-- track owners and folder rules are those of trek_execute
GRANT EXECUTE ON PROCEDURE trek_migrate(text, text, text, text),
	trek_migrate(jsonb) TO regress_trek_app;
GRANT EXECUTE ON FUNCTION trek_runs(text) TO regress_trek_app;
-- (the messages name the folder, written @abs_srcdir@ below;
-- test_migrate_files.py checks them whole)
SET ROLE regress_trek_app;
\set VERBOSITY sqlstate
CALL trek_migrate(:'dir', 'rev1', track => 'mig_app');
\set VERBOSITY default
SELECT replace(:'LAST_ERROR_MESSAGE', :'abs_srcdir', '@abs_srcdir@') AS message;
RESET ROLE;
SET trek.allowed_directories = :'enum';
SET ROLE regress_trek_app;
CALL trek_migrate(:'enum', 'head', track => 'mig_enum');
\set VERBOSITY sqlstate
CALL trek_migrate(:'fixtures' || '/app', 'one', track => 'mig_app');
\set VERBOSITY default
SELECT replace(:'LAST_ERROR_MESSAGE', :'abs_srcdir', '@abs_srcdir@') AS message;
SELECT trek_current('mig_enum'), trek_current('mig_app');
-- the runs of the tracks it may see (here one of its own: its migrations go
-- up and back down, in schema mig_s)
RESET ROLE;
\set app :fixtures '/app'
SET trek.allowed_directories = :'app';
SET ROLE regress_trek_app;
\set VERBOSITY terse
CALL trek_migrate(:'app', 'one', track => 'mig_own');
CALL trek_migrate(:'app', 'initial', track => 'mig_own');
\set VERBOSITY default
SELECT count(*) > 0 AS app_sees_runs FROM trek_runs();
RESET ROLE;
RESET trek.allowed_directories;
REVOKE EXECUTE ON PROCEDURE trek_migrate(text, text, text, text),
	trek_migrate(jsonb) FROM regress_trek_app;
REVOKE EXECUTE ON FUNCTION trek_runs(text) FROM regress_trek_app;

-- a migration may not stamp the track it runs on: test_migrate_files.py

-- clean up
RESET search_path;
DROP SCHEMA mig_s, mig_p, mig_r CASCADE;
DROP EXTENSION trek;

-- leave no role behind
DROP OWNED BY regress_trek_app;
DROP ROLE regress_trek_app;
