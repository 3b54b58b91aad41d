-- folders of other tools, read as they are: golang-migrate, Flyway, dbmate,
-- goose, sqlx and diesel; each file runs the way its own tool runs it
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
\set regress_db :DBNAME
CREATE DATABASE regress_trek_formats;
\c regress_trek_formats
CREATE EXTENSION trek;
-- each applied step's NOTICE says how long it took: not shown
SET client_min_messages = warning;

-- the chain of a folder, as trek_graph and a plan from "initial" show it
CREATE FUNCTION chain(folder jsonb) RETURNS TABLE (step int, file text, "from" text, "to" text, outside boolean)
LANGUAGE sql AS $$
	SELECT n::int, s ->> 'file', s ->> 'from', s ->> 'to', coalesce((s ->> 'no_transaction')::boolean, false)
	  FROM jsonb_array_elements(trek_plan(folder, 'head', track => 'chain') -> 'steps') WITH ORDINALITY AS t(s, n)
$$;

-- golang-migrate: versions in numeric order (10 after 9), up and down paired
-- by version whatever their titles, a lone CREATE INDEX CONCURRENTLY runs
-- outside a transaction, a file wrapped in BEGIN ... COMMIT runs as one
SELECT jsonb_build_object(
	'000001_create_users.up.sql', E'CREATE TABLE users (id int PRIMARY KEY, email text);\n',
	'000001_drop_users.down.sql', E'DROP TABLE users;\n',
	'000002_users_email_idx.up.sql', E'CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n',
	'000002_users_email_idx.down.sql', E'DROP INDEX CONCURRENTLY users_email_idx;\n',
	'000009_wrapped.up.sql', E'BEGIN;\nCREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);\nINSERT INTO users VALUES (1, ''ada@example.com'');\nCOMMIT;\n',
	'000009_wrapped.down.sql', E'BEGIN;\nDROP TABLE orders;\nDELETE FROM users;\nCOMMIT;\n',
	'000010_note.up.sql', E'ALTER TABLE users ADD COLUMN note text;\n',
	'000010_note.down.sql', E'ALTER TABLE users DROP COLUMN note;\n',
	'README.md', '# not a migration') AS golang \gset
SELECT * FROM chain(:'golang'::jsonb);
SELECT trek_plan(:'golang'::jsonb, 'head') ->> 'tool' AS tool;
-- trek_execute runs one transaction: the step outside one is refused
SELECT trek_execute(trek_plan(:'golang'::jsonb, 'head'));
CALL trek_migrate(:'golang'::jsonb, 'head');
SELECT trek_current();
SELECT indexname FROM pg_indexes WHERE tablename = 'users' ORDER BY 1;
SELECT * FROM users;
SELECT file, from_revision, to_revision, direction FROM trek.history WHERE track = 'default' ORDER BY id;
-- down and up again, by version names
CALL trek_migrate(:'golang'::jsonb, '1');
SELECT trek_current(), to_regclass('orders') IS NULL AS orders_gone,
	   (SELECT count(*) FROM pg_indexes WHERE tablename = 'users') AS indexes;
CALL trek_migrate(:'golang'::jsonb, '-1');
SELECT trek_current(), to_regclass('users') IS NULL AS users_gone;
CALL trek_migrate(:'golang'::jsonb, 'head');
SELECT trek_current();
SELECT * FROM trek_status(:'golang'::jsonb);
SELECT trek_verify(:'golang'::jsonb);
-- a plan's file must be its step's: another version's file is refused
SELECT trek_execute(jsonb_set(trek_plan(:'golang'::jsonb, '1'), '{steps,0,file}', '"000002_users_email_idx.down.sql"'));
SELECT trek_execute(jsonb_set(trek_plan(:'golang'::jsonb, '1'), '{tool}', '"trek"'));
SELECT trek_execute(jsonb_set(trek_plan(:'golang'::jsonb, '1'), '{tool}', '"liquibase"'));
SELECT trek_current();
-- two files of one version and direction
SELECT trek_plan(:'golang'::jsonb || '{"1_again.up.sql": "SELECT 1;"}', 'head');
-- at head with nothing to check, the chain is not built, but what is
-- wrong with the folder is still an error
SET trek.check_applied = off;
SELECT trek_plan(:'golang'::jsonb, 'head') ->> 'direction' AS at_head;
SELECT trek_plan(:'golang'::jsonb || '{"10_again.down.sql": "SELECT 1;"}', 'head');
SELECT trek_plan(:'golang'::jsonb || '{"11_only.down.sql": "SELECT 1;"}', 'head');
SELECT trek_plan(:'golang'::jsonb || '{"11_next.up.sql": "SELECT 1;"}', 'head') ->> 'to' AS "to";
RESET trek.check_applied;
-- golang-migrate sends a file as one query: groups of its statements in
-- BEGIN ... COMMIT commit with the rest, here in the step's transaction;
-- what is left of transaction control is refused, nothing applied
CALL trek_migrate(jsonb_build_object(
	'1_a.up.sql', E'CREATE TABLE ga (i int);\nBEGIN;\nALTER TABLE ga ADD j int;\nCOMMIT;\nSTART TRANSACTION;\nALTER TABLE ga ADD k int;\nEND;\n'), 'head', track => 'groups');
