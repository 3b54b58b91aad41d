-- collecting migration folders: the file-name grammar, ignored files,
-- warnings, duplicates and missing folders
\getenv regress_dir TREK_REGRESS_DIR
\set fixtures :regress_dir '/fixtures'
\set names :fixtures '/names'

-- "from" is greedy: 20240102_first_up_my_up_rev.sql goes from "first_up_my"
-- to "rev", so "first" has no up migration and is the head.  Hidden files,
-- folders and other extensions are ignored silently; near misses warn.
SELECT trek_plan(:'names', 'head') -> 'steps' AS steps;
SELECT trek_plan(:'names', 'head') ->> 'to' AS head;
-- (the warnings come with every call; keep them out of the rest)
SET client_min_messages = error;

-- the greedy parse shows in the revisions the folder knows
SELECT trek_plan(:'names', 'rev');
SELECT trek_plan(:'names', 'my_up_rev');
SELECT trek_plan(:'names', 'third');

-- revision names are ASCII: "café" is not one, and neither is "typo"
SELECT trek_plan(:'names', 'typo');

-- two files for one edge
SELECT trek_plan(:'fixtures' || '/dup', 'head');

-- a folder without a migration from "initial"
SELECT trek_plan(:'fixtures' || '/noinitial', 'head');

-- missing folder, a file instead of a folder, a relative path, nulls
SELECT trek_plan(:'fixtures' || '/no_such_folder', 'head');
SELECT trek_plan(:'names' || '/README.md', 'head');
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
