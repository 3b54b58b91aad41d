#!/usr/bin/env bash
# scripts/sanitize.sh (make sanitize): the whole regression suite with
# memory and undefined-behaviour checking of trek inside a real server.
#
# - trek is built with UndefinedBehaviorSanitizer (-fsanitize=undefined, no
#   recovery) in a scratch copy of the tree, so the working tree's objects
#   stay as they are, and installed into the PostgreSQL that PG_CONFIG names
#   (TREK_PGBIN, as for make test);
# - the server runs under valgrind's memcheck (every backend, from the
#   postmaster on), through a wrapper passed to pg_ctl -p;
# - any valgrind error or UBSan report fails the run.
# AddressSanitizer is not used: with its runtime preloaded, Debian's postgres
# binary hangs in bindtextdomain() before main() does anything.
# The normal build is installed again at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TREK_ROOT"

TREK_DEPS="$TREK_DEPS valgrind"
trek_install_deps

sanflags="-fsanitize=undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
build=$(mktemp -d "${TMPDIR:-/tmp}/trek-sanitize.XXXXXX")
reports=$(mktemp -d "${TMPDIR:-/tmp}/trek-sanitize-reports.XXXXXX")
cleanup() {
	trek_cluster_stop_all
	rm -rf "$build" "$reports"
}

cp -R Makefile trek.control trek--*.sql src sql expected test scripts "$build"/
make -C "$build" -s clean >/dev/null
trek_log "building with $sanflags"
make -C "$build" -s PG_CONFIG="$PG_CONFIG" \
	PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter $sanflags" \
	PG_LDFLAGS="-fsanitize=undefined"
_trek_root make -C "$build" -s PG_CONFIG="$PG_CONFIG" install
if ! nm -D "$("$PG_CONFIG" --pkglibdir)/trek.so" | grep __ubsan_handle >/dev/null; then
	trek_log "the installed trek.so is not instrumented"
	exit 1
fi

cat >"$reports/postgres" <<-WRAPPER
	#!/bin/sh
	UBSAN_OPTIONS=print_stacktrace=1:log_path=$reports/ubsan
	# PL/Python: plain malloc, which valgrind understands (pymalloc's
	# arena checks read uninitialised memory by design)
	PYTHONMALLOC=malloc
	export UBSAN_OPTIONS PYTHONMALLOC
	exec valgrind --quiet --leak-check=no --error-limit=no --num-callers=30 \\
		--suppressions=$TREK_ROOT/scripts/valgrind.supp \\
		--track-origins=yes --log-file=$reports/valgrind.%p "$PGBIN/postgres" "\$@"
WRAPPER
chmod 755 "$reports/postgres"
if [ "$(id -u)" -eq 0 ]; then chown postgres: "$reports"; fi
chmod 755 "$reports"
export TREK_POSTGRES=$reports/postgres
trek_cluster_start sanitize
trap 'cleanup' EXIT

# the server really runs under valgrind
pid=$("$PGBIN/psql" -X -At -c 'SELECT pg_backend_pid()')
if grep -q vgpreload "/proc/$pid/maps" 2>/dev/null; then
	trek_log "backend $pid runs under valgrind"
else
	trek_log "the server does not run under valgrind"
	exit 1
fi

rc=0
start=$(date +%s)
make -C "$build" installcheck PG_CONFIG="$PG_CONFIG" || rc=$?
[ "$rc" -ne 0 ] && [ -f "$build/regression.diffs" ] && head -n 100 "$build/regression.diffs"
trek_log "suite took $(($(date +%s) - start)) s under valgrind"

# a crash shows in the server log whatever its report says
if grep -E 'terminated by signal|runtime error' "$TREK_CLUSTER_DIR/server.log"; then
	rc=1
fi
trek_cluster_stop
errors=$(find "$reports" -name 'valgrind.*' -size +0 | wc -l)
ubsan=$(find "$reports" -name 'ubsan*' | wc -l)
if [ "$errors" -gt 0 ] || [ "$ubsan" -gt 0 ]; then
	trek_log "reports: $errors from valgrind, $ubsan from UBSan"
	find "$reports" \( -name 'valgrind.*' -o -name 'ubsan*' \) -size +0 \
		-exec cat {} + | head -n 400
	rc=1
else
	trek_log "no valgrind or UBSan reports"
fi

# put the normal build back, so the next plain server can load trek
trek_build_install
[ "$rc" -eq 0 ] && echo "sanitize: passed" || echo "sanitize: FAILED"
exit "$rc"
