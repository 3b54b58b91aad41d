#!/usr/bin/env bash
# bench/run.sh: benchmark trek against raw SQL and other migration tools.
#
#   bash bench/run.sh              the full run (about 40 minutes on 2 cores)
#   bash bench/run.sh --quick      every workload once at N = 10 (a smoke test)
#   bash bench/run.sh --help       all options of bench/bench.py
#
# Installs what it needs (Debian: sqitch, its Pg driver, strace; npm: the
# versions pinned in bench/package-lock.json), builds and installs trek,
# starts a throwaway PostgreSQL cluster (the major scripts/lib.sh picks),
# runs bench/bench.py against it and removes the cluster.  Results go to bench/results/ (git-ignored).
#
# Options handled here (the rest go to bench.py):
#   --no-build      use the trek already installed
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
cd "$TREK_ROOT/bench"

build=1
args=()
for arg in "$@"; do
	case $arg in
		--no-build) build=0 ;;
		-h|--help) exec /usr/bin/python3 bench.py --help ;;
		*) args+=("$arg") ;;
	esac
done

trek_install_deps

# npm packages as locked (npm ci would insist on the lock listing every
# platform's optional dbmate binary), again whenever the lock file changes.
# The versions are those that Debian's own nodejs runs (18 on Debian 12):
# npm's warnings, an engine mismatch above all, stay visible.
if ! cmp -s package-lock.json node_modules/.bench-lock.json 2>/dev/null; then
	trek_log "installing npm packages into bench/node_modules"
	npm install --no-audit --no-fund >/dev/null
	cp package-lock.json node_modules/.bench-lock.json
fi

[ "$build" -eq 1 ] && trek_build_install

trek_cluster_start bench
# A trek plan is one transaction: 10,000 new tables (each with a primary key
# index, a TOAST table and its index) need more than the default lock table.
cat >>"$TREK_CLUSTER_DIR/data/postgresql.conf" <<-EOF
	# added by bench/run.sh
	max_locks_per_transaction = 1024
EOF
_trek_pg "$PGBIN/pg_ctl" -D "$TREK_CLUSTER_DIR/data" -w -t 60 restart \
	>>"$TREK_CLUSTER_DIR/pg_ctl.log" 2>&1

# generated migration folders live (and go) with the cluster
work=$TREK_CLUSTER_DIR/work
mkdir -p "$work"

PGBIN=$PGBIN /usr/bin/python3 bench.py --work "$work" "${args[@]}"
