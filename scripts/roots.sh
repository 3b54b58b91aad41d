# shellcheck shell=bash
# scripts/roots.sh: pristine Debian roots for the release matrix, sourced by
# scripts/matrix.sh and scripts/pristine.sh (needs root).
#
#   trek_root_release_major RELEASE  PostgreSQL major a release defaults to
#   trek_root_cached RELEASE         path of the cached root of RELEASE, built
#                                    with mmdebstrap when missing or broken
#   trek_root_new RELEASE            a throwaway copy of the cached root, path
#                                    in TREK_ROOT_RUN (call it directly, not in
#                                    $(...)); mounted, and unmounted and
#                                    removed by trek_root_remove_all on exit
#   trek_root_remove DIR             unmount and remove one throwaway root
#   trek_root_sh DIR USER SCRIPT     run a bash script in the root as USER,
#                                    in a login environment (runuser -l)
#
# A cached root is mmdebstrap --variant=apt plus git, make and
# ca-certificates, the host's local CA certificates and a policy-rc.d that
# keeps package scripts from starting services.  Roots live under
# TREK_ROOTS (default /var/cache/trek-roots): RELEASE is the cached root,
# RELEASE.debs the packages earlier runs downloaded (so that a run downloads
# each package once), RELEASE.run.* the throwaway copies.  Packages come
# from the Debian mirror the host's own apt sources name.

TREK_ROOTS=${TREK_ROOTS:-/var/cache/trek-roots}
# Bump when the recipe below changes, so that cached roots are rebuilt.
TREK_ROOT_RECIPE=1
TREK_ROOT_RUNS=()
_TREK_ROOT_MOUNTS="proc sys dev dev/pts dev/shm"

trek_root_log() { echo "trek: $*" >&2; }

trek_root_release_major() {
	case $1 in
		bookworm) echo 15 ;;
		trixie) echo 17 ;;
		forky) echo 18 ;;
		*) trek_root_log "unknown release \"$1\" (known: bookworm, trixie, forky)"
			return 1 ;;
	esac
}

# The host's Debian mirror: the first URI of its apt sources that serves the
# host's own release (not its security suite).
_trek_root_mirror() {
	local codename f uri
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(awk -v s="$codename" '$1 == "deb" {
				i = 2; if ($2 ~ /^\[/) while ($i !~ /\]$/) i++
				if ($2 ~ /^\[/) i++
				if ($(i + 1) == s) { print $i; exit }
			}' "$f")
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk -v s="$codename" '
			/^[ \t]*$/ { if (ok && u != "") { print u; exit } ok = 0; u = "" }
			tolower($1) == "uris:" { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
			END { if (ok && u != "") print u }' "$f" | head -n 1)
		[ -n "$uri" ] && { echo "$uri"; return 0; }
	done
	trek_root_log "found no Debian mirror for \"$codename\" in /etc/apt/sources.list*"
	return 1
}

# Paths under DIR that something is mounted on, deepest first.
_trek_root_mounts_under() {
	awk -v d="$(realpath -m "$1")" '$5 == d || index($5, d "/") == 1 { print $5 }' \
		/proc/self/mountinfo | sort -r
}

_trek_root_umount() {
	local dir=$1 m
	while read -r m; do
		[ -n "$m" ] || continue
		umount "$m" 2>/dev/null || umount -l "$m" ||
			trek_root_log "could not unmount $m"
	done < <(_trek_root_mounts_under "$dir")
	[ -z "$(_trek_root_mounts_under "$dir")" ]
}

_trek_root_mount() {
	local dir=$1 m
	for m in $_TREK_ROOT_MOUNTS; do
		mkdir -p "$dir/$m"
		case $m in
			proc) mount -t proc proc "$dir/proc" ;;
			sys) mount -t sysfs sysfs "$dir/sys" ;;
			*) mount --bind "/$m" "$dir/$m" ;;
		esac || { trek_root_log "could not mount $dir/$m"; return 1; }
	done
}

