-- holes a hostile grantee or a careless operator could use: code of other
-- roles in trek's bookkeeping, tracks of other roles, links that tell what
-- exists outside the allowed folders, very long paths, folder names not
-- valid in the database encoding, strings scanned under
-- standard_conforming_strings = off, byte order marks outside UTF8
-- databases, syntax errors with their position.  The fixtures are the
-- folders test/fixtures/security_*.  Races between a check and an open need
-- two processes: test/integration/test_security.py; links that lead out of
-- an allowed folder and folder names not valid in the database encoding
-- are made in test/integration/test_security_files.py.
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/test/fixtures'
CREATE EXTENSION trek;
CREATE SCHEMA sec_s;
GRANT USAGE, CREATE ON SCHEMA sec_s TO PUBLIC;
SET search_path = sec_s, public;

--
-- A grantee holding every privilege on trek's schema and objects still
-- runs no code with the owner's rights
--
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_hostile, regress_trek_tenant_a,
	regress_trek_tenant_b, regress_trek_tenant_b_member, regress_trek_app;
RESET client_min_messages;
CREATE ROLE regress_trek_hostile LOGIN;
GRANT ALL ON SCHEMA trek TO regress_trek_hostile;
GRANT ALL ON ALL TABLES IN SCHEMA trek TO regress_trek_hostile;
GRANT ALL ON ALL SEQUENCES IN SCHEMA trek TO regress_trek_hostile;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text) TO regress_trek_hostile;
\set both :fixtures '/app,' :fixtures '/security_own'
SET trek.allowed_directories = :'both';
SET ROLE regress_trek_hostile;
CREATE FUNCTION sec_s.escalate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	ALTER ROLE regress_trek_hostile SUPERUSER;
	RETURN NEW;
END $$;
CREATE TRIGGER escalate BEFORE INSERT ON trek.history
	FOR EACH ROW EXECUTE FUNCTION sec_s.escalate();
-- a function and an operator in trek's schema, named like what trek calls
CREATE FUNCTION trek.unnest(anyarray) RETURNS SETOF anyelement
	LANGUAGE sql AS $$ SELECT NULL::text::anyelement WHERE false $$;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => 'sec_hostile'));
\set VERBOSITY default
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_trek_hostile';
SELECT trek_current('sec_hostile'), to_regclass('app_t') AS app_t;
-- a trigger on trek.tracks is refused too
DROP TRIGGER escalate ON trek.history;
SET ROLE regress_trek_hostile;
CREATE TRIGGER escalate BEFORE INSERT ON trek.tracks
	FOR EACH ROW EXECUTE FUNCTION sec_s.escalate();
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => 'sec_hostile'));
\set VERBOSITY default
-- rules and policies need the table's owner
CREATE RULE sneaky AS ON INSERT TO trek.history DO ALSO NOTIFY sneaky;
CREATE POLICY sneaky ON trek.history USING (true);
RESET ROLE;
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_trek_hostile';
DROP TRIGGER escalate ON trek.tracks;
-- nor may a migration of the plan add one on the way
-- (security_sneaky/20240101_initial_up_a.sql creates the trigger)
SET trek.allowed_directories = :'fixtures';
SET ROLE regress_trek_hostile;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/security_sneaky', 'a', track => 'sec_hostile'));
\set VERBOSITY default
RESET ROLE;
SET trek.allowed_directories = :'both';
SELECT rolsuper FROM pg_roles WHERE rolname = 'regress_trek_hostile';
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'trek.history'::regclass;
-- without the trigger the same call works, and the migration ran as the
-- caller while the bookkeeping ignored the function in trek's schema
BEGIN;
SET LOCAL ROLE regress_trek_hostile;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => 'sec_hostile'));
\set VERBOSITY default
SELECT tableowner FROM pg_tables WHERE tablename = 'app_t';
SELECT count(*) FROM trek.history WHERE track = 'sec_hostile';
ROLLBACK;
DROP FUNCTION trek.unnest(anyarray);
DROP FUNCTION sec_s.escalate();
REVOKE ALL ON ALL TABLES IN SCHEMA trek FROM regress_trek_hostile;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA trek FROM regress_trek_hostile;
REVOKE ALL ON SCHEMA trek FROM regress_trek_hostile;

--
-- Tracks belong to the role that applied their first step
--
CREATE ROLE regress_trek_tenant_a LOGIN;
CREATE ROLE regress_trek_tenant_b LOGIN;
CREATE ROLE regress_trek_tenant_b_member LOGIN IN ROLE regress_trek_tenant_b;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text)
	TO regress_trek_tenant_a, regress_trek_tenant_b, regress_trek_tenant_b_member;
