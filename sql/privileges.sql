-- who may read which folder; migrations run as the caller; state is trek's
\getenv regress_dir TREK_REGRESS_DIR
\set fixtures :regress_dir '/fixtures'
\set dir :fixtures '/app'

-- no EXECUTE: no trek
SET ROLE regress_trek_nobody;
SELECT trek_plan(:'dir', 'head');
SELECT trek_current();
RESET ROLE;

-- EXECUTE alone: no folder is allowed yet
SET ROLE regress_trek_app;
SELECT trek_plan(:'dir', 'head');
-- a missing folder outside the allowed ones looks the same (nothing leaks)
SELECT trek_plan('/no/such/folder', 'head');
-- the setting is the superuser's
SET trek.allowed_directories = '/';
RESET ROLE;

-- relative entries are refused
SET trek.allowed_directories = 'test/fixtures';
SET trek.allowed_directories = :'dir';
SHOW trek.allowed_directories;

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
SELECT trek_plan(:'dir' || '/../names', 'head');
-- a hand-written plan for another folder is refused too
SELECT trek_execute(jsonb_set(trek_plan(:'dir', 'one', track => 'app'), '{dir}',
							  to_jsonb(:'fixtures' || '/names')));
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'dir', 'initial', track => 'app'));
\set VERBOSITY default
RESET ROLE;

-- symbolic links are resolved before the test: a link inside an allowed
-- folder that points outside it is refused, for folders and for files
\set scratch :regress_dir '/scratch_links'
\setenv SCRATCH :scratch
\setenv FIXTURES :fixtures
\! rm -rf "$SCRATCH" && mkdir -p "$SCRATCH/allowed/own" && ln -s "$FIXTURES/names" "$SCRATCH/allowed/escape"
\! cp "$FIXTURES/example/20220410_initial_up_rev1.sql" "$SCRATCH/allowed/own/" && ln -s "$FIXTURES/example/20220411_rev1_up_rev2.sql" "$SCRATCH/allowed/own/20220411_rev1_up_rev2.sql"
\set allowed :scratch '/allowed'
SET trek.allowed_directories = :'allowed';
SET ROLE regress_trek_app;
SELECT trek_plan(:'scratch' || '/allowed/escape', 'head');
SELECT trek_plan(:'scratch' || '/allowed/own', 'rev1', track => 'links') ->> 'to' AS to;
SELECT trek_plan(:'scratch' || '/allowed/own', 'rev2', track => 'links');
RESET ROLE;
-- an allowed folder that is itself reached through a link is fine
\! ln -s "$SCRATCH/allowed" "$SCRATCH/alias"
SET ROLE regress_trek_app;
SELECT trek_plan(:'scratch' || '/alias/own', 'rev1', track => 'links') ->> 'to' AS to;
RESET ROLE;
\! rm -rf "$SCRATCH"

-- pg_read_server_files may read any folder
RESET trek.allowed_directories;
SET ROLE regress_trek_reader;
SELECT trek_plan(:'fixtures' || '/graph', 'd', track => 'reader') ->> 'to' AS target;
-- a folder that does not know the revision the track is at
SELECT trek_plan(:'fixtures' || '/graph', 'd') ->> 'to' AS target;
RESET ROLE;

SELECT trek_current('app'), count(*), min(applied_by) AS applied_by
  FROM trek.history WHERE track = 'app';

-- before trek is loaded in a session, the setting is only a placeholder that
-- anyone may set; loading trek must not honour a non-superuser's value
\c - regress_trek_app
SET trek.allowed_directories = '/';
SELECT trek_plan(:'dir', 'head');
SHOW trek.allowed_directories;