SELECT trek_current('groups'), string_agg(column_name, ',' ORDER BY ordinal_position) AS columns
  FROM information_schema.columns WHERE table_name = 'ga';
CALL trek_migrate(jsonb_build_object(
	'1_a.up.sql', E'CREATE TABLE gb (i int);\nBEGIN;\nALTER TABLE gb ADD j int;\nROLLBACK;\n'), 'head', track => 'groups2');
SELECT trek_current('groups2'), to_regclass('gb') IS NULL AS nothing_applied;

-- Flyway: versions compared part by part (1.9 before 1.10, 1.0 is 1),
-- U files undo, a statement Flyway runs outside a transaction makes the
-- migration run statement by statement outside one, a .conf file says
-- executeInTransaction, and repeatable and misnamed files are not steps
SELECT jsonb_build_object(
	'V1__init.sql', E'CREATE TABLE fw (id int PRIMARY KEY, v text);\n',
	'U1__init.sql', E'DROP TABLE fw;\n',
	'V1.9__nine.sql', E'INSERT INTO fw VALUES (9, ''nine'');\n',
	'V1_10__ten.sql', E'INSERT INTO fw VALUES (10, ''ten'');\n',
	'U1_10__ten.sql', E'DELETE FROM fw WHERE id = 10;\n',
	'V2__index.sql', E'CREATE INDEX CONCURRENTLY fw_v_idx ON fw (v);\n',
	'V3__vacuum.sql', E'INSERT INTO fw VALUES (3, ''three'');\nVACUUM fw;\n',
	'V3__vacuum.sql.conf', E'# run as it is\nexecuteInTransaction=false\n',
	'U3__vacuum.sql', E'DELETE FROM fw WHERE id = 3;\n',
	'V57__readme.md', 'not SQL',
	'v4__lower.sql', 'SELECT 1;') AS flyway \gset
SELECT * FROM chain(:'flyway'::jsonb);
CALL trek_migrate(:'flyway'::jsonb, 'head', track => 'fw');
SELECT trek_current('fw'), (SELECT string_agg(id::text, ',' ORDER BY id) FROM fw) AS ids,
	   (SELECT count(*) FROM pg_indexes WHERE indexname = 'fw_v_idx') AS idx;
-- down by U files: 2 has none
CALL trek_migrate(:'flyway'::jsonb, '1.9', track => 'fw');
CALL trek_migrate(:'flyway'::jsonb, '-1', track => 'fw');
SELECT trek_current('fw'), (SELECT string_agg(id::text, ',' ORDER BY id) FROM fw) AS ids;
CALL trek_migrate(:'flyway'::jsonb || '{"U2__index.sql": "DROP INDEX CONCURRENTLY fw_v_idx;"}', '1.9', track => 'fw');
SELECT trek_current('fw'), (SELECT string_agg(id::text, ',' ORDER BY id) FROM fw) AS ids,
	   (SELECT count(*) FROM pg_indexes WHERE indexname = 'fw_v_idx') AS idx;
-- Flyway refuses transactional and non-transactional statements mixed
SELECT trek_plan(:'flyway'::jsonb || '{"V4__mixed.sql": "CREATE TABLE fw2 (a int);\nCREATE INDEX CONCURRENTLY ON fw2 (a);\n"}', 'head', track => 'fw2');
SELECT trek_plan(:'flyway'::jsonb || '{"V4__mixed.sql.conf": "executeInTransaction = maybe", "V4__mixed.sql": "SELECT 1;"}', 'head', track => 'fw2');
SELECT trek_plan(:'flyway'::jsonb || '{"V1.0__again.sql": "SELECT 1;"}', 'head', track => 'fw2');

