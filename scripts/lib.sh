# shellcheck shell=bash
# scripts/lib.sh: helpers sourced by scripts/test.sh and scripts/demo.sh.
#
#   trek_install_deps          install missing Debian packages (apt-get, quiet)
#   trek_build_install         build with -Werror and install the extension
#   trek_cluster_start [NAME]  throwaway PostgreSQL cluster; exports PGHOST,
#                              PGPORT, PGUSER, PGDATABASE, TREK_CLUSTER_DIR and
#                              stops/removes it on exit, failure or Ctrl-C
#   trek_cluster_stop [DIR]    stop one cluster now (default: the last started)
#   trek_stage DIR             a fresh folder that the server's OS user can
#                              read (mode 755 up from /), removed on exit;
#                              path in TREK_STAGE_DIR
#   trek_stage_copy SUBDIR...  copy folders of the project into a stage
#                              (trek_stage first); the copies keep their
#                              relative paths under TREK_STAGE_DIR
#
# Also sets TREK_ROOT (project root), PGBIN, PG_CONFIG and TREK_PG_MAJOR.
# Works from any cwd.  The PostgreSQL major is the one PG_CONFIG names
# (PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config, as with PGXS); without
# PG_CONFIG, the default of the Debian release (12 bookworm: 15, 13 trixie:
# 17, forky: 18), else the highest installed one.  TREK_PGBIN selects
# another bin folder (for example a relocated copy of the packaged one, so
# that builds do not replace the system's trek).  TREK_POSTGRES names
# another program to start as the server (the memory check runs postgres
# under valgrind through a wrapper script).

# The default PostgreSQL major of this machine.
_trek_default_major() {
	local codename major
	# shellcheck disable=SC1091
	codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	case $codename in
		bookworm) echo 15; return ;;
		trixie) echo 17; return ;;
		forky) echo 18; return ;;
	esac
	major=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_config' \
		2>/dev/null | sed 's|^/usr/lib/postgresql/\([0-9]*\)/.*|\1|' | sort -n | tail -n 1)
	[ -n "$major" ] || major=$(apt-cache depends postgresql 2>/dev/null |
		sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1)
	echo "${major:-15}"
}

if [ -n "${TREK_PGBIN:-}" ]; then
	PGBIN=$TREK_PGBIN
	PG_CONFIG=$PGBIN/pg_config
elif [ -n "${PG_CONFIG:-}" ] && [ "$PG_CONFIG" != pg_config ]; then
	case $PG_CONFIG in
		*/*) ;;
		*) PG_CONFIG=$(command -v "$PG_CONFIG" || echo "$PG_CONFIG") ;;
	esac
	PGBIN=$(dirname "$PG_CONFIG")
	# /usr/bin/pg_config (postgresql-common) knows its real bin folder
	if [ -x "$PG_CONFIG" ] && [ "$PGBIN" != "$("$PG_CONFIG" --bindir 2>/dev/null)" ]; then
		PGBIN=$("$PG_CONFIG" --bindir)
	fi
else
	PGBIN=/usr/lib/postgresql/$(_trek_default_major)/bin
	PG_CONFIG=$PGBIN/pg_config
fi
if [ -x "$PG_CONFIG" ]; then
	TREK_PG_MAJOR=$("$PG_CONFIG" --version | sed -n 's/^PostgreSQL \([0-9][0-9]*\).*/\1/p')
else
	TREK_PG_MAJOR=$(sed -n 's|^/usr/lib/postgresql/\([0-9][0-9]*\)/bin.*|\1|p' <<<"$PGBIN")
fi
if [ -z "$TREK_PG_MAJOR" ]; then
	echo "trek: cannot tell the PostgreSQL major of $PG_CONFIG (set PG_CONFIG=/usr/lib/postgresql/NN/bin/pg_config)" >&2
	TREK_PG_MAJOR=0
fi
export PG_CONFIG PGBIN TREK_PG_MAJOR
TREK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TREK_DEPS="build-essential postgresql-$TREK_PG_MAJOR postgresql-server-dev-$TREK_PG_MAJOR
	postgresql-plpython3-$TREK_PG_MAJOR postgresql-$TREK_PG_MAJOR-cron python3-asyncpg
	python3-psycopg python3-pytest libicu-dev nodejs npm sqitch libdbd-pg-perl strace
	graphviz jq"
TREK_CLUSTERS=()
TREK_STAGES=()

trek_log() { echo "trek: $*" >&2; }

# Run a command as root (directly, or through sudo when we are not root).
_trek_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else trek_log "need root or sudo to run: $*"; return 1
	fi
}

# Run a command as the cluster owner: postgres when we are root, else ourselves.
# cd / first, so a cwd that postgres cannot enter does not matter.
_trek_pg() {
	if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@")
	else "$@"
	fi
}

