#!/usr/bin/env bash
# bench/sent.sh: a folder sent by the client against the same folder on the
# server (DDL_N migrations, trek_execute and trek_migrate), and the no-op at
# head of NOOP_N migrations against what it must do at least: parsing the
# sent jsonb, listing the server folder (applied-file check off) and
# reading every file (check on).  ROUNDS rounds, alternated (bench/sent.py).
#
#   bash bench/sent.sh [--no-build] [DDL_N] [NOOP_N] [ROUNDS]
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
trek_install_deps
[ "$build" -eq 0 ] || trek_build_install
trek_cluster_start sent
work=$TREK_CLUSTER_DIR/work
mkdir -p "$work" && chmod 755 "$TREK_CLUSTER_DIR" "$work"
/usr/bin/python3 "$TREK_ROOT/bench/sent.py" "$work" "${1:-1000}" "${2:-10000}" "${3:-11}"
