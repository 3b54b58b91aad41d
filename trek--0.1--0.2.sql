/* trek--0.1--0.2.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION trek UPDATE TO '0.2'" to load this file. \quit

-- Tracks belong to a role: the one that applied the track's first step.
-- Only roles with that role's privileges (and superusers) may move it.
CREATE TABLE trek.tracks (
	track		text PRIMARY KEY,
	owner		regrole NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);

COMMENT ON TABLE trek.tracks IS 'one row per track: the role it belongs to';

SELECT pg_catalog.pg_extension_config_dump('trek.tracks', '');

-- the tracks of a 0.1 database belong to the role that applied their first
-- step, or to the extension's owner where that role no longer exists
INSERT INTO trek.tracks (track, owner, created_at)
SELECT DISTINCT ON (h.track)
	   h.track,
	   COALESCE(r.oid, n.nspowner)::pg_catalog.regrole,
	   h.applied_at
  FROM trek.history h
  LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) h.applied_by
  CROSS JOIN pg_catalog.pg_namespace n
 WHERE n.nspname OPERATOR(pg_catalog.=) 'trek'
 ORDER BY h.track, h.id;

-- each step records the canonical folder it was read from
ALTER TABLE trek.history ADD COLUMN dir text;

COMMENT ON COLUMN trek.history.dir IS
'canonical path of the folder the step was read from (NULL for steps recorded by trek 0.1)';

-- One row per trek_execute() or trek_migrate() call that had work to do,
-- readable while it runs (trek_migrate commits its row before its first
-- step and with each step).
CREATE TABLE trek.runs (
	id				bigserial PRIMARY KEY,
	track			text NOT NULL,
	dir				text NOT NULL,
	from_revision	text NOT NULL,
	target			text NOT NULL,
	call			text NOT NULL CHECK (call IN ('execute', 'migrate')),
	state			text NOT NULL CHECK (state IN ('running', 'done', 'failed')),
	steps_done		integer NOT NULL,
	steps_planned	integer NOT NULL,
	current_file	text,
	current_since	timestamptz,
	started_at		timestamptz NOT NULL,
	finished_at		timestamptz,
	run_by			text NOT NULL,
	pid				integer NOT NULL,
	backend_start	timestamptz NOT NULL,
	sqlstate		text,
	message			text
);
CREATE INDEX runs_track_id_idx ON trek.runs (track, id);

COMMENT ON TABLE trek.runs IS 'one row per trek_execute or trek_migrate call that applied, or tried to apply, steps';

SELECT pg_catalog.pg_extension_config_dump('trek.runs', '');
SELECT pg_catalog.pg_extension_config_dump('trek.runs_id_seq', '');

-- the runs, newest first; a running row whose backend is gone was
-- interrupted (killed session or server)
CREATE FUNCTION trek_runs(track text DEFAULT NULL)
RETURNS TABLE (id bigint, track text, dir text, from_revision text,
			   target text, call text, state text, steps_done integer,
			   steps_planned integer, current_file text,
			   current_since timestamptz, started_at timestamptz,
			   finished_at timestamptz, run_by text, pid integer,
			   sqlstate text, message text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT r.id, r.track, r.dir, r.from_revision, r.target, r.call,
	   CASE WHEN r.state = 'running' AND NOT EXISTS (
				SELECT FROM pg_catalog.pg_stat_activity a
				 WHERE a.pid = r.pid AND a.backend_start = r.backend_start)
			THEN 'interrupted' ELSE r.state END,
	   r.steps_done, r.steps_planned, r.current_file, r.current_since,
	   r.started_at, r.finished_at, r.run_by, r.pid, r.sqlstate, r.message
  FROM trek.runs r
 WHERE $1 IS NULL OR r.track = $1
 ORDER BY r.id DESC
$$;

COMMENT ON FUNCTION trek_runs(text) IS
'the runs of trek_execute and trek_migrate, newest first';

CREATE PROCEDURE trek_migrate(dir text, target text,
							  direction text DEFAULT 'auto',
							  track text DEFAULT 'default')
AS 'MODULE_PATHNAME', 'trek_migrate'
LANGUAGE C;

COMMENT ON PROCEDURE trek_migrate(text, text, text, text) IS
'migrate a track to a target revision, committing each step with its history row';

CREATE PROCEDURE trek_migrate(plan jsonb)
AS 'MODULE_PATHNAME', 'trek_migrate_plan'
LANGUAGE C;

COMMENT ON PROCEDURE trek_migrate(jsonb) IS
'apply a plan made by trek_plan, committing each step with its history row';

REVOKE EXECUTE ON FUNCTION trek_runs(text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE trek_migrate(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE trek_migrate(jsonb) FROM PUBLIC;
