#!/usr/bin/env bash
# scripts/test-deb.sh ROOT_DIR: build trek's Debian package in a pristine
# Debian root and test the installed package, as Debian's autopkgtest does.
#
#   ROOT_DIR  a pristine root of the release to test (mmdebstrap
#             --variant=apt); it is only read: the work happens in two
#             throwaway copies of it in a temporary folder.
#
# 1. build: in a copy of ROOT_DIR, install pg_buildext, adapt
#    debian/control to the release's PostgreSQL majors (pg_buildext
#    updatecontrol), install the build dependencies and run
#    `dpkg-buildpackage -us -uc -b` (which runs the regression suite against
#    the freshly built files, unless DEB_BUILD_OPTIONS=nocheck).
# 2. test: in a second fresh copy, install the built postgresql-NN-trek
#    package and the dependencies of debian/tests/control, then run
#    debian/tests/installcheck (pg_buildext installcheck) from the source.
#
# The last line is "N passed, M failed": N and M count the regression tests
# of step 2; a stage that fails before them counts as one failed test.
# Needs root (chroot, mount) and network access to the root's apt sources.
# Environment: TREK_DEB_OUTPUT=DIR copies the built .deb files and the logs
# (build.log, test.log, installcheck.log) to DIR;
# TREK_DEB_CACHE=DIR (default /var/cache/trek-deb) keeps the downloaded
# packages between the copies and between runs, one folder per release and
# architecture ("none" turns this off); DEB_BUILD_OPTIONS is passed to
# dpkg-buildpackage; TMPDIR (default /var/tmp) holds the copies.
set -euo pipefail

TREK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=${1:-}
passed=0 failed=0
work='' stage=setup reported=
mounts=()

log() { echo "test-deb: $*" >&2; }

usage() {
	echo "usage: $0 ROOT_DIR   (a pristine Debian root, e.g. from mmdebstrap --variant=apt)" >&2
	exit 2
}

