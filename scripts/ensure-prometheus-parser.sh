#!/usr/bin/env bash
# Makes sure a Python with prometheus_client (the Prometheus project's own client, whose text
# parser the metrics tests read /metrics with) is available, and prints that Python's path. Uses
# <repo>/.venv-metrics, creating it (python3 -m venv + pip install prometheus-client) when it is
# missing. Idempotent; prints only the path on success, and pip's output only when it fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv-metrics"

if ! "$venv/bin/python3" -c 'import prometheus_client.parser' >/dev/null 2>&1; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet 'prometheus-client==0.26.0'; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-prometheus-parser.sh: could not install prometheus-client into $venv" >&2
        exit 1
    fi
fi
echo "$venv/bin/python3"
