#!/bin/sh
# check_gluster.sh BUILD_DIR - part of `make check-long`: real programs on
# a GlusterFS mount (tests/gluster.sh: a private one-brick volume on
# loopback, its FUSE client), each run twice, without the shim and under
# it (LD_PRELOAD=BUILD_DIR/libwcache.so); the results must be identical.
#
#   tar      extraction of a tree of 3,000 small files (and a few large,
#            empty, executable ones, symbolic links): each extracted tree
#            compared with the source tree (diff -rq: names and contents)
#            and the two with each other by listing (type, size of
#            non-directories, mode, mtime in seconds, link target).
#   sqlite3  autocommit inserts, updates and deletes into an indexed
#            table (a transaction, a journal, per statement), then
#            `PRAGMA integrity_check` ("ok") and `.dump` of each database,
#            read without the shim: the two dumps are identical.
#   perl     a file written line by line with autoflush: the same bytes.
# Under the shim each program must have had writes absorbed
# (WCACHE_STATS), or the comparison would prove nothing.
#
# GlusterFS alone is not fully coherent (a size seen by fstat may lag), so
# only final results are compared, after each program has exited.
# Exits 0 when all match, 1 on a difference or a failure; prints
# "skipped: REASON" and exits 0 when GlusterFS cannot run here (not
# installed, not root, no /dev/fuse). Everything it makes (mount, servers,
# files) is removed on exit, failure or interrupt.
set -u
B=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
SO=$B/libwcache.so
sh "$SRC/tests/deps.sh" gluster || exit 1
[ -f "$SO" ] || { echo "check_gluster: no $SO (make first)" >&2; exit 1; }

dir=$(mktemp -d "${WCACHE_TEST_DIR:-/var/tmp}/wcache-gluster.XXXXXX") || exit 1
cleanup() {
    sh "$SRC/tests/gluster.sh" stop "$dir/g"
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "== GlusterFS: real programs with and without the shim"
mkdir -p "$dir/g"
out=$(sh "$SRC/tests/gluster.sh" start "$dir/g")
case $? in
0) ;;
2) echo "check_gluster: $out"; exit 0 ;;
*) echo "check_gluster: GlusterFS did not start: $out" >&2
   exit 1 ;;
esac
g=$dir/g/mnt
bad=0
fail() { echo "check_gluster: FAIL: $*" >&2; bad=1; }
pass() { echo "check_gluster: ok: $*"; }

# absorbed STATS: the writes the shim took into its cache, summed over
# every process that wrote STATS.
absorbed() {
    awk '/writes absorbed/ { n += $2 } END { print n + 0 }' "$1" 2>/dev/null || echo 0
}

# ---- tar -----------------------------------------------------------------
# 3,000 files of 0 - 6 KiB in 30 directories, a few of 200 KiB - 3 MiB,
# empty files, executables, symbolic links; fixed contents and mtimes.
perl -e 'my $t = shift; srand(8);
    for my $d (0 .. 29) {
        mkdir "$t/d$d" or die;
        for my $f (0 .. 99) {
            my $p = "$t/d$d/f$f";
            open my $h, ">", $p or die;
            my $n = ($f * 131 + $d * 17) % 6200;
            $n = 0 if $f % 37 == 0;
            $n = 200000 + $d * 97000 if $f == 50 && $d % 10 == 0;
            print $h join("", map { chr(32 + int rand 95) } 1 .. 64) x int($n / 64),
                "x" x ($n % 64);
            close $h;
            chmod 0755, $p if $f % 11 == 0;
            utime 1600000000 + $f, 1600000000 + $d * 1000 + $f, $p;
        }
        symlink "f1", "$t/d$d/link" or die;
    }' "$(mkdir -p "$dir/tree" && echo "$dir/tree")"
tar cf "$dir/tree.tar" -C "$dir/tree" .

listing() {  # listing DIR: one line per entry, sorted
    (cd "$1" && find . -printf '%p %y %s %m %T@ %l\n' |
        awk '{ split($5, t, "."); $5 = t[1]; if ($2 == "d") $3 = "-"; print }' | sort)
}

mkdir "$g/tar-plain" "$g/tar-shim"
tar xf "$dir/tree.tar" -C "$g/tar-plain" || fail "tar x without the shim"
# tar writes each small file in a few calls: by default (WCACHE_MIN_WRITES)
# none would be cached and the comparison would prove nothing, so here
# every file is cached from its open.
LD_PRELOAD=$SO WCACHE_STATS=$dir/stats.tar WCACHE_MIN_WRITES=0 \
    tar xf "$dir/tree.tar" -C "$g/tar-shim" || fail "tar x under the shim"