if [ -z "$ROOT" ] || [ $# -ne 1 ]; then usage; fi
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
	log "$ROOT is not a Debian root with apt"
	usage
fi
if [ "$(id -u)" -ne 0 ]; then
	log "needs root (chroot and mount)"
	exit 2
fi
ROOT=$(cd "$ROOT" && pwd)

# Stop what still runs inside one of our copies (a cluster left by an
# interrupted test), then unmount its file systems, innermost first.
release_root() {
	local root=$1 pid link i
	for pid in /proc/[0-9]*; do
		link=$(readlink "$pid/root" 2>/dev/null) || continue
		[ "$link" = "$root" ] && kill -KILL "${pid#/proc/}" 2>/dev/null
	done
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		case ${mounts[i]} in
			"$root"/*)
				umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" ||
					log "could not unmount ${mounts[i]}"
				unset 'mounts[i]'
				mounts=("${mounts[@]}")
				;;
		esac
	done
	return 0
}

# Remove a folder, unless something is still mounted below it.
remove_tree() {
	if grep -qF " $1/" /proc/self/mounts; then
		log "file systems still mounted below $1: not removing it"
		return 1
	fi
	rm -rf "$1"
}

# Never delete the temporary folder while anything is mounted below it.
# A run that stops on an unexpected error still ends with its test line.
cleanup() {
	local rc=$?
	if [ -z "$reported" ]; then
		log "stopped in stage $stage (exit status $rc)"
		echo "$passed passed, $((failed + 1)) failed"
		[ "$rc" -ne 0 ] || rc=1
	fi
	if [ -n "$work" ]; then
		if [ -n "${TREK_DEB_OUTPUT:-}" ] && compgen -G "$work/*.log" >/dev/null; then
			mkdir -p "$TREK_DEB_OUTPUT" && cp "$work"/*.log "$TREK_DEB_OUTPUT"/
		fi
		[ -d "$work/build" ] && release_root "$work/build"
		[ -d "$work/test" ] && release_root "$work/test"
		remove_tree "$work" || true
	fi
	exit "$rc"
}
# An interrupted run counts as one failed test.
interrupted() {
	reported=1
	log "interrupted"
	echo "$passed passed, $((failed + 1)) failed"
	exit "$1"
}
trap cleanup EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM HUP

finish() {
	reported=1
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
	exit
}

# A stage that fails: show the end of its log, count one failed test.
stage_failed() {
	log "$stage failed (last lines of $1 follow)"
	tail -n 80 "$1" >&2
	failed=$((failed + 1))
	finish
}

# A copy of the pristine root with /proc, /sys, /dev and /dev/pts mounted,
# name resolution, and no services started by package installation.
make_root() {
	local root=$1 m
	# (a root in use elsewhere may have its own mounts: do not copy them)
	cp -a --one-file-system "$ROOT" "$root"
	for m in proc sys dev dev/pts; do
		mkdir -p "$root/$m"
		case $m in
			proc) mount -t proc proc "$root/proc" ;;
			sys) mount -t sysfs sysfs "$root/sys" ;;
			dev) mount --bind /dev "$root/dev" ;;
			dev/pts) mount --bind /dev/pts "$root/dev/pts" ;;
		esac
		mounts+=("$root/$m")
	done
	if [ -n "$cache" ]; then
		mkdir -p "$root/var/cache/apt/archives"
		mount --bind "$cache" "$root/var/cache/apt/archives"
		mounts+=("$root/var/cache/apt/archives")
	fi
	rm -f "$root/etc/resolv.conf"
	cp -L /etc/resolv.conf "$root/etc/resolv.conf"
	[ -s "$root/etc/hosts" ] ||
		printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	if [ ! -e "$root/usr/sbin/policy-rc.d" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
		chmod 755 "$root/usr/sbin/policy-rc.d"
	fi
}

# Run a shell command inside a root, with a clean environment: no LANG or
# LC_*, as in a package builder's root, so that the build and the tests
# cannot depend on a locale.
in_root() {
	local root=$1
	shift
	chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root DEBIAN_FRONTEND=noninteractive \
		${DEB_BUILD_OPTIONS:+DEB_BUILD_OPTIONS="$DEB_BUILD_OPTIONS"} \
		/bin/sh -ec "$*"
}

APT='apt-get -q -y -o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false'

# The project's files: the tracked and new (not ignored) files of a git
# checkout, as they are in the working tree; else the whole folder.
copy_source() {
	local dest=$1
	mkdir -p "$dest"
	if git -C "$TREK_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git -C "$TREK_ROOT" ls-files -z --cached --others --exclude-standard |
			(cd "$TREK_ROOT" && while IFS= read -r -d '' f; do
				[ -e "$f" ] && printf '%s\0' "$f"
			done) |
			tar -C "$TREK_ROOT" --null -T - -cf - | tar -C "$dest" -xf -
	else
		tar -C "$TREK_ROOT" --exclude=./debian/tmp -cf - . | tar -C "$dest" -xf -
	fi
}

# Regression test lines: PostgreSQL 15's "test NAME ... ok" and the TAP
# lines of 16 and later ("ok 1 - NAME", "not ok 2 - NAME").
count_tests() {
	local p f
	p=$(grep -cE '^test [^ ]+ +\.\.\. +ok( |$)|^ok [0-9]+ ' "$1" || true)
	f=$(grep -cE '^test [^ ]+ +\.\.\. +(FAILED|failed)|^not ok [0-9]+ ' "$1" || true)
	passed=$((passed + p)) failed=$((failed + f))
}

show_tests() {
	grep -E '^### |^test [^ ]+ +\.\.\. |^(not )?ok [0-9]+ ' "$1" || true
}

work=$(mktemp -d "${TMPDIR:-/var/tmp}/trek-deb.XXXXXX")
chmod 755 "$work"
start=$SECONDS
release=$(. "$ROOT/etc/os-release" && echo "${VERSION_CODENAME:-$ID}")
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
cache=${TREK_DEB_CACHE:-/var/cache/trek-deb}
if [ "$cache" = none ]; then
	cache=''
else
	cache=$cache/$release-$arch
	mkdir -p "$cache/partial"
fi
log "release $release, working in $work"

# 1. Build the package.
stage=build
blog=$work/build.log
make_root "$work/build"
copy_source "$work/build/build/trek"
log "building the package (log: $blog)"
if ! in_root "$work/build" "
	$APT update
	$APT install build-essential dpkg-dev postgresql-common
	# newer releases ship pg_buildext in postgresql-common-dev
	command -v pg_buildext >/dev/null || $APT install postgresql-common-dev
	cd /build/trek
	pg_buildext updatecontrol
	$APT build-dep ./
	dpkg-buildpackage -us -uc -b
" >"$blog" 2>&1; then
	stage_failed "$blog"
fi
show_tests "$blog" >&2
mkdir "$work/debs"
cp "$work"/build/build/*.deb "$work/debs/" 2>/dev/null || true
debs=()
for f in "$work"/debs/*.deb; do
	[ -e "$f" ] || continue
	case ${f##*/} in
		*-dbgsym_*) ;;
		*) debs+=("$f") ;;
	esac
