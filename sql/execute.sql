-- executing plans: the asyncpg-trek example folder, failures, stale plans,
-- changed files, transactions
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set dir :fixtures '/example'
CREATE EXTENSION trek;

-- up one step and back down
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'rev1'));
\set VERBOSITY default
SELECT * FROM people;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'initial'));
\set VERBOSITY default
SELECT to_regclass('people') AS people, trek_current();

-- inside the caller's transaction: a rollback undoes the plan and its history
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'rev2'));
\set VERBOSITY default
SELECT trek_current(), (SELECT count(*) FROM people) AS people;
ROLLBACK;
SELECT trek_current(), to_regclass('people') AS people,
	   (SELECT count(*) FROM trek.history WHERE to_revision = 'rev2') AS history;

-- the whole plan is one transaction: step 4 fails, steps 1 to 3 are undone
SET client_min_messages = warning;
SELECT trek_execute(trek_plan(:'dir', 'rev4bad'));
RESET client_min_messages;
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current(), to_regclass('people') AS people;

-- a stale plan: the track moved since the plan was made
SELECT trek_plan(:'dir', 'rev3') AS to_rev3 \gset
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'rev1'));
\set VERBOSITY default
SELECT trek_execute(:'to_rev3');
SELECT trek_current();

-- the same plan twice (as two app instances starting at once would):
-- the second finds the work done
SELECT trek_plan(:'dir', 'rev3') AS again \gset
\set VERBOSITY terse
SELECT trek_execute(:'again');
\set VERBOSITY default
\set VERBOSITY terse
SELECT trek_execute(:'again');
\set VERBOSITY default
SELECT count(*) AS rows_for_rev3 FROM trek.history
 WHERE to_revision = 'rev3' AND track = 'default';

-- rev4bad selects from a missing table: 42P01, and the database stays at
-- rev3 with its data as rev3 left it (the insert before the error is undone)
SELECT trek_execute(trek_plan(:'dir', 'rev4bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current(), (SELECT count(*) FROM people) AS people;

-- a file that changed, or vanished, since planning: test_execute_files.py

-- a Python step needs language plpython3u: without it, planning works but
-- the plan is refused before any step runs (trek never installs it)
\set py :fixtures '/python'
SELECT jsonb_array_length(trek_plan(:'py', 'head', track => 'python') -> 'steps') AS steps;
SELECT trek_execute(trek_plan(:'py', 'head', track => 'python'));
SELECT to_regclass('py_rows') AS py_rows, trek_current('python');
SELECT count(*) AS plpython3u FROM pg_language WHERE lanname = 'plpython3u';
-- with it, the plan runs
CREATE EXTENSION plpython3u;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'py', 'head', track => 'python'));
\set VERBOSITY default
SELECT *, trek_current('python') FROM py_rows;

-- history: one row per step
SELECT track, from_revision, to_revision, direction, file, applied_by,
	   sha256 ~ '^[0-9a-f]{64}$' AS sha_ok, duration >= '0'::interval AS timed
  FROM trek.history WHERE track = 'default' ORDER BY id;

-- small files read by name in the open folder and files over 64 kB read by
-- full path in chunks: test_execute_files.py

DROP TABLE people, py_rows;
DROP EXTENSION plpython3u;
DROP EXTENSION trek;
