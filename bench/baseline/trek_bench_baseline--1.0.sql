\echo Use "CREATE EXTENSION trek_bench_baseline" to load this file. \quit

CREATE FUNCTION trek_bench_parse(dir text,
								 OUT statements bigint,
								 OUT relations bigint,
								 OUT found bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'trek_bench_parse'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION trek_bench_parse(text) IS
'read every .sql file of a server folder, parse it with raw_parser and look up each relation named (statements, relations named, relations that exist)';

REVOKE EXECUTE ON FUNCTION trek_bench_parse(text) FROM PUBLIC;
