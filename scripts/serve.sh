#!/usr/bin/env bash
# Runs the Runner server on the embedded default store (sled, ./runner-data), after making sure
# ansible-playbook is available (ansible-core in ./.venv when it is not on PATH) and bubblewrap,
# the sandbox every run starts in (installed with apt-get as root when missing).
# Any argument goes to `runner serve` (see `runner serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
playbook="$(scripts/ensure-ansible.sh)"
export PATH="$(dirname "$playbook"):$PATH"
RUNNER_BWRAP="$(scripts/ensure-bwrap.sh)"
export RUNNER_BWRAP
cargo build --release -q -p runner-http --bin runner
exec "${CARGO_TARGET_DIR:-target}/release/runner" serve "$@"
