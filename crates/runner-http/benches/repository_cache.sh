#!/usr/bin/env bash
# The repository-cache benchmark (issue 16): start-to-RUNNING time of a repository job whose
# repository has a large history (generated: COMMITS commits, each replacing one file of
# incompressible data, so the history is COMMITS MiB and the checkout 1 MiB), through the
# `runner` server on sled: the first run (the node's mirror is made: the whole history comes
# over), then LATER runs, each after one more commit is pushed (an incremental fetch of it);
# next to runs with the cache off (`--repository-cache-bytes 0`: a clone one commit deep, as
# before the cache), in the same run of this script.
#
#   crates/runner-http/benches/repository_cache.sh              # COMMITS=60 LATER=5
#   COMMITS=100 LATER=10 crates/runner-http/benches/repository_cache.sh
#
# The last row puts a network between the server and the origin: the namespace's loopback limited
# to LINK (default 100mbit, a token bucket: `tc qdisc ... tbf`), for the API calls too.
#
# Start-to-RUNNING is read from the execution's own status events (the RUNNING event's time less
# the PENDING event's), so polling does not blur it. The origin is on this machine, served over
# smart HTTP (git http-backend behind Python's CGI server on 127.0.0.1) and as file://: a real
# network would add latency and bandwidth costs, which weigh most on the runs that fetch the most
# (the first run and the cache-off runs).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$repo_root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target/h-cache}"
commits="${COMMITS:-60}"
later="${LATER:-5}"
ansible_playbook="$(scripts/ensure-ansible.sh)"
python="$(dirname "$ansible_playbook")/python3"
[ -x "$python" ] || python=python3

cargo build --release --quiet -p runner-http --bin runner
runner="$CARGO_TARGET_DIR/release/runner"

# Everything below runs in a network namespace of its own (loopback only), so that its loopback
# can be slowed to LINK for the last row without touching the machine's.
if [ -z "${RUNNER_BENCH_NETNS:-}" ]; then
    exec unshare --net env RUNNER_BENCH_NETNS=1 bash "${BASH_SOURCE[0]}" "$@"
fi
link="${LINK:-100mbit}"
# A 1500-byte MTU, as on a network: the token bucket below cannot pass loopback's 64 KiB frames.
ip link set lo mtu 1500
ip link set lo up

work="$(mktemp -d /var/tmp/runner-cache-bench.XXXXXX)"
chmod 0711 "$work"
pid=""
http_pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    [ -n "$http_pid" ] && kill "$http_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

g() { git -c user.name=bench -c user.email=bench@example.invalid "$@"; }

# The history in a bare origin, pushed from a work tree; served as file:// and over smart HTTP
# (git http-backend behind Python's CGI server, on 127.0.0.1).
src="$work/src"
origin="$work/origin.git"
mkdir -p "$src"
g init -q --bare -b main "$origin"
g -C "$src" init -q -b main
cat >"$src/site.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.debug: {msg: hello}
YAML
for n in $(seq 1 "$commits"); do
    head -c 1048576 /dev/urandom >"$src/data.bin"
    g -C "$src" add -A
    g -C "$src" commit -q -m "data $n"
done
g -C "$src" push -q "$origin" main
history_mib="$(du -sm "$origin" | cut -f1)"
echo "origin: $commits commits, $history_mib MiB, checkout $(du -sm --exclude=.git "$src" | cut -f1) MiB" >&2

mkdir -p "$work/cgi-bin"
cat >"$work/cgi-bin/git" <<SH
#!/bin/sh
export GIT_PROJECT_ROOT='$work' GIT_HTTP_EXPORT_ALL=1
exec git -c safe.directory='*' http-backend
SH
chmod +x "$work/cgi-bin/git"
http_port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$work" && exec "$python" -W ignore -m http.server --cgi --bind 127.0.0.1 "$http_port" >/dev/null 2>&1) &
http_pid=$!
for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$http_port/cgi-bin/git/origin.git/info/refs" && break
    sleep 0.1
done

