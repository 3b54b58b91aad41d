-- Python migrations, run in the server through PL/Python (execute.sql
-- shows the error without plpython3u)
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
CREATE EXTENSION trek;
CREATE EXTENSION plpython3u;
SELECT lanname, lanpltrusted FROM pg_language WHERE lanname = 'plpython3u';
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_reader;
RESET client_min_messages;
CREATE ROLE regress_trek_reader LOGIN IN ROLE pg_read_server_files;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text) TO regress_trek_reader;

-- .sql and .py steps mixed, up and down; the .py steps are asyncpg-trek's
-- own kind (async def run_migration(conn) after "import asyncpg")
\set dir :fixtures '/python_mixed'
SELECT s ->> 'file' AS file, s ->> 'direction' AS direction
  FROM jsonb_array_elements(trek_plan(:'dir', 'rev4', track => 'pymixed') -> 'steps') AS s;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'rev4', track => 'pymixed'));
\set VERBOSITY default
SELECT name, born FROM py_people ORDER BY id;
SELECT * FROM py_twins ORDER BY name;
SELECT indexname FROM pg_indexes WHERE tablename = 'py_people' ORDER BY 1;
SELECT from_revision, to_revision, direction, file, applied_by,
	   sha256 ~ '^[0-9a-f]{64}$' AS sha_ok, duration >= '0'::interval AS timed
  FROM trek.history WHERE track = 'pymixed' ORDER BY id;

-- step 2 (Python) fails after step 1 (SQL) and after its own SQL worked:
-- nothing of the plan stays; the error names the file and the Python line
SET client_min_messages = warning;
SELECT trek_execute(trek_plan(:'dir', 'rev6bad', track => 'pymixed'));
RESET client_min_messages;
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('pymixed'), count(*) AS people FROM py_people;

-- down through Python and SQL steps to initial
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'initial', track => 'pymixed'));
\set VERBOSITY default
SELECT to_regclass('py_people') AS py_people, to_regclass('py_twins') AS py_twins;
SELECT from_revision, to_revision, direction, file
  FROM trek.history WHERE track = 'pymixed' ORDER BY id DESC LIMIT 4;

-- the same plan twice (two app instances starting at once): the second
-- finds the work done
SELECT trek_plan(:'dir', 'rev2', track => 'pymixed') AS again \gset
\set VERBOSITY terse
SELECT trek_execute(:'again');
SELECT trek_execute(:'again');
\set VERBOSITY default

-- a .py file that changed since planning: test_python_files.py

-- parameters and results of each type, a plain def, savepoints, SQL errors
-- caught in Python, and "import asyncpg" without asyncpg installed
\set dir :fixtures '/python_types'
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'stub', track => 'pytypes'));
\set VERBOSITY default
-- (Python steps read dates and intervals in ISO DateStyle and postgres
-- IntervalStyle; the session's own settings are back afterwards)
SHOW DateStyle;
SHOW IntervalStyle;
SELECT * FROM py_types ORDER BY big;
SELECT * FROM py_sync ORDER BY id;
SELECT * FROM py_saved;
SELECT * FROM py_caught ORDER BY id;
SELECT * FROM py_stub ORDER BY id;

-- errors: each migration first creates a table, which must not survive
\set dir :fixtures '/python_errors'
-- an SQL error keeps its SQLSTATE; CONTEXT names the statement and the line
SELECT trek_execute(trek_plan(:'dir', 'sqlerror', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE
-- an SQL syntax error shows the query and the position in it
SELECT trek_execute(trek_plan(:'dir', 'sqlsyntax', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE
-- detail and object names survive
SELECT trek_execute(trek_plan(:'dir', 'unique', track => 'pyerrors'));
SET trek_regress.fixtures = :'fixtures';
DO $$
DECLARE
	st text; sch text; tbl text; con text;
BEGIN
	PERFORM trek_execute(trek_plan(current_setting('trek_regress.fixtures') || '/python_errors',
								   'unique', track => 'pyerrors'));
EXCEPTION WHEN unique_violation THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, sch = SCHEMA_NAME,
		tbl = TABLE_NAME, con = CONSTRAINT_NAME;
	RAISE NOTICE 'sqlstate %, schema %, table %, constraint %', st, sch, tbl, con;
END
$$;
-- a Python exception: 38000, the traceback through the file, the line
SELECT trek_execute(trek_plan(:'dir', 'pyerror', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'dir', 'pysyntax', track => 'pyerrors'));
-- no run_migration, or one that is a generator (it would never run)
SELECT trek_execute(trek_plan(:'dir', 'norun', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'dir', 'generator', track => 'pyerrors'));
-- awaiting what needs an event loop
SELECT trek_execute(trek_plan(:'dir', 'await', track => 'pyerrors'));
-- transaction control, and a savepoint left open
SELECT trek_execute(trek_plan(:'dir', 'commit', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'dir', 'open', track => 'pyerrors'));
-- plpy.error() with a SQLSTATE of its own
SELECT trek_execute(trek_plan(:'dir', 'plpyerror', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE
-- a NUL byte, and a file that is not UTF-8 without saying so
SELECT trek_execute(trek_plan(:'dir', 'nul', track => 'pyerrors'));
SELECT trek_execute(trek_plan(:'dir', 'latin1', track => 'pyerrors'));
-- more arguments than the query has parameters
SELECT trek_execute(trek_plan(:'dir', 'args', track => 'pyerrors'));
-- an error in a nested savepoint
SELECT trek_execute(trek_plan(:'dir', 'nested', track => 'pyerrors'));
\echo :LAST_ERROR_SQLSTATE

SELECT trek_current('pyerrors'), count(*) FROM trek.history WHERE track = 'pyerrors';
SELECT relname FROM pg_class WHERE relname LIKE '%\_py';

-- the caller's transaction stays usable after a failed Python step only
-- through a savepoint, as with SQL steps
BEGIN;
SAVEPOINT before_python;
SELECT trek_execute(trek_plan(:'dir', 'pyerror', track => 'pyerrors'));
ROLLBACK TO SAVEPOINT before_python;
SELECT trek_current('pyerrors');
COMMIT;

-- Python steps run with the caller's rights: plpython3u is untrusted, so
-- a role that may read the folder but is no superuser is refused before
-- any step runs
\set dir :fixtures '/python_mixed'
SET ROLE regress_trek_reader;
SELECT trek_execute(trek_plan(:'dir', 'rev2', track => 'pyreader'));
RESET ROLE;
SELECT trek_current('pyreader'), count(*) FROM trek.history WHERE track = 'pyreader';
-- planning needs no language and no privilege on it
SET ROLE regress_trek_reader;
SELECT jsonb_array_length(trek_plan(:'dir', 'rev2', track => 'pyreader') -> 'steps') AS steps;
RESET ROLE;

-- a migration that takes trek's module out of sys.modules: the next Python
-- step says so, and the one after loads the module again
\set dir :fixtures '/python_reload'
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'drop', track => 'pyreload'));
SELECT trek_execute(trek_plan(:'dir', 'again', track => 'pyreload'));
SELECT trek_execute(trek_plan(:'dir', 'again', track => 'pyreload'));
\set VERBOSITY default
SELECT to_regclass('reload_py') AS reload_py;

DROP PROCEDURE py_add(bigint, text);
DROP TABLE py_people, py_types, py_sync, py_saved, py_caught, py_stub, reload_py;
DROP TYPE py_mood;
DROP EXTENSION plpython3u;
DROP EXTENSION trek;

-- leave no role behind
DROP OWNED BY regress_trek_reader;
DROP ROLE regress_trek_reader;
