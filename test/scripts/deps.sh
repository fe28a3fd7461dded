#!/usr/bin/env bash
# Install what building and testing need, from Debian's archive only.
# Idempotent: apt-get runs only when a package is missing.
set -euo pipefail
pkgs="postgresql-15 postgresql-server-dev-15 postgresql-contrib build-essential
      libssl-dev libsodium-dev openssl libipc-run-perl pgbouncer clang libclang-rt-14-dev"
missing=""
for p in $pkgs; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "missing packages:$missing (run as root to install them)" >&2
		exit 1
	fi
	echo "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq $missing >/dev/null
fi
