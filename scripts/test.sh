#!/usr/bin/env bash
# Runs every test of the workspace: the README's test command, and what CI runs.
# It brings what the tests need: ansible-core in ./.venv when ansible-playbook is not on PATH,
# a PostgreSQL (DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster under target/), and an
# sshd binary for the test that clones a repository over SSH (openssh-server, installed as root), and
# bubblewrap, the sandbox every run starts in (installed as root), prometheus_client in
# ./.venv-metrics for the metrics tests, and headless Chromium with playwright-core for the
# console's browser tests. tests/schemathesis.rs installs schemathesis into ./.venv-schemathesis
# itself (scripts/ensure-schemathesis.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# bwrap first: ensure-ansible.sh checks that the sandbox user can run the virtualenv's Python.
RUNNER_BWRAP="$(scripts/ensure-bwrap.sh)"
export RUNNER_BWRAP
RUNNER_ANSIBLE_PLAYBOOK="$(scripts/ensure-ansible.sh)"
export RUNNER_ANSIBLE_PLAYBOOK

DATABASE_URL="$(scripts/ensure-postgres.sh)"
export DATABASE_URL
RUNNER_SSHD="$(scripts/ensure-sshd.sh)"
export RUNNER_SSHD
# The Prometheus text parser the metrics tests read /metrics with (they call it too).
scripts/ensure-prometheus-parser.sh >/dev/null
# Headless Chromium and playwright-core for the console's browser tests (tests/console.rs).
RUNNER_CHROMIUM="$(scripts/ensure-chromium.sh)"
export RUNNER_CHROMIUM
echo "test.sh: ansible-playbook at $RUNNER_ANSIBLE_PLAYBOOK, PostgreSQL at $DATABASE_URL, bwrap at $RUNNER_BWRAP" >&2

cargo test --workspace "$@"
