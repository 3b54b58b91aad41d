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

-- ---- operations: status, verification, stamps, pictures ----

-- a stamp records that a track is at a revision without running anything:
-- a history row with direction 'stamp' and neither file nor SHA-256
ALTER TABLE trek.history DROP CONSTRAINT history_direction_check;
ALTER TABLE trek.history
	ADD CONSTRAINT history_direction_check
	CHECK (direction IN ('up', 'down', 'stamp'));
ALTER TABLE trek.history ALTER COLUMN file DROP NOT NULL;
ALTER TABLE trek.history ALTER COLUMN sha256 DROP NOT NULL;
ALTER TABLE trek.history
	ADD CONSTRAINT history_file_check
	CHECK (direction OPERATOR(pg_catalog.=) 'stamp'
		   OR (file IS NOT NULL AND sha256 IS NOT NULL));

CREATE FUNCTION trek_status(dir text, track text DEFAULT 'default')
RETURNS TABLE (track text, current text, current_known boolean, head text,
			   steps_to_head integer, changed_files text[],
			   missing_files text[], last_run text, note text)
AS 'MODULE_PATHNAME', 'trek_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

COMMENT ON FUNCTION trek_status(text, text) IS
'where a track is, how far from head, and which applied files changed or are gone';

CREATE FUNCTION trek_verify(dir text, track text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'trek_verify'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_verify(text, text) IS
'fail if a migration file applied on a track changed or is gone';

CREATE FUNCTION trek_stamp(dir text, revision text,
						   track text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'trek_stamp'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_stamp(text, text, text) IS
'record that a track is at a revision without running any migration';

CREATE FUNCTION trek_graph(dir text, format text DEFAULT 'mermaid',
						   track text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'trek_graph'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_graph(text, text, text) IS
'the revision graph of a migration folder as Mermaid or Graphviz dot text';

REVOKE EXECUTE ON FUNCTION trek_status(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_verify(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_stamp(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_graph(text, text, text) FROM PUBLIC;
