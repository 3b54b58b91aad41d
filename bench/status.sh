#!/usr/bin/env bash
# bench/status.sh: at N files (default 10,000), time inside the server
#   - SELECT count(*) FROM pg_ls_dir(dir)            (listing the folder in SQL)
#   - SELECT trek_execute(trek_plan(dir, 'head'))    (the no-op, at head,
#     with trek.check_applied off: bench/sent.sh measures the check)
#   - SELECT * FROM trek_status(dir)                 (at head, every file applied)
# alternated in one session, REPS rounds (default 21), and print medians
# and the median of each round's ratio to pg_ls_dir.
#
#   bash bench/status.sh [--no-build] [N] [REPS]
#
# Uses the cluster PGHOST/PGPORT point at when both are set (trek must be
# installed there); otherwise builds and installs trek (not with
# --no-build: the trek already installed) and starts a throwaway cluster as
# scripts/lib.sh does.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
n=${1:-10000}
reps=${2:-21}

if [ -z "${PGHOST:-}" ] || [ -z "${PGPORT:-}" ]; then
	trek_install_deps
	[ "$build" -eq 0 ] || trek_build_install
	trek_cluster_start status
	cat >>"$TREK_CLUSTER_DIR/data/postgresql.conf" <<-CONF
		max_locks_per_transaction = 1024
	CONF
	_trek_pg "$PGBIN/pg_ctl" -D "$TREK_CLUSTER_DIR/data" -w -t 60 restart \
		>>"$TREK_CLUSTER_DIR/pg_ctl.log" 2>&1
	work=$TREK_CLUSTER_DIR/work
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/trek-status.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/f" && chmod 755 "$work" "$work/f"

# the overhead workload of bench.py: a chain of N trivial up migrations
/usr/bin/python3 - "$work/f" "$n" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
rev = lambda i: "initial" if i == 0 else "r%06d" % i
for i in range(1, n + 1):
    text = "CREATE TABLE log (i int);\n" if i == 1 else "INSERT INTO log VALUES (%d);\n" % i
    with open(os.path.join(root, "20240101_%s_up_%s.sql" % (rev(i - 1), rev(i))), "w") as f:
        f.write(text)
PY
chmod 644 "$work/f"/*

psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)
"${psql[@]}" -c "DROP DATABASE IF EXISTS bench_status" -c "CREATE DATABASE bench_status"
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench_status)
"${psql[@]}" -c "CREATE EXTENSION trek" \
	-c "SET client_min_messages = warning" \
	-c "SELECT trek_execute(trek_plan('$work/f', 'head'))" >/dev/null

"${psql[@]}" -v dir="$work/f" -v reps="$reps" -v n="$n" <<'SQL'
SET client_min_messages = warning;
SET trek.check_applied = off;
CREATE TEMP TABLE t (rep int, what text, ms float8);
CREATE FUNCTION pg_temp.timed(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q;
	RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END $$;
SELECT set_config('bench.dir', :'dir', false), set_config('bench.reps', :'reps', false) \gset
DO $$
DECLARE
	dir text := current_setting('bench.dir');
	q text[] := ARRAY[
		format('SELECT count(*) FROM pg_ls_dir(%L)', dir),
		format('SELECT trek_execute(trek_plan(%L, %L))', dir, 'head'),
		format('SELECT * FROM trek_status(%L)', dir)];
	names text[] := ARRAY['pg_ls_dir', 'no-op', 'trek_status'];
BEGIN
	-- one warm-up round, not counted
	FOR i IN 1 .. 3 LOOP PERFORM pg_temp.timed(q[i]); END LOOP;
	FOR r IN 1 .. current_setting('bench.reps')::int LOOP
		FOR i IN 1 .. 3 LOOP
			INSERT INTO t VALUES (r, names[i], pg_temp.timed(q[i]));
		END LOOP;
	END LOOP;
END $$;
\echo
\echo N = :n files, :reps rounds, statement times inside the server (ms)
SELECT t.what AS statement,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms)::numeric, 2) AS median_ms,
	   round(min(t.ms)::numeric, 2) AS min_ms,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY t.ms / l.ms)::numeric, 2)
		 AS ratio_to_pg_ls_dir
  FROM t JOIN t l ON l.rep = t.rep AND l.what = 'pg_ls_dir'
 GROUP BY t.what ORDER BY min(t.ms);
SQL
"$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE bench_status"
