-- steps outside a transaction: "-- trek:no-transaction" as the first line
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set regress_db :DBNAME
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
-- in a database of its own: failed trek_execute() runs that another file
-- left in shared memory, to be written with that database's next run, stay
-- out of this file's trek.runs
CREATE DATABASE regress_trek_notxn;
\c regress_trek_notxn
CREATE EXTENSION trek;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text) TO regress_trek_app;
CREATE SCHEMA nt_s;
GRANT USAGE, CREATE ON SCHEMA nt_s TO regress_trek_app;
SET search_path = nt_s, public;

-- a history with the statements that refuse to run in a transaction: an
-- index built, rebuilt and dropped concurrently, an enum value added and
-- used by a later step, VACUUM, ALTER SYSTEM; the marker may have blanks
-- around its colon and follow a byte order mark
SELECT s ->> 'file' AS file, (s -> 'no_transaction')::text AS no_transaction
  FROM jsonb_array_elements(trek_plan(:'fixtures' || '/notxn_all', 'head', track => 'nt') -> 'steps') AS s;
-- one transaction cannot hold them: refused before any step runs
SELECT trek_execute(trek_plan(:'fixtures' || '/notxn_all', 'head', track => 'nt'));
\echo :LAST_ERROR_SQLSTATE
-- a plan edited to hide the marker is refused when the step is reached
SELECT trek_execute(trek_plan(:'fixtures' || '/notxn_all', 'head', track => 'nt') #- '{steps,1,no_transaction}');
SELECT trek_current('nt'), to_regclass('nt_t') AS nt_t;
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/notxn_all', 'head', track => 'nt');
\set VERBOSITY default
SELECT trek_current('nt'), to_regclass('nt_t_v_idx') AS dropped_at_the_end,
	   (SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef
		 WHERE adrelid = 'nt_feel'::regclass) AS feel_default,
	   (SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables
		 WHERE relname = 'nt_t') AS analyzed;
SELECT pg_read_file('postgresql.auto.conf') ~ 'trek.lock_retries = ''7''' AS in_auto_conf;
ALTER SYSTEM RESET trek.lock_retries;
SELECT to_revision, file FROM trek.history WHERE track = 'nt' ORDER BY id;
SELECT state, steps_done, steps_planned FROM trek_runs('nt');

-- the marker only counts on the first line; anywhere else it is a comment,
-- and the statement then runs in the step's transaction
CALL trek_migrate(:'fixtures' || '/notxn_second', 'head', track => 'nt_second');
-- Python files cannot be no-transaction
SELECT trek_plan(:'fixtures' || '/notxn_py', 'head', track => 'nt_py');

-- a unique index over duplicates fails with 23505; the INVALID index it
-- left is dropped, the statements before it stay done, and after the
-- duplicates are gone the same call completes
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/notxn_uniq', 'a', track => 'nt_uniq');
\set VERBOSITY default
CALL trek_migrate(:'fixtures' || '/notxn_uniq', 'b', track => 'nt_uniq');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('nt_uniq'), to_regclass('nt_before') IS NOT NULL AS before_done,
	   (SELECT count(*) FROM pg_index WHERE indrelid = 'nt_u'::regclass) AS indexes;
SELECT state, sqlstate, message FROM trek_runs('nt_uniq') LIMIT 1;
DELETE FROM nt_u WHERE id = 2;
DROP TABLE nt_before;
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/notxn_uniq', 'b', track => 'nt_uniq');
\set VERBOSITY default
SELECT indexrelid::regclass AS index, indisvalid FROM pg_index
 WHERE indrelid = 'nt_u'::regclass;

-- an INVALID index of the same name, as a crash during an earlier attempt
-- would leave it, is dropped before CREATE INDEX CONCURRENTLY runs
CREATE TABLE nt_c (v int);
INSERT INTO nt_c VALUES (1), (1);
CREATE UNIQUE INDEX CONCURRENTLY nt_c_v_idx ON nt_c (v);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'nt_c_v_idx'::regclass;
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/notxn_crash', 'head', track => 'nt_crash');
\set VERBOSITY default
SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'nt_c_v_idx'::regclass;

-- the caller's role and settings: a role indexes its own table, not
-- another's; unqualified names follow the caller's search_path; the
-- caller's statement_timeout applies; transaction control is refused
GRANT EXECUTE ON PROCEDURE trek_migrate(text, text, text, text) TO regress_trek_app;
SET trek.allowed_directories = :'fixtures';
SET ROLE regress_trek_app;
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/notxn_role', 'b', track => 'nt_role');
\set VERBOSITY default
CALL trek_migrate(:'fixtures' || '/notxn_role', 'c', track => 'nt_role');
RESET ROLE;
RESET trek.allowed_directories;
SELECT trek_current('nt_role'), (SELECT tableowner FROM pg_tables WHERE tablename = 'nt_mine') AS owner,
	   to_regclass('nt_mine_idx') IS NOT NULL AS mine, to_regclass('nt_theirs_idx') AS theirs;
REVOKE EXECUTE ON PROCEDURE trek_migrate(text, text, text, text) FROM regress_trek_app;
CREATE SCHEMA nt_other;
CREATE TABLE nt_other.nt_t (id int);
SET search_path = nt_other, nt_s, public;
\set VERBOSITY terse
CALL trek_migrate(:'fixtures' || '/notxn_path', 'head', track => 'nt_path');
\set VERBOSITY default
SET search_path = nt_s, public;
SELECT indrelid::regclass AS on_table FROM pg_index WHERE indexrelid = 'nt_other.nt_path_idx'::regclass;
SET statement_timeout = '200ms';
CALL trek_migrate(:'fixtures' || '/notxn_slow', 'a', track => 'nt_slow');
RESET statement_timeout;
SET client_min_messages = warning;
CALL trek_migrate(:'fixtures' || '/notxn_slow', 'b', track => 'nt_slow');
RESET client_min_messages;
SELECT trek_current('nt_slow');

-- clean up
RESET search_path;
DROP SCHEMA nt_s, nt_other CASCADE;
\c :regress_db
DROP DATABASE regress_trek_notxn;
-- leave no role behind
DROP OWNED BY regress_trek_app;
DROP ROLE regress_trek_app;
