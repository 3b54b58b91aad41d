-- folders sent by the client: every function that takes a folder on the
-- server also takes the folder itself as jsonb (file name -> text), and no
-- server file is read for it, so a role without pg_read_server_files and
-- outside trek.allowed_directories migrates with it; what is too large for
-- a regress file (a folder over the total) is in test_sent.py
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_sender;
RESET client_min_messages;
CREATE ROLE regress_trek_sender LOGIN;
\set regress_db :DBNAME
CREATE DATABASE regress_trek_sent;
\c regress_trek_sent
CREATE EXTENSION trek;
CREATE EXTENSION plpython3u;
-- each applied step's NOTICE says how long it took: not shown
SET client_min_messages = warning;
-- the GRANT block of README's first app
GRANT EXECUTE ON FUNCTION
	trek_plan(jsonb, text, text, text), trek_execute(jsonb),
	trek_status(jsonb, text), trek_verify(jsonb, text),
	trek_stamp(jsonb, text, text), trek_graph(jsonb, text, text),
	trek_current(text), trek_runs(text)
	TO regress_trek_sender;
GRANT EXECUTE ON PROCEDURE trek_migrate(jsonb, text, text, text),
	trek_migrate(jsonb) TO regress_trek_sender;
GRANT CREATE ON SCHEMA public TO regress_trek_sender;

-- a folder as a client builds it: an enum value added in one step and used
-- in the next, an index built concurrently, a file in a subfolder and one
-- that is no migration
SELECT jsonb_build_object(
	'20240101_initial_up_a.sql', E'CREATE TYPE mood AS ENUM (''ok'');\nCREATE TABLE people (id int PRIMARY KEY, name text, m mood);\n',
	'20240101_a_down_initial.sql', E'DROP TABLE people;\nDROP TYPE mood;\n',
	'20240102_a_up_b.sql', E'ALTER TYPE mood ADD VALUE ''great'';\n',
	'20240103_b_up_c.sql', E'INSERT INTO people VALUES (1, ''ada'', ''great'');\n',
	'20240103_c_down_b.sql', E'DELETE FROM people;\n',
	'20240104_c_up_d.sql', E'-- trek:no-transaction\nCREATE INDEX CONCURRENTLY people_name_idx ON people (name);\n',
	'notes/20240109_d_up_z.sql', 'this subfolder is not the folder',
	'README.md', '# migrations') AS folder \gset

SET ROLE regress_trek_sender;
-- a plan made from it names no server folder and carries its steps' texts
SELECT p ->> 'dir' AS dir, p ->> 'from' AS "from", p ->> 'to' AS "to",
	   jsonb_array_length(p -> 'steps') AS steps,
	   p -> 'steps' -> 0 ->> 'file' AS first_file,
	   p -> 'steps' -> 0 ->> 'text' = (:'folder'::jsonb ->> (p -> 'steps' -> 0 ->> 'file')) AS text_carried,
	   p -> 'steps' -> 0 ->> 'sha256' = encode(sha256(convert_to(p -> 'steps' -> 0 ->> 'text', 'UTF8')), 'hex') AS sha_of_text
  FROM trek_plan(:'folder'::jsonb, 'head') AS p;
-- trek_execute runs one transaction: it refuses the plan's step outside one
SELECT trek_execute(trek_plan(:'folder'::jsonb, 'head'));
SELECT trek_current();
-- trek_migrate commits each step: the enum value is used after its commit
CALL trek_migrate(:'folder'::jsonb, 'head');
SELECT trek_current();
SELECT * FROM people ORDER BY id;
SELECT indexname FROM pg_indexes WHERE tablename = 'people';
SELECT track, dir, call, state, steps_done FROM trek_runs();
SELECT * FROM trek_status(:'folder'::jsonb);
SELECT trek_verify(:'folder'::jsonb);
SELECT trek_graph(:'folder'::jsonb);
RESET ROLE;
-- a history row says where its step came from
SELECT id, to_revision, direction, file, dir, applied_by FROM trek.history ORDER BY id;

-- Python steps from a sent folder (as a superuser: plpython3u is untrusted),
-- forward with trek_migrate, back with a plan and trek_execute
SELECT :'folder'::jsonb || jsonb_build_object(
	'20240105_d_up_e.py', E'def run_migration(conn):\n    conn.execute("INSERT INTO people VALUES (2, $1, $2)", "grace", "ok")\n',
	'20240105_e_down_d.py', E'async def run_migration(conn):\n    await conn.execute("DELETE FROM people WHERE id = 2")\n') AS pyfolder \gset
CALL trek_migrate(:'pyfolder'::jsonb, 'head');
SELECT count(*) FROM people;
SELECT trek_execute(trek_plan(:'pyfolder'::jsonb, 'd'));
SELECT count(*), trek_current() FROM people;

-- drift: a changed file and a missing one, seen by status and verify
SELECT jsonb_set(:'folder'::jsonb - '20240103_b_up_c.sql', '{20240102_a_up_b.sql}',
				 '"ALTER TYPE mood ADD VALUE ''fine'';"') AS drifted \gset
SET ROLE regress_trek_sender;
SELECT changed_files, missing_files FROM trek_status(:'drifted'::jsonb);
SELECT trek_verify(:'drifted'::jsonb);

