#!/usr/bin/env bash
# bench/formats.sh: other tools' folders against trek's own, at N migrations
# (default 10,000) generated in each format: asyncpg-trek's own chain
# (YYYYMMDD_<from>_up_<to>.sql), golang-migrate up/down pairs, Flyway V
# files, dbmate and goose files (both sections in one file), sqlx simple
# files and diesel folders (up.sql and down.sql).  Time inside the server,
# alternated in one session, ROUNDS rounds (default 11) after a warm-up:
#   (a) the no-op at head: trek_plan(folder, 'head') with
#       trek.check_applied off on a track stamped at head (trek_stamp),
#       against SELECT count(*) FROM pg_ls_dir(folder), per format;
#   (b) planning from initial: trek_plan(folder, 'head') on a track with no
#       history (a plan of N steps, each file read and hashed), against the
#       same call on a folder in trek's own format with the same steps and
#       the same file contents (down files too where the tool has them).
# Prints medians and the median of each round's ratio (min-max), the two
# calls of a ratio taken one after the other, in alternating order.
#
#   bash bench/formats.sh [--no-build] [N] [ROUNDS]
#
# Uses the cluster PGHOST/PGPORT point at when both are set (trek must be
# installed there); otherwise builds and installs trek (not with
# --no-build: the trek already installed) and starts a throwaway cluster as
# scripts/lib.sh does.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
build=1
if [ "${1:-}" = --no-build ]; then build=0; shift; fi
n=${1:-10000}
rounds=${2:-11}

if [ -z "${PGHOST:-}" ] || [ -z "${PGPORT:-}" ]; then
	trek_install_deps
	[ "$build" -eq 0 ] || trek_build_install
	trek_cluster_start formats
	work=$TREK_CLUSTER_DIR/work
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/trek-formats.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work" && chmod 755 "$work"

# The folders, and what to compare: one line per folder,
# "name folder twin" (twin: trek's own folder with the same steps and
# contents, "-" for trek's own).  Migration i is the overhead workload of
# bench.py; a down file or section undoes it.
/usr/bin/python3 - "$work" "$n" >"$work/folders" <<'PY'
import datetime, os, sys
root, n = sys.argv[1], int(sys.argv[2])
up = lambda i: "CREATE TABLE log (i int);\n" if i == 1 else "INSERT INTO log VALUES (%d);\n" % i
down = lambda i: "DROP TABLE log;\n" if i == 1 else "DELETE FROM log WHERE i = %d;\n" % i
rev = lambda i: "initial" if i == 0 else "r%06d" % i
stamp = lambda i, f: (datetime.datetime(2024, 1, 1) + datetime.timedelta(minutes=i)).strftime(f)
ts = lambda i: stamp(i, "%Y%m%d%H%M%S")
dbmate = lambda i: "-- migrate:up\n" + up(i) + "\n-- migrate:down\n" + down(i)
goose = lambda i: "-- +goose Up\n" + up(i) + "\n-- +goose Down\n" + down(i)


def folder(name, files):
    d = os.path.join(root, name)
    for rel, text in files:
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), mode=0o755, exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o644)
    for dirpath, _, _ in os.walk(d):
        os.chmod(dirpath, 0o755)
    return d


def trek(body, with_down=False):
    for i in range(1, n + 1):
        yield "20240101_%s_up_%s.sql" % (rev(i - 1), rev(i)), body(i)
        if with_down:
            yield "20240101_%s_down_%s.sql" % (rev(i), rev(i - 1)), down(i)


def pairs():
    for i in range(1, n + 1):
        yield "%d_m%d.up.sql" % (i, i), up(i)
        yield "%d_m%d.down.sql" % (i, i), down(i)


def diesel():
    for i in range(1, n + 1):
        yield "%s_m%d/up.sql" % (stamp(i, "%Y-%m-%d-%H%M%S"), i), up(i)
        yield "%s_m%d/down.sql" % (stamp(i, "%Y-%m-%d-%H%M%S"), i), down(i)


t_up = folder("trek", trek(up))
t_updown = folder("trek-updown", trek(up, True))
t_dbmate = folder("trek-dbmate", trek(dbmate))
t_goose = folder("trek-goose", trek(goose))
for name, d, twin in (
        ("trek", t_up, "-"),
        ("golang-migrate", folder("golang-migrate", pairs()), t_updown),
        ("flyway", folder("flyway", (("V%d__m%d.sql" % (i, i), up(i)) for i in range(1, n + 1))), t_up),
        ("dbmate", folder("dbmate", (("%s_m%d.sql" % (ts(i), i), dbmate(i)) for i in range(1, n + 1))), t_dbmate),
        ("goose", folder("goose", (("%s_m%d.sql" % (ts(i), i), goose(i)) for i in range(1, n + 1))), t_goose),
        ("sqlx", folder("sqlx", (("%s_m%d.sql" % (ts(i), i), up(i)) for i in range(1, n + 1))), t_up),
        ("diesel", folder("diesel", diesel()), t_updown)):
    print(name, d, twin)
