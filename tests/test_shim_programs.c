/*
 * test_shim_programs.c - real programs from Debian under the shim.
 *
 * Each test runs one shell script twice, in two fresh directories: once
 * without and once with LD_PRELOAD (the shell and every program it starts
 * are under the shim). The exit status, stdout, stderr and the tree each
 * run leaves behind (sizes, modes, content hashes, and modification times
 * where the program sets them) must be identical. Where a program can
 * check its own output (fio --verify_only, sqlite's integrity_check, git
 * fsck) the check also runs without the shim on the files the shim wrote.
 *
 * A missing program fails the test under CI=true (.ci/run installs them)
 * and skips it elsewhere. Packages: fio sqlite3 stress-ng git gzip tar
 * coreutils python3 strace fakeroot util-linux.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib_shim.h"

static char *scratch;
static char in[4200];        /* inputs shared by both runs: $IN */

static void setup(void)
{
    scratch = wct_scratch("progs");
    snprintf(in, sizeof in, "%s/in", scratch);
    cr_assert(mkdir(in, 0755) == 0);
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(programs, .init = setup, .fini = teardown, .timeout = 120);

/* ---- inputs -------------------------------------------------------------- */

static void put_file(const char *rel, const void *data, size_t len)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", in, rel);
    cr_assert(wct_spit(path, data, len) == 0, "write %s", path);
    /* A fixed mtime, so that programs that copy it copy a known value. */
    struct timeval tv[2] = {{1500000000, 0}, {1500000000, 0}};
    utimes(path, tv);
}

static void make_inputs(void)
{
    static unsigned char buf[1 << 20];
    static int made;
    if (made++)
        return;
    wct_fill(buf, 100 * 1024, 1);
    put_file("src", buf, 100 * 1024);
    char *text = malloc(1 << 20);
    size_t n = 0;
    for (int i = 0; i < 5000; i++)
        n += (size_t)sprintf(text + n, "%d the quick brown fox %x\n", i,
                             i * 2654435761u);
    put_file("text", text, n);
    free(text);

    char path[8192];
    snprintf(path, sizeof path, "%s/tree", in);
    mkdir(path, 0755);
    for (int d = 0; d < 5; d++) {
        snprintf(path, sizeof path, "%s/tree/dir%d", in, d);
        mkdir(path, d == 3 ? 0700 : 0755);
        for (int f = 0; f < 30; f++) {
            char rel[256];
            size_t len = f == 0 ? 0 : (size_t)(f * f * 37 + d) % 70000;
            snprintf(rel, sizeof rel, "tree/dir%d/file%02d", d, f);
            wct_fill(buf, len, (uint64_t)(d * 100 + f));
            put_file(rel, buf, len);
        }
    }
    wct_fill(buf, sizeof buf, 7);
    put_file("tree/big", buf, sizeof buf);
    snprintf(path, sizeof path, "%s/tree/link", in);
    cr_assert(symlink("dir1/file03", path) == 0);
    /* A sparse file: data, a 1 MiB hole, data. */
    snprintf(path, sizeof path, "%s/sparse", in);
    FILE *f = fopen(path, "w");
    fwrite(buf, 1, 5000, f);
    fseek(f, 1 << 20, SEEK_CUR);
    fwrite(buf, 1, 5000, f);
    fclose(f);
    /* The archive, made without the shim. */
    struct wct_result res;
    wct_sh(0, in, NULL, 30, &res, "tar --sort=name -cf a.tar tree");
    cr_assert(wct_ok(&res), "tar: %s", res.err);
    wct_result_free(&res);
}

/* ---- the comparison -------------------------------------------------------- */

struct run {
    char *dir;
    char *report;   /* status, stdout, stderr, tree */
    double seconds;
};

