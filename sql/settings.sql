-- trek.lock_timeout and trek.lock_retries: values stored with ALTER
-- ROLE/DATABASE ... SET are applied with superuser rights, so a
-- superuser's are the defaults of other roles' sessions, and only
-- superusers may store one
CREATE EXTENSION trek;
-- roles are shared by the whole cluster: start from none
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_trek_app;
RESET client_min_messages;
CREATE ROLE regress_trek_app LOGIN;
GRANT EXECUTE ON FUNCTION trek_plan(text, text, text, text),
	trek_execute(jsonb), trek_current(text) TO regress_trek_app;
SELECT current_user AS regress_superuser \gset
ALTER ROLE regress_trek_app SET trek.lock_timeout = '30s';
ALTER ROLE regress_trek_app SET trek.lock_retries = 50;

-- taken over without a WARNING when a call loads trek
\c - regress_trek_app
SHOW trek.lock_timeout;
SELECT trek_current('none');
SHOW trek.lock_timeout;
SHOW trek.lock_retries;

-- lowered below them (10s is above the built-in 5s), not raised
SET trek.lock_timeout = '10s';
SET trek.lock_retries = 20;
SELECT set_config('trek.lock_timeout', '0', false);
SET trek.lock_timeout = '31s';
SET trek.lock_retries = 51;
SHOW trek.lock_timeout;
SHOW trek.lock_retries;
RESET trek.lock_timeout;
SHOW trek.lock_timeout;

-- the role cannot store a value for its later sessions, raised or not
ALTER ROLE CURRENT_USER SET trek.lock_timeout = 0;
ALTER ROLE CURRENT_USER SET trek.lock_retries = 1;

-- a value set before trek is loaded is judged when trek takes it over
\c - regress_trek_app
SET trek.lock_timeout = 0;
SET trek.lock_retries = 1;
SELECT trek_current('none');
SHOW trek.lock_timeout;
SHOW trek.lock_retries;

\c - :regress_superuser
ALTER ROLE regress_trek_app RESET ALL;
SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
 WHERE r.rolname = 'regress_trek_app';

DROP EXTENSION trek;

-- leave no role behind
DROP OWNED BY regress_trek_app;
DROP ROLE regress_trek_app;
