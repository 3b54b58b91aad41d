#!/usr/bin/env bash
# bench/notxn.sh: the fixed cost of a step outside a transaction.
#
# Two chains of N steps (default 50) that each hold just "SELECT 1;": one
# of ordinary steps, one whose steps start with "-- trek:no-transaction".
# Each is applied with CALL trek_migrate in a fresh database, REPS times
# (default 5), alternating; a step's time is its history row's duration
# (start to end of the step, as trek_migrate measures it), and the run's
# time is the CALL's, inside the server.  Prints medians and the extra
# cost of a no-transaction step.
#
#   bash bench/notxn.sh [N] [REPS]
#
# Uses the cluster PGHOST/PGPORT point at when both are set (trek must be
# installed there); otherwise builds and installs trek and starts a
# throwaway cluster as scripts/lib.sh does.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
n=${1:-50}
reps=${2:-5}

if [ -z "${PGHOST:-}" ] || [ -z "${PGPORT:-}" ]; then
	trek_install_deps
	trek_build_install
	trek_cluster_start notxn
	work=$TREK_CLUSTER_DIR/work
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/trek-notxn.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/plain" "$work/notxn"
chmod 755 "$work" "$work/plain" "$work/notxn"
for i in $(seq 1 "$n"); do
	from=$([ "$i" -eq 1 ] && echo initial || printf 'r%04d' $((i - 1)))
	to=$(printf 'r%04d' "$i")
	echo 'SELECT 1;' >"$work/plain/20240101_${from}_up_${to}.sql"
	printf -- '-- trek:no-transaction\nSELECT 1;\n' >"$work/notxn/20240101_${from}_up_${to}.sql"
done
chmod -R a+rX "$work"

psql=("$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1)
run() {		# run KIND: "call_ms step_median_ms" of one fresh run
	"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS trek_notxn_bench" \
		-c "CREATE DATABASE trek_notxn_bench"
	"${psql[@]}" -d trek_notxn_bench -c "CREATE EXTENSION trek" \
		-c "SET client_min_messages = warning" \
		-c "SELECT set_config('bench.t0', clock_timestamp()::text, false)" \
		-c "CALL trek_migrate('$work/$1', 'head')" \
		-c "SELECT round(extract(epoch FROM clock_timestamp() - current_setting('bench.t0')::timestamptz) * 1000, 1),
			round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM duration)) * 1000)::numeric, 2)
			FROM trek.history" | tail -n 1 | tr '|' ' '
}
declare -a plain_call plain_step notxn_call notxn_step
for r in $(seq 1 "$reps"); do
	for kind in plain notxn; do
		read -r call step < <(run "$kind")
		eval "${kind}_call+=(\"$call\"); ${kind}_step+=(\"$step\")"
		echo "run $r: $kind: CALL $call ms, median step $step ms" >&2
	done
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
mp=$(median "${plain_step[@]}"); mn=$(median "${notxn_step[@]}")
cp=$(median "${plain_call[@]}"); cn=$(median "${notxn_call[@]}")
echo
echo "N = $n steps of SELECT 1, $reps runs each, medians:"
echo "| steps | median step (history duration) | CALL trek_migrate, whole run | per step |"
echo "|---|---:|---:|---:|"
echo "| ordinary | $mp ms | $cp ms | $(awk "BEGIN {printf \"%.2f\", $cp / $n}") ms |"
echo "| -- trek:no-transaction | $mn ms | $cn ms | $(awk "BEGIN {printf \"%.2f\", $cn / $n}") ms |"
echo "Extra cost of a step outside a transaction: $(awk "BEGIN {printf \"%.2f\", ($cn - $cp) / $n}") ms a step (whole run), $(awk "BEGIN {printf \"%.2f\", $mn - $mp}") ms (step alone)."
"${psql[@]}" -d postgres -c "DROP DATABASE IF EXISTS trek_notxn_bench"