-- Flyway's repeatable migrations: after the versioned steps of a run, in
-- order of description, whenever they are new or changed; from the
-- revision to itself, so neither -N nor trek_verify counts them
SELECT jsonb_build_object(
	'V1__t.sql', E'CREATE TABLE rt (id int, v text);\n',
	'U1__t.sql', E'DROP TABLE rt CASCADE;\n',
	'V2__more.sql', E'ALTER TABLE rt ADD COLUMN w text;\n',
	'U2__more.sql', E'ALTER TABLE rt DROP COLUMN w CASCADE;\n',
	'R__rt_view.sql', E'CREATE OR REPLACE VIEW rt_v AS SELECT id FROM rt;\n',
	'R__Rt_count.sql', E'CREATE OR REPLACE FUNCTION rt_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM rt $$;\n') AS rep \gset
SELECT * FROM chain(:'rep'::jsonb);
CALL trek_migrate(:'rep'::jsonb, 'head', track => 'rep');
SELECT trek_current('rep'), rt_count(), to_regclass('rt_v') IS NOT NULL AS view;
SELECT file, from_revision, to_revision, direction FROM trek.history WHERE track = 'rep' ORDER BY id;
-- at head and unchanged: nothing to do
SELECT trek_plan(:'rep'::jsonb, 'head', track => 'rep') ->> 'direction' AS direction;
-- one changed: status says so, and only it runs again
SELECT note FROM trek_status(:'rep'::jsonb || '{"R__rt_view.sql": "CREATE OR REPLACE VIEW rt_v AS SELECT id, v FROM rt;\n"}', 'rep');
CALL trek_migrate(:'rep'::jsonb || '{"R__rt_view.sql": "CREATE OR REPLACE VIEW rt_v AS SELECT id, v FROM rt;\n"}', 'head', track => 'rep');
SELECT string_agg(column_name, ',' ORDER BY ordinal_position) AS view_columns FROM information_schema.columns WHERE table_name = 'rt_v';
SELECT count(*) AS runs_of_view FROM trek.history WHERE track = 'rep' AND file = 'R__rt_view.sql';
SELECT trek_verify(:'rep'::jsonb, 'rep');
-- going back one step undoes V2, not a repeatable
CALL trek_migrate(:'rep'::jsonb, '-1', track => 'rep');
SELECT trek_current('rep');

-- dbmate: the blocks after -- migrate:up and -- migrate:down, whose
-- transaction:false sends the block as one query
SELECT jsonb_build_object(
	'20240101000000_create_notes.sql', E'-- migrate:up\nCREATE TABLE notes (id int PRIMARY KEY, body text);\n\n-- migrate:down\nDROP TABLE notes;\n',
	'20240102000000_notes_body_idx.sql', E'-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY notes_body_idx ON notes (body);\n\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY notes_body_idx;\n',
	'20240103000000_seed.sql', E'-- a comment before the block\n\n--migrate:up\nINSERT INTO notes VALUES (1, ''first'');\n-- migrate:down\nDELETE FROM notes;\n') AS dbmate \gset
SELECT * FROM chain(:'dbmate'::jsonb);
CALL trek_migrate(:'dbmate'::jsonb, 'head', track => 'dbmate');
SELECT trek_current('dbmate'), (SELECT count(*) FROM notes) AS notes,
	   (SELECT count(*) FROM pg_indexes WHERE indexname = 'notes_body_idx') AS idx;
CALL trek_migrate(:'dbmate'::jsonb, 'initial', track => 'dbmate');
SELECT trek_current('dbmate'), to_regclass('notes') IS NULL AS gone;
-- what dbmate refuses, or fails on
SELECT trek_plan(jsonb_build_object('1_a.sql', E'-- migrate:up\nSELECT 1;\n'), 'head', track => 'dbmate2');
SELECT trek_plan(jsonb_build_object('1_a.sql', E'SELECT 0;\n-- migrate:up\nSELECT 1;\n-- migrate:down\n'), 'head', track => 'dbmate2');
SELECT trek_plan(jsonb_build_object('1_a.sql', E'-- migrate:up\nSELECT 1;\n-- migrate:down\n-- migrate:up\nSELECT 2;\n-- migrate:down\n'), 'head', track => 'dbmate2');
SELECT trek_current('dbmate2');