static struct run run_script(int shim, const char *name, const char *script,
                             const char *const *env, int mtimes,
                             double timeout)
{
    struct run r = {0};
    cr_assert(asprintf(&r.dir, "%s/%s-%s", scratch, name, shim ? "shim"
                       : "ref") > 0);
    cr_assert(mkdir(r.dir, 0755) == 0);
    char inv[4300];
    snprintf(inv, sizeof inv, "IN=%s", in);
    const char *envv[16] = {inv};
    for (int k = 0; env && env[k] && k < 14; k++)
        envv[k + 1] = env[k];
    struct wct_result res;
    cr_assert(wct_sh(shim, r.dir, envv, timeout, &res, script) == 0);
    char *tree = wct_tree_listing(r.dir, mtimes);
    cr_assert(asprintf(&r.report, "--- %s\n--- stdout\n%s--- stderr\n%s"
                       "--- files\n%s", wct_status_str(&res), res.out,
                       res.err, tree) > 0);
    r.seconds = res.seconds;
    free(tree);
    wct_result_free(&res);
    return r;
}

static void compare(const char *name, const char *script,
                    const char *const *env, int mtimes, double timeout)
{
    wct_require_shim();
    make_inputs();
    struct run ref = run_script(0, name, script, env, mtimes, timeout);
    struct run got = run_script(1, name, script, env, mtimes, timeout);
    cr_log_info("%s: %.2f s without the shim, %.2f s with it", name,
                ref.seconds, got.seconds);
    cr_assert(strncmp(ref.report, "--- exit 0\n", 11) == 0,
              "%s fails without the shim (test bug?):\n%s", name, ref.report);
    char *d = wct_first_diff(ref.report, got.report);
    cr_expect(*d == 0, "%s differs under the shim:\n%s\n=== without the "
              "shim:\n%.3000s\n=== with the shim:\n%.3000s", name, d,
              ref.report, got.report);
    free(d);
    free(ref.report);
    free(got.report);
    wct_rmtree(ref.dir);
    wct_rmtree(got.dir);
    free(ref.dir);
    free(got.dir);
}

/* ---- the programs ---------------------------------------------------------- */

Test(programs, fio_verify_crc32c)
{
    wct_require_tool("fio", "fio");
    compare("fio",
        "for rw in write randwrite; do for bs in 64 512; do\n"
        "  f=f-$rw-$bs\n"
        "  extra=; [ $bs = 512 ] && extra=--fsync=64\n"
        "  fio --name=j --filename=$f --ioengine=psync --bs=$bs --size=256k"
        "   --rw=$rw --verify=crc32c --do_verify=1 $extra --output=j.log"
        "   >/dev/null 2>&1\n"
        "  echo \"fio $rw bs=$bs: exit $?\"\n"
        "  grep -o 'err= *[0-9]*' j.log | head -1\n"
        "  grep -i 'verify failed' j.log | head -3\n"
        /* What the shim left in the file, checked without the shim. */
        "  env -u LD_PRELOAD fio --name=v --filename=$f --ioengine=psync"
        "   --bs=$bs --size=256k --rw=$rw --verify=crc32c --verify_only"
        "   --output=v.log >/dev/null 2>&1\n"
        "  echo \"verify_only without the shim: exit $?\"\n"
        "  grep -i 'verify failed' v.log | head -3\n"
        "  rm -f $f j.log v.log\n"
        "done; done\n"
        /* four jobs as threads of one process, one file each */
        "fio --name=t --thread --numjobs=4 --ioengine=psync --bs=64"
        " --size=128k --rw=randwrite --verify=crc32c --do_verify=1"
        " --filename_format='th.$jobnum' --output=t.log >/dev/null 2>&1\n"
        "echo \"fio threads: exit $?\"\n"
        "grep -i 'verify failed' t.log | head -3\n"
        "rm -f th.* t.log\n",
        NULL, 0, 100);
}

