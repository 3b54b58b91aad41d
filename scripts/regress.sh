#!/usr/bin/env bash
# scripts/regress.sh PG_REGRESS [OPTION...] TEST...: run pg_regress on a
# per-run copy of the tests; `make installcheck` calls it.
#
# The server reads the fixture folders, and it may run as an OS user that
# cannot enter the project folder (a clone in a home folder).  So the
# fixtures are copied into a stage open to every user, TREK_REGRESS_DIR
# (the tests find it with \getenv), which is removed after the run.  The
# server's messages name the folders it read: expected/ says @regress_dir@
# where the stage's path appears, and pg_regress compares against a copy of
# expected/ with the path filled in.  pg_regress writes into the stage too
# (it would prefer ./expected over the copy); results/,
# regression.diffs and regression.out then come back to the current folder
# with @regress_dir@ again, so that an accepted results/NAME.out can be
# copied over expected/NAME.out as it is.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -ge 1 ] || { trek_log "usage: regress.sh PG_REGRESS [OPTION...] TEST..."; exit 2; }
src=$TREK_ROOT
# The stage's path is as long as the one the expected output was written
# with (/tmp/trek_regress): psql pads its columns to the widest value, and
# some values hold the path.
stage=$(mktemp -d /tmp/trek.XXXXXXX)
chmod 755 "$stage"
TREK_STAGES+=("$stage")
_trek_traps
TREK_STAGE_DIR=$stage
if [ "$(realpath "$stage")" != "$stage" ] || [ ${#stage} -ne 17 ]; then
	trek_log "$stage: /tmp is not a plain 17-character path here, so column widths will differ"
fi
trek_stage_copy test/fixtures
mv "$stage/test/fixtures" "$stage/fixtures"
rmdir "$stage/test"
mkdir -p "$stage/input/expected"
cp -R "$src/sql" "$stage/input/sql"
for f in "$src"/expected/*.out; do
	sed "s|@regress_dir@|$stage|g" "$f" >"$stage/input/expected/${f##*/}"
done
export TREK_REGRESS_DIR=$stage

out=$stage/output
mkdir "$out"
args=("$1" "--inputdir=$stage/input" "--outputdir=$out")
# since PostgreSQL 16 expected/ is looked for in --expecteddir, default "."
"$1" --help 2>/dev/null | grep -q -- --expecteddir &&
	args+=("--expecteddir=$stage/input")
shift
for arg in "$@"; do
	case $arg in
		--inputdir=*|--outputdir=*|--expecteddir=*) ;;
		*) args+=("$arg") ;;
	esac
done

rc=0
"${args[@]}" || rc=$?
rm -rf results regression.diffs regression.out
[ -d "$out/results" ] && mkdir results
for f in "$out"/results/*.out "$out"/regression.diffs "$out"/regression.out; do
	[ -f "$f" ] || continue
	sed -e "s|$stage/input/expected/|expected/|g" -e "s|$out/results/|results/|g" \
		-e "s|$stage|@regress_dir@|g" "$f" >"${f#"$out"/}"
done
[ "$rc" -ne 0 ] && [ -f regression.diffs ] &&
	trek_log "the differences are in $(pwd)/regression.diffs"
exit "$rc"