-- planning refuses to go on from changed or missing applied files, even
-- when there is nothing to do; trek.check_applied off lets it
SELECT trek_plan(:'drifted'::jsonb, 'head');
CALL trek_migrate(:'drifted'::jsonb, 'head');
SELECT trek_execute(trek_plan(:'drifted'::jsonb, 'c'));
SELECT trek_current();
SET trek.check_applied = off;
SELECT trek_plan(:'drifted'::jsonb, 'd') ->> 'direction' AS direction;
RESET trek.check_applied;

-- a stamp from a sent folder
SELECT trek_stamp(:'folder'::jsonb, 'c', track => 'stamped');

-- a plan cannot be fed other SQL than was planned: a changed text is
-- refused when its step runs (trek_execute: nothing applied; trek_migrate:
-- the steps before it committed), a missing or doubled one before anything
SELECT jsonb_build_object(
	'20240101_initial_up_x.sql', 'CREATE TABLE tiny (i int);',
	'20240102_x_up_y.sql', 'INSERT INTO tiny VALUES (1);',
	'20240103_y_up_z.sql', 'INSERT INTO tiny VALUES (2);') AS tiny \gset
SELECT trek_plan(:'tiny'::jsonb, 'z', track => 'other') AS plan \gset
SELECT trek_execute(jsonb_set(:'plan'::jsonb, '{steps,1,text}', '"CREATE TABLE evil (i int);"'));
SELECT trek_execute(:'plan'::jsonb #- '{steps,0,text}');
SELECT trek_execute(jsonb_set(:'plan'::jsonb, '{steps,0,text}', '1'));
SELECT trek_execute(jsonb_set(:'plan'::jsonb, '{steps,1}', :'plan'::jsonb -> 'steps' -> 0));
SELECT trek_current('other'), to_regclass('tiny'), to_regclass('evil');
CALL trek_migrate(jsonb_set(:'plan'::jsonb, '{steps,2,text}', '"CREATE TABLE evil (i int);"'));
SELECT trek_current('other'), to_regclass('evil'), (SELECT array_agg(i) FROM tiny);
-- the plan as it was made goes on from there
CALL trek_migrate(:'plan'::jsonb);
SELECT trek_current('other'), (SELECT array_agg(i ORDER BY i) FROM tiny);
RESET ROLE;
SELECT track, to_revision, direction, file, dir FROM trek.history
 WHERE track IN ('stamped', 'other') ORDER BY id;
-- nor can a plan of a server folder bring text of its own
SELECT trek_execute(jsonb_set(jsonb_set(:'plan'::jsonb, '{dir}', '"/srv"'), '{steps,0,text}', '"SELECT 1;"'));

--
-- bad input: a clear error, and nothing applied
--
SET ROLE regress_trek_sender;
SELECT trek_plan('[]'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('"a folder"'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan(NULL::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
-- a folder where a plan goes
CALL trek_migrate(:'tiny'::jsonb);
\echo :LAST_ERROR_SQLSTATE
CALL trek_migrate('{}'::jsonb, 'head', track => 'bad');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"20240101_initial_up_a.sql": 42}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"20240101_initial_up_a.sql": null}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"20240101_initial_up_a.sql": {"text": "x"}}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"": "x"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"/srv/app/20240101_initial_up_a.sql": "x"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"../20240101_initial_up_a.sql": "x"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"a/./b.sql": "x"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"a//b.sql": "x"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
-- the same name with a trailing slash, as a folder of that name would be
SELECT trek_plan('{"20240101_initial_up_a.sql": "x", "20240101_initial_up_a.sql/": "y"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan(jsonb_build_object(repeat('x', 256) || '.sql', ''), 'head');
\echo :LAST_ERROR_SQLSTATE
-- jsonb itself holds neither NUL nor text invalid in the database encoding
SELECT trek_plan('{"a\u0000.sql": "x"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan('{"20240101_initial_up_a.sql": "a\u0000b"}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
-- a file over trek.max_file_size (kB): planning hashes it, running reads it
RESET ROLE;
SET trek.max_file_size = 1;
SELECT trek_plan(jsonb_build_object('20240101_initial_up_a.sql', repeat('-', 2000)), 'head', track => 'bad');
\echo :LAST_ERROR_SQLSTATE
CALL trek_migrate(jsonb_build_object('20240101_initial_up_a.sql', repeat('-', 2000)), 'head', track => 'bad');
\echo :LAST_ERROR_SQLSTATE
RESET trek.max_file_size;
SET ROLE regress_trek_sender;
-- a statement that cannot run in a transaction block, without the marker
SELECT trek_plan(jsonb_build_object('20240101_initial_up_a.sql', 'CREATE TABLE ci (i int);',
	'20240102_a_up_b.sql', 'CREATE INDEX CONCURRENTLY ci_i ON ci (i);'), 'head', track => 'ci') AS ci \gset
CALL trek_migrate(:'ci'::jsonb);
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('ci');
-- the rules of server folders: no "initial", an unknown target
SELECT trek_plan('{"20240101_a_up_b.sql": ""}'::jsonb, 'head');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan(:'folder'::jsonb, 'nowhere', track => 'bad');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT trek_current('bad'), count(*) FROM trek.history WHERE track = 'bad';
-- the server form is refused to a role that may not read server files,
-- and the error names the sent form
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text) TO regress_trek_sender;
SET ROLE regress_trek_sender;
SELECT trek_plan('/srv/app/migrations', 'head');
RESET ROLE;

\c :regress_db
DROP DATABASE regress_trek_sent;
DROP ROLE regress_trek_sender;
