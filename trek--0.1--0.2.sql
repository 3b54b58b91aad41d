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
