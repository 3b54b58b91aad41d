-- steps outside a transaction: "-- trek:no-transaction" as the first line
\getenv regress_dir TREK_REGRESS_DIR
\set nt :regress_dir '/notxn'
\setenv NT :nt
\! rm -rf "$NT" && mkdir -p "$NT"
CREATE SCHEMA nt_s;
GRANT USAGE, CREATE ON SCHEMA nt_s TO regress_trek_app;
SET search_path = nt_s, public;

-- a history with the statements that refuse to run in a transaction: an
-- index built, rebuilt and dropped concurrently, an enum value added and
-- used by a later step, VACUUM, ALTER SYSTEM; the marker may have blanks
-- around its colon and follow a byte order mark
\! cd "$NT" && mkdir all && cd all && printf 'CREATE TABLE nt_t (id int PRIMARY KEY, v int);\nINSERT INTO nt_t SELECT g, g %% 7 FROM generate_series(1, 1000) g;\nCREATE TYPE nt_mood AS ENUM (%s);\n' "'sad'" > 20240101_initial_up_a.sql
\! cd "$NT/all" && printf -- '-- trek:no-transaction\nCREATE INDEX CONCURRENTLY nt_t_v_idx ON nt_t (v);\nREINDEX INDEX CONCURRENTLY nt_t_v_idx;\nALTER TYPE nt_mood ADD VALUE %s;\nVACUUM (ANALYZE) nt_t;\n' "'happy'" > 20240102_a_up_b.sql
\! cd "$NT/all" && printf 'CREATE TABLE nt_feel (m nt_mood DEFAULT %s);\n' "'happy'" > 20240103_b_up_c.sql
\! cd "$NT/all" && printf '\357\273\277--  trek : no-transaction  \r\nALTER SYSTEM SET trek.lock_retries = 7;\nDROP INDEX CONCURRENTLY nt_t_v_idx;\n' > 20240104_c_up_d.sql
\! chmod -R a+rX "$NT"
SELECT s ->> 'file' AS file, (s -> 'no_transaction')::text AS no_transaction
  FROM jsonb_array_elements(trek_plan(:'nt' || '/all', 'head', track => 'nt') -> 'steps') AS s;
