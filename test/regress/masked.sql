\set ECHO none
-- test/regress/masked.sql: included (\i) by the pg_regress files that show
-- the folders trek read.  They read the fixtures in place, below
-- PG_ABS_SRCDIR, whose path differs from machine to machine; the server's
-- messages and plans name it.  masked(dir, query) runs query with $1 = dir
-- and returns its rows as text, and raises its error again (same SQLSTATE,
-- message, detail and hint), with PG_ABS_SRCDIR written as @abs_srcdir@.
-- The including file sets :abs_srcdir first.
SET regress.abs_srcdir = :'abs_srcdir';
CREATE OR REPLACE FUNCTION masked(dir text, q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	prefix text := current_setting('regress.abs_srcdir');
	r text;
	st text;
	msg text;
	det text;
	hnt text;
BEGIN
	FOR r IN EXECUTE q USING dir LOOP
		RETURN NEXT replace(r, prefix, '@abs_srcdir@');
	END LOOP;
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL, hnt = PG_EXCEPTION_HINT;
	msg := replace(msg, prefix, '@abs_srcdir@');
	det := replace(det, prefix, '@abs_srcdir@');
	hnt := replace(hnt, prefix, '@abs_srcdir@');
	-- RAISE takes neither a null nor an empty DETAIL or HINT well
	IF det <> '' AND hnt <> '' THEN
		RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, DETAIL = det, HINT = hnt;
	ELSIF det <> '' THEN
		RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, DETAIL = det;
	ELSIF hnt <> '' THEN
		RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, HINT = hnt;
	ELSE
		RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg;
	END IF;
END
$$;
-- the context would name masked() and its query
\set SHOW_CONTEXT never
\set ECHO all
