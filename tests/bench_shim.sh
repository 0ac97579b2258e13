#!/bin/sh
# bench_shim.sh BUILD_DIR - whole programs with and without the shim, in
# the same run: 5 rounds each, medians, ratios. The machine is shared:
# read the ratios, not the absolute numbers.
B=${1:-build}
SO=$(cd "$B" && pwd)/libwcache.so
dir=$(mktemp -d "${TMPDIR:-/tmp}/wcache-bench.XXXXXX")
mounted=""
trap '[ -n "$mounted" ] && fusermount3 -u "$dir/fuse"; rm -rf "$dir"' EXIT
ROUNDS=5

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "whole programs, with and without the shim, median of $ROUNDS rounds ($dir)"
bench() {  # bench NAME PATTERN CMD...
    name=$1; pat=$2; shift 2
    for mode in plain shim; do
        : > "$dir/$mode"
        i=0
        while [ $i -lt $ROUNDS ]; do
            if [ $mode = shim ]; then
                LD_PRELOAD=$SO "$@" > "$dir/out" 2>&1
            else
                "$@" > "$dir/out" 2>&1
            fi
            sed -n "s/$pat/\1/p" "$dir/out" | head -1 >> "$dir/$mode"
            i=$((i + 1))
        done
    done
    p=$(median < "$dir/plain"); s=$(median < "$dir/shim")
    awk -v n="$name" -v p="$p" -v s="$s" 'BEGIN {
        printf "  %-34s %10.3f %10.3f   %5.1fx\n", n, p, s, (s > 0 ? p / s : 0) }'
}
printf "  %-34s %10s %10s   %6s\n" "" "kernel" "wcache" "ratio"
bench "64-byte pwrite, in cache (ns)" '^hot \([0-9.]*\).*' \
    "$B/bench_write" "$dir/w" 2000000
bench "64-byte write, growing (ns)" '^append \([0-9.]*\).*' \
    "$B/bench_write" "$dir/w" 1000000
bench "logger, 300k lines (s)" '.* in \([0-9.]*\) s.*' \
    "$B/examples/logger" "$dir/log" 300000
bench "records, 100k pwrites (s)" '.*written in \([0-9.]*\) s.*' \
    "$B/examples/records" "$dir/rec" 100000
# The kind of file system wcache is for: FUSE (bindfs), where each write
# is a round trip to a user-space server.
if command -v bindfs >/dev/null 2>&1 && mkdir "$dir/src" "$dir/fuse" &&
   bindfs "$dir/src" "$dir/fuse" 2>/dev/null; then
    mounted=1
    bench "logger on FUSE, 20k lines (s)" '.* in \([0-9.]*\) s.*' \
        "$B/examples/logger" "$dir/fuse/log" 20000
fi
