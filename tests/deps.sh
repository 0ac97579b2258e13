#!/bin/sh
# Install what the tests need (Debian), or say clearly what is missing.
# Called by `make test`; does nothing when everything is present.
need=""
[ -f /usr/include/criterion/criterion.h ] || need="$need libcriterion-dev"
[ -f /usr/include/uthash.h ] || need="$need uthash-dev"
[ -z "$need" ] && exit 0
echo "wcache: installing missing test dependencies:$need"
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "wcache: not root and no sudo: please install$need" >&2
    exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
if ! $SUDO apt-get install -y -qq $need >/dev/null; then
    echo "wcache: apt-get could not install$need; install them by hand" >&2
    exit 1
fi
