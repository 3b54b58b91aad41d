#!/usr/bin/env bash
# bench/check.sh: what the safety gate costs.
#
# (1) trek_check() of an N-step plan (default 1,000) against the least any
#     look at those files with the server's grammar and catalog does: the
#     module in bench/baseline, trek_bench_parse(dir), reads every file of
#     the folder, parses it with raw_parser() and looks up each relation a
#     statement names with RangeVarGetRelid().  Step i touches one of 100
#     tables created beforehand (not through trek), so that each look-up
#     finds a relation: ALTER TABLE ... ADD COLUMN, CREATE INDEX, UPDATE
#     ... WHERE, INSERT ... SELECT from another table, DELETE ... WHERE.
#     In one session, timed inside the server, a warm-up round and ROUNDS
#     counted rounds (default 11), the statements in a different order each
#     round:
#       SELECT count(*) FROM trek_check(dir, 'head')     (plans, then checks)
#       SELECT count(*) FROM trek_check(plan)            (plan made before)
#       SELECT trek_plan(dir, 'head') IS NULL            (planning alone)
#       SELECT trek_bench_parse(dir)                     (the reference)
#       SELECT sum(pg_total_relation_size(relation))     (the relations of
#         FROM <trek_check's rows that name one>          trek_check's rows)
#     Target: trek_check at most 1.2x the reference.
# (2) CALL trek_migrate(dir, 'head') of the DDL workload of bench/README.md
#     (migration i: CREATE TABLE t_i (id int primary key, v text); INSERT
#     INTO t_i VALUES (1, 'x');) with SET trek.hazards = 'off' against the
#     default 'refuse', at each size of DDL_SIZES (default 100,1000),
#     DDL_ROUNDS rounds (default 7), each run in a fresh database, the two
#     settings alternating which goes first; and, in a fresh database each
#     round, the gate's work alone: trek_check(plan) of that plan.  Target:
#     the gate adds at most 5% to the CALL.
# Prints medians and the median of each round's ratio (min-max).
#
#   bash bench/check.sh [--no-build] [N] [ROUNDS] [DDL_ROUNDS] [DDL_SIZES]
#
# Builds and installs bench/baseline (a module of its own).  Uses the
# cluster PGHOST/PGPORT point at when both are set (trek must be installed
# there); otherwise builds and installs trek (not with --no-build: the trek
# already installed) and starts a throwaway cluster as scripts/lib.sh does.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
n=${1:-1000}
rounds=${2:-11}
ddl_rounds=${3:-7}
ddl_sizes=${4:-100,1000}

make -C "$TREK_ROOT/bench/baseline" -s PG_CONFIG="$PG_CONFIG" \
	PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter"
_trek_root make -C "$TREK_ROOT/bench/baseline" -s PG_CONFIG="$PG_CONFIG" install
if [ -z "${PGHOST:-}" ] || [ -z "${PGPORT:-}" ]; then
	trek_install_deps
	[ "$build" -eq 0 ] || trek_build_install
	trek_cluster_start check
	work=$TREK_CLUSTER_DIR/work
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/trek-check.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work" && chmod 755 "$work"

# The folders: "check" (N steps on tables 0..99 that exist) and "ddl-<size>"
/usr/bin/python3 - "$work" "$n" "$ddl_sizes" <<'PY'
import os, sys
root, n, sizes = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rev = lambda i: "initial" if i == 0 else "r%05d" % i


def folder(name, body, count):
    d = os.path.join(root, name)
    os.makedirs(d, mode=0o755, exist_ok=True)
    os.chmod(d, 0o755)
    for i in range(1, count + 1):
        p = os.path.join(d, "20260101_%s_up_%s.sql" % (rev(i - 1), rev(i)))
        with open(p, "w") as f:
            f.write(body(i))
        os.chmod(p, 0o644)


def check(i):
    k, j = i % 100, (i + 1) % 100
    return [
        "ALTER TABLE t_%d ADD COLUMN c_%d int;\n" % (k, i),
        "CREATE INDEX ix_%d ON t_%d (v);\n" % (i, k),
        "UPDATE t_%d SET v = 'y' WHERE id = 1;\n" % k,
        "INSERT INTO t_%d (id, v) SELECT id + %d, v FROM t_%d WHERE id = 1;\n" % (k, i, j),
        "DELETE FROM t_%d WHERE id = %d;\nUPDATE t_%d SET v = 'z' WHERE id = 1;\n" % (k, -i, j),
    ][i % 5]


