-- hostile and broken input: folders, file contents and plans.  The
-- fixtures are the folders test/fixtures/hardening_*.  What git cannot hold
-- (odd file names, modes, FIFOs, link loops, absolute links, very deep
-- folders) and folders that change between planning and execution are
-- tested in test/integration/test_hardening_files.py.
-- Migrations create their tables in schema hard_s, apart from the other
-- tests' tables.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
CREATE EXTENSION trek;

\set masked :abs_srcdir '/test/regress/masked.sql'
\i :masked
-- (masked.sql hides the context of errors; only masked()'s need that)
\set SHOW_CONTEXT errors
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text) TO regress_trek_app;
CREATE SCHEMA hard_s;
GRANT USAGE, CREATE ON SCHEMA hard_s TO regress_trek_app;
SET search_path = hard_s, public;

-- a helper: the revisions of a plan as one line
CREATE FUNCTION hard_steps(plan jsonb) RETURNS text LANGUAGE sql AS
$$ SELECT coalesce(string_agg(s ->> 'file', ', ' ORDER BY n), '(none)')
     FROM jsonb_array_elements(plan -> 'steps') WITH ORDINALITY AS a(s, n) $$;

--
-- File names
--
-- (odd file names, one of them not UTF-8, and a name of 255 bytes: see
-- test/integration/test_hardening_files.py)

-- revision names and tracks never reach SQL as text: a target that is not
-- a revision name is refused before anything runs, and any track name is a
-- plain value
SELECT trek_plan(:'fixtures' || '/app', 'x''; DROP TABLE trek.history; --', track => 'hard');
SELECT trek_plan(:'fixtures' || '/app', 'ünï', track => 'hard');
SELECT trek_plan(:'fixtures' || '/app', '', track => 'hard');
SELECT trek_plan(:'fixtures' || '/app', repeat('x', 100000), track => 'hard') IS NULL;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => $t$x'); DROP TABLE trek.history; --$t$));
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => ''));
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'initial', track => $t$x'); DROP TABLE trek.history; --$t$));
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'initial', track => ''));
\set VERBOSITY default
SELECT track, from_revision, to_revision FROM trek.history
 WHERE track IN ('', $t$x'); DROP TABLE trek.history; --$t$) ORDER BY id;

--
-- Folders
--
-- (link loops, dangling links and folders or files the server may not
-- read: test/integration/test_hardening_files.py)
-- the same paths spelled differently are one folder: trailing slashes,
-- doubled slashes, "." and ".."
\set SHOW_CONTEXT never
SELECT masked(:'fixtures', $$SELECT concat_ws(' | ',
	   trek_plan($1 || '//app///', 'head', track => 'hard') ->> 'dir',
	   trek_plan($1 || '/./app/../app/.', 'head', track => 'hard') ->> 'dir',
	   trek_plan($1 || '/app/../../fixtures/app', 'head', track => 'hard') ->> 'dir')$$)
	   AS "dir | dotted | up_and_down";
-- ".." past the root stays at the root
SELECT masked(:'fixtures', $$SELECT trek_plan('/../../..' || $1 || '/app', 'head', track => 'hard') ->> 'dir'$$) AS past_root;
\set SHOW_CONTEXT errors
-- relative and empty paths
SELECT trek_plan('./app', 'head', track => 'hard');
SELECT trek_plan('', 'head', track => 'hard');
-- (a folder deeper than MAXPGPATH and a FIFO named like a migration:
-- test/integration/test_hardening_files.py)

-- roles without pg_read_server_files
-- (hardening_allowed/inside is a link to hardening_allowed/app)
\set allowed :fixtures '/hardening_allowed/'
SET trek.allowed_directories = :'allowed';
SET ROLE regress_trek_app;
-- a missing folder inside the allowed one is explained (a missing one
-- behind a link that leads outside is not, nor is a link loop:
-- test/integration/test_hardening_files.py)
\set SHOW_CONTEXT never
SELECT masked(:'fixtures', $$SELECT trek_plan($1 || '/hardening_allowed/missing', 'head', track => 'hard')$$);
-- ".." out of a link is resolved lexically first: this is the allowed folder
SELECT masked(:'fixtures', $$SELECT trek_plan($1 || '/hardening_allowed/inside/..', 'head', track => 'hard')$$);
\set SHOW_CONTEXT errors
SELECT trek_plan(:'fixtures' || '/hardening_allowed/inside/../../hardening_allowed/app', 'one', track => 'hard_app') ->> 'to' AS to;
-- relative paths are refused before any check
SELECT trek_plan('allowed/app', 'head', track => 'hard');
RESET ROLE;
-- an allowed entry of "/" allows everything
SET trek.allowed_directories = '/';
SET ROLE regress_trek_app;
SELECT trek_plan(:'fixtures' || '/app', 'one', track => 'hard_app') ->> 'to' AS to;
RESET ROLE;
RESET trek.allowed_directories;

--
-- File contents
--
-- what must run: a UTF-8 byte order mark before a comment, backslashes and
-- "\." at line starts inside dollar quotes, E'' strings and identifiers,
-- BEGIN ATOMIC bodies, COMMIT inside function bodies that are only created
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_ok', 'head', track => 'hard_ok'));
\set VERBOSITY default
SELECT s FROM hard_t ORDER BY s;
SELECT hard_atomic(), to_regclass('"odd\\name"') IS NOT NULL AS odd_table;
ROLLBACK;
-- what must fail, with nothing left behind: transaction control hidden in
-- a DO block or a procedure, statements that cannot run in a transaction
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'docommit', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'callcommit', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'vacuum', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'concurrently', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'bommeta', track => 'hard_bad'));
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'unterminated', track => 'hard_bad'));
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_bad', 'truncated', track => 'hard_bad'));
SELECT to_regclass('hard_bad_t') AS hard_bad_t, to_regprocedure('hard_p()') AS hard_p,
	   trek_current('hard_bad');
