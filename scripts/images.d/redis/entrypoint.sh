#!/usr/bin/env bash
# The entrypoint of works-vs-scales/redis:7: "redis-server [options]" or bare
# options run the server on every interface (a container's port is its only
# door); any other command runs as is.
set -euo pipefail
if [ $# -eq 0 ] || [ "${1:0:1}" = - ]; then
	set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
	shift
	exec redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no "$@"
fi
exec "$@"
