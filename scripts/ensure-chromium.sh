#!/usr/bin/env bash
# Makes sure headless Chromium (Debian's `chromium`) is available for the console's browser tests,
# and Playwright's driver library (the npm package playwright-core, pinned by
# crates/runner-http/tests/ui/package-lock.json) in crates/runner-http/tests/ui/node_modules. Prints Chromium's path. Installs the
# Debian package with apt-get (after apt-get update) when it is missing and we are root, and the
# npm package with `npm ci` when node_modules is missing. Idempotent; prints only the path on
# success, and the installers' output only when they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

find_chromium() {
    command -v chromium 2>/dev/null || { [ -x /usr/bin/chromium ] && echo /usr/bin/chromium; }
}

if ! found="$(find_chromium)"; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ensure-chromium: chromium is missing; install it (as root: apt-get install chromium)" >&2
        exit 1
    fi
    if ! {
        apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
    } >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-chromium: could not install chromium" >&2
        exit 1
    fi
    if ! found="$(find_chromium)"; then
        echo "ensure-chromium: chromium is installed but not on PATH" >&2
        exit 1
    fi
fi

if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ensure-chromium: npm is missing; install it (as root: apt-get install npm)" >&2
        exit 1
    fi
    if ! {
        apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
    } >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-chromium: could not install node and npm" >&2
        exit 1
    fi
fi
if [ ! -d crates/runner-http/tests/ui/node_modules/playwright-core ]; then
    # playwright-core ships no browser and downloads none: it drives the Debian chromium above.
    if ! (cd crates/runner-http/tests/ui && npm ci --no-audit --no-fund) >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-chromium: could not install playwright-core (npm ci in crates/runner-http/tests/ui)" >&2
        exit 1
    fi
fi
echo "$found"