/* 3000 inserts in 30 transactions, updates, an index, VACUUM. */
static void make_sql(void)
{
    size_t cap = 1 << 20, n = 0;
    char *s = malloc(cap);
    n += (size_t)sprintf(s + n, "CREATE TABLE t(id INTEGER PRIMARY KEY, "
                         "name TEXT, val REAL, data BLOB);\n");
    for (int tx = 0; tx < 30; tx++) {
        n += (size_t)sprintf(s + n, "BEGIN;\n");
        for (int i = 0; i < 100; i++) {
            int id = tx * 100 + i;
            n += (size_t)sprintf(s + n, "INSERT INTO t(name, val, data) "
                                 "VALUES('name-%d-%x', %d.25, "
                                 "CASE WHEN %d %% 2 THEN X'deadbeef%04x' ELSE zeroblob(%d) END);\n",
                                 id, id * 7919, id % 1000, id, id & 0xffff,
                                 (id * 37) % 700);
        }
        n += (size_t)sprintf(s + n, "COMMIT;\n");
    }
    n += (size_t)sprintf(s + n, "UPDATE t SET name = name || '-u' WHERE "
                         "id %% 3 = 0;\nDELETE FROM t WHERE id %% 7 = 0;\n"
                         "CREATE INDEX t_name ON t(name);\nVACUUM;\n");
    put_file("insert.sql", s, n);
    n = 0;
    n += (size_t)sprintf(s + n, "PRAGMA journal_mode=WAL;\n"
                         "PRAGMA synchronous=NORMAL;\n"
                         "CREATE TABLE w(id INTEGER PRIMARY KEY, v TEXT);\n");
    for (int i = 0; i < 600; i++)
        n += (size_t)sprintf(s + n, "INSERT INTO w(v) VALUES('row %d');\n",
                             i);
    n += (size_t)sprintf(s + n, "PRAGMA wal_checkpoint(TRUNCATE);\n");
    put_file("wal.sql", s, n);
    free(s);
}

Test(programs, sqlite3_inserts_integrity_dump)
{
    wct_require_tool("sqlite3", "sqlite3");
    make_inputs();
    make_sql();
    compare("sqlite3",
        "sqlite3 db < $IN/insert.sql; echo \"inserts: exit $?\"\n"
        "sqlite3 db 'PRAGMA integrity_check; SELECT count(*), sum(val), "
        " sum(length(data)) FROM t;'\n"
        "sqlite3 db .dump > dump.sql; echo \"dump: exit $?\"\n"
        "env -u LD_PRELOAD sqlite3 db 'PRAGMA integrity_check'\n"
        "sqlite3 wal.db < $IN/wal.sql; echo \"wal: exit $?\"\n"
        "sqlite3 wal.db 'PRAGMA integrity_check; SELECT count(*) FROM w;'\n"
        "env -u LD_PRELOAD sqlite3 wal.db .dump > wal-dump.sql\n"
        "ls\n",
        NULL, 0, 100);
}

/* Two sqlite3 processes insert into one database at once: the locks are
 * the consistency points, and pages cached before a lock are stale after
 * it. Totals are deterministic; the row order is not, so only they and
 * the integrity check are compared. */
Test(programs, sqlite3_two_processes_one_database)
{
    wct_require_tool("sqlite3", "sqlite3");
    make_inputs();
    for (int w = 0; w < 2; w++) {
        size_t cap = 1 << 20, n = 0;
        char *s = malloc(cap), name[32];
        n += (size_t)sprintf(s + n, ".timeout 20000\n"
                             "CREATE TABLE IF NOT EXISTS t(w INT, i INT, "
                             "v TEXT);\n");
        for (int tx = 0; tx < 150; tx++) {
            n += (size_t)sprintf(s + n, "BEGIN IMMEDIATE;\n");
            for (int i = 0; i < 5; i++)
                n += (size_t)sprintf(s + n, "INSERT INTO t VALUES(%d, %d, "
                                     "'writer %d row %d');\n", w,
                                     tx * 5 + i, w, tx * 5 + i);
            n += (size_t)sprintf(s + n, "COMMIT;\n");
        }
        snprintf(name, sizeof name, "w%d.sql", w);
        put_file(name, s, n);
        free(s);
    }
    compare("sqlite3-two",
        "sqlite3 db 'PRAGMA journal_mode=DELETE' >/dev/null\n"
        "sqlite3 db < $IN/w0.sql & sqlite3 db < $IN/w1.sql & wait\n"
        "sqlite3 db 'PRAGMA integrity_check; SELECT w, count(*), sum(i) "
        "FROM t GROUP BY w;'\n"
        "env -u LD_PRELOAD sqlite3 db 'PRAGMA integrity_check; "
        "SELECT count(*) FROM t;'\n"
        "rm -f db\n",
        NULL, 0, 100);
}

/* The same in WAL mode, where a commit writes frames to db-wal, which is
 * never locked itself, and then drops a lock on db-shm; the other
 * process reads the frames after it takes that lock. Each transaction
 * increments a counter (a lost commit shows in the sum) and inserts a
 * row. Probe N: commits lost with no error, SQLITE_IOERR, a corrupt
 * database, until a lock on any file became a point for every file. */
