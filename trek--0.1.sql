/* trek--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION trek" to load this file. \quit

-- trek's own state; only the extension owner uses it directly
CREATE SCHEMA trek;
REVOKE ALL ON SCHEMA trek FROM PUBLIC;

CREATE TABLE trek.history (
	id				bigserial PRIMARY KEY,
	track			text NOT NULL,
	from_revision	text NOT NULL,
	to_revision		text NOT NULL,
	direction		text NOT NULL CHECK (direction IN ('up', 'down')),
	file			text NOT NULL,
	sha256			text NOT NULL,
	applied_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	applied_by		text NOT NULL,
	duration		interval NOT NULL
);
CREATE INDEX history_track_id_idx ON trek.history (track, id);

COMMENT ON TABLE trek.history IS 'one row per migration step applied by trek';

-- keep the history in pg_dump output
SELECT pg_catalog.pg_extension_config_dump('trek.history', '');
SELECT pg_catalog.pg_extension_config_dump('trek.history_id_seq', '');

CREATE FUNCTION trek_plan(dir text, target text,
						  direction text DEFAULT 'auto',
						  track text DEFAULT 'default')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'trek_plan'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_plan(text, text, text, text) IS
'plan the shortest way from the revision a track is at to a target revision';

CREATE FUNCTION trek_execute(plan jsonb)
RETURNS text
AS 'MODULE_PATHNAME', 'trek_execute'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_execute(jsonb) IS
'apply a plan made by trek_plan in the current transaction';

CREATE FUNCTION trek_current(track text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'trek_current'
LANGUAGE C STABLE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_current(text) IS
'the revision a track is at';

-- reading server files is powerful: grant EXECUTE explicitly
REVOKE EXECUTE ON FUNCTION trek_plan(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_execute(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_current(text) FROM PUBLIC;
