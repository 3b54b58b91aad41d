-- trek_execute checks every key and type of a plan before running anything
\getenv abs_srcdir PG_ABS_SRCDIR
\set dir :abs_srcdir '/test/fixtures/example'
CREATE EXTENSION trek;
SELECT trek_plan(:'dir', 'rev2', track => 'plans') AS good \gset

-- the good plan is fine as it is (no key, no type changed); run it later
SELECT (:'good'::jsonb) ? 'steps' AS has_steps;

-- not an object, nulls, missing keys, wrong types
SELECT trek_execute(NULL);
SELECT trek_execute('[]');
SELECT trek_execute('"plan"');
SELECT trek_execute('{}');
SELECT trek_execute(:'good'::jsonb - 'format');
SELECT trek_execute(jsonb_set(:'good', '{format}', '2'));
SELECT trek_execute(jsonb_set(:'good', '{format}', '"1"'));
SELECT trek_execute(jsonb_set(:'good', '{format}', '1.5'));
SELECT trek_execute(jsonb_set(:'good', '{format}', '1.000001'));
-- the format is the number 1, however it is written
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(jsonb_set(:'good', '{format}', '1.0'));
\set VERBOSITY default
ROLLBACK;
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(jsonb_set(:'good', '{format}', '1e0'));
\set VERBOSITY default
ROLLBACK;
SELECT trek_execute(:'good'::jsonb - 'track');
SELECT trek_execute(jsonb_set(:'good', '{track}', 'null'));
SELECT trek_execute(jsonb_set(:'good', '{dir}', '42'));
SELECT trek_execute(jsonb_set(:'good', '{from}', '"x; DROP TABLE y"'));
SELECT trek_execute(jsonb_set(:'good', '{to}', '""'));
SELECT trek_execute(jsonb_set(:'good', '{direction}', '"sideways"'));
SELECT trek_execute(jsonb_set(:'good', '{steps}', '{}'));
SELECT trek_execute(jsonb_set(:'good', '{steps}', '[]'));
SELECT trek_execute(:'good'::jsonb - 'steps');
SELECT trek_execute(jsonb_set(:'good', '{steps,0}', '"step"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,1}', 'null'));
SELECT trek_execute(:'good'::jsonb #- '{steps,0,sha256}');
SELECT trek_execute(jsonb_set(:'good', '{steps,0,sha256}', '"abc"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,sha256}', to_jsonb(upper(:'good'::jsonb #>> '{steps,0,sha256}'))));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '-1'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,direction}', '"down"'));
-- steps out of order, a step missing, a step too many
SELECT trek_execute(jsonb_set(jsonb_set(:'good', '{steps,0}', :'good'::jsonb #> '{steps,1}'),
							  '{steps,1}', :'good'::jsonb #> '{steps,0}'));
SELECT trek_execute(:'good'::jsonb #- '{steps,1}');
SELECT trek_execute(jsonb_insert(:'good', '{steps,2}', :'good'::jsonb #> '{steps,1}'));
-- a file that is not the step's migration, or outside the folder
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"20220410_rev1_down_initial.sql"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"../names/20240101_initial_up_rev1.sql"'));
SELECT trek_execute(jsonb_set(:'good', '{steps,0,file}', '"/etc/20220410_initial_up_rev1.sql"'));
-- a step whose revisions disagree with its file name
SELECT trek_execute(jsonb_set(jsonb_set(:'good', '{steps,0,to}', '"rev9"'), '{steps,1,from}', '"rev9"'));
-- "none" plans have no steps
SELECT trek_execute(jsonb_set(:'good', '{direction}', '"none"'));
-- a huge array of nonsense
SELECT trek_execute(jsonb_set(:'good', '{steps}', (SELECT jsonb_agg(i) FROM generate_series(1, 100000) i)));

-- nothing was applied by any of them
SELECT trek_current('plans'), count(*) FROM trek.history WHERE track = 'plans';
SELECT to_regclass('people') AS people;

-- extra keys are allowed; the untouched plan runs, and the same plan again
-- finds the work done
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(jsonb_set(:'good', '{comment}', '"added by hand"'));
\set VERBOSITY default
SELECT trek_current('plans');
\set VERBOSITY terse
SELECT trek_execute(:'good');
\set VERBOSITY default
SELECT count(*) FROM trek.history WHERE track = 'plans';
ROLLBACK;
SELECT trek_current('plans'), to_regclass('people') AS people;

DROP EXTENSION trek;