folder("check", check, n)
for size in sizes.split(","):
    folder("ddl-" + size, lambda i: "CREATE TABLE t_%d (id int primary key, v text); INSERT INTO t_%d VALUES (1, 'x');\n" % (i, i), int(size))
PY

psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1)
fresh() {	# fresh DB: a new database with trek (and the reference)
	"${psql[@]}" -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
	"${psql[@]}" -d "$1" -c "CREATE EXTENSION trek" -c "CREATE EXTENSION trek_bench_baseline"
}

# ---- (1) trek_check against the reference ----

fresh bench_check
"${psql[@]}" -d bench_check -v dir="$work/check" -v rounds="$rounds" -v n="$n" <<'SQL'
SET client_min_messages = warning;
SELECT format('CREATE TABLE t_%s (id int PRIMARY KEY, v text); INSERT INTO t_%s VALUES (1, %L);', k, k, 'x')
  FROM generate_series(0, 99) AS k \gexec
ANALYZE;
CREATE TEMP TABLE p AS SELECT trek_plan(:'dir', 'head') AS plan;
\echo
\echo (1) the workload: N = :n steps on 100 existing tables
SELECT (SELECT jsonb_array_length(plan -> 'steps') FROM p) AS steps,
	   count(DISTINCT (step, line)) AS check_statements,
	   count(relation) AS check_relation_rows,
	   count(hazard) AS hazards,
	   (trek_bench_parse(:'dir')).*
  FROM p, trek_check(p.plan);
-- the relations of trek_check's rows, one row each, for the sizes below
CREATE TEMP TABLE rels AS
SELECT c.relation FROM p, trek_check(p.plan) AS c WHERE c.relation IS NOT NULL;
CREATE TEMP TABLE t (rep int, what text, ms float8);
CREATE FUNCTION pg_temp.timed(q text, plan jsonb) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q USING plan;
	RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END $$;
SELECT set_config('bench.rounds', :'rounds', false), set_config('bench.dir', :'dir', false) \gset
DO $$
DECLARE
	dir text := current_setting('bench.dir');
	plan jsonb := (SELECT p.plan FROM p);
	q text[] := ARRAY[format('SELECT count(*) FROM trek_check(%L, %L)', dir, 'head'),
					  'SELECT count(*) FROM trek_check($1)',
					  format('SELECT trek_plan(%L, %L) IS NULL', dir, 'head'),
					  format('SELECT trek_bench_parse(%L)', dir),
					  'SELECT sum(pg_total_relation_size(relation)) FROM rels'];
	w text[] := ARRAY['check_dir', 'check_plan', 'plan', 'reference', 'sizes'];
	k int;
BEGIN
	-- round 0 warms up and is not kept; round r starts with statement r mod 5
	FOR r IN 0 .. current_setting('bench.rounds')::int LOOP
		FOR i IN 0 .. 4 LOOP
			k := (r + i) % 5 + 1;
			INSERT INTO t VALUES (r, w[k], pg_temp.timed(q[k], plan));
		END LOOP;
	END LOOP;
	DELETE FROM t WHERE rep = 0;
END $$;
\echo (1) ms inside the server, :rounds rounds; ratio: to the reference in the same round, median (min-max)
SELECT x.what,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ms)::numeric, 2) AS median_ms,
	   round(min(x.ms)::numeric, 2) || '-' || round(max(x.ms)::numeric, 2) AS min_max_ms,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY x.ms / y.ms)::numeric, 2) AS ratio,
	   round(min(x.ms / y.ms)::numeric, 2) || '-' || round(max(x.ms / y.ms)::numeric, 2) AS ratio_min_max
  FROM t x JOIN t y ON y.rep = x.rep AND y.what = 'reference'
 GROUP BY x.what ORDER BY min(array_position(ARRAY['reference', 'check_plan', 'check_dir', 'plan', 'sizes'], x.what));