trek_install_deps() {
	local pkg missing=() log
	for pkg in $TREK_DEPS; do
		# NodeSource's nodejs bundles npm and conflicts with Debian's npm
		# package, so a working node/npm on PATH counts as installed.
		case $pkg in
			nodejs) command -v node >/dev/null && continue ;;
			npm) command -v npm >/dev/null && continue ;;
		esac
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$pkg")
	done
	# pg_bsd_indent for the formatting check, where the release packages it
	if ! command -v pg_bsd_indent >/dev/null &&
		apt-cache show pg-bsd-indent >/dev/null 2>&1; then
		missing+=(pg-bsd-indent)
	fi
	[ ${#missing[@]} -eq 0 ] && return 0
	log=$(mktemp "${TMPDIR:-/tmp}/trek-apt.XXXXXX")
	trek_log "installing ${missing[*]} (log: $log)"
	if ! { _trek_root apt-get update &&
		_trek_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}"
	} >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		trek_log "package installation failed (full log: $log)"
		return 1
	fi
	rm -f "$log"
}

trek_build_install() {
	make -C "$TREK_ROOT" -s PG_CONFIG="$PG_CONFIG" \
		PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter" &&
	_trek_root make -C "$TREK_ROOT" -s PG_CONFIG="$PG_CONFIG" install
}

# Print the first TCP port from 54321 on that nothing listens to.
_trek_free_port() {
	local port=${1:-54321}
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
		port=$((port + 1))
	done
	echo "$port"
}

trek_cluster_start() {
	local name=${1:-trek} dir locale=C port preload _
	locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' && locale=C.UTF-8
	dir=$(mktemp -d "${TMPDIR:-/tmp}/trek-$name.XXXXXX") || return	# mode 700
	TREK_CLUSTERS+=("$dir")
	_trek_traps
	mkdir "$dir/sock" || return
	if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$dir" || return; fi
	if ! _trek_pg "$PGBIN/initdb" -D "$dir/data" --auth=trust -U postgres \
		-E UTF8 --locale="$locale" >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		trek_log "initdb failed"
		return 1
	fi
	# trek keeps trek_execute()'s runs in shared memory: preloaded before
	# PostgreSQL 17, from the dynamic shared memory registry from 17 on
	preload=pg_cron
	[ "$TREK_PG_MAJOR" -lt 17 ] && preload=pg_cron,trek
	cat >>"$dir/data/postgresql.conf" <<-EOF
		# added by scripts/lib.sh
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$dir/sock'
		shared_preload_libraries = '$preload'
		cron.database_name = 'postgres'
		cron.host = '$dir/sock'
	EOF
	# Another process may grab the port between the check and the start: retry.
	port=54321
	for _ in 1 2 3 4 5; do
		port=$(_trek_free_port "$port")
		if _trek_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
			${TREK_POSTGRES:+-p "$TREK_POSTGRES"} \
			-o "-p $port" -w -t 60 start >"$dir/pg_ctl.log" 2>&1; then
			export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres \
				PGDATABASE=postgres TREK_CLUSTER_DIR=$dir
			trek_log "cluster $name up on port $port ($dir)"
			return 0
		fi
		port=$((port + 1))
	done
	tail -n 20 "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null
	trek_log "could not start the cluster (log: $dir/server.log)"
	return 1
}

trek_cluster_stop() {
	local dir=${1:-${TREK_CLUSTER_DIR:-}} i
	[ -n "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		_trek_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop \
			>>"$dir/pg_ctl.log" 2>&1 || true
	fi
	rm -rf "$dir"
	for i in "${!TREK_CLUSTERS[@]}"; do
		[ "${TREK_CLUSTERS[$i]}" = "$dir" ] && unset 'TREK_CLUSTERS[i]'
	done
	if [ "$dir" = "${TREK_CLUSTER_DIR:-}" ]; then
		unset PGHOST PGPORT PGUSER PGDATABASE TREK_CLUSTER_DIR
	fi
	return 0
}

# EXIT trap: stop every cluster this shell started.
trek_cluster_stop_all() {
	local dir
	for dir in "${TREK_CLUSTERS[@]}"; do
		trek_cluster_stop "$dir"
	done
}

# The server may run as another OS user (postgres) than the project's owner,
# and a clone in a home folder (mode 0700) is closed to it: what the server
# reads goes into a stage, a fresh folder open to every user, instead.
trek_stage() {
	local name=${1:-stage} base=${TMPDIR:-/tmp} dir
	_trek_pg test -x "$base" 2>/dev/null || base=/tmp
	dir=$(mktemp -d "$base/trek-$name.XXXXXX") || return
	chmod 755 "$dir" || return
	dir=$(realpath "$dir")
	TREK_STAGES+=("$dir")
	_trek_traps
	TREK_STAGE_DIR=$dir
}

trek_stage_copy() {
	local sub
	[ -n "${TREK_STAGE_DIR:-}" ] || { trek_log "trek_stage_copy: no stage (call trek_stage first)"; return 1; }
	for sub in "$@"; do
		mkdir -p "$TREK_STAGE_DIR/$(dirname "$sub")" &&
			cp -R "$TREK_ROOT/$sub" "$TREK_STAGE_DIR/$sub" &&
			chmod -R a+rX "$TREK_STAGE_DIR/$sub" || return
	done
}

# Remove every stage, even one a failed test left unreadable.
trek_stage_remove_all() {
	local dir
	for dir in "${TREK_STAGES[@]}"; do
		chmod -R u+rwX "$dir" 2>/dev/null
		rm -rf "$dir"
	done
	TREK_STAGES=()
}

# EXIT trap: clusters and stages go.
trek_cleanup() {
	trek_cluster_stop_all
	trek_stage_remove_all
}

_trek_traps() {
	trap trek_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}
