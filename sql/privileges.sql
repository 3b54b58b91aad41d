-- who may read which folder; migrations run as the caller; state is trek's
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set dir :fixtures '/app'
CREATE EXTENSION trek;
\set masked :abs_srcdir '/test/regress/masked.sql'
\i :masked
SELECT current_user AS regress_superuser \gset
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app, regress_trek_reader, regress_trek_nobody;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
CREATE ROLE regress_trek_reader LOGIN IN ROLE pg_read_server_files;
CREATE ROLE regress_trek_nobody LOGIN;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text)
	TO regress_trek_app, regress_trek_reader;
GRANT CREATE ON SCHEMA public TO regress_trek_app;

-- no EXECUTE: no trek
SET ROLE regress_trek_nobody;
SELECT trek_plan(:'dir', 'head');
SELECT trek_current();
RESET ROLE;

-- EXECUTE alone: no folder is allowed yet
SET ROLE regress_trek_app;
SELECT masked(:'dir', $$SELECT trek_plan($1, 'head')$$);
-- a missing folder outside the allowed ones looks the same (nothing leaks)
SELECT trek_plan('/no/such/folder', 'head');
-- the setting is the superuser's
SET trek.allowed_directories = '/';
RESET ROLE;

-- relative entries are refused
SET trek.allowed_directories = 'test/fixtures';
SET trek.allowed_directories = :'dir';
SELECT masked(:'dir', $$SHOW trek.allowed_directories$$);

SET ROLE regress_trek_app;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'two', track => 'app'));
\set VERBOSITY default
SELECT trek_current('app');
-- the migration ran as the caller
SELECT tableowner FROM pg_tables WHERE tablename = 'app_t';
-- but trek's state is not the caller's to touch
SELECT count(*) FROM trek.history;
INSERT INTO trek.history (track, from_revision, to_revision, direction, file, sha256, applied_by, duration)
	VALUES ('app', 'two', 'three', 'up', 'x', 'x', 'me', '0');
SELECT * FROM app_t;
-- ".." does not lead out of the allowed folder
SELECT masked(:'dir' || '/../names', $$SELECT trek_plan($1, 'head')$$);
-- a hand-written plan for another folder is refused too
SELECT jsonb_set(trek_plan(:'dir', 'one', track => 'app'), '{dir}',
				to_jsonb(:'fixtures' || '/names')) AS forged \gset
SELECT masked(:'forged', $$SELECT trek_execute($1::jsonb)$$);
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'initial', track => 'app'));
\set VERBOSITY default
RESET ROLE;

-- symbolic links are resolved before the test: a link inside an allowed
-- folder that points outside it is refused, for folders and for files
-- (test/fixtures/privileges_links: allowed/escape links to ../../names,
-- allowed/own/20220411_rev1_up_rev2.sql to the example folder's, and alias
-- to allowed, all relative links)
\set links :fixtures '/privileges_links'
\set allowed :links '/allowed'
SET trek.allowed_directories = :'allowed';
SET ROLE regress_trek_app;
SELECT masked(:'links' || '/allowed/escape', $$SELECT trek_plan($1, 'head')$$);
SELECT trek_plan(:'links' || '/allowed/own', 'rev1', track => 'links') ->> 'to' AS to;
SELECT masked(:'links' || '/allowed/own', $$SELECT trek_plan($1, 'rev2', track => 'links')$$);
RESET ROLE;
-- an allowed folder that is itself reached through a link is fine
SET ROLE regress_trek_app;
SELECT trek_plan(:'links' || '/alias/own', 'rev1', track => 'links') ->> 'to' AS to;
RESET ROLE;

-- pg_read_server_files may read any folder
RESET trek.allowed_directories;
SET ROLE regress_trek_reader;
SELECT trek_plan(:'fixtures' || '/graph', 'd', track => 'reader') ->> 'to' AS target;
-- a folder that does not know the revision the track is at (the default
-- track is stamped at rev3 of the example folder first)
RESET ROLE;
SELECT trek_stamp(:'fixtures' || '/example', 'rev3');
SET ROLE regress_trek_reader;
SELECT masked(:'fixtures' || '/graph', $$SELECT trek_plan($1, 'd') ->> 'to'$$) AS target;
RESET ROLE;

SELECT trek_current('app'), count(*), min(applied_by) AS applied_by
  FROM trek.history WHERE track = 'app';

-- before trek is loaded in a session, the setting is only a placeholder that
-- anyone may set; loading trek must not honour a non-superuser's value
\c - regress_trek_app
SET regress.abs_srcdir = :'abs_srcdir';
SET trek.allowed_directories = '/';
SELECT masked(:'dir', $$SELECT trek_plan($1, 'head')$$);
SHOW trek.allowed_directories;

\c - :regress_superuser
DROP FUNCTION masked(text, text);
DROP EXTENSION trek;

-- leave no role behind
DROP OWNED BY regress_trek_app, regress_trek_reader, regress_trek_nobody;
DROP ROLE regress_trek_app, regress_trek_reader, regress_trek_nobody;
