#!/usr/bin/env bash
# scripts/pristine.sh [RELEASE[:WHO[:PATH]]...]: what a new user does, on a
# pristine Debian root (scripts/roots.sh) for each case: clone the project
# to PATH as WHO, then `make demo` and `make test`, nothing else.
#
#   RELEASE  bookworm, trixie or forky (each with its default PostgreSQL)
#   WHO      root, or user: a new user "trek-user" with a 0700 home folder
#            and sudo (without a password, as CI machines have it)
#   PATH     where the clone goes (default /root/trek for root,
#            /home/trek-user/trek for the user); /tmp/x works too
#
# Without arguments, every release as root in /root/trek, as the user in
# /home/trek-user/trek and as the user in /tmp/x.  Each case gets a fresh
# copy of the root, so each installs its packages itself.  The clone is of
# the committed HEAD (git bundle).  Prints each case's demo result, test
# line and the wall time of each stage, then the total "N passed, M
# failed" as the last line.  Needs root.
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=scripts/roots.sh
source "$TREK_ROOT/scripts/roots.sh"

TREK_TEST_USER=trek-user
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
	for r in bookworm trixie forky; do
		cases+=("$r:root" "$r:user" "$r:user:/tmp/x")
	done
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/trek-pristine.XXXXXX")
bundle=$logs/trek.bundle
cleanup() {
	trek_root_remove_all
	rm -rf "$logs"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP
git -C "$TREK_ROOT" bundle create "$bundle" HEAD 2>/dev/null ||
	{ trek_log "could not bundle the project's HEAD"; exit 1; }

passed=0 failed=0
summary=()

# add_user ROOT: the user with sudo and a home only they may enter (useradd
# is in passwd, which the apt variant of trixie and later lacks)
add_user() {
	trek_root_sh "$1" root "
		set -e
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		apt-get install -y -q --no-install-recommends sudo passwd >/dev/null
		useradd -m -s /bin/bash $TREK_TEST_USER
		chmod 700 /home/$TREK_TEST_USER
		echo '$TREK_TEST_USER ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/$TREK_TEST_USER
		chmod 440 /etc/sudoers.d/$TREK_TEST_USER"
}

for c in "${cases[@]}"; do
	IFS=: read -r release who path <<<"$c"
	who=${who:-root}
	user=$who
	[ "$who" = user ] && user=$TREK_TEST_USER
	if [ -z "$path" ]; then
		if [ "$user" = root ]; then path=/root/trek; else path=/home/$user/trek; fi
	fi
	label="$release, $who, $path"
	log=$logs/case.log
	echo "==== $label"
	t=$SECONDS
	if ! trek_root_new "$release"; then
		summary+=("$label: no root: 0 passed, 1 failed")
		failed=$((failed + 1))
		continue
	fi
	run=$TREK_ROOT_RUN
	stages="root $((SECONDS - t)) s"
	if [ "$who" = user ]; then
		t=$SECONDS
		add_user "$run" || trek_log "could not add the user"
		stages+=", user and sudo $((SECONDS - t)) s"
	fi
	cp "$bundle" "$run/tmp/trek.bundle" && chmod 644 "$run/tmp/trek.bundle"
	t=$SECONDS
	trek_root_sh "$run" "$user" "git -c advice.detachedHead=false clone -q /tmp/trek.bundle $path" 2>&1
	stages+=", clone $((SECONDS - t)) s"
	t=$SECONDS
	if trek_root_sh "$run" "$user" "cd $path && make demo" >"$log" 2>&1; then
		demo=ok
	else
		demo=FAILED
		echo "---- make demo failed; the end of its output:"
		tail -n 60 "$log"
		failed=$((failed + 1))
	fi
	stages+=", demo $((SECONDS - t)) s"
	echo "make demo: $demo ($((SECONDS - t)) s)"
	t=$SECONDS
	trek_root_sh "$run" "$user" "cd $path && make test" 2>&1 | tee "$log" |
		grep -E '^(trek: .* took|==|[0-9]+ passed)' || true
	stages+=", test $((SECONDS - t)) s"
	stages+=$(sed -n 's/^trek: \([a-z_-]*\) took \([0-9]*\) s$/ (\1 \2 s)/p' "$log" | tr -d '\n')
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
	if [ -z "$line" ]; then
		line="0 passed, 1 failed"
	fi
	if [[ $line != *" 0 failed" ]]; then
		echo "---- make test failed; the end of its output:"
		grep -v -E '^(ok|test) .* ok ' "$log" | tail -n 120
	fi
	read -r p _ f _ <<<"$line"
	passed=$((passed + p)) failed=$((failed + f))
	summary+=("$label: demo $demo, $line ($stages)")
	trek_root_remove "$run"
done

echo
echo "==== pristine roots"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
