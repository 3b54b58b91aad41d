-- the safety gate: trek_check() predicts what each statement of a plan
-- locks, rewrites and scans, trek_migrate() and trek_execute() refuse a
-- step with a hazard its file does not accept, trek_rehearse() observes;
-- the corpus of every ALTER TABLE subcommand, compared with the rehearsal,
-- and the NOTICE about other sessions' locks are in test_check.py
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set regress_db :DBNAME
CREATE DATABASE regress_trek_check;
\c regress_trek_check
CREATE EXTENSION trek;
SET client_min_messages = warning;
-- the settings, and their bounds
SHOW trek.hazards;
SHOW trek.large_table;
SET trek.hazards = 'sometimes';
-- (the range's wording differs between majors: its SQLSTATE only)
\set VERBOSITY sqlstate
SET trek.large_table = -1;
\set VERBOSITY default
SET trek.large_table = '64kB';
CALL trek_migrate(:'fixtures' || '/check', 'a');
ANALYZE orders;

-- what the next step does: the server folder, its plan, the folder sent
SELECT step, line, statement, relation, lock, blocks, rewrites, scans,
	   rows, bytes > 65536 AS large, hazard, advice IS NOT NULL AS advice
  FROM trek_check(:'fixtures' || '/check', 'b');
SELECT count(*) FROM trek_check(trek_plan(:'fixtures' || '/check', 'b'));
SELECT step, line, relation, lock, hazard
  FROM trek_check(jsonb_build_object(
	'20240101_initial_up_a.sql', pg_read_file(:'fixtures' || '/check/20240101_initial_up_a.sql'),
	'20240102_a_up_b.sql', 'UPDATE orders SET note = NULL; DELETE FROM orders WHERE id = 1; SELECT pg_sleep(0); SELECT now();'),
	'b');
-- a small table is no hazard
SET trek.large_table = '10MB';
SELECT count(*) AS rows, count(hazard) FILTER (WHERE hazard <> 'opaque') AS hazards,
	   count(hazard) FILTER (WHERE hazard = 'opaque') AS opaque
  FROM trek_check(:'fixtures' || '/check', 'head');
SET trek.large_table = '64kB';

-- the gate: refused before anything runs, with what and why
CALL trek_migrate(:'fixtures' || '/check', 'b');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current(), format_type(atttypid, atttypmod) AS total
  FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total';
SELECT trek_execute(trek_plan(:'fixtures' || '/check', 'c'));
SELECT trek_current(), to_regclass('orders_note') AS index;
-- warn: it runs, with a WARNING per hazard
SET trek.hazards = warn;
SET client_min_messages = warning;
CALL trek_migrate(:'fixtures' || '/check', 'b');
SELECT trek_current(), format_type(atttypid, atttypmod) AS total
  FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total';
RESET trek.hazards;
-- a file that accepts its hazards runs, and its history row says which
CALL trek_migrate(:'fixtures' || '/check', 'c');
SELECT to_revision, accepted FROM trek.history ORDER BY id;

-- an unknown hazard in "-- trek:allow": refused, nothing runs
SELECT trek_execute(trek_plan(jsonb_build_object(
	'20240101_initial_up_a.sql', '-- trek:allow rewrites' || chr(10) || 'CREATE TABLE t (i int);'),
	'head', track => 'typo'));
SELECT trek_current('typo'), to_regclass('t');
-- the rehearsal: runs and rolls back, and says what it saw
\set rewrite '{"20240101_initial_up_x.sql": "ALTER TABLE orders ALTER COLUMN total TYPE int;\\nCREATE INDEX orders_paid ON orders (paid);\\nDO $$ BEGIN PERFORM 1; END $$;\\n"}'
SELECT step, line, relation, lock, rewrites, scans, hazard
  FROM trek_check(trek_plan(:'rewrite'::jsonb, 'x', track => 'other'));
SELECT step, line, relation, lock, rewrites, scans, hazard
  FROM trek_rehearse(trek_plan(:'rewrite'::jsonb, 'x', track => 'other'));
SELECT trek_current('other'), format_type(atttypid, atttypmod) AS total,
	   to_regclass('orders_paid') AS index
  FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total';
-- off: no check at all
SET trek.hazards = off;
SELECT trek_execute(trek_plan(:'rewrite'::jsonb, 'x', track => 'other'));
RESET trek.hazards;
SELECT trek_current('other'), format_type(atttypid, atttypmod) AS total,
	   to_regclass('orders_paid') AS index
  FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'total';
SELECT step, statement, hazard
  FROM trek_rehearse(trek_plan(jsonb_build_object(
	'20240101_initial_up_a.sql', '-- trek:no-transaction' || chr(10) || 'CREATE INDEX CONCURRENTLY o_c ON orders (id);'),
	'head', track => 'notxn'));
SELECT to_regclass('o_c');
-- a rehearsal that fails: its error, and the session goes on
SELECT * FROM trek_rehearse(trek_plan('{"20240101_initial_up_x.sql": "CREATE TABLE r (i int); SELECT 1/0;"}'::jsonb, 'x', track => 'fails'));
SELECT trek_current('fails'), to_regclass('r');

-- bad input: clear errors
SELECT * FROM trek_check(NULL::jsonb);
SELECT * FROM trek_check('{"format": 1}'::jsonb);
SELECT * FROM trek_rehearse('[]'::jsonb);
SELECT * FROM trek_check(:'fixtures' || '/check', NULL);
SELECT * FROM trek_check(jsonb_build_object('20240101_initial_up_a.sql', 'ALTER TABLE orders ADD COLUMN;'), 'head', track => 'syntax');

RESET client_min_messages;
\c :regress_db
DROP DATABASE regress_trek_check;