-- a migration may not run trek_execute() itself (it would re-apply its own
-- step, again and again); the migration finds its folder through the
-- setting masked.sql made
SELECT trek_execute(trek_plan(:'fixtures' || '/hardening_nested', 'head', track => 'hard_nested'));
-- and the next call in the session works
SELECT trek_current('hard_nested'), to_regclass('hard_nested_t') AS hard_nested_t;
-- files larger than trek.max_file_size are refused when planning
-- (hardening_size/20240101_initial_up_a.sql has 3036 bytes)
SET trek.max_file_size = '2kB';
\set SHOW_CONTEXT never
SELECT masked(:'fixtures', $$SELECT trek_plan($1 || '/hardening_size', 'head', track => 'hard_size')$$);
\set SHOW_CONTEXT errors
RESET trek.max_file_size;
SHOW trek.max_file_size;
SELECT hard_steps(trek_plan(:'fixtures' || '/hardening_size', 'head', track => 'hard_size'));
SET ROLE regress_trek_app;
SET trek.max_file_size = '1GB';
RESET ROLE;

--
-- Plans
--
\set dir :fixtures '/example'
SELECT trek_plan(:'dir', 'rev2', track => 'hard_plans') AS good \gset
-- wrong types and values at every key
SELECT trek_execute(jsonb_set(:'good', '{format}', '-1'));
SELECT trek_execute(jsonb_set(:'good', '{format}', '1.5'));
SELECT trek_execute(jsonb_set(:'good', '{format}', 'true'));
SELECT trek_execute(jsonb_set(:'good', '{track}', '["a"]'));
SELECT trek_execute(jsonb_set(:'good', '{from}', '{"rev": 1}'));
SELECT trek_execute(jsonb_set(:'good', '{to}', '-5'));
SELECT trek_execute(jsonb_set(:'good', '{direction}', 'null'));
SELECT trek_execute(jsonb_set(:'good', '{steps}', '"[]"'));
SELECT trek_execute(jsonb_set(:'good', '{steps}', 'null'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,from}', '0'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,to}', 'false'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,direction}', '["up"]'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0}', '[[[[[[[[[[[]]]]]]]]]]]'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0}', '{}'));
-- the folder: relative, empty, another folder than the steps' files
SELECT trek_execute(jsonb_set(:'good', '{dir}', '"fixtures/example"'));
SELECT trek_execute(jsonb_set(:'good', '{dir}', '""'));
-- (its context, the step, is checked in test/integration/test_hardening_files.py)
\set SHOW_CONTEXT never
SELECT masked(:'fixtures', format($$SELECT trek_execute(jsonb_set(%L, '{dir}', to_jsonb($1 || '/app')))$$, :'good'));
\set SHOW_CONTEXT errors
-- step files outside the plan's folder, or not migration files at all
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"../example/20220410_initial_up_rev1.sql"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"./20220410_initial_up_rev1.sql"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '".."'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"20220410_initial_up_rev1.sql\u0001"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"20220410_initial_UP_rev1.sql"'));
-- huge values and arrays: a long track, many steps of a long chain
SELECT trek_execute(jsonb_set(jsonb_set(:'good', '{track}', to_jsonb(repeat('t', 1000000))),
							  '{steps,0,sha256}', '"0"'));
