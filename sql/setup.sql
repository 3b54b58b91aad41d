-- install trek and the roles the other tests use

-- The tests read the fixture folders from this run's copy,
-- TREK_REGRESS_DIR/fixtures, which scripts/regress.sh makes for the server's
-- OS user to read (and removes after the run).

CREATE EXTENSION trek;
SELECT extname, extversion FROM pg_extension WHERE extname = 'trek';
\dx+ trek

-- EXECUTE is not granted to PUBLIC
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_run
  FROM pg_proc p WHERE p.proname LIKE 'trek\_%' ORDER BY 1;

-- history is registered with pg_dump
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid WHERE e.extname = 'trek' ORDER BY 1;

-- (roles outlive the test database: start from none)
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app, regress_trek_reader, regress_trek_nobody;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
CREATE ROLE regress_trek_reader LOGIN IN ROLE pg_read_server_files;
CREATE ROLE regress_trek_nobody LOGIN;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text)
	TO regress_trek_app, regress_trek_reader;
GRANT CREATE ON SCHEMA public TO regress_trek_app, regress_trek_reader;

SELECT trek_current();