PY

psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d postgres)
"${psql[@]}" -c "DROP DATABASE IF EXISTS bench_formats" -c "CREATE DATABASE bench_formats"
psql=("$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d bench_formats)
"${psql[@]}" -c "CREATE EXTENSION trek"

# Each folder is recognised as its tool and plans N steps from initial; its
# track is then stamped at head.
"${psql[@]}" -c "CREATE TABLE folders (name text, dir text, twin text)"
while read -r name dir twin; do
	got=$("${psql[@]}" -At -v name="$name" -v dir="$dir" -v twin="$twin" <<-'SQL'
		SET client_min_messages = warning;
		INSERT INTO folders VALUES (:'name', :'dir', nullif(:'twin', '-'));
		SELECT coalesce(p ->> 'tool', 'trek') || ' ' || jsonb_array_length(p -> 'steps')
		  FROM trek_plan(:'dir', 'head', track => 'fresh') AS p;
		SELECT trek_stamp(:'dir', 'head', :'name') IS NULL;
	SQL
	)
	if [ "${got%$'\n'*}" != "$name $n" ]; then
		echo "trek: folder $name: expected \"$name $n\" (tool, steps), got \"${got%$'\n'*}\"" >&2
		exit 1
	fi
done <"$work/folders"

"${psql[@]}" -v rounds="$rounds" -v n="$n" <<'SQL'
SET client_min_messages = warning;
SET trek.check_applied = off;
CREATE TEMP TABLE t (rep int, part text, name text, what text, ms float8);
CREATE FUNCTION pg_temp.timed(q text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
BEGIN
	t0 := clock_timestamp();
	EXECUTE q;
	RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END $$;
SELECT set_config('bench.rounds', :'rounds', false) \gset
DO $$
DECLARE
	f record;
	q text[];
	w text[];
BEGIN
	-- round 0 warms up and is not kept; odd rounds run the reference first
	FOR r IN 0 .. current_setting('bench.rounds')::int LOOP
		FOR f IN SELECT * FROM folders ORDER BY name LOOP
			q := ARRAY[format('SELECT count(*) FROM pg_ls_dir(%L)', f.dir),
					   format('SELECT trek_plan(%L, %L, track => %L) IS NULL', f.dir, 'head', f.name)];
			w := ARRAY['pg_ls_dir', 'no-op'];
			IF r % 2 = 0 THEN q := ARRAY[q[2], q[1]]; w := ARRAY[w[2], w[1]]; END IF;
			FOR i IN 1 .. 2 LOOP
				INSERT INTO t VALUES (r, 'a', f.name, w[i], pg_temp.timed(q[i]));
			END LOOP;
			CONTINUE WHEN f.twin IS NULL;
			q := ARRAY[format('SELECT trek_plan(%L, %L, track => %L) IS NULL', f.twin, 'head', 'fresh'),
					   format('SELECT trek_plan(%L, %L, track => %L) IS NULL', f.dir, 'head', 'fresh')];
			w := ARRAY['trek', 'tool'];
			IF r % 2 = 0 THEN q := ARRAY[q[2], q[1]]; w := ARRAY[w[2], w[1]]; END IF;
			FOR i IN 1 .. 2 LOOP
				INSERT INTO t VALUES (r, 'b', f.name, w[i], pg_temp.timed(q[i]));
			END LOOP;
		END LOOP;
	END LOOP;
	DELETE FROM t WHERE rep = 0;
END $$;
CREATE TEMP VIEW ratio AS
SELECT x.part, x.name, x.rep, x.ms AS ref_ms, y.ms AS ms, y.ms / x.ms AS ratio
  FROM t x JOIN t y USING (rep, part, name)
 WHERE (x.what, y.what) IN (('pg_ls_dir', 'no-op'), ('trek', 'tool'));
\echo
\echo (a) no-op at head, trek.check_applied off: N = :n migrations, :rounds rounds, ms inside the server
SELECT name AS format,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ref_ms)::numeric, 2) AS pg_ls_dir_ms,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS no_op_ms,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio)::numeric, 2) AS ratio,
	   round(min(ratio)::numeric, 2) || '-' || round(max(ratio)::numeric, 2) AS ratio_min_max
  FROM ratio WHERE part = 'a' GROUP BY name ORDER BY name = 'trek' DESC, name;
\echo (b) trek_plan from initial: N = :n steps, :rounds rounds, ms inside the server
SELECT name AS format,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ref_ms)::numeric, 2) AS trek_format_ms,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS tool_format_ms,
	   round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ratio)::numeric, 2) AS ratio,
	   round(min(ratio)::numeric, 2) || '-' || round(max(ratio)::numeric, 2) AS ratio_min_max
  FROM ratio WHERE part = 'b' GROUP BY name ORDER BY name;
SQL
"$PGBIN/psql" -X -q -d postgres -c "DROP DATABASE bench_formats"
