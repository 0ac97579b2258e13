#!/bin/sh
# demo.sh - what wcache does, in one minute (`make demo`).
#
# Runs examples/logger (one write() per log line, like a chatty service)
# once as it is and once under `build/wcache --stats --`, then shows both
# times, the speed-up, that the two log files are byte for byte identical,
# and the shim's statistics (writes absorbed, system calls issued versus
# avoided). Then runs examples/records (scattered pwrite()s read back and
# verified) under wcache. Exits non-zero if anything differs or fails.
#
# LINES=N sets the number of log lines (default 300000).
set -u
cd "$(dirname "$0")/.." || exit 1
B=build
N=${LINES:-300000}
for f in "$B/wcache" "$B/libwcache.so" "$B/examples/logger" \
         "$B/examples/records"; do
    if [ ! -e "$f" ]; then
        echo "demo: $f is missing; run make first" >&2
        exit 1
    fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/wcache-demo.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# The number before " s " in the logger's report: its elapsed seconds.
seconds() {
    awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "s") { print $i; exit } }' "$1"
}

echo "== $B/examples/logger: $N lines, one write() each, as is"
if ! "$B/examples/logger" "$tmp/plain.log" "$N" >"$tmp/plain.out"; then
    echo "demo: logger failed without wcache" >&2
    exit 1
fi
cat "$tmp/plain.out"

echo
echo "== the same under: $B/wcache --stats -- $B/examples/logger"
"$B/wcache" --stats -- "$B/examples/logger" "$tmp/cached.log" "$N" \
    >"$tmp/cached.out" 2>"$tmp/stats"
rc=$?
cat "$tmp/cached.out"
if [ $rc -ne 0 ]; then
    echo "demo: logger under wcache exited with status $rc" >&2
    cat "$tmp/stats" >&2
    exit 1
fi

plain=$(seconds "$tmp/plain.out")
cached=$(seconds "$tmp/cached.out")
echo
awk -v p="$plain" -v c="$cached" 'BEGIN {
    if (c > 0) printf "speed-up: %.3f s -> %.3f s, %.1fx faster\n", p, c, p / c
    else printf "speed-up: %.3f s -> %.3f s\n", p, c
}'

if cmp "$tmp/plain.log" "$tmp/cached.log"; then
    echo "output: the two log files are identical ($(wc -c <"$tmp/plain.log") bytes, cmp)"
else
    echo "demo: the log written under wcache differs from the plain one" >&2
    exit 1
fi

echo
echo "== what the shim did (--stats)"
cat "$tmp/stats"

echo
echo "== $B/examples/records: scattered pwrite()s, read back and verified"
printf 'as is:        '
if ! "$B/examples/records" "$tmp/plain.dat" 100000; then
    echo "demo: records failed without wcache" >&2
    exit 1
fi
printf 'under wcache: '
if ! "$B/wcache" -- "$B/examples/records" "$tmp/records.dat" 100000; then
    echo "demo: records failed under wcache" >&2
    exit 1
fi
if ! cmp "$tmp/plain.dat" "$tmp/records.dat"; then
    echo "demo: the records file written under wcache differs" >&2
    exit 1
fi
echo "output: the two record files are identical (cmp)"
