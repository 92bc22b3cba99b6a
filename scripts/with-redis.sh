#!/usr/bin/env bash
# with-redis.sh CMD [ARGS...]
#
# Runs CMD with WXMASS_REDIS_URL and TEST_REDIS_URL pointing at a Redis that
# answers PING:
#   1. WXMASS_REDIS_URL or TEST_REDIS_URL, if set (used as given);
#   2. else 127.0.0.1:6379, if it answers PING;
#   3. else a private redis-server on a free port with a temporary directory,
#      installed with apt-get when missing, and stopped when CMD exits.
# WXMASS_PRIVATE_REDIS=1 skips 1 and 2 and always starts a private server.
# WXMASS_NEED_REDIS_SERVER=1 installs redis-server (and redis-cli) even when
# 1 or 2 applies: tests that launch their own servers, sentinels and clusters
# (internal/redistest) need the binaries whatever Redis the URL points at.
# Used by `make demo` and `make test`, so that both work on a fresh machine.
set -euo pipefail

log() { printf 'with-redis: %s\n' "$*" >&2; }

# ping HOST PORT: true if a Redis there answers +PONG. Needs only bash.
ping() {
	local reply
	{ exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 2 reply <&3 || reply=""
	exec 3>&- 3<&-
	[[ "$reply" == "+PONG"* ]]
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 20000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

install_redis() {
	log "redis-server not found; installing Debian's redis-server"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
	# Debian's package starts a service; we only want the binary.
}

if [ "${WXMASS_NEED_REDIS_SERVER:-0}" = 1 ]; then
	{ command -v redis-server && command -v redis-cli; } >/dev/null 2>&1 || install_redis
fi

url="${WXMASS_REDIS_URL:-${TEST_REDIS_URL:-}}"
private="${WXMASS_PRIVATE_REDIS:-0}"
if [ "$private" = 1 ]; then
	url=""
	unset WXMASS_REDIS_URL TEST_REDIS_URL
fi
if [ -n "$url" ]; then
	log "using $url (from the environment)"
elif [ "$private" != 1 ] && ping 127.0.0.1 6379; then
	url="redis://127.0.0.1:6379"
	log "using the Redis at 127.0.0.1:6379"
else
	command -v redis-server >/dev/null 2>&1 || install_redis
	port=$(free_port) || { log "no free port found"; exit 1; }
	dir=$(mktemp -d -t wxmass-redis.XXXXXX)
	redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
		--databases 32 --daemonize no --logfile "$dir/redis.log" &
	pid=$!
	trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
	for _ in $(seq 1 100); do
		ping 127.0.0.1 "$port" && break
		kill -0 "$pid" 2>/dev/null || { log "redis-server exited:"; cat "$dir/redis.log" >&2; exit 1; }
		sleep 0.1
	done
	ping 127.0.0.1 "$port" || { log "private redis-server on port $port does not answer"; exit 1; }
	url="redis://127.0.0.1:$port"
	log "started a private redis-server at $url (stopped on exit)"
fi

export WXMASS_REDIS_URL="${WXMASS_REDIS_URL:-$url}"
export TEST_REDIS_URL="${TEST_REDIS_URL:-$url}"
"$@"