# Stop what still runs inside DIR (servers a failed test left behind): only
# processes whose root is DIR, which this script started there.
_trek_root_kill() {
	local dir pid p n
	dir=$(realpath -m "$1")
	for n in 1 2 3 4 5 6 7 8 9 10; do
		p=()
		for pid in /proc/[0-9]*; do
			[ "$(readlink "$pid/root" 2>/dev/null)" = "$dir" ] && p+=("${pid#/proc/}")
		done
		[ ${#p[@]} -eq 0 ] && return 0
		if [ "$n" -lt 6 ]; then kill -TERM "${p[@]}" 2>/dev/null
		else kill -KILL "${p[@]}" 2>/dev/null
		fi
		sleep 1
	done
}

# Remove a root folder, never one with something mounted in it.
_trek_root_rm() {
	local dir=$1
	[ -e "$dir" ] || return 0
	_trek_root_kill "$dir"
	if ! _trek_root_umount "$dir"; then
		trek_root_log "not removing $dir: still mounted: $(_trek_root_mounts_under "$dir" | tr '\n' ' ')"
		return 1
	fi
	rm -rf --one-file-system "$dir"
}

_trek_root_ok() {
	local dir=$1
	[ "$(cat "$dir/.trek-root" 2>/dev/null)" = "$TREK_ROOT_RECIPE" ] &&
		chroot "$dir" /bin/sh -c 'git --version && make --version &&
			test -x /usr/sbin/policy-rc.d' >/dev/null 2>&1
}

_trek_root_build() {
	local release=$1 dir=$2 mirror log
	mirror=$(_trek_root_mirror) || return
	if ! command -v mmdebstrap >/dev/null; then
		trek_root_log "installing mmdebstrap"
		{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends -o DPkg::Lock::Timeout=300 mmdebstrap
		} >"$TREK_ROOTS/mmdebstrap-install.log" 2>&1 || {
			tail -n 20 "$TREK_ROOTS/mmdebstrap-install.log" >&2
			trek_root_log "could not install mmdebstrap"; return 1; }
	fi
	log=$TREK_ROOTS/$release.build.log
	trek_root_log "building the $release root from $mirror (log: $log)"
	# Testing's Release file may be past its Valid-Until date; the option
	# stays in the root's apt configuration for later updates.  policy-rc.d
	# is ours (written below), so mmdebstrap's own one is skipped.  The hooks
	# are sh scripts that mmdebstrap runs with the root's path as $1.
	# shellcheck disable=SC2016
	if ! mmdebstrap --variant=apt --include=git,make,ca-certificates \
		--aptopt='Acquire::Check-Valid-Until "false"' \
		--skip=chroot/policy-rc.d \
		--customize-hook='printf "#!/bin/sh\nexit 101\n" >"$1/usr/sbin/policy-rc.d" && chmod 755 "$1/usr/sbin/policy-rc.d"' \
		--customize-hook='if [ -d /usr/local/share/ca-certificates ]; then cp -R /usr/local/share/ca-certificates/. "$1/usr/local/share/ca-certificates/"; fi' \
		--customize-hook='chroot "$1" update-ca-certificates' \
		"$release" "$dir" "deb $mirror $release main" >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		trek_root_log "mmdebstrap failed for $release (log: $log)"
		return 1
	fi
	echo "$TREK_ROOT_RECIPE" >"$dir/.trek-root"
}

trek_root_cached() {
	local release=$1 dir tmp
	trek_root_release_major "$release" >/dev/null || return
	if [ "$(id -u)" -ne 0 ]; then
		trek_root_log "building and entering Debian roots needs root (sudo make test-matrix)"
		return 1
	fi
	dir=$TREK_ROOTS/$release
	mkdir -p "$TREK_ROOTS"
	# one builder per release at a time
	exec {lockfd}>"$TREK_ROOTS/$release.lock"
	flock "$lockfd"
	if ! _trek_root_ok "$dir"; then
		[ -e "$dir" ] && trek_root_log "the cached $release root is missing pieces: rebuilding it"
		_trek_root_rm "$dir" || { exec {lockfd}>&-; return 1; }
		tmp=$TREK_ROOTS/$release.new
		_trek_root_rm "$tmp" || { exec {lockfd}>&-; return 1; }
		if ! _trek_root_build "$release" "$tmp" || ! mv "$tmp" "$dir"; then
			_trek_root_rm "$tmp"
			exec {lockfd}>&-
			return 1
		fi
	fi
	exec {lockfd}>&-
	echo "$dir"
}

trek_root_new() {
	local release=$1 base run
	base=$(trek_root_cached "$release") || return
	run=$(mktemp -d "$TREK_ROOTS/$release.run.XXXXXX") || return
	TREK_ROOT_RUNS+=("$run")
	# shellcheck disable=SC2034	# the caller's result
	TREK_ROOT_RUN=$run
	trap trek_root_remove_all EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
	cp -a "$base/." "$run/" || return
	chmod 755 "$run"
	# packages downloaded by earlier runs (hard links: same file system)
	if [ -d "$TREK_ROOTS/$release.debs" ]; then
		cp -al "$TREK_ROOTS/$release.debs/." "$run/var/cache/apt/archives/" 2>/dev/null || true
	fi
	_trek_root_mount "$run"
}

trek_root_remove() {
	local run=$1 release i
	release=$(basename "$run")
	release=${release%%.run.*}
	_trek_root_kill "$run"
	_trek_root_umount "$run" || true
	# keep what this run downloaded for the next one
	if compgen -G "$run/var/cache/apt/archives/*.deb" >/dev/null; then
		mkdir -p "$TREK_ROOTS/$release.debs"
		cp -aln "$run"/var/cache/apt/archives/*.deb "$TREK_ROOTS/$release.debs/" 2>/dev/null || true
	fi
	_trek_root_rm "$run"
	for i in "${!TREK_ROOT_RUNS[@]}"; do
		[ "${TREK_ROOT_RUNS[$i]}" = "$run" ] && unset 'TREK_ROOT_RUNS[i]'
	done
	return 0
}

trek_root_remove_all() {
	local run
	for run in "${TREK_ROOT_RUNS[@]}"; do
		trek_root_remove "$run"
	done
}

trek_root_sh() {
	local run=$1 user=$2 script=$3
	chroot "$run" /usr/sbin/runuser -l "$user" -c "$script"
}
