#!/usr/bin/env bash
# scripts/pgindent.sh [--check]: format src/*.c and src/*.h the way
# PostgreSQL's pgindent does, with pg_bsd_indent (Debian: pg-bsd-indent),
# its options and typedefs.list (scripts/typedefs.py writes it).  --check
# changes nothing: it prints "ok - ..." or "not ok - ..." naming each file
# that would change, and exits 1 then; without pg_bsd_indent it prints a
# skip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
check=false
[ "${1:-}" = --check ] && check=true
indent=$(command -v pg_bsd_indent || true)
if [ -z "$indent" ]; then
	echo "ok - pgindent-clean # skip pg_bsd_indent is not installed"
	exit 0
fi
# pgindent's options for pg_bsd_indent 2.1
opts=(-bad -bap -bbb -bc -bl -cli1 -cp33 -cdb -nce -d0 -di12 -nfc1 -i4 -l79
	-lp -lpl -nip -npro -sac -tpg -ts4 -Utypedefs.list)
work=$(mktemp -d "${TMPDIR:-/tmp}/trek-indent.XXXXXX")
trap 'rm -rf "$work"' EXIT
changed=()
for f in src/*.c src/*.h; do
	case $f in src/python_shim.h) continue ;; esac	# generated
	"$indent" "${opts[@]}" "$f" "$work/raw" 2>"$work/err" || {
		cat "$work/err" >&2
		echo "not ok - pgindent-clean: pg_bsd_indent failed on $f"
		exit 1
	}
	# as pgindent does after pg_bsd_indent: a function's return type on its
	# own line ends in " *", not in a column of tabs
	sed 's/^\([A-Za-z_][A-Za-z0-9_ ]*[A-Za-z0-9_]\)[[:space:]][[:space:]]*\*$/\1 */' \
		"$work/raw" >"$work/out"
	if ! cmp -s "$f" "$work/out"; then
		changed+=("$f")
		$check || cp "$work/out" "$f"
	fi
done
if $check && [ ${#changed[@]} -gt 0 ]; then
	echo "not ok - pgindent-clean: ${changed[*]} would change (run scripts/pgindent.sh)"
	exit 1
fi
if $check; then
	echo "ok - pgindent-clean"
else
	echo "ok - pgindent-clean (${#changed[@]} files reformatted)"
fi