static const char wal_counter_py[] =
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
    "c.execute('PRAGMA synchronous=NORMAL')\n"
    "for i in range(int(sys.argv[2])):\n"
    "    c.execute('BEGIN IMMEDIATE')\n"
    "    v = c.execute('SELECT v FROM c').fetchone()[0]\n"
    "    c.execute('UPDATE c SET v = ?', (v + 1,))\n"
    "    c.execute('INSERT INTO t VALUES(?, ?, randomblob(200))', (v, i))\n"
    "    c.execute('COMMIT')\n";

static void sqlite_wal(const char *const *env)
{
    wct_require_tool("sqlite3", "sqlite3");
    wct_require_tool("python3", "python3");
    make_inputs();
    put_file("wal.py", wal_counter_py, sizeof wal_counter_py - 1);
    compare("sqlite3-wal",
        "sqlite3 db 'PRAGMA journal_mode=WAL; CREATE TABLE c(v INT); "
        "INSERT INTO c VALUES(0); CREATE TABLE t(v INT, i INT, b BLOB);' "
        ">/dev/null\n"
        "python3 $IN/wal.py db 1500 & python3 $IN/wal.py db 1500; wait\n"
        "sqlite3 db 'PRAGMA integrity_check; SELECT v FROM c; "
        "SELECT count(*), count(DISTINCT v) FROM t;'\n"
        "env -u LD_PRELOAD sqlite3 db 'PRAGMA integrity_check;'\n"
        "rm -f db db-wal db-shm\n",
        env, 0, 100);
}

Test(programs, sqlite3_wal_two_processes) { sqlite_wal(NULL); }
static const char *const default_policy[] = {"WCACHE_MIN_WRITES=",
                                             "WCACHE_SETUP_US=", NULL};
Test(programs, sqlite3_wal_two_processes_default_policy)
{
    sqlite_wal(default_policy);
}

/* Two processes append to one log (opened read-write, not O_APPEND) in
 * turns that a lock on another file orders: flock(lk), seek to the end,
 * five lines, unlock, as flock(1) and many daemons do. Probe N: 3 of 3
 * runs lost up to 1,500 of the 5,000 lines, each written over by the
 * other process at an end it took from a cached size (2 x 2,000 turns
 * here). */
Test(programs, appends_ordered_by_a_lock_on_another_file)
{
    wct_require_tool("perl", "perl");
    compare("flock-other",
        ": > log\n"
        "P='use Fcntl qw(:flock SEEK_END); $p = shift; "
        "open(F, \"+<\", \"log\") or die; open(L, \">>\", \"lk\") or die; "
        "for $t (1..2000) { flock(L, LOCK_EX); sysseek(F, 0, SEEK_END); "
        "syswrite(F, \"$p $t $_\\n\") for 1..5; flock(L, LOCK_UN) }'\n"
        "perl -e \"$P\" A & perl -e \"$P\" B; wait\n"
        "wc -l < log; grep -c '^A ' log; tr -d -c '\\000' < log | wc -c\n"
        "awk '{k = $1 \" \" $2; if (k != p) { if (seen[k]++) b++; p = k } }"
        " END { print b + 0 }' log\n"
        "rm -f log lk\n",
        NULL, 0, 100);
}

Test(programs, cc_builds_and_runs_a_program)
{
    wct_require_tool("cc", "build-essential");
    make_inputs();
    static const char prog[] =
        "#include <stdio.h>\n"
        "int main(void) { for (int i = 0; i < 3; i++) printf(\"hello %d\\n\","
        " i); return 0; }\n";
    put_file("hello.c", prog, sizeof prog - 1);
    compare("cc",
        "cp $IN/hello.c . && cc -O2 -c hello.c -o hello.o &&"
        " cc -o hello hello.o; echo \"cc: exit $?\"\n"
        "./hello\n"
        "ar rcs libhello.a hello.o; echo \"ar: exit $?\"\n",
        NULL, 0, 100);
}

