#!/bin/sh
# Install what wcache needs on Debian, or say clearly what is missing.
#   sh tests/deps.sh build   what `make` needs (compiler, uthash)
#   sh tests/deps.sh test    plus Criterion and the real programs the tests run
#   sh tests/deps.sh bench   the programs `make bench` runs, and gnuplot;
#                            GlusterFS (server and FUSE client) if it can
#   sh tests/deps.sh gluster only GlusterFS (`make check-long`)
# Called by the Makefile; does nothing when everything is present.
# GlusterFS is optional: when it cannot be installed this says so and still
# succeeds, and the GlusterFS rows and checks say "skipped" (tests/gluster.sh).
set -u
need=""
want() { dpkg -s "$1" >/dev/null 2>&1 || need="$need $1"; }
command -v cc >/dev/null 2>&1 || need="$need build-essential"
want uthash-dev
if [ "${1:-build}" = test ]; then
    want libcriterion-dev
    for p in fio sqlite3 stress-ng git gzip tar python3 strace coreutils dash bash \
             util-linux procps bindfs fuse3 libfuse3-dev pkg-config fakeroot \
             libaio-dev liburing-dev btrfs-progs faketime exfat-fuse \
             exfatprogs; do
        want "$p"
    done
fi
if [ "${1:-build}" = bench ]; then
    for p in gnuplot-nox rsync sqlite3 git tar perl python3 bindfs fuse3 \
             coreutils make; do
        want "$p"
    done
fi
# Optional: glusterd, glusterfsd and the gluster tool (glusterfs-server),
# the FUSE client (glusterfs-client).
opt=""
case "${1:-build}" in bench|gluster)
    for p in glusterfs-server glusterfs-client; do
        dpkg -s "$p" >/dev/null 2>&1 || opt="$opt $p"
    done ;;
esac
[ -z "$need$opt" ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        [ -n "$opt" ] &&
            echo "wcache: not root and no sudo; GlusterFS rows skipped unless you install:$opt" >&2
        [ -z "$need" ] && exit 0
        echo "wcache: not root and no sudo; please install:$need" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if [ -n "$need" ]; then
    echo "wcache: installing missing packages:$need"
    if ! $SUDO apt-get install -y -qq $need >/dev/null; then
        echo "wcache: apt-get could not install:$need; install them by hand" >&2
        exit 1
    fi
fi
# Installing glusterfs-server does not start a system glusterd where
# services are not started on install (containers: policy-rc.d); where
# they are, tests/gluster.sh runs its own beside it on other ports.
if [ -n "$opt" ]; then
    echo "wcache: installing optional packages:$opt"
    $SUDO apt-get install -y -qq $opt >/dev/null ||
        echo "wcache: apt-get could not install:$opt; GlusterFS rows and checks will be skipped" >&2
fi
exit 0