\echo (1) trek_check(dir) less trek_plan(dir) of the same round, to the reference
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (c.ms - p.ms) / y.ms)::numeric, 2) AS ratio,
	   round(min((c.ms - p.ms) / y.ms)::numeric, 2) || '-' ||
	   round(max((c.ms - p.ms) / y.ms)::numeric, 2) AS ratio_min_max
  FROM t c JOIN t p USING (rep) JOIN t y USING (rep)
 WHERE c.what = 'check_dir' AND p.what = 'plan' AND y.what = 'reference';
SQL
"${psql[@]}" -d postgres -c "DROP DATABASE bench_check"

# ---- (2) the gate in trek_migrate ----

migrate() {	# migrate SIZE HAZARDS: ms of CALL trek_migrate in a fresh database
	local got
	fresh bench_gate
	got=$("${psql[@]}" -At -d bench_gate -v dir="$work/ddl-$1" -v hazards="$2" <<-'SQL'
		SET client_min_messages = warning;
		SET trek.hazards = :'hazards';
		SELECT set_config('bench.t0', clock_timestamp()::text, false) IS NULL;
		CALL trek_migrate(:'dir', 'head');
		SELECT round(extract(epoch FROM clock_timestamp() - current_setting('bench.t0')::timestamptz) * 1000, 1);
		SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relname LIKE 't\_%';
	SQL
	)
	got=$(tail -n 2 <<<"$got" | tr '\n' ' ')
	if [ "${got#* }" != "$1 " ]; then
		echo "trek: trek_migrate of ddl-$1 made ${got#* } tables, not $1" >&2
		exit 1
	fi
	echo "${got%% *}"
}
gate() {	# gate SIZE: ms of trek_check(plan) of the plan from initial, fresh database
	fresh bench_gate
	"${psql[@]}" -At -d bench_gate -v dir="$work/ddl-$1" <<-'SQL' | tail -n 1
		SET client_min_messages = warning;
		SELECT trek_plan(:'dir', 'head') AS plan \gset
		SELECT set_config('bench.t0', clock_timestamp()::text, false) IS NULL;
		SELECT count(*) IS NULL FROM trek_check(:'plan');
		SELECT round(extract(epoch FROM clock_timestamp() - current_setting('bench.t0')::timestamptz) * 1000, 2);
	SQL
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
minmax() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 {lo=$1} {hi=$1} END {printf "%.3f-%.3f", lo, hi}'; }
ratio() { awk "BEGIN {printf \"%.3f\", $1 / $2}"; }

report=()
IFS=, read -r -a sizes <<<"$ddl_sizes"
for size in "${sizes[@]}"; do
	offs=() refuses=() ratios=() gates=() gate_ratios=()
	for r in $(seq 1 "$ddl_rounds"); do
		if [ $((r % 2)) -eq 1 ]; then
			off=$(migrate "$size" off); refuse=$(migrate "$size" refuse)
		else
			refuse=$(migrate "$size" refuse); off=$(migrate "$size" off)
		fi
		g=$(gate "$size")
		offs+=("$off") refuses+=("$refuse") gates+=("$g")
		ratios+=("$(ratio "$refuse" "$off")") gate_ratios+=("$(ratio "$g" "$off")")
		echo "(2) N = $size, round $r: off $off ms, refuse $refuse ms ($(ratio "$refuse" "$off")x), trek_check(plan) $g ms" >&2
	done
	report+=("| $size | $(median "${offs[@]}") | $(median "${refuses[@]}") | $(ratio "$(median "${refuses[@]}")" "$(median "${offs[@]}")") | $(median "${ratios[@]}") ($(minmax "${ratios[@]}")) | $(median "${gates[@]}") | $(median "${gate_ratios[@]}") ($(minmax "${gate_ratios[@]}")) |")
done
echo
echo "(2) CALL trek_migrate(dir, 'head'), DDL workload, $ddl_rounds rounds, ms inside the server, medians"
echo "| N | hazards off | refuse (default) | ratio of medians | ratio, same round | trek_check(plan) alone | its share of off, same round |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${report[@]}"
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS bench_gate"