Test(programs, text_tools)
{
    wct_require_tool("sed", "sed");
    wct_require_tool("sort", "coreutils");
    compare("text",
        "cp $IN/text t && sed -i 's/fox/cat/' t; echo \"sed -i: exit $?\"\n"
        "sort -r -o sorted $IN/text\n"
        "tee teed < $IN/text | wc -l\n"
        "awk '{ print $2, $1 > \"awked\" }' $IN/text\n"
        "install -m 640 $IN/src installed\n"
        "head -c 12345 $IN/src > headed; tail -n 100 $IN/text >> headed\n"
        "truncate -s 5000 headed; truncate -s +3000 headed\n"
        "printf 'x%.0s' $(seq 1 2000) >> headed\n",
        NULL, 0, 100);
}

Test(programs, dd_bs1_and_friends)
{
    wct_require_tool("dd", "coreutils");
    compare("dd",
        "dd if=$IN/src of=d1 bs=1 status=none; echo \"bs=1: exit $?\"\n"
        "cmp d1 $IN/src && echo same\n"
        "dd if=$IN/src of=d2 bs=100 count=500 status=none\n"
        "dd if=$IN/text of=d2 bs=1 seek=1000 count=20000 conv=notrunc"
        " status=none\n"
        "dd if=$IN/src of=d3 bs=4096 seek=100 count=3 status=none\n"
        "dd if=$IN/text of=d4 bs=3 count=3000 oflag=append conv=notrunc"
        " status=none\n"
        "dd if=$IN/src of=d4 bs=1 count=3000 oflag=append conv=notrunc"
        " status=none\n"
        "dd if=$IN/src of=d5 bs=512 conv=sparse status=none\n",
        NULL, 0, 100);
}

Test(programs, cp_and_cat)
{
    wct_require_tool("cp", "coreutils");
    compare("cp",
        "cp -r $IN/tree t1; echo \"cp -r: exit $?\"\n"
        "cp -a $IN/tree t2; echo \"cp -a: exit $?\"\n"
        /* cp -a sets the times after writing: they must stick. */
        "find t2 -type f -exec stat -c '%n %Y %a' {} + | sort\n"
        "cp --sparse=always $IN/sparse sp; stat -c '%s' sp\n"
        "cat $IN/src > catted; cat $IN/src $IN/text >> catted\n"
        "cp $IN/src over; cp $IN/text over\n",
        NULL, 0, 100);
}

Test(programs, split_and_reassemble)
{
    wct_require_tool("split", "coreutils");
    compare("split",
        "split -b 1000 $IN/src p.; echo \"split -b: exit $?\"\n"
        "split -l 7 $IN/text l.\n"
        "split -n 5 $IN/src n.\n"
        "cat p.* | cmp - $IN/src && echo same-b\n"
        "cat l.* | cmp - $IN/text && echo same-l\n"
        "ls | wc -l\n",
        NULL, 0, 100);
}

Test(programs, tar_extract_and_create)
{
    wct_require_tool("tar", "tar");
    compare("tar",
        "mkdir x && tar -C x -xf $IN/a.tar; echo \"extract: exit $?\"\n"
        "tar -C x --sort=name --mtime=@0 --owner=0 --group=0"
        " --numeric-owner -cf out.tar tree; echo \"create: exit $?\"\n"
        "tar -tvf out.tar > list; head -5 list; rm list\n"
        "tar -C x -cf - tree | tar -C x -xf - --transform s/tree/copy/\n"
        /* times that legitimately differ between the runs */
        "touch -d @1 x out.tar x/copy; touch -h -d @1 x/copy/link\n",
        NULL, 1, 100);
}

Test(programs, gzip_roundtrip)
{
    wct_require_tool("gzip", "gzip");
    compare("gzip",
        "cp -p $IN/text t; gzip -9 t; echo \"gzip: exit $?\"\n"
        "gzip -t t.gz && echo tested\n"
        "gzip -dc t.gz | cmp - $IN/text && echo same\n"
        "cp -p $IN/src s; gzip -1 s; gunzip s.gz; cmp s $IN/src && echo same\n"
        "gzip -n -c $IN/text > tn.gz; touch -d @1 tn.gz\n",
        NULL, 1, 100);
}

