-- install trek and the roles the other tests use

-- Tests read the fixture folders from a fixed place, so that the paths in
-- messages are the same wherever the project is checked out.
\getenv abs_srcdir PG_ABS_SRCDIR
\setenv TREK_SRC :abs_srcdir
\! rm -rf /tmp/trek_regress && mkdir -p /tmp/trek_regress && cp -R "$TREK_SRC/test/fixtures" /tmp/trek_regress/ && chmod -R a+rX /tmp/trek_regress

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
