-- install trek: its objects and who may use them

CREATE EXTENSION trek;
SELECT extname, extversion FROM pg_extension WHERE extname = 'trek';
\dx+ trek

-- EXECUTE is not granted to PUBLIC
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_run
  FROM pg_proc p WHERE p.proname LIKE 'trek\_%' ORDER BY 1;

-- history is registered with pg_dump
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
  JOIN pg_class c ON c.oid = cfg.oid WHERE e.extname = 'trek' ORDER BY 1;

SELECT trek_current();

DROP EXTENSION trek;
