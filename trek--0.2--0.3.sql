/* trek--0.2--0.3.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION trek UPDATE TO '0.3'" to load this file. \quit

-- A failed run names the line of its error in current_file.
ALTER TABLE trek.runs ADD COLUMN line integer;

COMMENT ON COLUMN trek.runs.line IS
'for a failed run, the line of current_file where the error was raised';

-- A trek_execute() run whose session ended while it ran is written as
-- interrupted (src/runs.c).
ALTER TABLE trek.runs DROP CONSTRAINT runs_state_check;
ALTER TABLE trek.runs ADD CONSTRAINT runs_state_check
	CHECK (state IN ('running', 'done', 'failed', 'interrupted'));

-- trek_runs() is written in C from 0.3 on: it also shows trek_execute()
-- runs that live in shared memory (running, or failed and not yet
-- written), the line of a failure, and only the runs of tracks the caller
-- may see.  Its columns change, so it is created again; the roles it was
-- granted to keep their grants, and the privileges trek itself sets
-- (pg_init_privs) stay those of a fresh install.
DO $update$
DECLARE
	acl pg_catalog.aclitem[];
	init_acl pg_catalog.aclitem[];
	grantee record;
BEGIN
	SELECT p.proacl INTO acl FROM pg_catalog.pg_proc p
	 WHERE p.oid OPERATOR(pg_catalog.=)
		   '@extschema@.trek_runs(pg_catalog.text)'::pg_catalog.regprocedure;

	DROP FUNCTION @extschema@.trek_runs(pg_catalog.text);
	CREATE FUNCTION @extschema@.trek_runs(track text DEFAULT NULL)
	RETURNS TABLE (id bigint, track text, dir text, from_revision text,
				   target text, call text, state text, steps_done integer,
				   steps_planned integer, current_file text, line integer,
				   current_since timestamptz, started_at timestamptz,
				   finished_at timestamptz, run_by text, pid integer,
				   sqlstate text, message text)
	AS 'MODULE_PATHNAME', 'trek_runs'
	LANGUAGE C VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT;
	COMMENT ON FUNCTION @extschema@.trek_runs(text) IS
	'the runs of trek_execute and trek_migrate that the caller may see, newest first';
	REVOKE EXECUTE ON FUNCTION @extschema@.trek_runs(text) FROM PUBLIC;
	SELECT p.proacl INTO init_acl FROM pg_catalog.pg_proc p
	 WHERE p.oid OPERATOR(pg_catalog.=)
		   '@extschema@.trek_runs(pg_catalog.text)'::pg_catalog.regprocedure;

	FOR grantee IN
		SELECT a.grantee, a.is_grantable
		  FROM pg_catalog.aclexplode(acl) a
		 WHERE a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
		   AND a.grantee OPERATOR(pg_catalog.<>) a.grantor
		   AND a.grantee OPERATOR(pg_catalog.<>) 0
	LOOP
		EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.trek_runs(text) TO %I%s',
								  pg_catalog.pg_get_userbyid(grantee.grantee),
								  CASE WHEN grantee.is_grantable
									   THEN ' WITH GRANT OPTION' ELSE '' END);
	END LOOP;

	-- what the grants above recorded as trek's own privileges is undone
	UPDATE pg_catalog.pg_init_privs i
	   SET initprivs = init_acl
	 WHERE i.objoid OPERATOR(pg_catalog.=)
		   '@extschema@.trek_runs(pg_catalog.text)'::pg_catalog.regprocedure
	   AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
	   AND i.objsubid OPERATOR(pg_catalog.=) 0;
END
$update$;

-- ---- folders sent by the client ----

-- Every function that takes a folder on the server also takes the folder
-- itself: a jsonb object whose keys are file names relative to the folder
-- and whose values are the files' text.  Nothing is read from the server's
-- file system for it.  Each form shares its C function with the server
-- form, which tells them apart by the argument's type.
CREATE FUNCTION trek_plan(folder jsonb, target text,
						  direction text DEFAULT 'auto',
						  track text DEFAULT 'default')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'trek_plan'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_plan(jsonb, text, text, text) IS
'plan the shortest way from the revision a track is at to a target revision, in a folder sent as jsonb';

CREATE PROCEDURE trek_migrate(folder jsonb, target text,
							  direction text DEFAULT 'auto',
							  track text DEFAULT 'default')
AS 'MODULE_PATHNAME', 'trek_migrate'
LANGUAGE C;

COMMENT ON PROCEDURE trek_migrate(jsonb, text, text, text) IS
'migrate a track to a target revision of a folder sent as jsonb, committing each step with its history row';

CREATE FUNCTION trek_status(folder jsonb, track text DEFAULT 'default')
RETURNS TABLE (track text, current text, current_known boolean, head text,
			   steps_to_head integer, changed_files text[],
			   missing_files text[], last_run text, note text)
AS 'MODULE_PATHNAME', 'trek_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

COMMENT ON FUNCTION trek_status(jsonb, text) IS
'where a track is, how far from head, and which applied files changed or are gone, for a folder sent as jsonb';

CREATE FUNCTION trek_verify(folder jsonb, track text DEFAULT 'default')
RETURNS void
AS 'MODULE_PATHNAME', 'trek_verify'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_verify(jsonb, text) IS
'fail if a migration file applied on a track changed or is gone from a folder sent as jsonb';

CREATE FUNCTION trek_stamp(folder jsonb, revision text,
						   track text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'trek_stamp'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_stamp(jsonb, text, text) IS
'record that a track is at a revision of a folder sent as jsonb without running any migration';

CREATE FUNCTION trek_graph(folder jsonb, format text DEFAULT 'mermaid',
						   track text DEFAULT 'default')
RETURNS text
AS 'MODULE_PATHNAME', 'trek_graph'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_graph(jsonb, text, text) IS
'the revision graph of a migration folder sent as jsonb, as Mermaid or Graphviz dot text';

REVOKE EXECUTE ON FUNCTION trek_plan(jsonb, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE trek_migrate(jsonb, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_status(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_verify(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_stamp(jsonb, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_graph(jsonb, text, text) FROM PUBLIC;

-- ---- other tools' folders and databases ----

-- trek_adopt() records the versions another tool applied as stamps with the
-- tool's up file, its SHA-256 and the tool's name; trek's own rows have none.
ALTER TABLE trek.history ADD COLUMN tool text;

COMMENT ON COLUMN trek.history.tool IS
'for a stamp by trek_adopt, the tool that applied the file (golang-migrate, flyway, dbmate, goose, sqlx, diesel)';

CREATE FUNCTION trek_adopt(dir text, track text DEFAULT 'default',
						   state_table text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'trek_adopt'
LANGUAGE C VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT;

COMMENT ON FUNCTION trek_adopt(text, text, text) IS
'start a track where the tool of a migration folder left the database, from that tool''s state table; runs nothing';

CREATE FUNCTION trek_adopt(folder jsonb, track text DEFAULT 'default',
						   state_table text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'trek_adopt'
LANGUAGE C VOLATILE PARALLEL UNSAFE CALLED ON NULL INPUT;

COMMENT ON FUNCTION trek_adopt(jsonb, text, text) IS
'start a track where the tool of a migration folder sent as jsonb left the database, from that tool''s state table; runs nothing';

REVOKE EXECUTE ON FUNCTION trek_adopt(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_adopt(jsonb, text, text) FROM PUBLIC;

-- ---- the safety gate ----

-- The hazards a step's "-- trek:allow" lines accepted when the gate found
-- them (src/check.c); NULL for a step that had none.
ALTER TABLE trek.history ADD COLUMN accepted text[];

COMMENT ON COLUMN trek.history.accepted IS
'the hazards (rewrite, scan, index build, all rows) the safety gate found in the step and its "-- trek:allow" lines accepted';

CREATE FUNCTION trek_check(plan jsonb)
RETURNS TABLE (step integer, file text, line integer, statement text,
			   relation regclass, lock text, blocks text, rewrites boolean,
			   scans boolean, rows bigint, bytes bigint, hazard text,
			   advice text)
AS 'MODULE_PATHNAME', 'trek_check'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_check(jsonb) IS
'what each statement of a plan will lock, rewrite and scan on this database, and its hazards; runs nothing';

CREATE FUNCTION trek_check(dir text, target text,
						   direction text DEFAULT 'auto',
						   track text DEFAULT 'default')
RETURNS TABLE (step integer, file text, line integer, statement text,
			   relation regclass, lock text, blocks text, rewrites boolean,
			   scans boolean, rows bigint, bytes bigint, hazard text,
			   advice text)
AS 'MODULE_PATHNAME', 'trek_check'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_check(text, text, text, text) IS
'what each statement of the plan to a target will lock, rewrite and scan on this database, and its hazards; runs nothing';

CREATE FUNCTION trek_check(folder jsonb, target text,
						   direction text DEFAULT 'auto',
						   track text DEFAULT 'default')
RETURNS TABLE (step integer, file text, line integer, statement text,
			   relation regclass, lock text, blocks text, rewrites boolean,
			   scans boolean, rows bigint, bytes bigint, hazard text,
			   advice text)
AS 'MODULE_PATHNAME', 'trek_check'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_check(jsonb, text, text, text) IS
'what each statement of the plan to a target of a folder sent as jsonb will lock, rewrite and scan on this database, and its hazards; runs nothing';

CREATE FUNCTION trek_rehearse(plan jsonb)
RETURNS TABLE (step integer, file text, line integer, statement text,
			   relation regclass, lock text, blocks text, rewrites boolean,
			   scans boolean, rows bigint, bytes bigint, hazard text,
			   advice text)
AS 'MODULE_PATHNAME', 'trek_rehearse'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_rehearse(jsonb) IS
'run a plan and roll it back, returning the locks each statement took and whether it rewrote or scanned each table';

REVOKE EXECUTE ON FUNCTION trek_check(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_check(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_check(jsonb, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION trek_rehearse(jsonb) FROM PUBLIC;
