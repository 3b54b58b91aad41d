#!/usr/bin/env bash
# bench/compare.sh REV_A REV_B [ROUNDS]: trek's own workloads on two builds,
# alternated, so that a change (a refactoring above all) can show it costs
# nothing beyond this machine's noise.
#
# Builds trek at the two git revisions (from `git archive`, outside the
# working tree), then for each of ROUNDS rounds (default 3), A then B in odd
# rounds and B then A in even ones: installs that build, runs bench/run.sh
# --no-build with trek's tools only (DDL at 200 and overhead at 1,000 migrations
# against one-string, the no-op at 1,000, planning at 10,000 and 100,000),
# and bench/status.sh 10000 (pg_ls_dir, the no-op, trek_status).  Prints,
# per build, the median over rounds of each same-run ratio; the tables of
# every run stay in bench/results/compare-STAMP/.  Leaves the build of the
# working tree installed again at the end.
#
#   bash bench/compare.sh e6d4e53 HEAD 3
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
[ $# -ge 2 ] || { trek_log "usage: bench/compare.sh REV_A REV_B [ROUNDS]"; exit 2; }
rounds=${3:-3}
out=$TREK_ROOT/bench/results/compare-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
trek_install_deps

builds=$(mktemp -d "${TMPDIR:-/tmp}/trek-compare.XXXXXX")
trap 'rm -rf "$builds"' EXIT
labels=()
for rev in "$1" "$2"; do
	label=$(git -C "$TREK_ROOT" rev-parse --short "$rev")
	labels+=("$label")
	mkdir "$builds/$label"
	git -C "$TREK_ROOT" archive "$rev" | tar -x -C "$builds/$label"
	trek_log "building $rev ($label)"
	make -C "$builds/$label" -s PG_CONFIG="$PG_CONFIG" >/dev/null
done

libdir=$("$PG_CONFIG" --pkglibdir)
install_build() {
	_trek_root install -m 755 "$builds/$1/trek.so" "$libdir/trek.so"
}

for round in $(seq 1 "$rounds"); do
	order=("${labels[@]}")
	[ $((round % 2)) -eq 0 ] && order=("${labels[1]}" "${labels[0]}")
	for label in "${order[@]}"; do
		trek_log "round $round: $label"
		install_build "$label"
		bash "$TREK_ROOT/bench/run.sh" --no-build --tools trek,trek_migrate \
			--ddl 200 --overhead 1000 --noop 1000 --plan 10000,100000 --reps 5 \
			--out "$out/$label-$round" >"$out/$label-$round.log" 2>&1
		# status.sh starts a cluster of its own (and so loads this build)
		# when PGHOST and PGPORT are not both set
		env -u PGHOST -u PGPORT \
			bash "$TREK_ROOT/bench/status.sh" --no-build 10000 11 >"$out/$label-$round.status" 2>&1
	done
done

/usr/bin/python3 - "$out" "${labels[@]}" <<'PY'
import glob, json, os, re, statistics, sys
out, labels = sys.argv[1], sys.argv[2:]
def paired(c, lim):
    return statistics.median(a / b for a, b in zip(c["times"], lim["times"]))
rows = {}
for label in labels:
    for path in sorted(glob.glob(os.path.join(out, label + "-*", "*.json"))):
        r = json.load(open(path))["results"]
        add = lambda k, v: rows.setdefault(k, {}).setdefault(label, []).append(v)
        for w in ("ddl", "overhead"):
            for n, cell in r.get(w, {}).items():
                for t in ("trek", "trek_migrate"):
                    if t in cell and not cell[t].get("skipped"):
                        add(f"{w} N={n}: {t} ÷ one-string", paired(cell[t], cell["one-string"]))
        for n, cell in r.get("noop", {}).items():
            if "trek" in cell and "psql SELECT 1" in cell:
                add(f"no-op N={n}: trek ÷ psql SELECT 1",
                    cell["trek"]["median"] / cell["psql SELECT 1"]["median"])
        for n, cell in r.get("plan", {}).items():
            add(f"trek_plan N={n} (ms)", cell["full"]["median"] * 1000)
            add(f"trek_plan N={n}: peak growth (kB)", cell["hwm growth kb"]["median"])
    for path in sorted(glob.glob(os.path.join(out, label + "-*.status"))):
        for line in open(path):
            m = re.match(r"^\s*(no-op|trek_status)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)", line)
            if m:
                rows.setdefault(f"status.sh N=10000: {m.group(1)} ÷ pg_ls_dir", {}) \
                    .setdefault(label, []).append(float(m.group(4)))
print("| measure | " + " | ".join(labels) + " | " + " ÷ ".join(reversed(labels)) + " |")
print("|---|" + "---:|" * (len(labels) + 1))
for k in sorted(rows):
    meds = [statistics.median(rows[k][l]) if rows[k].get(l) else None for l in labels]
    cells = ["%.2f (%s)" % (m, ", ".join("%.2f" % v for v in rows[k][l])) if m is not None else "?"
             for m, l in zip(meds, labels)]
    ratio = "%.2f" % (meds[1] / meds[0]) if None not in meds and meds[0] else "?"
    print(f"| {k} | " + " | ".join(cells) + f" | {ratio} |")
PY
trek_log "runs in $out"
trek_build_install >/dev/null
