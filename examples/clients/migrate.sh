#!/bin/sh
# Bring a database to a revision of its migration folder with psql and jq.
#
#     sh migrate.sh ./migrations [target]
#
# The folder is where this script runs: jq makes one JSON object of its
# files (name -> text) and psql sends it in the call.  Connection settings
# come from the PG* environment variables.
set -eu
folder=${1:?usage: migrate.sh FOLDER [TARGET]}
target=${2:-head}
json=$(mktemp)
trap 'rm -f "$json"' EXIT
for f in "$folder"/*; do
	[ -f "$f" ] && jq -Rs --arg name "${f##*/}" '{($name): .}' "$f"
done | jq -cs 'add // {}' >"$json"
psql -X -q -At -v ON_ERROR_STOP=1 -v json="$json" -v target="$target" <<'SQL'
\set folder `cat :'json'`
CALL trek_migrate(:'folder'::jsonb, :'target');
SELECT trek_current();
SQL