start_server() { # extra flags; sets pid, base, token
    local data="$work/data-$RANDOM"
    mkdir -p "$data"
    token="bench-token-0123456789abcdef"
    echo "$token *" >"$data/tokens"
    RUST_LOG=warn "$runner" serve --listen 127.0.0.1:0 --store "sled:$data/sled" \
        --token-file "$data/tokens" --work-root "$work/w$RANDOM" --allow-local-repositories \
        --repository-cache "$work/cache" "$@" >"$data/out" 2>"$data/err" &
    pid=$!
    for _ in $(seq 1 300); do
        grep -q "listening on" "$data/out" 2>/dev/null && break
        sleep 0.1
    done
    base="$(sed -n 's/^runner: listening on //p' "$data/out")"
    [ -n "$base" ] || { echo "repository_cache.sh: the server did not start: $(cat "$data/err")" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
}

api() { # method path [body]
    curl -sf -X "$1" "$base$2" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' ${3:+-d "$3"}
}

json() { "$python" -c "import json,sys; print(json.load(sys.stdin)$1)"; }

make_job() { # url
    api POST /jobs/BENCH "{\"description\":\"history\",
        \"repository\":{\"url\":\"$1\",\"defaultPlaybook\":\"site.yml\"},
        \"hosts\":[{\"id\":\"localhost\",\"hostVars\":{\"ansible_connection\":\"local\",
        \"ansible_python_interpreter\":\"{{ ansible_playbook_python }}\"}}]}" | json '["id"]'
}

run_once() { # job; prints seconds from PENDING to RUNNING
    local job="$1" execution status
    execution="$(api POST "/jobs/BENCH/$job/start" '{}' | json '["execution_id"]')"
    while :; do
        status="$(api GET "/jobs/BENCH/$job/executions/$execution" | json '["status"]')"
        case "$status" in SUCCESS) break ;; FAILURE|STOPPED|KILLED)
            echo "repository_cache.sh: the run ended $status:" >&2
            api GET "/jobs/BENCH/$job/executions/$execution" >&2
            api GET "/jobs/BENCH/$job/executions/$execution/log" >&2
            exit 1 ;; esac
        sleep 0.1
    done
    api GET "/jobs/BENCH/$job/executions/$execution/events?size=1000" | "$python" -c '
import json, sys
events = json.load(sys.stdin)["events"]
time = {e["status"]: e["time"] for e in events if e.get("kind") == "status"}
print("%.3f" % ((time["RUNNING"] - time["PENDING"]) / 1000))'
}

push_one() { # one more commit on main: what a later run fetches
    echo "$RANDOM" >"$src/small.txt"
    g -C "$src" add -A
    g -C "$src" commit -q -m "small change"
    g -C "$src" push -q "$origin" main
}

median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "| origin, link | history | first run s | later runs s (median of $later) | first / later | cache off s (median of $later) | cache off / later |"
echo "|---|---|---|---|---|---|---|"
http_url="http://127.0.0.1:$http_port/cgi-bin/git/origin.git"
for row in "file://$origin|loopback" "$http_url|loopback" "$http_url|$link"; do
    url="${row%|*}"
    shaping="${row#*|}"
    if [ "$shaping" != loopback ]; then
        tc qdisc add dev lo root tbf rate "$shaping" burst 64kb latency 50ms
    fi
    rm -rf "$work/cache"
    start_server
    job="$(make_job "$url")"
    first="$(run_once "$job")"
    cached=()
    for _ in $(seq 1 "$later"); do
        push_one
        cached+=("$(run_once "$job")")
    done
    stop_server

    start_server --repository-cache-bytes 0
    job="$(make_job "$url")"
    uncached=()
    for _ in $(seq 1 "$later"); do
        push_one
        uncached+=("$(run_once "$job")")
    done
    stop_server
    if [ "$shaping" != loopback ]; then
        tc qdisc del dev lo root
    fi

    later_median="$(printf '%s\n' "${cached[@]}" | median)"
    uncached_median="$(printf '%s\n' "${uncached[@]}" | median)"
    echo "| ${url%%:*}, $shaping | $history_mib MiB, $commits commits | $first | $later_median (${cached[*]}) | $(echo "scale=1; $first / $later_median" | bc) | $uncached_median (${uncached[*]}) | $(echo "scale=1; $uncached_median / $later_median" | bc) |"
done
