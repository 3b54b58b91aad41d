#!/usr/bin/env bash
# scripts/demo.sh: show trek on a throwaway cluster. Plans and applies the
# example folder examples/people up to its head revision, shows the table
# and trek.history, then migrates back down to "initial".  The server reads
# a copy of the folder in a stage (lib.sh: trek_stage), removed at the end.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

echo "== Preparing: packages, build, install, throwaway cluster"
trek_install_deps
trek_build_install
trek_cluster_start demo
trek_stage demo
trek_stage_copy examples/people
dir=$TREK_STAGE_DIR/examples/people
"$PGBIN/createdb" trek_demo

# step HEADING SQL: print both, then run the SQL in trek_demo (:'dir' = $dir).
step() {
	printf '\n== %s\n   %s\n\n' "$1" "$2"
	"$PGBIN/psql" -X -v ON_ERROR_STOP=1 -d trek_demo -v dir="$dir" <<<"$2"
}

echo "Migration folder (dir): $dir (a copy of examples/people)"
ls "$dir"
step "Install the extension" "CREATE EXTENSION trek;"
step "Plan the way from the current revision to head" \
	"SELECT jsonb_pretty(trek_plan(:'dir', 'head'));"
step "Execute that plan" "SELECT trek_execute(trek_plan(:'dir', 'head'));"
step "Current revision" "SELECT trek_current();"
step "The table the migrations built" "SELECT * FROM people ORDER BY id;"
step "What trek recorded" \
	"SELECT id, track, from_revision, to_revision, direction, file, applied_by FROM trek.history ORDER BY id;"
step "Migrate back down to 'initial'" \
	"SELECT trek_execute(trek_plan(:'dir', 'initial'));"
step "History now has the down steps too" \
	"SELECT id, track, from_revision, to_revision, direction, file, applied_by FROM trek.history ORDER BY id;"
step "Current revision, and the table is gone" \
	"SELECT trek_current(), to_regclass('public.people') IS NULL AS people_dropped;"

trek_cleanup
echo
echo "== Done: the cluster is stopped and removed, and so is the copy"