SELECT trek_execute(jsonb_set(jsonb_set(:'good', '{steps}',
	(SELECT jsonb_agg(jsonb_build_object('file', format('20220410_r%s_up_r%s.sql', i, i + 1),
										 'from', 'r' || i, 'to', 'r' || (i + 1),
										 'direction', 'up', 'sha256', repeat('0', 64)))
	   FROM generate_series(0, 99999) AS i)),
	'{from}', '"r0"') || '{"to": "r100000"}');
-- every string a plan carries is bounded before it is copied, read or
-- written: 255 bytes for a track, a file or a revision name, 4095 for the
-- folder; and at most 500,000 steps
SELECT trek_execute(jsonb_set(:'good', '{track}', to_jsonb(repeat('t', 256))));
SELECT trek_execute(jsonb_set(:'good', '{dir}', to_jsonb('/' || repeat('d', 4095))));
SELECT trek_execute(jsonb_set(:'good', '{from}', to_jsonb(repeat('r', 256))));
SELECT trek_execute(jsonb_set(:'good', '{direction}', to_jsonb(repeat('u', 256))));
SELECT trek_execute(jsonb_set(:'good', '{steps,1,file}',
							  to_jsonb('20220411_rev1_up_' || repeat('r', 300) || '.sql')));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,sha256}', to_jsonb(repeat('0', 1000000))));
SELECT trek_execute(jsonb_set(:'good', '{steps}',
							  (SELECT jsonb_agg(0) FROM generate_series(1, 500001))));
-- a track name of 255 bytes is one like any other; of 256, every function
-- refuses it
SELECT trek_current(repeat('t', 255));
SELECT trek_current(repeat('t', 256));
SELECT trek_plan(:'dir', 'rev2', track => repeat('t', 256));
CALL trek_migrate(:'dir', 'rev2', track => repeat('t', 256));
SELECT * FROM trek_status(:'dir', repeat('t', 256));
SELECT trek_stamp(:'dir', 'rev1', repeat('t', 256));
-- a folder path with a component longer than a file name may be: too
-- long (42622), not an internal error
\set VERBOSITY sqlstate
SELECT trek_plan(:'fixtures' || '/' || repeat('a', 256), 'head');
SELECT trek_execute(jsonb_set(:'good', '{dir}', to_jsonb(:'fixtures' || '/' || repeat('a', 256))));
\set VERBOSITY default
-- a plan with direction "none" only checks where the track is
\set VERBOSITY terse
SELECT trek_execute(jsonb_build_object('format', 1, 'track', 'hard_plans', 'dir', :'fixtures' || '/cycle',
	'from', 'initial', 'to', 'initial', 'direction', 'none', 'steps', '[]'::jsonb));
\set VERBOSITY default
-- nothing was applied by any of them
SELECT trek_current('hard_plans'), count(*) FROM trek.history WHERE track = 'hard_plans';
SELECT to_regclass('hard_s.people') AS people;

--
-- The folder changes between planning and execution: see
-- test/integration/test_hardening_files.py
--

-- clean up
RESET search_path;
DROP SCHEMA hard_s CASCADE;
SELECT count(*) FILTER (WHERE track LIKE 'hard%') AS hard_history FROM trek.history;
DROP FUNCTION masked(text, text);
DROP EXTENSION trek;
DROP OWNED BY regress_trek_app;
DROP ROLE regress_trek_app;