Test(programs, git_commit_gc_fsck)
{
    wct_require_tool("git", "git");
    const char *env[] = {"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=t@e.x",
                         "GIT_COMMITTER_NAME=Test",
                         "GIT_COMMITTER_EMAIL=t@e.x",
                         "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
                         "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z",
                         "GIT_CONFIG_NOSYSTEM=1", NULL};
    compare("git",
        "export HOME=$PWD\n"
        "git init -q -b main repo && cd repo || exit 1\n"
        "cp -r $IN/tree/. . && git add -A && git commit -q -m one\n"
        "echo \"commit: exit $?\"\n"
        "echo more >> dir0/file01 && git commit -q -am two\n"
        "git rev-parse HEAD\n"
        "git gc -q; echo \"gc: exit $?\"\n"
        "git fsck --strict --no-progress; echo \"fsck: exit $?\"\n"
        "git log --stat --format='%H %s' | cat\n"
        "git status --porcelain\n"
        "env -u LD_PRELOAD git fsck --strict --no-progress\n"
        "echo \"fsck without the shim: exit $?\"\n"
        "cd .. && rm -rf repo/.git\n",
        env, 0, 100);
}

static const char python_script[] =
    "import hashlib, json, mmap, os, shutil, tempfile\n"
    "def h(b): return hashlib.sha256(b).hexdigest()[:16]\n"
    "with open('a.txt', 'w') as f:\n"
    "    for i in range(20000): f.write(f'line {i}\\n')\n"
    "with open('a.txt', 'a') as f: f.write('appended\\n')\n"
    "with open('a.txt', 'rb') as f: print('a', h(f.read()))\n"
    "with open('b.bin', 'w+b') as f:\n"
    "    for i in range(2000):\n"
    "        f.seek((i * 7919) % 100000); f.write(bytes([i % 256]) * 37)\n"
    "    f.truncate(90000); f.seek(0); print('b', h(f.read()))\n"
    "fd = os.open('c.bin', os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)\n"
    "for i in range(5000): os.write(fd, b'%06d,' % i)\n"
    "os.pwrite(fd, b'HEADER', 0)\n"
    "os.writev(fd, [b'one', b'', b'two'])\n"
    "print('c', os.fstat(fd).st_size, os.lseek(fd, 0, os.SEEK_CUR))\n"
    "print('c', h(os.pread(fd, 1 << 20, 0)))\n"
    "m = mmap.mmap(fd, 0); print('c mmap', h(m[:])); m.close()\n"
    "os.close(fd)\n"
    "with tempfile.NamedTemporaryFile('w', dir='.', delete=False) as t:\n"
    "    json.dump({'k': list(range(1000))}, t); name = t.name\n"
    "os.replace(name, 'data.json')\n"
    "print('json', json.load(open('data.json'))['k'][-1])\n"
    "shutil.copyfile('c.bin', 'c.copy')\n"
    "print('copy', h(open('c.copy', 'rb').read()))\n"
    "with open('d.log', 'a', buffering=1) as f:\n"
    "    for i in range(3000): print('unbuffered-ish', i, file=f)\n"
    "print('d', os.stat('d.log').st_size)\n";

/* fakeroot fakes owners in a library preloaded with the program; with
 * the shim's library first (`fakeroot wcache -- prog`: the shim is then
 * what the program calls, fakeroot's wrappers what the shim calls) the
 * program must still see fakeroot's owners in stat, lstat and fstat
 * (shim/kcall.h (K4)). Run as an unprivileged user, as fakeroot is. */
Test(programs, fakeroot_owners_with_the_shim_first)
{
    wct_require_tool("fakeroot", "fakeroot");
    wct_require_tool("setpriv", "util-linux");
    wct_require_tool("python3", "python3");
    if (geteuid() != 0) {
        wct_scratch_cleanup();     /* no .fini runs after a skip */
        cr_skip_test("needs root, to run fakeroot as another user");
    }
    cr_assert(chmod(scratch, 0711) == 0);
    compare("fakeroot",
            "chmod 777 . && echo data > f && chmod 666 f &&\n"
            "setpriv --reuid=65534 --regid=65534 --clear-groups fakeroot "
            "sh -c '\n"
            "  chown 4321:4321 f || exit 1\n"
            "  LD_PRELOAD=$(echo \"$LD_PRELOAD\" |\n"
            "      sed \"s/^\\([^:]*\\):\\(.*\\)$/\\2:\\1/\")\n"
            "  export LD_PRELOAD\n"
            "  python3 -c \"import os; fd = os.open(\\\"f\\\", os.O_RDONLY); "
            "print(os.stat(\\\"f\\\").st_uid, os.lstat(\\\"f\\\").st_gid, "
            "os.fstat(fd).st_uid)\"'\n",
            NULL, 0, 60);
}