n=$(absorbed "$dir/stats.tar")
[ "$n" -gt 0 ] || fail "tar: the shim absorbed no writes"
listing "$dir/tree" > "$dir/l.src"
listing "$g/tar-plain" > "$dir/l.plain"
listing "$g/tar-shim" > "$dir/l.shim"
files=$(grep -c ' f ' "$dir/l.src")
diff -rq "$dir/tree" "$g/tar-plain" > "$dir/d.plain" 2>&1 ||
    fail "tar: the tree extracted without the shim differs from the source: $(head -3 "$dir/d.plain")"
diff -rq "$dir/tree" "$g/tar-shim" > "$dir/d.shim" 2>&1; c1=$?
diff "$dir/l.plain" "$dir/l.shim" > "$dir/d.list" 2>&1; c2=$?
if [ $c1 -eq 0 ] && [ $c2 -eq 0 ]; then
    pass "tar x of $files files: the tree under the shim is the source's and the plain run's (contents, sizes, modes, mtimes; $n writes absorbed)"
else
    fail "tar: the tree extracted under the shim differs"
    head -5 "$dir/d.shim" "$dir/d.list" >&2
fi
cmp -s "$dir/l.src" "$dir/l.plain" ||
    echo "check_gluster: note: the plain extraction's listing differs from the source's (not an error of the shim)"

# ---- sqlite3 -------------------------------------------------------------
{
    echo "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c BLOB);"
    echo "CREATE INDEX tb ON t(b);"
    awk 'BEGIN { for (i = 0; i < 600; i++) {
        printf "INSERT INTO t VALUES(%d, \"row %d %s\", zeroblob(%d));\n",
            i, i, substr("abcdefghijklmnopqrstuvwxyz", 1 + i % 26), (i * 53) % 700
        if (i % 7 == 3) printf "UPDATE t SET b = b || \" updated\" WHERE a = %d;\n", i - 2
        if (i % 13 == 5) printf "DELETE FROM t WHERE a = %d;\n", i - 4 } }'
} > "$dir/ins.sql"
sqlite3 "$g/plain.db" < "$dir/ins.sql" > "$dir/sql.plain" 2>&1 ||
    fail "sqlite3 without the shim: $(head -3 "$dir/sql.plain")"
LD_PRELOAD=$SO WCACHE_STATS=$dir/stats.sql \
    sqlite3 "$g/shim.db" < "$dir/ins.sql" > "$dir/sql.shim" 2>&1 ||
    fail "sqlite3 under the shim: $(head -3 "$dir/sql.shim")"
n=$(absorbed "$dir/stats.sql")
[ "$n" -gt 0 ] || fail "sqlite3: the shim absorbed no writes"
for v in plain shim; do
    sqlite3 "$g/$v.db" 'PRAGMA integrity_check;' > "$dir/ic.$v" 2>&1
    [ "$(cat "$dir/ic.$v")" = ok ] ||
        fail "sqlite3 ($v): integrity_check: $(head -3 "$dir/ic.$v")"
    sqlite3 "$g/$v.db" .dump > "$dir/dump.$v" 2>&1 || fail "sqlite3 ($v): .dump"
done
rows=$(grep -c '^INSERT' "$dir/dump.plain")
if [ "$rows" -gt 0 ] && cmp -s "$dir/dump.plain" "$dir/dump.shim"; then
    pass "sqlite3, $(grep -c . "$dir/ins.sql") autocommit statements: integrity_check ok, .dump identical ($rows rows; $n writes absorbed)"
else
    fail "sqlite3: the dumps differ (or are empty)"
    diff "$dir/dump.plain" "$dir/dump.shim" | head | cut -c 1-160 >&2
fi

# ---- perl, autoflush, line by line -----------------------------------------
P='open(my $f, ">", shift) or die; $f->autoflush(1);
   print $f "line $_ of the file\n" for 1 .. 20000; close $f or die'
perl -e "$P" "$g/perl.plain" || fail "perl without the shim"
LD_PRELOAD=$SO WCACHE_STATS=$dir/stats.perl perl -e "$P" "$g/perl.shim" ||
    fail "perl under the shim"
n=$(absorbed "$dir/stats.perl")
[ "$n" -gt 0 ] || fail "perl: the shim absorbed no writes"
if cmp "$g/perl.plain" "$g/perl.shim" && [ -s "$g/perl.plain" ]; then
    pass "perl autoflush, 20,000 lines: identical ($n writes absorbed)"
else
    fail "perl: the files differ"
fi

[ $bad -eq 0 ] && echo "check_gluster: all identical"
exit $bad
