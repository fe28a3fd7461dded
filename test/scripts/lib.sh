# Shared by demo.sh and test.sh: build, install, and a work copy of the tree
# owned by an unprivileged user (initdb refuses to run as root).
TI_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TI_USER=${TI_USER:-postgres}

ti_build_install() {
	bash "$TI_TOP/test/scripts/deps.sh"
	make -C "$TI_TOP" -s
	if [ "$(id -u)" = 0 ]; then
		make -C "$TI_TOP" -s install
	else
		sudo make -C "$TI_TOP" -s install
	fi
}

# ti_workdir: a private copy of the tree that $TI_USER owns; prints its path.
ti_workdir() {
	local d
	d=$(mktemp -d /tmp/tenant_isolation.XXXXXX)
	cp -a "$TI_TOP/." "$d/"
	rm -rf "$d/.git"
	if [ "$(id -u)" = 0 ]; then
		chown -R "$TI_USER" "$d"
	fi
	echo "$d"
}

# ti_as_user CMD...: run a shell command in the work copy as $TI_USER.
ti_as_user() {
	if [ "$(id -u)" = 0 ]; then
		su "$TI_USER" -s /bin/bash -c "$*"
	else
		bash -c "$*"
	fi
}
