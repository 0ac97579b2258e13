#!/bin/bash
# install_check.sh - `make install` into a DESTDIR, then use the installed
# tree as a user would: wcache -- true, a cached write with statistics,
# the man page; `make uninstall` leaves nothing behind.
set -euo pipefail
dest=$(mktemp -d "${TMPDIR:-/tmp}/wcache-install.XXXXXX")
trap 'rm -rf "$dest"' EXIT
make -s install DESTDIR="$dest" PREFIX=/usr
bin="$dest/usr/bin/wcache"
fail() { echo "install check: $*" >&2; exit 1; }
[ -x "$bin" ] || fail "no $bin"
[ -f "$dest/usr/lib/wcache/libwcache.so" ] || fail "no libwcache.so"
[ -f "$dest/usr/share/man/man1/wcache.1" ] || fail "no man page"
[ -f "$dest/usr/share/bash-completion/completions/wcache" ] ||
    fail "no bash completion"
"$bin" -- true || fail "wcache -- true failed"
# A file's first 8 writes go to the kernel (WCACHE_MIN_WRITES): 12 lines,
# 4 absorbed, once the cache is made at once (--setup-us 0: by default a
# process this small makes none, WCACHE_SETUP_US).
out=$(cd "$dest" && "$bin" --setup-us 0 --stats -- sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i; done > f' 2>&1)
echo "$out" | grep -q "4 writes absorbed" || fail "nothing cached: $out"
[ "$(cat "$dest/f")" = "$(seq 12)" ] || fail "wrong bytes in f"
if command -v man >/dev/null 2>&1; then
    MANPAGER=cat man -l "$dest/usr/share/man/man1/wcache.1" 2>/dev/null |
        grep -q "CONSISTENCY POINTS" || fail "man page does not render"
fi
mkdir -p -m 700 "$dest/store/wcache-$(id -u)"
"$bin" ls "$dest/store" >/dev/null || fail "wcache ls failed"
# Without its library the command stops with its own error, 125.
mv "$dest/usr/lib/wcache/libwcache.so" "$dest/libwcache.so.away"
set +e
"$bin" -- true 2>"$dest/err"
rc=$?
set -e
mv "$dest/libwcache.so.away" "$dest/usr/lib/wcache/libwcache.so"
[ "$rc" -eq 125 ] || [ -e /usr/lib/wcache/libwcache.so ] ||
    fail "missing library: exit $rc, expected 125"
grep -q "^wcache: libwcache.so not found" "$dest/err" ||
    [ -e /usr/lib/wcache/libwcache.so ] || fail "no message: $(cat "$dest/err")"
# The man page names the library where this PREFIX put it.
grep -q "LD_PRELOAD=/usr/lib/wcache/libwcache.so" \
    "$dest/usr/share/man/man1/wcache.1" || fail "man page names another path"
make -s uninstall DESTDIR="$dest" PREFIX=/usr
left=$(find "$dest/usr" -type f | head -3)
[ -z "$left" ] || fail "uninstall left: $left"
# Installed again under another PREFIX, the command looks for its library
# there (it kept the first PREFIX's: probe AA).
make -s install DESTDIR="$dest" PREFIX=/opt/wct
grep -aq "/opt/wct/lib/wcache" "$dest/opt/wct/bin/wcache" ||
    fail "a second install kept the first PREFIX in the command"
make -s uninstall DESTDIR="$dest" PREFIX=/opt/wct
echo "install check: ok"
