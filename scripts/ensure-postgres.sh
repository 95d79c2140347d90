#!/usr/bin/env bash
# Prints a DATABASE_URL of a PostgreSQL server that answers, for the tests and benchmarks of
# runner-store-postgres:
#   1. $DATABASE_URL, if it is set and answers;
#   2. else postgres://postgres@127.0.0.1:5432/test, if it answers (database `test` is created
#      when the server answers but lacks it);
#   3. else a throwaway cluster under <repo>/target/pg (initdb with trust auth on 127.0.0.1,
#      port $PG_PORT or 55432, database `test`), started with pg_ctl, or reused when it runs already.
# Fails (exit 1, with the reason on stderr) when none can be had. Prints only the URL on success.
#   export DATABASE_URL="$(scripts/ensure-postgres.sh)"
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="$repo_root/target/pg"
port="${PG_PORT:-55432}"
default_url="postgres://postgres@127.0.0.1:5432/test"

fail() {
    echo "ensure-postgres: $*" >&2
    exit 1
}

command -v psql >/dev/null || fail "psql is missing (apt-get install postgresql-client-15)"

answers() {
    psql "$1" -qAtc 'SELECT 1' >/dev/null 2>&1
}

# The URL with its database replaced by `postgres`, for CREATE DATABASE.
admin_url() {
    echo "${1%/*}/postgres"
}

create_test_database() {
    local url="$1"
    psql "$(admin_url "$url")" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null |
        grep -q 1 ||
        psql "$(admin_url "$url")" -qc "CREATE DATABASE test" >/dev/null 2>&1 || true
}

if [ -n "${DATABASE_URL:-}" ]; then
    answers "$DATABASE_URL" && { echo "$DATABASE_URL"; exit 0; }
    echo "ensure-postgres: \$DATABASE_URL does not answer; trying the local defaults" >&2
fi

if answers "$default_url"; then
    echo "$default_url"
    exit 0
fi
if answers "$(admin_url "$default_url")"; then
    create_test_database "$default_url"
    answers "$default_url" && { echo "$default_url"; exit 0; }
fi

# A throwaway cluster of our own.
bin=""
for dir in $(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/x)") /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        bin="$(dirname "$(readlink -f "$dir/initdb")")"
        break
    fi
done
[ -n "$bin" ] || fail "no server answers and initdb/pg_ctl are missing (apt-get install postgresql-15)"

url="postgres://postgres@127.0.0.1:$port/test"
if answers "$url"; then
    echo "$url"
    exit 0
fi

# PostgreSQL refuses to run as root: run it as the postgres user then.
as_owner=()
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || fail "running as root and there is no postgres user to run the server"
    as_owner=(runuser -u postgres --)
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
mkdir -p "$cluster"
[ "$(id -u)" = 0 ] && chown postgres: "$cluster"
if [ ! -f "$cluster/data/PG_VERSION" ]; then
    "${as_owner[@]}" "$bin/initdb" -D "$cluster/data" --auth=trust -U postgres >"$log" 2>&1 ||
        { cat "$log" >&2; fail "initdb failed"; }
    cat >>"$cluster/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$cluster'
CONF
fi
if ! "${as_owner[@]}" "$bin/pg_ctl" -D "$cluster/data" status >/dev/null 2>&1; then
    "${as_owner[@]}" "$bin/pg_ctl" -D "$cluster/data" -l "$cluster/server.log" -w -t 60 start >"$log" 2>&1 ||
        { cat "$log" "$cluster/server.log" >&2 2>/dev/null; fail "pg_ctl start failed (see above)"; }
fi
create_test_database "$url"
answers "$url" || fail "the cluster in $cluster started but $url does not answer"
echo "$url"
