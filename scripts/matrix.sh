#!/usr/bin/env bash
# scripts/matrix.sh [LEG...]: the whole suite on several PostgreSQL majors
# (make test-matrix).  A LEG is "host" (make test on this machine), a
# Debian release whose default PostgreSQL the suite then runs on, in a
# throwaway copy of a pristine root (scripts/roots.sh): bookworm (15),
# trixie (17), forky (18), or "deb:RELEASE": the Debian package built and
# installed in copies of that release's pristine root and the regression
# suite run against it (scripts/test-deb.sh).  Default: host trixie forky
# deb:bookworm.  TREK_MATRIX sets
# the default too, e.g. TREK_MATRIX="bookworm trixie forky" leaves this
# machine's PostgreSQL alone.
#
# In a root the suite runs as root from a copy of the working tree at
# /root/trek (mode 0700, as a clone there would be), with `make test` and
# nothing else, so it installs the release's packages itself.  Prints each
# leg's "N passed, M failed" and the wall time of its stages, then the
# total as the last line; exits non-zero if anything failed.  Needs root
# for the roots.
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/roots.sh
source "$TREK_ROOT/scripts/roots.sh"

read -r -a legs <<<"${TREK_MATRIX:-host trixie forky deb:bookworm}"
[ $# -gt 0 ] && legs=("$@")
logs=$(mktemp -d "${TMPDIR:-/tmp}/trek-matrix.XXXXXX")
cleanup() {
	trek_root_remove_all
	rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

passed=0 failed=0
summary=()

# copy_tree DEST: the working tree (tracked and untracked files that git
# does not ignore; everything but build output outside a git checkout)
copy_tree() {
	local dest=$1
	mkdir -p "$dest" && chmod 700 "$dest" || return
	if git -C "$TREK_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		(cd "$TREK_ROOT" && git ls-files -z --cached --others --exclude-standard |
			tar --null --ignore-failed-read -T - -cf -) 2>/dev/null | tar -xf - -C "$dest"
	else
		tar -C "$TREK_ROOT" --exclude=node_modules --exclude=results \
			--exclude='*.o' --exclude='*.so' -cf - . | tar -xf - -C "$dest"
	fi
}

# count LOG: a log's last "N passed, M failed" line, in line, added to the
# totals
count() {
	local p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
	if [ -z "$line" ]; then
		line="0 passed, 1 failed"	# the leg broke before counting
	fi
	read -r p _ f _ <<<"$line"
	passed=$((passed + p)) failed=$((failed + f))
}

for leg in "${legs[@]}"; do
	log=$logs/$leg.log
	t0=$SECONDS
	if [ "$leg" = host ]; then
		label="PostgreSQL $TREK_PG_MAJOR (this machine)"
		echo "==== $label: make test"
		(cd "$TREK_ROOT" && make test) 2>&1 | tee "$log"
		stages=""
	elif [ "${leg#deb:}" != "$leg" ]; then
		# the Debian package: built in a copy of the release's pristine
		# root, installed into a second one, regression suite against it
		rel=${leg#deb:}
		major=$(trek_root_release_major "$rel") || major="?"
		label="Debian package postgresql-$major-trek ($rel)"
		echo "==== $label: build, install, installcheck"
		t=$SECONDS
		if ! pristine=$(trek_root_cached "$rel"); then
			count /dev/null
			summary+=("$label: no root: $line")
			continue
		fi
		stages="root $((SECONDS - t)) s"
		t=$SECONDS
		DEB_BUILD_OPTIONS=nocheck bash "$TREK_ROOT/scripts/test-deb.sh" "$pristine" 2>&1 |
			tee "$log"
		stages+=", package $((SECONDS - t)) s"
	else
		if ! major=$(trek_root_release_major "$leg"); then
			summary+=("$leg: unknown release: 0 passed, 1 failed")
			failed=$((failed + 1))
			continue
		fi
		label="PostgreSQL $major (Debian $leg root)"
		echo "==== $label: make test"
		t=$SECONDS
		if ! trek_root_new "$leg"; then
			count /dev/null
			summary+=("$label: no root: $line")
			continue
		fi
		run=$TREK_ROOT_RUN
		stages="root $((SECONDS - t)) s"
		t=$SECONDS
		copy_tree "$run/root/trek"
		stages+=", copy $((SECONDS - t)) s"
		trek_root_sh "$run" root 'cd /root/trek && make test' 2>&1 | tee "$log"
		trek_root_remove "$run"
	fi
	stages+=$(sed -n 's/^trek: \([a-z_-]*\) took \([0-9]*\) s$/, \1 \2 s/p' "$log" | tr -d '\n')
	stages=${stages#, }
	count "$log"
	summary+=("$label: $line ($((SECONDS - t0)) s: ${stages:-no stages})")
done

echo
echo "==== matrix"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
