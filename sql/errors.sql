-- what a migration file may not contain, and how errors name file and line;
-- each file first creates a table, which must not survive the error
\getenv abs_srcdir PG_ABS_SRCDIR
\set dir :abs_srcdir '/test/fixtures/errors'
CREATE EXTENSION trek;

-- BEGIN/COMMIT
SELECT trek_execute(trek_plan(:'dir', 'txn', track => 'errors'));
-- psql meta-commands
SELECT trek_execute(trek_plan(:'dir', 'meta', track => 'errors'));
-- COPY FROM STDIN, with data and without
SELECT trek_execute(trek_plan(:'dir', 'copydata', track => 'errors'));
SELECT trek_execute(trek_plan(:'dir', 'copy', track => 'errors'));
-- not valid UTF-8, and a NUL byte
SELECT trek_execute(trek_plan(:'dir', 'latin1', track => 'errors'));
SELECT trek_execute(trek_plan(:'dir', 'nul', track => 'errors'));
-- a syntax error on line 4
SELECT trek_execute(trek_plan(:'dir', 'syntax', track => 'errors'));
\echo :LAST_ERROR_SQLSTATE
-- CRLF line endings: the failing statement starts on line 4
SELECT trek_execute(trek_plan(:'dir', 'crlf', track => 'errors'));
-- a runtime error keeps its SQLSTATE; the statement starts on line 4
SELECT trek_execute(trek_plan(:'dir', 'runtime', track => 'errors'));
\echo :LAST_ERROR_SQLSTATE

SELECT trek_current('errors'), count(*) FROM trek.history WHERE track = 'errors';
SELECT relname FROM pg_class WHERE relname LIKE '%\_t' AND relkind = 'r' ORDER BY 1;

-- these are fine: a byte order mark, dollar quoting, empty and comment-only files
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'bom', track => 'errors'));
\set VERBOSITY default
SELECT to_regclass('bom_t') AS bom_t;
ROLLBACK;
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'dollar', track => 'errors'));
\set VERBOSITY default
SELECT * FROM dollar_t;
ROLLBACK;
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'empty', track => 'errors'));
\set VERBOSITY default
ROLLBACK;
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'comments', track => 'errors'));
\set VERBOSITY default
ROLLBACK;

-- a plan too large for the lock table keeps PostgreSQL's error and gets a hint
SELECT trek_execute(trek_plan(:'dir', 'locks', track => 'errors'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('errors');

DROP EXTENSION trek;