-- one transaction cannot hold them: refused before any step runs
SELECT trek_execute(trek_plan(:'nt' || '/all', 'head', track => 'nt'));
\echo :LAST_ERROR_SQLSTATE
-- a plan edited to hide the marker is refused when the step is reached
SELECT trek_execute(trek_plan(:'nt' || '/all', 'head', track => 'nt') #- '{steps,1,no_transaction}');
SELECT trek_current('nt'), to_regclass('nt_t') AS nt_t;
\set VERBOSITY terse
CALL trek_migrate(:'nt' || '/all', 'head', track => 'nt');
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
\! mkdir "$NT/second" && printf 'SELECT 1;\n-- trek:no-transaction\nCREATE INDEX CONCURRENTLY ON nt_t (id);\n' > "$NT/second/20240101_initial_up_a.sql" && chmod -R a+rX "$NT/second"
CALL trek_migrate(:'nt' || '/second', 'head', track => 'nt_second');
-- Python files cannot be no-transaction
\! mkdir "$NT/py" && printf '# trek:no-transaction\nasync def run_migration(conn):\n    pass\n' > "$NT/py/20240101_initial_up_a.py" && chmod -R a+rX "$NT/py"
SELECT trek_plan(:'nt' || '/py', 'head', track => 'nt_py');

-- a unique index over duplicates fails with 23505; the INVALID index it
-- left is dropped, the statements before it stay done, and after the
-- duplicates are gone the same call completes
\! mkdir "$NT/uniq" && cd "$NT/uniq" && printf 'CREATE TABLE nt_u (id int, v int);\nINSERT INTO nt_u VALUES (1, 1), (2, 1);\n' > 20240101_initial_up_a.sql && printf -- '-- trek:no-transaction\nCREATE TABLE nt_before (id int);\n\nCREATE UNIQUE INDEX CONCURRENTLY nt_u_v_key ON nt_u (v);\n' > 20240102_a_up_b.sql && chmod -R a+rX "$NT/uniq"
\set VERBOSITY terse
CALL trek_migrate(:'nt' || '/uniq', 'a', track => 'nt_uniq');
\set VERBOSITY default
CALL trek_migrate(:'nt' || '/uniq', 'b', track => 'nt_uniq');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('nt_uniq'), to_regclass('nt_before') IS NOT NULL AS before_done,
	   (SELECT count(*) FROM pg_index WHERE indrelid = 'nt_u'::regclass) AS indexes;
SELECT state, sqlstate, message FROM trek_runs('nt_uniq') LIMIT 1;
DELETE FROM nt_u WHERE id = 2;
DROP TABLE nt_before;
\set VERBOSITY terse
CALL trek_migrate(:'nt' || '/uniq', 'b', track => 'nt_uniq');
\set VERBOSITY default
SELECT indexrelid::regclass AS index, indisvalid FROM pg_index
 WHERE indrelid = 'nt_u'::regclass;

-- an INVALID index of the same name, as a crash during an earlier attempt
-- would leave it, is dropped before CREATE INDEX CONCURRENTLY runs
CREATE TABLE nt_c (v int);
INSERT INTO nt_c VALUES (1), (1);
CREATE UNIQUE INDEX CONCURRENTLY nt_c_v_idx ON nt_c (v);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'nt_c_v_idx'::regclass;
\! mkdir "$NT/crash" && printf -- '-- trek:no-transaction\nCREATE INDEX CONCURRENTLY nt_c_v_idx ON nt_c (v);\n' > "$NT/crash/20240101_initial_up_a.sql" && chmod -R a+rX "$NT/crash"
\set VERBOSITY terse
CALL trek_migrate(:'nt' || '/crash', 'head', track => 'nt_crash');
\set VERBOSITY default
SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'nt_c_v_idx'::regclass;

-- the caller's role and settings: a role indexes its own table, not
-- another's; unqualified names follow the caller's search_path; the
-- caller's statement_timeout applies; transaction control is refused
GRANT EXECUTE ON PROCEDURE trek_migrate(text, text, text, text) TO regress_trek_app;
\! mkdir "$NT/role" && cd "$NT/role" && printf 'CREATE TABLE nt_mine (id int);\n' > 20240101_initial_up_a.sql && printf -- '-- trek:no-transaction\nCREATE INDEX CONCURRENTLY nt_mine_idx ON nt_mine (id);\n' > 20240102_a_up_b.sql && printf -- '-- trek:no-transaction\nCREATE INDEX CONCURRENTLY nt_theirs_idx ON nt_t (id);\n' > 20240103_b_up_c.sql && chmod -R a+rX "$NT/role"
SET trek.allowed_directories = :'nt';
SET ROLE regress_trek_app;
\set VERBOSITY terse
CALL trek_migrate(:'nt' || '/role', 'b', track => 'nt_role');
\set VERBOSITY default
CALL trek_migrate(:'nt' || '/role', 'c', track => 'nt_role');
RESET ROLE;
RESET trek.allowed_directories;
SELECT trek_current('nt_role'), (SELECT tableowner FROM pg_tables WHERE tablename = 'nt_mine') AS owner,
	   to_regclass('nt_mine_idx') IS NOT NULL AS mine, to_regclass('nt_theirs_idx') AS theirs;
REVOKE EXECUTE ON PROCEDURE trek_migrate(text, text, text, text) FROM regress_trek_app;
CREATE SCHEMA nt_other;
CREATE TABLE nt_other.nt_t (id int);
\! mkdir "$NT/path" && printf -- '-- trek:no-transaction\nCREATE INDEX CONCURRENTLY nt_path_idx ON nt_t (id);\n' > "$NT/path/20240101_initial_up_a.sql" && chmod -R a+rX "$NT/path"
SET search_path = nt_other, nt_s, public;
\set VERBOSITY terse
CALL trek_migrate(:'nt' || '/path', 'head', track => 'nt_path');
\set VERBOSITY default
SET search_path = nt_s, public;
SELECT indrelid::regclass AS on_table FROM pg_index WHERE indexrelid = 'nt_other.nt_path_idx'::regclass;
\! mkdir "$NT/slow" && printf -- '-- trek:no-transaction\nSELECT pg_sleep(0.5);\n' > "$NT/slow/20240101_initial_up_a.sql" && printf -- '-- trek:no-transaction\nBEGIN;\n' > "$NT/slow/20240102_a_up_b.sql" && chmod -R a+rX "$NT/slow"
SET statement_timeout = '200ms';
CALL trek_migrate(:'nt' || '/slow', 'a', track => 'nt_slow');
RESET statement_timeout;
SET client_min_messages = warning;
CALL trek_migrate(:'nt' || '/slow', 'b', track => 'nt_slow');
RESET client_min_messages;
SELECT trek_current('nt_slow');

-- clean up
\! rm -rf "$NT"
RESET search_path;
DROP SCHEMA nt_s, nt_other CASCADE;
