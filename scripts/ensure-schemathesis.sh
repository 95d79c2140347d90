#!/usr/bin/env bash
# Makes sure schemathesis (a property-based API tester, pinned in
# crates/runner-http/tests/schemathesis/requirements.txt) is installed in <repo>/.venv-schemathesis,
# and prints the path of its `schemathesis` command. Creates the virtualenv (python3 -m venv +
# pip install -r) when it is missing or holds another version. Idempotent; prints only the path
# on success, and pip's output only when it fails.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv-schemathesis"
requirements="$repo_root/crates/runner-http/tests/schemathesis/requirements.txt"
wanted="$(grep -o '^schemathesis==[0-9.]*' "$requirements" | cut -d= -f3)"

if [ "$("$venv/bin/schemathesis" --version 2>/dev/null | awk '{print $NF}')" != "$wanted" ]; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet -r "$requirements"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-schemathesis.sh: could not install schemathesis into $venv" >&2
        exit 1
    fi
fi
echo "$venv/bin/schemathesis"
