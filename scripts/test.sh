#!/usr/bin/env bash
# scripts/test.sh: install dependencies, build and install trek, start a
# throwaway cluster, run the pg_regress suite (make installcheck, in a copy
# the server can read; then each file alone and all shuffled) and, when
# test/integration/test_*.py exist, pytest against the same cluster; then
# the benchmark harness once at N = 10 (bench/run.sh --quick, one test).
# The last line is always "N passed, M failed"; exit 0 only if all passed
# and at least one test ran.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TREK_ROOT"

passed=0 failed=0
rm -rf results regression.diffs regression.out

finish() {
	trek_cleanup
	if [ "$failed" -gt 0 ] && [ -s regression.diffs ]; then
		echo "---- regression.diffs (first 300 lines) ----"
		head -n 300 regression.diffs
	fi
	[ "$passed" -eq 0 ] && [ "$failed" -eq 0 ] && echo "trek: no test ran"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}

# took NAME START: the wall time of a stage (for comparing machines and majors)
took() { echo "trek: $1 took $((SECONDS - $2)) s"; }

# setup NAME COMMAND...: a set-up step; one that fails counts as one failed
# test.
setup() {
	local name=$1 t=$SECONDS
	shift
	"$@" || { echo "trek: $* failed"; failed=1; finish; }
	took "$name" "$t"
}

setup packages trek_install_deps
setup build trek_build_install
setup cluster trek_cluster_start test
export TREK_ROOT PGBIN PG_CONFIG
log=$TREK_CLUSTER_DIR/test-output.log	# removed with the cluster

# The server reads the fixtures in place, below the folder pg_regress runs
# in, and its OS user (postgres) cannot enter a clone in a home folder: so
# installcheck runs in a copy of what it needs, in a stage every user can
# read; its results come back here.
trek_stage regress || { echo "trek: no stage for pg_regress"; failed=1; finish; }
regress_dir=$TREK_STAGE_DIR
trek_stage_copy Makefile trek.control sql expected test/fixtures test/regress \
	scripts/regress-order.sh || { echo "trek: could not copy the tests"; failed=1; finish; }
regress_back() {
	rm -rf results regression.diffs regression.out
	[ -d "$regress_dir/results" ] && cp -R "$regress_dir/results" results
	for f in regression.diffs regression.out; do
		[ -f "$regress_dir/$f" ] && cp "$regress_dir/$f" "$f"
	done
	return 0
}

echo "== pg_regress (make installcheck), PostgreSQL $TREK_PG_MAJOR"
t=$SECONDS rc=0
make -C "$regress_dir" installcheck PG_CONFIG="$PG_CONFIG" 2>&1 | tee "$log" || rc=$?
regress_back
# PG15: "test NAME ... ok  12 ms" / "... FAILED"; PG16+ TAP: "ok 1 - NAME".
p=$(grep -cE '\.\.\. +ok( |$)|^ok [0-9]+ ' "$log" || true)
f=$(grep -cE '\.\.\. +(FAILED|failed)|^not ok [0-9]+ ' "$log" || true)
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1	# pg_regress broke before counting
passed=$((passed + p)) failed=$((failed + f))
took pg_regress "$t"

# Each pg_regress file alone, then all in a shuffled order (seed printed).
echo "== pg_regress files alone and shuffled (scripts/regress-order.sh)"
t=$SECONDS rc=0
(cd "$regress_dir" && PG_CONFIG="$PG_CONFIG" bash scripts/regress-order.sh) 2>&1 |
	tee "$log" || rc=$?
[ "$rc" -ne 0 ] && regress_back
p=$(grep -cE '^test [^ ]+ \.\.\. ok$' "$log" || true)
f=$(grep -cE '^test [^ ]+ \.\.\. FAILED$' "$log" || true)
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
passed=$((passed + p)) failed=$((failed + f))
took "pg_regress order" "$t"

if compgen -G "test/integration/test_*.py" >/dev/null; then
	# Debian's interpreter: the one python3-pytest/psycopg/asyncpg belong to
	# (an earlier python3 on PATH, e.g. pyenv's, lacks them).
	echo "== pytest (test/integration)"
	t=$SECONDS rc=0
	PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		test/integration 2>&1 | tee "$log" || rc=$?
	summary=$(grep -E '^=* ?[0-9]+ (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)\b' \
		"$log" | tail -n 1 || true)
	count() { grep -oE "[0-9]+ $1" <<<"$summary" | grep -oE '^[0-9]+' || echo 0; }
	p=$(count passed)
	f=$(($(count failed) + $(count 'errors?')))
	[ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && [ "$f" -eq 0 ] && f=1	# 5: none collected
	passed=$((passed + p)) failed=$((failed + f))
	took pytest "$t"
fi

# stage NAME COMMAND...: a stage that prints "ok - ..." / "not ok - ..."
# lines: each counts as a test ("# skip" lines do not); a command that
# fails without saying "not ok" counts as one failure.
stage() {
	local name=$1 t=$SECONDS rc=0 p f
	shift
	"$@" 2>&1 | tee "$log" || rc=$?
	p=$(grep -E '^ok - ' "$log" | grep -cv '# skip' || true)
	f=$(grep -c '^not ok - ' "$log" || true)
	[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	passed=$((passed + p)) failed=$((failed + f))
	took "$name" "$t"
}

# Formatting: pgindent-clean (where pg_bsd_indent is packaged), and
# typedefs.list as scripts/typedefs.py makes it from this build (on
# PostgreSQL 15, whose headers the list was made with).
check_formatting() {
	local rc=0
	bash scripts/pgindent.sh --check || rc=1
	[ "$TREK_PG_MAJOR" = 15 ] || return "$rc"
	cp typedefs.list "$TREK_CLUSTER_DIR/typedefs.committed"
	/usr/bin/python3 scripts/typedefs.py >/dev/null
	if cmp -s typedefs.list "$TREK_CLUSTER_DIR/typedefs.committed"; then
		echo "ok - typedefs.list is what scripts/typedefs.py makes"
	else
		diff "$TREK_CLUSTER_DIR/typedefs.committed" typedefs.list | head -20
		echo "not ok - typedefs.list is not what scripts/typedefs.py makes"
		cp "$TREK_CLUSTER_DIR/typedefs.committed" typedefs.list
		rc=1
	fi
	return "$rc"
}

# META.json, the version in every file and the archive of make dist.
echo "== release files (scripts/test-release.sh)"
stage "release files" bash scripts/test-release.sh

# The rooms of src/ call only downwards: no include cycle.
echo "== source layout (scripts/check-includes.py)"
stage "source layout" /usr/bin/python3 scripts/check-includes.py

echo "== formatting (scripts/pgindent.sh --check, scripts/typedefs.py)"
stage formatting check_formatting

# The benchmark harness once, small, so that it cannot rot: one test.
echo "== benchmark harness (bench/run.sh --quick: every workload once at N = 10)"
t=$SECONDS
if bash bench/run.sh --quick --no-build >"$log" 2>&1; then
	tail -n 1 "$log"
	echo "benchmark harness ... ok"
	passed=$((passed + 1))
else
	tail -n 60 "$log"
	echo "benchmark harness ... FAILED"
	failed=$((failed + 1))
fi
took benchmark "$t"

finish