/* A set-user-ID bit set by fchmod after cached writes: the kernel clears
 * the bit at each write of a user without CAP_FSETID, so the writes'
 * clearing comes before the fchmod; the shim writes back before a chmod or
 * chown of a cached file (meta.c), or the write-back cleared the bit the
 * program had just set (found by a probe). And a file with the bit is
 * never cached (fdtab.c invariant (6)), so fstat after each write shows
 * it cleared, as the kernel's. */
Test(programs, setuid_bit_set_after_cached_writes)
{
    wct_require_tool("setpriv", "util-linux");
    wct_require_tool("python3", "python3");
    if (geteuid() != 0) {
        wct_scratch_cleanup();     /* no .fini runs after a skip */
        cr_skip_test("needs root, to run as another user");
    }
    cr_assert(chmod(scratch, 0711) == 0);
    compare("setuid",
            "chmod 777 . &&\n"
            "setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '\n"
            "import os\n"
            "for name, call in (\"m\", os.fchmod), (\"o\", None):\n"
            "    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)\n"
            "    for i in range(40): os.write(fd, b\"line %d\\n\" % i)\n"
            "    if call: call(fd, 0o4755)\n"
            "    else: os.fchown(fd, 65534, 65534); os.chmod(name, 0o2755)\n"
            "    os.close(fd)\n"
            "    print(name, oct(os.stat(name).st_mode), os.stat(name).st_size)\n"
            "fd = os.open(\"s\", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755)\n"
            "os.fchmod(fd, 0o4755)\n"
            "for r in range(3):\n"
            "    for i in range(40): os.write(fd, b\"line %d\\n\" % i)\n"
            "    print(\"s\", r, oct(os.fstat(fd).st_mode), os.fstat(fd).st_size)\n"
            "    os.fchmod(fd, 0o6755)\n"
            "os.close(fd)\n"
            "print(\"s\", oct(os.stat(\"s\").st_mode))\n"
            "'\n",
            NULL, 0, 60);
}

/* After an exec, a shell's `echo x >&3` on a descriptor it inherited
 * (dup2(3, 1), write, dup2 back): two numbers for one description the
 * shim had not adopted yet were adopted on their own, each with an
 * offset of its own, and a later writer through fd 3 overwrote the echo's
 * bytes (stats.c wc_nc_dup; found by a probe). */
Test(programs, shell_echo_to_an_inherited_descriptor)
{
    wct_require_tool("dash", "dash");
    compare("inherited-dup",
            "dash -c 'exec 3>out; echo first >&3; "
            "exec dash -c \"echo AAAA >&3; /bin/echo B >&3; "
            "i=0; while [ \\$i -lt 30 ]; do echo line \\$i >&3; "
            "i=\\$((i+1)); done; /bin/echo C >&3\"'\n"
            "cat out\n",
            NULL, 0, 60);
}

Test(programs, python3_write_read)
{
    wct_require_tool("python3", "python3");
    make_inputs();
    put_file("script.py", python_script, sizeof python_script - 1);
    compare("python3", "python3 $IN/script.py; echo \"python: exit $?\"\n",
            NULL, 0, 100);
}

Test(programs, stress_ng_hdd_verify)
{
    wct_require_tool("stress-ng", "stress-ng");
    compare("stress-ng",
        "for opts in wr-seq,rd-seq wr-rnd,rd-rnd; do\n"
        "  stress-ng --hdd 2 --hdd-bytes 1m --hdd-write-size 64"
        "   --hdd-opts $opts --verify --timeout 2 --temp-path ."
        "   > s.log 2>&1\n"
        "  echo \"stress-ng $opts: exit $?\"\n"
        "  grep -c 'successful run completed' s.log\n"
        "  grep -iE 'fail|error' s.log | grep -v 'failed: 0' | head -5\n"
        "  rm -f s.log\n"
        "done\n",
        NULL, 0, 100);
}
