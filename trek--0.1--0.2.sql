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
