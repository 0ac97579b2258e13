#!/bin/sh
# Install what wcache needs on Debian, or say clearly what is missing.
#   sh tests/deps.sh build   what `make` needs (compiler, uthash)
#   sh tests/deps.sh test    plus Criterion and the real programs the tests run
#   sh tests/deps.sh bench   the programs `make bench` runs, and gnuplot
# Called by the Makefile; does nothing when everything is present.
set -u
need=""
want() { dpkg -s "$1" >/dev/null 2>&1 || need="$need $1"; }
command -v cc >/dev/null 2>&1 || need="$need build-essential"
want uthash-dev
if [ "${1:-build}" = test ]; then
    want libcriterion-dev
    for p in fio sqlite3 stress-ng git gzip tar python3 strace coreutils dash bash \
             util-linux procps bindfs fuse3 libfuse3-dev pkg-config; do
        want "$p"
    done
fi
if [ "${1:-build}" = bench ]; then
    for p in gnuplot-nox rsync sqlite3 git tar perl python3 bindfs fuse3 \
             coreutils make; do
        want "$p"
    done
fi
[ -z "$need" ] && exit 0
echo "wcache: installing missing packages:$need"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "wcache: not root and no sudo; please install:$need" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq $need >/dev/null; then
    echo "wcache: apt-get could not install:$need; install them by hand" >&2
    exit 1
fi
