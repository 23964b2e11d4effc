#!/usr/bin/env bash
# The entrypoint of works-vs-scales/pgbouncer:1: writes pgbouncer.ini and
# userlist.txt from the environment unless they are there, then runs the command.
set -euo pipefail
ini=/etc/pgbouncer/pgbouncer.ini
if [ ! -f "$ini" ]; then
	: "${DB_HOST:?DB_HOST names the PostgreSQL to pool}"
	cat >"$ini" <<INI
[databases]
* = host=$DB_HOST port=${DB_PORT:-5432} auth_user=${DB_USER:-postgres}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${LISTEN_PORT:-5432}
unix_socket_dir =
auth_type = ${AUTH_TYPE:-plain}
auth_file = /etc/pgbouncer/userlist.txt
${AUTH_USER:+auth_user = $AUTH_USER
}${AUTH_QUERY:+auth_query = $AUTH_QUERY
}admin_users = ${ADMIN_USERS:-${DB_USER:-postgres}}
pool_mode = ${POOL_MODE:-transaction}
default_pool_size = ${DEFAULT_POOL_SIZE:-20}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
ignore_startup_parameters = extra_float_digits
INI
	if [ ! -f /etc/pgbouncer/userlist.txt ] && [ -n "${DB_USER:-}" ]; then
		printf '"%s" "%s"\n' "$DB_USER" "${DB_PASSWORD:-}" >/etc/pgbouncer/userlist.txt
	fi
fi
exec "$@"
