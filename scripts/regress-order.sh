#!/usr/bin/env bash
# scripts/regress-order.sh: check that the pg_regress files stand alone: run
# `make installcheck` once per file of REGRESS (each file alone), then once
# with all of them in a shuffled order.  The order comes from a seed, printed
# first; TREK_REGRESS_SEED=N repeats an order.  Run from a folder the server
# can read (scripts/test.sh runs it in its readable copy), against the
# cluster that PGHOST/PGPORT name.  Prints "test NAME ... ok" or "... FAILED"
# per run, so that scripts/test.sh can count them; exit 1 if one failed.
set -uo pipefail

pg_config=${PG_CONFIG:-pg_config}
tests=$(make -s --no-print-directory PG_CONFIG="$pg_config" print-regress 2>/dev/null)
[ -n "$tests" ] || { echo "trek: no REGRESS tests found" >&2; exit 2; }

seed=${TREK_REGRESS_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "trek: shuffle seed $seed (TREK_REGRESS_SEED=$seed repeats this order)"
shuffled=$(printf '%s\n' $tests | shuf --random-source=<(yes "$seed") | xargs)

failed=0
run() {
	local label=$1 log
	shift
	log=$(mktemp "${TMPDIR:-/tmp}/trek-regress.XXXXXX")
	if make -s --no-print-directory installcheck PG_CONFIG="$pg_config" \
		REGRESS="$*" >"$log" 2>&1; then
		echo "test $label ... ok"
	else
		echo "test $label ... FAILED"
		tail -n 40 "$log"
		[ -f regression.diffs ] && head -n 100 regression.diffs
		failed=1
	fi
	rm -f "$log"
}

for t in $tests; do
	run "alone:$t" "$t"
done
echo "trek: shuffled order: $shuffled"
run "shuffled:seed=$seed" "$shuffled"
exit "$failed"
