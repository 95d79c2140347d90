#!/usr/bin/env bash
# Makes sure bubblewrap (`bwrap`) is available: every git and ansible-playbook of a run starts in a
# bwrap sandbox, and `runner serve` refuses to start without one (unless --unsafe-no-sandbox).
# Prints its path. Installs the Debian package bubblewrap with apt-get when bwrap is missing and we
# are root. Idempotent; prints only the path on success, and the installer's output only when it
# fails.
set -euo pipefail

if found="$(command -v bwrap 2>/dev/null)"; then
    echo "$found"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-bwrap: bwrap is missing; install bubblewrap (as root: apt-get install bubblewrap)" >&2
    exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! {
    apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap
} >"$log" 2>&1; then
    cat "$log" >&2
    echo "ensure-bwrap: could not install bubblewrap" >&2
    exit 1
fi
if ! found="$(command -v bwrap 2>/dev/null)"; then
    echo "ensure-bwrap: bubblewrap is installed but bwrap is still not on PATH" >&2
    exit 1
fi
echo "$found"