-- goose: annotations in any letter case, StatementBegin blocks, NO
-- TRANSACTION (statement by statement), a missing Down section, Go files
SELECT jsonb_build_object(
	'00001_create_events.sql', E'-- +goose Up\nCREATE TABLE events (id int PRIMARY KEY, kind text);\n-- +goose StatementBegin\nCREATE FUNCTION events_count() RETURNS bigint LANGUAGE plpgsql AS $$\nBEGIN\n    RETURN (SELECT count(*) FROM events);\nEND;\n$$;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP FUNCTION events_count();\nDROP TABLE events;\n',
	'00002_events_idx.sql', E'-- +goose no transaction\n-- +goose up\nCREATE INDEX CONCURRENTLY events_kind_idx ON events (kind);\nCREATE INDEX CONCURRENTLY events_id_kind_idx ON events (id, kind);\n\n-- +goose down\nDROP INDEX CONCURRENTLY events_kind_idx;\nDROP INDEX CONCURRENTLY events_id_kind_idx;\n',
	'00003_seed.sql', E'-- +goose Up\nINSERT INTO events VALUES (1, ''start'');\n') AS goose \gset
SELECT * FROM chain(:'goose'::jsonb);
CALL trek_migrate(:'goose'::jsonb, 'head', track => 'goose');
SELECT trek_current('goose'), events_count(),
	   (SELECT count(*) FROM pg_indexes WHERE tablename = 'events') AS indexes;
-- 00003 has no Down section: going down runs nothing for it, as in goose
CALL trek_migrate(:'goose'::jsonb, '1', track => 'goose');
SELECT trek_current('goose'), events_count(),
	   (SELECT count(*) FROM pg_indexes WHERE tablename = 'events') AS indexes;
-- a Go migration is goose's own: refused when a plan reaches it
SELECT trek_plan(:'goose'::jsonb || '{"00004_backfill.go": "package migrations"}', 'head', track => 'goose');
SELECT trek_plan(:'goose'::jsonb || '{"00004_backfill.go": "package migrations"}', '3', track => 'goose') ->> 'to' AS "to";
SELECT note FROM trek_status(:'goose'::jsonb || '{"00004_backfill.go": "package migrations"}', 'goose');
-- what goose refuses
SET trek.format = 'goose';
SELECT trek_plan(jsonb_build_object('1_a.sql', E'SELECT 1;\n'), 'head', track => 'goose2');
SELECT trek_plan(jsonb_build_object('1_a.sql', E'-- +goose Up\n  -- +goose StatementBegin\nSELECT 1;\n'), 'head', track => 'goose2');
SELECT trek_plan(jsonb_build_object('1_a.sql', E'-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n'), 'head', track => 'goose2');
SELECT trek_plan(jsonb_build_object('1_a.sql', E'-- +goose Up\n-- +goose ENVSUB ON\nSELECT ''${HOME}'';\n'), 'head', track => 'goose2');
SELECT trek_plan(jsonb_build_object('1_a.sql', E'-- +goose Up\n-- see +goose docs\nSELECT 1;\n'), 'head', track => 'goose2');
SELECT trek_plan(jsonb_build_object('0_a.sql', E'-- +goose Up\nSELECT 1;\n'), 'head', track => 'goose2');
RESET trek.format;

-- sqlx: simple files, reversible pairs, and -- no-transaction
SET trek.format = 'sqlx';
SELECT jsonb_build_object(
	'20240101000000_tags.sql', E'CREATE TABLE tags (id int PRIMARY KEY, name text);\n',
	'20240102000000_tags_name_idx.up.sql', E'-- no-transaction\nCREATE INDEX CONCURRENTLY tags_name_idx ON tags (name);\n',
	'20240102000000_tags_name_idx.down.sql', E'-- no-transaction\nDROP INDEX CONCURRENTLY tags_name_idx;\n',
	'20240103000000_seed.sql', E'INSERT INTO tags VALUES (1, ''new'');\n') AS sqlx \gset
