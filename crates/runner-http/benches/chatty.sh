#!/usr/bin/env bash
# The chatty-playbook benchmark (issue 14): one task looping over 5,000 items and one task
# printing 5 MiB, run through the `runner` server on sled and on PostgreSQL, next to bare
# ansible-playbook on the same playbook and host, in one run. While the server runs the playbook,
# its resident memory is sampled every 0.2 s (VmRSS from /proc), to show whether it stays flat.
#
#   crates/runner-http/benches/chatty.sh               # ROUNDS=1, DATABASE_URL or the local default
#   ROUNDS=3 crates/runner-http/benches/chatty.sh
#
# Prints a markdown table: seconds per run, the ratio to bare, the CPU seconds the server process
# itself used during the run (not its ansible-playbook, nor PostgreSQL's backends) next to bare
# ansible-playbook's, and their ratio: what the server adds in work, a figure that, unlike the
# seconds, hardly moves with whatever else the machine runs; and the server's memory before the
# run, at its peak during the run, and after it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$repo_root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target/h-chatty}"
rounds="${ROUNDS:-1}"
database_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
ansible_playbook="$(scripts/ensure-ansible.sh)"
python="$(dirname "$ansible_playbook")/python3"
[ -x "$python" ] || python=python3

cargo build --release --quiet -p runner-http --bin runner
runner="$CARGO_TARGET_DIR/release/runner"

work="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/chatty.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - name: loop over 5000 items
      ansible.builtin.debug: {msg: "item {{ item }}"}
      loop: "{{ range(5000) | list }}"
    - name: print 5 MiB
      ansible.builtin.debug: {msg: "{{ 'x' * 5242880 }}"}
YAML
cat >"$work/inventory.json" <<JSON
{"all": {"hosts": {"localhost": {"ansible_connection": "local",
  "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}
JSON
playbook_b64="$(base64 -w0 "$work/chatty.yml")"

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

bare_run() { # prints: seconds cpu_seconds
    local start end
    start="$(now)"
    /usr/bin/time -f "%U %S" -o "$work/bare-cpu" \
        "$ansible_playbook" -i "$work/inventory.json" "$work/chatty.yml" >/dev/null 2>&1
    end="$(now)"
    echo "$(elapsed "$start" "$end") $(awk '{print $1 + $2}' "$work/bare-cpu")"
}

# CPU seconds (user and system) a process has used.
cpu_seconds() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

start_server() { # $1: store, rest: extra flags; sets pid, base, token
    local store="$1"
    shift
    local data="$work/data-$RANDOM"
    mkdir -p "$data"
    token="bench-token-0123456789abcdef"
    echo "$token *" >"$data/tokens"
    RUST_LOG=warn "$runner" serve --listen 127.0.0.1:0 --store "$store" \
        --token-file "$data/tokens" "$@" >"$data/out" 2>"$data/err" &
    pid=$!
    for _ in $(seq 1 300); do
        grep -q "listening on" "$data/out" 2>/dev/null && break
        sleep 0.1
    done
    base="$(sed -n 's/^runner: listening on //p' "$data/out")"
    [ -n "$base" ] || { echo "chatty.sh: the server did not start: $(cat "$data/err")" >&2; exit 1; }
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

served_run() { # prints: seconds rss_before_kib rss_peak_kib rss_after_kib log_bytes cpu_seconds
    local job execution start end status before peak after rss cpu_before
    job="$(api POST /jobs/BENCH "{\"description\":\"chatty\",\"playbook\":\"$playbook_b64\",
        \"hosts\":[{\"id\":\"localhost\",\"hostVars\":{\"ansible_connection\":\"local\",
        \"ansible_python_interpreter\":\"{{ ansible_playbook_python }}\"}}]}" |
        "$python" -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    before="$(rss_kib "$pid")"
    peak="$before"
    cpu_before="$(cpu_seconds "$pid")"
    start="$(now)"
    execution="$(api POST "/jobs/BENCH/$job/start" '{}' |
        "$python" -c 'import json,sys; print(json.load(sys.stdin)["execution_id"])')"
    while :; do
        status="$(api GET "/jobs/BENCH/$job/executions/$execution" |
            "$python" -c 'import json,sys; print(json.load(sys.stdin)["status"])')"
        rss="$(rss_kib "$pid")"
        [ "$rss" -gt "$peak" ] && peak="$rss"
        case "$status" in SUCCESS) break ;; FAILURE|STOPPED|KILLED)
            echo "chatty.sh: the run ended $status" >&2; exit 1 ;; esac
        sleep 0.2
    done
    end="$(now)"
    # The log's size as the server counts it (every byte the run printed; the store keeps up to
    # the cap), from the first page's headers.
    total="$(curl -sf -D - -o /dev/null "$base/jobs/BENCH/$job/executions/$execution/log" \
        -H "Authorization: Bearer $token" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-run-log-total" {print $2}')"
    after="$(rss_kib "$pid")"
    echo "$(elapsed "$start" "$end") $before $peak $after $total $(echo "$(cpu_seconds "$pid") - $cpu_before" | bc)"
}

schema="chatty_$(date +%s)"
# A PostgreSQL store needs a secret key (sled makes its own in its data directory).
"$runner" secrets new-key "$work/secret.key" >/dev/null
echo "| round | store | server s | bare s | ratio | server CPU s | bare CPU s | CPU ratio | RSS before | RSS peak | RSS after | run log bytes |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
    for store in sled postgres; do
        case "$store" in
            sled) start_server "sled:$work/sled-$round" ;;
            postgres) start_server "$database_url" --pg-schema "$schema" \
                --secret-key-file "$work/secret.key" ;;
        esac
        read -r bare bare_cpu < <(bare_run)
        read -r served before peak after log_bytes served_cpu < <(served_run)
        stop_server
        ratio="$(echo "scale=3; $served / $bare" | bc)"
        cpu_ratio="$(echo "scale=3; $served_cpu / $bare_cpu" | bc)"
        echo "| $round | $store | $served | $bare | $ratio | $served_cpu | $bare_cpu | $cpu_ratio | $((before / 1024)) MiB | $((peak / 1024)) MiB | $((after / 1024)) MiB | $log_bytes |"
    done
done
psql "$database_url" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
