#!/usr/bin/env bash
# scripts/bench_python.sh [N] [RUNS]: what a Python step costs next to a SQL
# step. On a throwaway cluster, plans of N steps (default 200) are applied
# and rolled back RUNS times (default 5), the kinds alternating within each
# round; times are taken inside the server (clock_timestamp around
# trek_execute), and the medians and their ratios printed:
#   sql-empty / py-noop        per-step overhead (empty file / pass)
#   sql-table / py-table       CREATE TABLE (primary key) + INSERT per step
#   py-first                   one no-op Python step in a new session
#                              (loads PL/Python and trek's Python module)
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
n=${1:-200}
runs=${2:-5}

trek_install_deps
trek_build_install
trek_cluster_start bench-python
"$PGBIN/createdb" trek_bench
psql() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d trek_bench "$@"; }
psql -c "CREATE EXTENSION trek; CREATE EXTENSION plpython3u;"

root=$TREK_CLUSTER_DIR/folders
for kind in sql-empty py-noop sql-table py-table py-first; do
	mkdir -p "$root/$kind"
done
prev=initial
for i in $(seq 1 "$n"); do
	rev=r$i
	: >"$root/sql-empty/20240101_${prev}_up_$rev.sql"
	printf 'async def run_migration(conn):\n    pass\n' \
		>"$root/py-noop/20240101_${prev}_up_$rev.py"
	printf 'CREATE TABLE t_%d (id int PRIMARY KEY, v text);\nINSERT INTO t_%d VALUES (1, %s);\n' \
		"$i" "$i" "'x'" >"$root/sql-table/20240101_${prev}_up_$rev.sql"
	printf 'async def run_migration(conn):\n    await conn.execute("CREATE TABLE t_%d (id int PRIMARY KEY, v text)")\n    await conn.execute("INSERT INTO t_%d VALUES ($1, $2)", 1, "x")\n' \
		"$i" "$i" >"$root/py-table/20240101_${prev}_up_$rev.py"
	prev=$rev
done
printf 'async def run_migration(conn):\n    pass\n' \
	>"$root/py-first/20240101_initial_up_r1.py"
chmod -R a+rX "$root"
if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$root"; fi

# milliseconds trek_execute takes inside the server, in a new session,
# rolled back afterwards
measure() {
	psql -At -v dir="$root/$1" <<-'EOF'
		SET client_min_messages = warning;
		BEGIN;
		SELECT trek_plan(:'dir', 'head') AS plan \gset
		SELECT clock_timestamp() AS t0 \gset
		SELECT trek_execute(:'plan') \g /dev/null
		SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1);
		ROLLBACK;
	EOF
}

declare -A times
kinds="sql-empty py-noop sql-table py-table py-first"
for r in $(seq 1 "$runs"); do
	for kind in $kinds; do
		times[$kind]+="$(measure "$kind") "
	done
	echo "round $r: done" >&2
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "N = $n steps, $runs runs each, medians of in-server time (ms)"
for kind in $kinds; do
	printf '%-10s %10s ms   (runs: %s)\n' "$kind" \
		"$(median <<<"${times[$kind]}")" "${times[$kind]% }"
done
awk -v a="$(median <<<"${times[py-noop]}")" -v b="$(median <<<"${times[sql-empty]}")" -v n="$n" \
	'BEGIN { printf "overhead per step: py-noop %.3f ms, sql-empty %.3f ms\n", a / n, b / n }'
awk -v a="$(median <<<"${times[py-table]}")" -v b="$(median <<<"${times[sql-table]}")" \
	'BEGIN { printf "py-table / sql-table = %.2f (medians)\n", a / b }'
# the same ratio within each round, where both ran under the same load
paste -d' ' <(tr ' ' '\n' <<<"${times[py-table]}" | grep .) \
	<(tr ' ' '\n' <<<"${times[sql-table]}" | grep .) |
	awk '{ printf "%.2f ", $1 / $2 }' | median |
	awk '{ printf "py-table / sql-table = %.2f (median of per-round ratios)\n", $1 }'