SELECT * FROM chain(:'sqlx'::jsonb);
CALL trek_migrate(:'sqlx'::jsonb, 'head', track => 'sqlx');
SELECT trek_current('sqlx'), (SELECT count(*) FROM tags) AS tags,
	   (SELECT count(*) FROM pg_indexes WHERE indexname = 'tags_name_idx') AS idx;
-- the simple file has no down: no way below it
CALL trek_migrate(:'sqlx'::jsonb, 'initial', track => 'sqlx');
-- without the marker, sqlx runs the file in a transaction: so does trek
SELECT trek_plan(jsonb_build_object('1_a.sql', E'CREATE INDEX CONCURRENTLY tags_id_idx ON tags (id);\n'), 'head', track => 'sqlx2') -> 'steps' -> 0 ? 'no_transaction' AS outside;
-- recognised without the setting: a folder mixing simple and reversible files
RESET trek.format;
SELECT trek_plan(:'sqlx'::jsonb, 'head', track => 'sqlx3') ->> 'tool' AS tool;

-- diesel: a folder per migration on the server, versions without dashes,
-- metadata.toml's run_in_transaction, an optional down.sql
\set diesel :fixtures '/formats_diesel'
SELECT trek_graph(:'diesel', 'diesel');
CALL trek_migrate(:'diesel', 'head', track => 'diesel');
SELECT trek_current('diesel'),
	   (SELECT count(*) FROM pg_indexes WHERE indexname = 'items_name_idx') AS idx,
	   (SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note') AS note;
CALL trek_migrate(:'diesel', '-1', track => 'diesel');
SELECT s ->> 'file' AS file, s ->> 'to' AS "to", s ? 'no_transaction' AS outside
  FROM jsonb_array_elements(trek_plan(:'diesel', 'head', track => 'diesel2') -> 'steps') AS s;

-- a diesel folder sent by the client: its files named "<folder>/<file>"
SELECT jsonb_build_object(
	'2024-02-01-000000_sent/up.sql', E'CREATE TABLE ds (id int);\n',
	'2024-02-01-000000_sent/down.sql', E'DROP TABLE ds;\n',
	'2024-02-02-000000_sent_idx/up.sql', E'CREATE INDEX CONCURRENTLY ds_idx ON ds (id)\n',
	'2024-02-02-000000_sent_idx/down.sql', E'DROP INDEX ds_idx;\n',
	'2024-02-02-000000_sent_idx/metadata.toml', E'run_in_transaction = false\n',
	'README.md', '# diesel migrations') AS dsent \gset
SELECT * FROM chain(:'dsent'::jsonb);
CALL trek_migrate(:'dsent'::jsonb, 'head', track => 'dsent');
CALL trek_migrate(:'dsent'::jsonb, 'initial', track => 'dsent');
SELECT trek_current('dsent'), to_regclass('ds') IS NULL AS gone;
SELECT trek_plan(:'dsent'::jsonb || '{"20240201000000_again/up.sql": "SELECT 1;"}', 'head', track => 'dsent');
SELECT trek_plan('{"1_a/down.sql": "SELECT 2;"}'::jsonb, 'head', track => 'dsent');

-- recognition: Flyway's repeatable scripts are Flyway's; up and down files
-- are golang-migrate's, or sqlx's when the first starts with its marker
SELECT trek_plan('{"V1__a.sql": "CREATE TABLE fa (i int);", "R__v.sql": "CREATE VIEW fv AS SELECT 1;"}'::jsonb, 'head', track => 'recog') ->> 'tool' AS tool;
SELECT trek_plan('{"1_a.up.sql": "-- no-transaction\nSELECT 1;", "1_a.down.sql": "SELECT 2;"}'::jsonb, 'head', track => 'recog') ->> 'tool' AS tool;

-- recognition: several tools' names in one folder, none, or named
SELECT trek_plan(jsonb_build_object('V1__a.sql', 'SELECT 1;', '1_a.up.sql', 'SELECT 1;'), 'head', track => 'mixed');
SELECT trek_plan(jsonb_build_object('README.md', '# none'), 'head', track => 'mixed');
SET trek.format = 'flyway';
SELECT trek_plan(jsonb_build_object('V1__a.sql', 'SELECT 1;', '1_a.up.sql', 'SELECT 1;'), 'head', track => 'mixed') ->> 'to' AS "to";
SET trek.format = 'liquibase';
RESET trek.format;
SELECT trek_current('mixed');
\c :regress_db
DROP DATABASE regress_trek_formats;
