#!/usr/bin/env bash
# Makes sure an OpenSSH server binary is available for runner-exec-ansible's SSH repository test
# (the test starts its own sshd on 127.0.0.1 with a throwaway config), and prints its path.
# Installs openssh-server with apt-get when /usr/sbin/sshd is missing and we are root; also creates
# sshd's privilege separation directory (/run/sshd), which a container without systemd lacks and
# without which sshd refuses to start. Also creates the user `runner-ssh-test` (no password until a
# test sets one), whom the key-pair distribution test logs in as with a password. Idempotent;
# prints only the path on success, and the installer's output only when it fails.
set -euo pipefail

sshd=/usr/sbin/sshd

if [ ! -x "$sshd" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "ensure-sshd: $sshd is missing; install openssh-server (as root: apt-get install openssh-server)" >&2
        exit 1
    fi
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    if ! {
        apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server
    } >"$log" 2>&1; then
        cat "$log" >&2
        echo "ensure-sshd: could not install openssh-server" >&2
        exit 1
    fi
    if [ ! -x "$sshd" ]; then
        echo "ensure-sshd: openssh-server is installed but $sshd is still missing" >&2
        exit 1
    fi
fi

if [ ! -d /run/sshd ]; then
    if ! mkdir -p -m 0755 /run/sshd 2>/dev/null; then
        echo "ensure-sshd: /run/sshd (sshd's privilege separation directory) is missing and cannot be created; create it as root" >&2
        exit 1
    fi
fi

test_user=runner-ssh-test
if ! id "$test_user" >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ] || ! useradd --create-home --shell /bin/sh "$test_user" 2>/dev/null; then
        echo "ensure-sshd: the user $test_user is missing and cannot be created; create it as root (useradd --create-home $test_user)" >&2
        exit 1
    fi
fi

echo "$sshd"
