#!/usr/bin/env bash
# Build and install Citus for the scale-out TAP test (test/t/070_citus.pl).
#
# Citus is not in Debian's archive; its source and a one-hunk patch are in
# shared/vendor beside the repository (../shared/vendor from the repository
# top, or CITUS_VENDOR).  Nothing of Citus is part of this project: this
# script only builds the vendored tarball in a scratch directory.
#
# Where it installs:
#   CI=true      into the system PostgreSQL (pg_config on PATH), as make test
#                installs the extension there too;
#   otherwise    into the installation PG_CONFIG names (required), e.g. a
#                relocated copy /opt/pg-X/usr/lib/postgresql/15/bin/pg_config.
#                A relocated copy has no server headers, so the build uses the
#                system headers and installs with DESTDIR set to the prefix in
#                front of the system paths.
#
# Cache: a stamp holding the checksums of the tarball and the patch is
# written beside citus.control; when it matches and citus.so is there the
# script does nothing (well under a second).  The build directory
# (CITUS_BUILD_DIR, default /tmp/ti-citus-build) is kept for the next run.
#
# Exit status: 0 installed or already there; 3 the vendored source is
# missing (callers decide whether that is a skip or a failure); 1 otherwise.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VERSION=13.2.2
VENDOR=${CITUS_VENDOR:-$TOP/../shared/vendor}
TARBALL=$VENDOR/citus-$VERSION.tar.gz
PATCH=$VENDOR/citus-pg15.14-have_createdb_privilege.patch
BUILD=${CITUS_BUILD_DIR:-/tmp/ti-citus-build}

log() { echo "citus.sh: $*" >&2; }

if [ ! -f "$TARBALL" ] || [ ! -f "$PATCH" ]; then
	log "no vendored Citus source at $VENDOR (citus-$VERSION.tar.gz and the patch)"
	exit 3
fi

SYS_PG_CONFIG=$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)
if [ "${CI:-}" = true ]; then
	TARGET_PG_CONFIG=$SYS_PG_CONFIG
elif [ -n "${PG_CONFIG:-}" ]; then
	TARGET_PG_CONFIG=$PG_CONFIG
else
	log "set PG_CONFIG to the pg_config of the installation to install into (CI=true installs into the system)"
	exit 1
fi

# DESTDIR: the target's pkglibdir must be the system pkglibdir with a prefix
# in front (a relocated copy), or the same directory (no DESTDIR).
sys_lib=$("$SYS_PG_CONFIG" --pkglibdir)
tgt_lib=$("$TARGET_PG_CONFIG" --pkglibdir)
tgt_share=$("$TARGET_PG_CONFIG" --sharedir)
case $tgt_lib in
	"$sys_lib") DESTDIR_ARG="" ;;
	*"$sys_lib")
		DESTDIR_ARG=${tgt_lib%"$sys_lib"}
		if [ "$("$SYS_PG_CONFIG" --sharedir)" != "${tgt_share#"$DESTDIR_ARG"}" ]; then
			log "$TARGET_PG_CONFIG: sharedir $tgt_share is not under $DESTDIR_ARG"
			exit 1
		fi
		;;
	*)
		log "$TARGET_PG_CONFIG: pkglibdir $tgt_lib is neither the system's nor a relocated copy of it"
		exit 1
		;;
esac

stamp_want="citus $VERSION $(sha256sum "$TARBALL" "$PATCH" | awk '{print $1}' | tr '\n' ' ')"
stamp_file=$tgt_share/extension/citus.ti-vendor-stamp
if [ -f "$tgt_lib/citus.so" ] && [ -f "$stamp_file" ] &&
	[ "$(cat "$stamp_file")" = "$stamp_want" ]; then
	log "Citus $VERSION already installed in $tgt_lib (cached)"
	exit 0
fi

# Build dependencies, from Debian's archive (only when one is missing).
deps="libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev libselinux1-dev
      libxslt1-dev libpam0g-dev libreadline-dev"
missing=""
for p in $deps; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		log "missing build dependencies:$missing (run as root to install them)"
		exit 1
	fi
	log "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq $missing >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq $missing >/dev/null; }
fi

src=$BUILD/citus-$VERSION
built_stamp=$src/.ti-built
# No LLVM bitcode: it doubles the build time and Citus runs without it.
MAKE_ARGS="with_llvm=no"
extracted_stamp=$src/.ti-extracted
if [ ! -f "$built_stamp" ] || [ "$(cat "$built_stamp")" != "$stamp_want" ]; then
	log "building Citus $VERSION in $src (1-3 minutes on 2 idle cores)"
	if [ ! -f "$extracted_stamp" ] || [ "$(cat "$extracted_stamp")" != "$stamp_want" ]; then
		rm -rf "$src"
		mkdir -p "$src"
		tar -xzf "$TARBALL" -C "$src" --strip-components=1
		(cd "$src" && patch -s -p1 <"$PATCH")
		(cd "$src" && PG_CONFIG=$SYS_PG_CONFIG ./configure --quiet >"$BUILD/configure.log" 2>&1) ||
			{ tail -30 "$BUILD/configure.log" >&2; exit 1; }
		echo "$stamp_want" >"$extracted_stamp"
	fi
	# an interrupted build resumes where it stopped
	(cd "$src" && make -s -j"$(nproc)" $MAKE_ARGS >"$BUILD/make.log" 2>&1) ||
		{ tail -30 "$BUILD/make.log" >&2; exit 1; }
	echo "$stamp_want" >"$built_stamp"
fi
log "installing Citus $VERSION into $tgt_lib"
(cd "$src" && make -s install $MAKE_ARGS ${DESTDIR_ARG:+DESTDIR="$DESTDIR_ARG"} >"$BUILD/install.log" 2>&1) ||
	{ tail -30 "$BUILD/install.log" >&2; exit 1; }
[ -f "$tgt_lib/citus.so" ] || { log "citus.so not found in $tgt_lib after install"; exit 1; }
echo "$stamp_want" >"$stamp_file"
log "Citus $VERSION installed"