done
if [ ${#debs[@]} -eq 0 ]; then
	echo "no .deb was built" >>"$blog"
	stage_failed "$blog"
fi
log "built ${debs[*]##*/} in $((SECONDS - start)) s"
if [ -n "${TREK_DEB_OUTPUT:-}" ]; then
	mkdir -p "$TREK_DEB_OUTPUT"
	cp "$work"/debs/*.deb "$TREK_DEB_OUTPUT"/
fi

# 2. Install it into a fresh root and run the tests as autopkgtest does.
stage=install
tlog=$work/test.log
t0=$SECONDS
make_root "$work/test"
copy_source "$work/test/src/trek"
# debian/control and debian/tests/control as adapted to this release
cp "$work/build/build/trek/debian/control" "$work/test/src/trek/debian/control"
cp "$work/build/build/trek/debian/tests/control" "$work/test/src/trek/debian/tests/control"
release_root "$work/build"
remove_tree "$work/build"
mkdir -p "$work/test/debs"
cp "${debs[@]}" "$work/test/debs/"
# The test's Depends, but "@" (the packages built from this source).
testdeps=$(awk '
	/^[A-Za-z-]+:/ { field = tolower($1) }
	field == "depends:" { sub(/^Depends:/, ""); print }
' "$work/test/src/trek/debian/tests/control" |
	tr ',' '\n' | sed -e 's/([^)]*)//g; s/^[[:space:]]*//; s/[[:space:]]*$//' |
	grep -vxE '@|' | tr '\n' ' ')
log "installing ${debs[*]##*/} and $testdeps(log: $tlog)"
if ! in_root "$work/test" "
	$APT update
	$APT install /debs/*.deb $testdeps
" >"$tlog" 2>&1; then
	stage_failed "$tlog"
fi

stage=installcheck
log "running debian/tests/installcheck against the installed package"
clog=$work/installcheck.log
rc=0
in_root "$work/test" "cd /src/trek && debian/tests/installcheck" >"$clog" 2>&1 || rc=$?
show_tests "$clog"
before=$failed
count_tests "$clog"
if [ "$rc" -ne 0 ]; then
	[ "$failed" -eq "$before" ] && failed=$((failed + 1))	# broke before counting
	sed -n '/^\*\*\*\* regression.diffs/,$p' "$clog" | head -n 200 >&2
	tail -n 40 "$clog" >&2
	log "debian/tests/installcheck failed"
fi
log "install and installcheck took $((SECONDS - t0)) s, $((SECONDS - start)) s in all"
finish
