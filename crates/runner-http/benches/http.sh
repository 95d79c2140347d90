#!/usr/bin/env bash
# HTTP benchmark of the Job Service router: requests/s and p99 latency of GET job and POST job
# on the memory store, next to a bare axum hello-world server measured in the same run.
# Load comes from wrk (Debian package `wrk`) in a separate process; only 127.0.0.1 is used.
#
#   crates/runner-http/benches/http.sh            # 10 s per measurement
#   DURATION=30s CONNECTIONS=64 crates/runner-http/benches/http.sh
#
# Prints the wrk reports and a summary table (markdown) with the GET-job/hello-world ratio.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$repo_root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target/h-http}"
duration="${DURATION:-10s}"
connections="${CONNECTIONS:-32}"
threads="${THREADS:-1}"
hello_addr=127.0.0.1:18081
api_addr=127.0.0.1:18080

command -v wrk >/dev/null || { echo "http.sh: wrk is missing (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release --quiet -p runner-http --example hello --example bench_server

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$CARGO_TARGET_DIR/release/examples/hello" "$hello_addr" >"$work/hello.out" 2>&1 &
pids+=($!)
RUST_LOG=warn "$CARGO_TARGET_DIR/release/examples/bench_server" "$api_addr" >"$work/api.out" 2>&1 &
pids+=($!)

wait_ready() { # $1: output file, bounded wait for the "listening" line
    for _ in $(seq 1 100); do
        grep -q "listening" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "http.sh: server did not start: $(cat "$1")" >&2
    exit 1
}
wait_ready "$work/hello.out"
wait_ready "$work/api.out"
job="$(sed -n 's/^job: //p' "$work/api.out")"
token="$(sed -n 's/^token: //p' "$work/api.out")"

cat >"$work/post.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"description":"bench","playbook":"LSBob3N0czogYWxsCiAgdGFza3M6IFtdCg==","hosts":[{"id":"web1","hostVars":{"dc":"VA1"}},{"id":"web2"}],"executionTtl":60}'
LUA

run() { # $1 name, rest: wrk arguments
    local name="$1"
    shift
    echo "## $name: wrk -t$threads -c$connections -d$duration --latency $*" >&2
    wrk -t"$threads" -c"$connections" -d"$duration" --latency "$@" | tee "$work/$name.txt" >&2
}

run hello "http://$hello_addr/"
run get_job -H "Authorization: Bearer $token" "http://$api_addr/jobs/BENCH/$job"
run post_job -H "Authorization: Bearer $token" -s "$work/post.lua" "http://$api_addr/jobs/BENCH"

rps() { awk '/^Requests\/sec:/ {print $2}' "$work/$1.txt"; }
p99() { awk '$1 == "99%" {print $2}' "$work/$1.txt"; }
non2xx() { awk '/Non-2xx/ {print $5}' "$work/$1.txt"; }
for name in get_job post_job; do
    if [ -n "$(non2xx "$name")" ]; then
        echo "http.sh: $name had non-2xx answers: $(non2xx "$name")" >&2
        exit 1
    fi
done

ratio="$(awk -v a="$(rps get_job)" -v b="$(rps hello)" 'BEGIN {printf "%.2f", a / b}')"
post_ratio="$(awk -v a="$(rps post_job)" -v b="$(rps hello)" 'BEGIN {printf "%.2f", a / b}')"
echo
echo "| endpoint | requests/s | p99 latency | vs hello-world |"
echo "|---|---|---|---|"
echo "| bare axum hello-world \`GET /\` | $(rps hello) | $(p99 hello) | 1.00 |"
echo "| \`GET /jobs/BENCH/{id}\` (auth + memory store + JSON) | $(rps get_job) | $(p99 get_job) | $ratio |"
echo "| \`POST /jobs/BENCH\` (auth + parse + validate + insert) | $(rps post_job) | $(p99 post_job) | $post_ratio |"
