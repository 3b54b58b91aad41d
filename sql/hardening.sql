-- hostile and broken input: file names, folders, file contents, plans and
-- folders that change between planning and execution.  Fixtures that git
-- cannot hold (modes, links, FIFOs, long names) are made here, under
-- TREK_REGRESS_DIR/hard (next to this run's copy of the fixtures), and
-- removed at the end.  Mode 000 denies even a file's owner (only root
-- ignores modes, and the server never runs as root).
-- Migrations create their tables in schema hard_s, apart from the other
-- tests' tables.
\getenv regress_dir TREK_REGRESS_DIR
\set fixtures :regress_dir '/fixtures'
\set hard :regress_dir '/hard'
\setenv HARD :hard
\setenv FIXTURES :fixtures
\! rm -rf "$HARD" && mkdir -p "$HARD" && chmod 755 "$HARD"
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
-- the longest name a file system allows (255 bytes) is a migration like any
-- other; names with spaces, quotes, ";", non-ASCII letters, an empty
-- revision or upper-case parts warn and are ignored; "_up_" twice splits
-- greedily; an empty "to" after "_up_" and a leading "_" in "to" are
-- told apart
\! mkdir "$HARD/names" && cd "$HARD/names" && echo 'SELECT 1;' > 20240101_initial_up_a.sql && echo 'SELECT 2;' > "20240102_a_up_$(printf 'x%.0s' $(seq 1 237)).sql"
\! cd "$HARD/names" && for n in "20240103_a b_up_c.sql" "20240104_a_up_it's.sql" "20240105_a_up_x;DROP TABLE t.sql" "20240106_a_up_ünï.sql" "20240107__up_c.sql" "20240108_a_Up_c.sql" "20240109_a_up_c.Sql" "20240110_a_up_c.PY" "2024011_a_up_c.sql" "20240111_a_up_.sql" "20240112_a_up_b\"c.sql" "$(printf '20240113_a_up_\377.sql')"; do echo 'SELECT 3;' > "$n"; done
\! cd "$HARD/names" && for n in "20240114_a_up__c.sql" "20240115_a_up_b_up_c.sql" "20240116_a_up_c.sql.orig" "20240117_a_up_c" ".20240118_a_up_c.sql"; do echo 'SELECT 4;' > "$n"; done
SELECT hard_steps(trek_plan(:'hard' || '/names', 'a', track => 'hard'));
SET client_min_messages = error;
SELECT length(trek_plan(:'hard' || '/names', repeat('x', 237), track => 'hard') #>> '{steps,1,file}') AS name_length;
-- "_c" (from 20240114_a_up__c.sql) and "a_up_b" (greedy) are revisions;
-- "b" is not
SELECT trek_plan(:'hard' || '/names', '_c', track => 'hard') #>> '{steps,1,file}' AS leading_underscore;
SELECT trek_plan(:'hard' || '/names', 'b', track => 'hard');
SELECT trek_plan(:'hard' || '/names', 'a_up_b', track => 'hard');
RESET client_min_messages;

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
-- a symbolic link loop, as the folder and as a migration in it; a dangling
-- link named like a migration
\! cd "$HARD" && ln -s loop loop && mkdir linkfile && cp "$FIXTURES/app/20240101_initial_up_one.sql" linkfile/ && ln -s 20240102_one_up_two.sql linkfile/20240102_one_up_two.sql
\! mkdir "$HARD/dangling" && cp "$FIXTURES/app/20240101_initial_up_one.sql" "$HARD/dangling/" && ln -s "$HARD/nowhere.sql" "$HARD/dangling/20240102_one_up_two.sql"
SELECT trek_plan(:'hard' || '/loop', 'head', track => 'hard');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan(:'hard' || '/loop/sub', 'head', track => 'hard');
SELECT trek_plan(:'hard' || '/linkfile', 'head', track => 'hard');
\echo :LAST_ERROR_SQLSTATE
SELECT trek_plan(:'hard' || '/dangling', 'head', track => 'hard');
-- a folder and a file the server may not read (mode 000), and a folder it
-- may not enter
\! cp -R "$FIXTURES/app" "$HARD/closed" && chmod 000 "$HARD/closed"
\! cp -R "$FIXTURES/app" "$HARD/closedfile" && chmod 000 "$HARD/closedfile/20240102_one_up_two.sql"
\! mkdir -p "$HARD/noentry/inner" && cp "$FIXTURES/app/"* "$HARD/noentry/inner/" && chmod 000 "$HARD/noentry"
SELECT trek_plan(:'hard' || '/closed', 'head', track => 'hard');
SELECT trek_plan(:'hard' || '/noentry/inner', 'head', track => 'hard');
-- only the files of the plan are opened: "one" is still reachable
SELECT hard_steps(trek_plan(:'hard' || '/closedfile', 'one', track => 'hard'));
SELECT trek_plan(:'hard' || '/closedfile', 'two', track => 'hard');
-- the same paths spelled differently are one folder: trailing slashes,
-- doubled slashes, "." and ".."
SELECT trek_plan(:'fixtures' || '//app///', 'head', track => 'hard') ->> 'dir' AS dir,
	   trek_plan(:'fixtures' || '/./app/../app/.', 'head', track => 'hard') ->> 'dir' AS dotted,
	   trek_plan(:'fixtures' || '/app/../../fixtures/app', 'head', track => 'hard') ->> 'dir' AS up_and_down;
-- ".." past the root stays at the root
SELECT trek_plan('/../../..' || :'fixtures' || '/app', 'head', track => 'hard') ->> 'dir' AS past_root;
-- relative and empty paths
SELECT trek_plan('./app', 'head', track => 'hard');
SELECT trek_plan('', 'head', track => 'hard');
-- a folder deeper than MAXPGPATH (1024 bytes) is fine
\! cd "$HARD" && d=long && for i in $(seq 1 12); do d="$d/$(printf 'd%.0s' $(seq 1 99))"; done && mkdir -p "$d" && cp "$FIXTURES/app/"* "$d/" && ln -s "$d" longlink
SELECT length(trek_plan(:'hard' || '/longlink', 'head', track => 'hard') ->> 'dir') AS dir_length;
-- a FIFO named like a migration is not a migration (and opening one would
-- wait for a writer)
\! cp -R "$FIXTURES/app" "$HARD/fifo" && mkfifo "$HARD/fifo/20240103_two_up_three.sql"
SELECT trek_plan(:'hard' || '/fifo', 'head', track => 'hard') ->> 'to' AS head;

-- roles without pg_read_server_files
\! mkdir -p "$HARD/allowed" && cp -R "$FIXTURES/app" "$HARD/allowed/app" && ln -s "$FIXTURES/names/nowhere" "$HARD/allowed/outside_missing" && ln -s "$HARD/allowed/app" "$HARD/allowed/inside" && ln -s loop2 "$HARD/allowed/loop2"
\set allowed :hard '/allowed/'
SET trek.allowed_directories = :'allowed';
SET ROLE regress_trek_app;
-- a missing folder inside the allowed one is explained, a missing one
-- behind a link that leads outside is not (that would tell what exists
-- there), nor is a link loop
SELECT trek_plan(:'hard' || '/allowed/missing', 'head', track => 'hard');
SELECT trek_plan(:'hard' || '/allowed/outside_missing', 'head', track => 'hard');
SELECT trek_plan(:'hard' || '/allowed/outside_missing/deeper', 'head', track => 'hard');
SELECT trek_plan(:'hard' || '/allowed/loop2', 'head', track => 'hard');
-- ".." out of a link is resolved lexically first: this is the allowed folder
SELECT trek_plan(:'hard' || '/allowed/inside/..', 'head', track => 'hard');
SELECT trek_plan(:'hard' || '/allowed/inside/../../allowed/app', 'one', track => 'hard_app') ->> 'to' AS to;
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
\! mkdir "$HARD/ok" && cd "$HARD/ok" && printf '\357\273\277-- only a BOM and a comment\n' > 20240101_initial_up_bom.sql
\! cd "$HARD/ok" && printf 'CREATE TABLE hard_t (s text);\nINSERT INTO hard_t VALUES ($$\n\\\\ not a meta-command\n\\.\n$$);\nINSERT INTO hard_t VALUES (E'"'"'\\\\\n\\\\q'"'"');\nCREATE TABLE "odd\\\\name" (id int);\n' > 20240102_bom_up_text.sql
\! cd "$HARD/ok" && printf 'CREATE FUNCTION hard_atomic() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\nCREATE PROCEDURE hard_commit() LANGUAGE plpgsql AS $$\nBEGIN\n  COMMIT;\nEND\n$$;\n' > 20240103_text_up_bodies.sql
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'hard' || '/ok', 'head', track => 'hard_ok'));
\set VERBOSITY default
SELECT s FROM hard_t ORDER BY s;
SELECT hard_atomic(), to_regclass('"odd\\name"') IS NOT NULL AS odd_table;
ROLLBACK;
-- what must fail, with nothing left behind: transaction control hidden in
-- a DO block or a procedure, statements that cannot run in a transaction
\! mkdir "$HARD/bad" && cd "$HARD/bad" && printf 'CREATE TABLE hard_bad_t (id int);\nDO $$ BEGIN COMMIT; END $$;\n' > 20240101_initial_up_docommit.sql
\! cd "$HARD/bad" && printf 'CREATE TABLE hard_bad_t (id int);\nCREATE PROCEDURE hard_p() LANGUAGE plpgsql AS $$ BEGIN COMMIT; END $$;\nCALL hard_p();\n' > 20240102_initial_up_callcommit.sql
\! cd "$HARD/bad" && printf 'CREATE TABLE hard_bad_t (id int);\nVACUUM hard_bad_t;\n' > 20240103_initial_up_vacuum.sql
\! cd "$HARD/bad" && printf 'CREATE TABLE hard_bad_t (id int);\n\n\nCREATE INDEX CONCURRENTLY ON hard_bad_t (id);\n' > 20240104_initial_up_concurrently.sql
\! cd "$HARD/bad" && printf '\357\273\277CREATE TABLE hard_bad_t (id int);\r\n\r\n\\set x 1\r\n' > 20240105_initial_up_bommeta.sql
\! cd "$HARD/bad" && printf 'CREATE TABLE hard_bad_t (id int);\nSELECT 1;\nSELECT $$unterminated;\n' > 20240106_initial_up_unterminated.sql
\! cd "$HARD/bad" && printf 'CREATE TABLE hard_bad_t (id int);\n-- caf\303\251 is fine, the next byte is not\nSELECT 1; -- \303\n' > 20240107_initial_up_truncated.sql
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'docommit', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'callcommit', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'vacuum', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'concurrently', track => 'hard_bad'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'bommeta', track => 'hard_bad'));
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'unterminated', track => 'hard_bad'));
SELECT trek_execute(trek_plan(:'hard' || '/bad', 'truncated', track => 'hard_bad'));
SELECT to_regclass('hard_bad_t') AS hard_bad_t, to_regprocedure('hard_p()') AS hard_p,
	   trek_current('hard_bad');