SET ROLE regress_trek_tenant_b;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'one', track => 'sec_b'));
\set VERBOSITY default
RESET ROLE;
SELECT track, owner FROM trek.tracks WHERE track = 'sec_b';
SELECT track, to_revision, dir = :'fixtures' || '/app' AS dir_recorded
  FROM trek.history WHERE track = 'sec_b';
-- tenant a may plan on b's track, but not move it, by any plan
SET ROLE regress_trek_tenant_a;
SELECT trek_plan(:'fixtures' || '/app', 'two', track => 'sec_b') ->> 'from' AS planned_from;
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'two', track => 'sec_b'));
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'initial', track => 'sec_b'));
SELECT trek_current('sec_b');
-- a track of its own is fine
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/security_own', 'a', track => 'sec_a'));
\set VERBOSITY default
RESET ROLE;
-- members of the owning role may move it; so may superusers
SET ROLE regress_trek_tenant_b_member;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'two', track => 'sec_b'));
\set VERBOSITY default
RESET ROLE;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/app', 'initial', track => 'sec_b'));
\set VERBOSITY default
SELECT track, from_revision, to_revision, applied_by FROM trek.history
 WHERE track IN ('sec_a', 'sec_b') ORDER BY id;
SELECT track, owner FROM trek.tracks WHERE track IN ('sec_a', 'sec_b') ORDER BY 1;
-- a role that no longer exists owns its tracks still: only superusers may
-- move them then
UPDATE trek.tracks SET owner = 4294967295::oid::regrole WHERE track = 'sec_a';
SET ROLE regress_trek_tenant_a;
SELECT trek_execute(trek_plan(:'fixtures' || '/security_own', 'initial', track => 'sec_a'));
RESET ROLE;

--
-- What was applied on a track (its files, their SHA-256, history ids) is
-- judged only for roles with the privileges of its owner, and superusers:
-- another tenant must not learn b's file names, nor confirm a guess of a
-- file's content by writing it into a folder of its own and comparing
--
-- (security_secret holds b's files; security_guess_wrong and
-- security_guess_right a's guesses of the first one)
SET trek.allowed_directories = :'fixtures';
GRANT EXECUTE ON FUNCTION trek_status(text, text), trek_verify(text, text)
	TO regress_trek_tenant_a, regress_trek_tenant_b, regress_trek_tenant_b_member;
SET ROLE regress_trek_tenant_b;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/security_secret', 'head', track => 'sec_secret'));
\set VERBOSITY default
SELECT * FROM trek_status(:'fixtures' || '/security_secret', 'sec_secret');
SELECT trek_verify(:'fixtures' || '/security_secret', 'sec_secret');
RESET ROLE;
-- tenant a guesses wrong, then right: the same answer, which names no file
SET ROLE regress_trek_tenant_a;
SELECT * FROM trek_status(:'fixtures' || '/security_guess_wrong', 'sec_secret');
SELECT trek_verify(:'fixtures' || '/security_guess_wrong', 'sec_secret');
RESET ROLE;
SET ROLE regress_trek_tenant_a;
SELECT * FROM trek_status(:'fixtures' || '/security_guess_right', 'sec_secret');
SELECT trek_verify(:'fixtures' || '/security_guess_right', 'sec_secret');
-- nor does b's own folder tell more; planning tells what it always told
SELECT * FROM trek_status(:'fixtures' || '/security_secret', 'sec_secret');
SELECT trek_verify(:'fixtures' || '/security_secret', 'sec_secret');
SELECT trek_current('sec_secret');
RESET ROLE;
-- a member of the owner and a superuser get the whole answer
-- (their DETAIL, with history ids, is left out)
SET ROLE regress_trek_tenant_b_member;
SELECT * FROM trek_status(:'fixtures' || '/security_guess_right', 'sec_secret');
\set VERBOSITY terse
SELECT trek_verify(:'fixtures' || '/security_guess_right', 'sec_secret');
\set VERBOSITY default
RESET ROLE;
SELECT * FROM trek_status(:'fixtures' || '/security_guess_right', 'sec_secret');
\set VERBOSITY terse
SELECT trek_verify(:'fixtures' || '/security_guess_right', 'sec_secret');
\set VERBOSITY default
SELECT trek_verify(:'fixtures' || '/security_secret', 'sec_secret');
-- a track of a role that no longer exists is judged for superusers only
SET ROLE regress_trek_tenant_a;
SELECT track, current, changed_files, missing_files, note
  FROM trek_status(:'fixtures' || '/security_own', 'sec_a');
SELECT trek_verify(:'fixtures' || '/security_own', 'sec_a');
RESET ROLE;
SELECT track, current, changed_files, missing_files, note
  FROM trek_status(:'fixtures' || '/security_own', 'sec_a');
-- a track without an owner is open to every grantee, as it is to migrate
SET ROLE regress_trek_tenant_a;
SELECT track, current, changed_files, missing_files, note
  FROM trek_status(:'fixtures' || '/security_own', 'sec_fresh');
SELECT trek_verify(:'fixtures' || '/security_own', 'sec_fresh');
RESET ROLE;
DELETE FROM trek.tracks WHERE track IN ('sec_a', 'sec_b', 'sec_secret');
-- so is one whose row a superuser removed (any grantee may claim it)
SET ROLE regress_trek_tenant_a;
SELECT track, current, changed_files, missing_files, note
  FROM trek_status(:'fixtures' || '/security_own', 'sec_a');
RESET ROLE;
DELETE FROM trek.history WHERE track = 'sec_secret';

--
-- Links in an allowed folder that lead outside it give one and the same
-- answer, whatever is, or is not, at their end: see
-- test/integration/test_security_files.py
--

--
-- Very long paths: memory stays small, and the limit is a clear error
--
CREATE ROLE regress_trek_app LOGIN;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text) TO regress_trek_app;
SET trek.allowed_directories = :'fixtures';
SET ROLE regress_trek_app;
-- (their messages quote the whole path: only the SQLSTATE is shown; the
-- first path is inside the allowed folder, the second outside)
\set VERBOSITY sqlstate
SELECT trek_plan(:'fixtures' || '/x' || repeat('/a', 1900), 'head');
SELECT trek_plan('/nowhere' || repeat('/a', 2000), 'head');
\set VERBOSITY default
-- (the length is judged first, before the folder is looked for or judged:
-- a path that does not depend on where the tests are)
SELECT trek_plan('/nowhere/x' || repeat('/a', 100000), 'head');
RESET ROLE;
SELECT trek_plan('/nowhere/x' || repeat('/a', 100000), 'head');
RESET trek.allowed_directories;

