#!/usr/bin/env bash
# Makes sure an ansible-playbook is available for runner-exec-ansible and its tests, and prints its
# path. Uses the one on PATH if there is one, else <repo>/.venv/bin/ansible-playbook, creating that
# virtualenv (python3 -m venv + pip install -r scripts/ansible-requirements.txt) when it is missing. Idempotent; prints only
# the path on success, and the installer's output only when it fails.
# The virtualenv is made with the system's /usr/bin/python3 when there is one: runs start in a
# sandbox as an unprivileged user (nobody when the server is root), who must be able to run the
# virtualenv's interpreter; one under /root (pyenv) is out of that user's reach.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"

if found="$(command -v ansible-playbook 2>/dev/null)"; then
    echo "$found"
    exit 0
fi

# Whether the sandbox user (nobody, when we are root) can run the virtualenv's interpreter in a
# sandbox like a run's. Not checked (taken as yes) when we are not root or bwrap is missing.
runs_in_the_sandbox() {
    [ "$(id -u)" -ne 0 ] && return 0
    command -v bwrap >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1 || return 0
    setpriv --reuid=65534 --regid=65534 --clear-groups \
        bwrap --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp -- "$1" -c pass >/dev/null 2>&1 </dev/null
}

# A virtualenv made earlier on a Python the sandbox user cannot run (pyenv under /root) is left
# alone (other checkouts may use it); a second one, on the system's Python, is used instead.
if [ -x "$venv/bin/python3" ] && ! runs_in_the_sandbox "$venv/bin/python3"; then
    venv="$repo_root/.venv-sandbox"
fi

if [ ! -x "$venv/bin/ansible-playbook" ]; then
    python=python3
    if [ -x /usr/bin/python3 ]; then
        python=/usr/bin/python3
    fi
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! {
        { [ -x "$venv/bin/python3" ] || "$python" -m venv "$venv"; } &&
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo_root/scripts/ansible-requirements.txt"
    } >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-ansible: could not install ansible-core into $venv" >&2
        exit 1
    fi
fi

echo "$venv/bin/ansible-playbook"
