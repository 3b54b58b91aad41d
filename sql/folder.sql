-- collecting migration folders: the file-name grammar, ignored files,
-- warnings, duplicates and missing folders
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
CREATE EXTENSION trek;

\set masked :abs_srcdir '/test/regress/masked.sql'
\i :masked
\set names :fixtures '/names'

-- "from" is greedy: 20240102_first_up_my_up_rev.sql goes from "first_up_my"
-- to "rev", so "first" has no up migration and is the head.  Hidden files,
-- folders and other extensions are ignored silently; near misses warn,
-- with the folder's full path (test/integration/test_folder.py checks the
-- warnings, so they are kept out of this file's output).
SET client_min_messages = error;
SELECT trek_plan(:'names', 'head') -> 'steps' AS steps;
SELECT trek_plan(:'names', 'head') ->> 'to' AS head;

-- the greedy parse shows in the revisions the folder knows
SELECT trek_plan(:'names', 'rev');
SELECT masked(:'names', $$SELECT trek_plan($1, 'my_up_rev')$$);
SELECT trek_plan(:'names', 'third');

-- revision names are ASCII: "café" is not one, and neither is "typo"
SELECT masked(:'names', $$SELECT trek_plan($1, 'typo')$$);

-- two files for one edge
SELECT masked(:'fixtures' || '/dup', $$SELECT trek_plan($1, 'head')$$);

-- a folder without a migration from "initial"
SELECT masked(:'fixtures' || '/noinitial', $$SELECT trek_plan($1, 'head')$$);

-- missing folder, a file instead of a folder, a relative path, nulls
SELECT masked(:'fixtures' || '/no_such_folder', $$SELECT trek_plan($1, 'head')$$);
SELECT masked(:'names' || '/README.md', $$SELECT trek_plan($1, 'head')$$);
SELECT trek_plan('test/fixtures/names', 'head');
SELECT trek_plan(NULL, 'head');
SELECT trek_plan(:'names', NULL);
SELECT trek_plan(:'names', 'head', NULL);
SELECT trek_plan(:'names', 'head', 'auto', NULL);

-- a trailing slash and "." or ".." give the same canonical folder
SELECT trek_plan(:'names' || '/', 'head') = trek_plan(:'names', 'head') AS same,
	   trek_plan(:'names' || '/./../names/.', 'head') = trek_plan(:'names', 'head') AS same_dotted,
	   (trek_plan(:'names' || '/', 'head') ->> 'dir') = :'names' AS canonical;

-- nothing above wrote anything
SELECT count(*) FROM trek.history;

DROP FUNCTION masked(text, text);
DROP EXTENSION trek;