--
-- A folder whose name is not valid in the database encoding: see
-- test/integration/test_security_files.py
--

--
-- standard_conforming_strings = off: backslashes escape quotes in plain
-- strings, as the server's lexer has it, so a line starting with "\" inside
-- such a string is no psql meta-command
--
-- (security_scs/20240101_initial_up_a.sql:
--   CREATE TABLE sec_s.scs_t (a text, b text);
--   INSERT INTO sec_s.scs_t VALUES ('it\'s', 'one
--   \two');
-- )
SET standard_conforming_strings = off;
SET escape_string_warning = off;
BEGIN;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/security_scs', 'head', track => 'sec_scs'));
\set VERBOSITY default
SELECT a, b FROM sec_s.scs_t;
ROLLBACK;
RESET escape_string_warning;
RESET standard_conforming_strings;
-- with standard strings the same file is refused: there "\two" starts a line
SELECT trek_execute(trek_plan(:'fixtures' || '/security_scs', 'head', track => 'sec_scs'));
SELECT trek_current('sec_scs'), to_regclass('sec_s.scs_t') AS scs_t;

--
-- A syntax error shows its statement and a caret, as psql shows its own
--
SELECT trek_execute(trek_plan(:'fixtures' || '/security_syntax', 'head', track => 'sec_syntax'));
\echo :LAST_ERROR_SQLSTATE
SELECT trek_current('sec_syntax'), to_regclass('sec_s.syn_t') AS syn_t;

--
-- A byte order mark: accepted in UTF8 and SQL_ASCII databases, a clear
-- error elsewhere
--
-- (security_bom/20240101_initial_up_a.sql starts with one)
\set regress_db :DBNAME
CREATE DATABASE regress_trek_ascii ENCODING 'SQL_ASCII' LOCALE 'C' TEMPLATE template0;
CREATE DATABASE regress_trek_latin1 ENCODING 'LATIN1' LOCALE 'C' TEMPLATE template0;
\c regress_trek_ascii
CREATE EXTENSION trek;
\set VERBOSITY terse
SELECT trek_execute(trek_plan(:'fixtures' || '/security_bom', 'head'));
\set VERBOSITY default
SELECT to_regclass('bom_t') AS bom_t;
\c regress_trek_latin1
CREATE EXTENSION trek;
SELECT trek_execute(trek_plan(:'fixtures' || '/security_bom', 'head'));
SELECT trek_current(), to_regclass('bom_t') AS bom_t;
\c :regress_db
DROP DATABASE regress_trek_ascii;
DROP DATABASE regress_trek_latin1;

-- clean up
RESET search_path;
DROP SCHEMA sec_s CASCADE;
DROP OWNED BY regress_trek_hostile, regress_trek_tenant_b_member,
	regress_trek_tenant_a, regress_trek_tenant_b, regress_trek_app;
DROP ROLE regress_trek_hostile, regress_trek_tenant_b_member,
	regress_trek_tenant_a, regress_trek_tenant_b, regress_trek_app;
SELECT count(*) AS sec_history FROM trek.history WHERE track LIKE 'sec\_%';
DROP EXTENSION trek;