-- a migration may not run trek_execute() itself (it would re-apply its own
-- step, again and again)
\! mkdir "$HARD/nested" && echo "CREATE TABLE hard_nested_t (id int); SELECT trek_execute(trek_plan('$HARD/nested', 'head', track => 'hard_nested'));" > "$HARD/nested/20240101_initial_up_a.sql"
SELECT trek_execute(trek_plan(:'hard' || '/nested', 'head', track => 'hard_nested'));
-- and the next call in the session works
SELECT trek_current('hard_nested'), to_regclass('hard_nested_t') AS hard_nested_t;
-- files larger than trek.max_file_size are refused when planning
\! mkdir "$HARD/size" && cd "$HARD/size" && { echo 'CREATE TABLE hard_size_t (id int);'; head -c 3000 /dev/zero | tr '\0' ' '; echo; } > 20240101_initial_up_a.sql
SET trek.max_file_size = '2kB';
SELECT trek_plan(:'hard' || '/size', 'head', track => 'hard_size');
RESET trek.max_file_size;
SHOW trek.max_file_size;
SELECT hard_steps(trek_plan(:'hard' || '/size', 'head', track => 'hard_size'));
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
SELECT trek_execute(jsonb_set(:'good', '{dir}', to_jsonb(:'fixtures' || '/app')));
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
-- The folder changes between planning and execution
--
\set moving :hard '/moving'
\setenv MOVING :moving
\! cp -R "$FIXTURES/example" "$MOVING"
SELECT trek_plan(:'moving', 'rev2', track => 'hard_moving') AS plan \gset
-- (step 1 runs each time before step 2 fails; its NOTICE carries a timing)
SET client_min_messages = warning;
-- renamed
\! mv "$MOVING/20220411_rev1_up_rev2.sql" "$MOVING/20220411_rev1_up_rev2.sql.moved"
SELECT trek_execute(:'plan');
\! mv "$MOVING/20220411_rev1_up_rev2.sql.moved" "$MOVING/20220411_rev1_up_rev2.sql"
-- replaced by a FIFO (refused without waiting for a writer), by a folder,
-- by a link to the same contents
\! mv "$MOVING/20220411_rev1_up_rev2.sql" "$HARD/saved.sql" && mkfifo "$MOVING/20220411_rev1_up_rev2.sql"
SELECT trek_execute(:'plan');
\! rm "$MOVING/20220411_rev1_up_rev2.sql" && mkdir "$MOVING/20220411_rev1_up_rev2.sql"
SELECT trek_execute(:'plan');
\! rmdir "$MOVING/20220411_rev1_up_rev2.sql" && ln -s "$HARD/saved.sql" "$MOVING/20220411_rev1_up_rev2.sql"
-- (superusers may follow links anywhere; others only inside allowed folders)
SET trek.allowed_directories = :'moving';
SET ROLE regress_trek_app;
SELECT trek_execute(:'plan');
RESET ROLE;
RESET trek.allowed_directories;
RESET client_min_messages;
SELECT trek_current('hard_moving'), to_regclass('hard_s.people') AS people;
-- the whole folder gone, or replaced by a file
\! mv "$MOVING" "$MOVING.away" && touch "$MOVING"
SELECT trek_execute(:'plan');
\! rm "$MOVING" && mv "$MOVING.away" "$MOVING"
-- a new file: the plan does not include it, and still runs
\! echo 'CREATE TABLE hard_new_t (id int);' > "$MOVING/20220411_rev1_up_sideways.sql"
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(:'plan');
\set VERBOSITY default
SELECT trek_current('hard_moving'), to_regclass('hard_new_t') AS hard_new_t,
	   (SELECT count(*) FROM people) AS people;
ROLLBACK;
SELECT trek_current('hard_moving'), count(*) FROM trek.history WHERE track = 'hard_moving';

-- clean up (modes first, so that rm can enter everything)
\! chmod -R u+rwx "$HARD" 2>/dev/null; rm -rf "$HARD"
RESET search_path;
DROP SCHEMA hard_s CASCADE;
SELECT count(*) FILTER (WHERE track LIKE 'hard%') AS hard_history FROM trek.history;
