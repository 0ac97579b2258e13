/*
 * test_shim_fuse.c - the shim on a FUSE file system (bindfs), the kind of
 * slow file system wcache is for, where every write is a round trip to a
 * user-space server. Each case runs without and with the shim on the same
 * mount and compares transcripts and files: the differential tester
 * (CONTRACT sections 2 and 5), a logger (section 6: program order), and
 * sqlite3 (locks and fsync through FUSE). The mount is made in the test's
 * scratch directory and always unmounted (.fini).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib_shim.h"

static char *scratch;
static char mnt[4200], src[4200];
static int mounted;

static void setup(void)
{
    scratch = wct_scratch("fuse");
    snprintf(src, sizeof src, "%s/src", scratch);
    snprintf(mnt, sizeof mnt, "%s/mnt", scratch);
    cr_assert_eq(mkdir(src, 0755), 0);
    cr_assert_eq(mkdir(mnt, 0755), 0);
}

static void teardown(void)
{
    if (mounted) {
        const char *argv[] = {"fusermount3", "-u", mnt, NULL};
        struct wct_spec s = {.argv = argv, .timeout_s = 20};
        struct wct_result r;
        if (wct_run(&s, &r) != 0 || !wct_ok(&r))
            umount2(mnt, MNT_DETACH);
        wct_result_free(&r);
        mounted = 0;
    }
    wct_rmtree(scratch);
    free(scratch);
}

/* Mount src on mnt with bindfs (skip, with the reason, where FUSE is not
 * available outside CI; in CI it must work). */
static void mount_bindfs(void)
{
    wct_require_tool("bindfs", "bindfs");
    wct_require_tool("fusermount3", "fuse3");
    const char *argv[] = {"bindfs", src, mnt, NULL};
    struct wct_spec s = {.argv = argv, .timeout_s = 20};
    struct wct_result r;
    cr_assert_eq(wct_run(&s, &r), 0);
    int ok = wct_ok(&r);
    if (!ok) {
        const char *ci = getenv("CI");
        cr_assert(!(ci && !strcmp(ci, "true")), "bindfs failed: %s", r.err);
        wct_result_free(&r);
        cr_skip_test("FUSE not available here: bindfs said: %s", r.err);
    }
    wct_result_free(&r);
    mounted = 1;
}

/* Run argv (whose FILE arguments point into mnt) without and with the
 * shim; return both outputs and the two files' contents. */
static void twice(const char *const *argv0, const char *const *argv1,
                  const char *f0, const char *f1)
{
    struct wct_result r[2];
    const char *const *argv[2] = {argv0, argv1};
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv[shim], .shim = shim,
                             .timeout_s = 120};
        cr_assert_eq(wct_run(&s, &r[shim]), 0);
        cr_assert(wct_ok(&r[shim]), "shim=%d: %s\n%s", shim,
                  wct_status_str(&r[shim]), r[shim].err);
    }
    size_t n0, n1;
    char *a = wct_slurp(f0, &n0), *b = wct_slurp(f1, &n1);
    cr_assert(a && b);
    cr_assert_eq(n1, n0, "sizes %zu (shim) vs %zu", n1, n0);
    cr_assert_eq(memcmp(a, b, n0), 0, "contents differ");
    free(a);
    free(b);
    wct_result_free(&r[0]);
    wct_result_free(&r[1]);
}

Test(fuse, logger, .init = setup, .fini = teardown, .timeout = 180)
{
    wct_require_shim();
    mount_bindfs();
    char f0[4300], f1[4300], n[] = "20000";
    snprintf(f0, sizeof f0, "%s/plain.log", mnt);
    snprintf(f1, sizeof f1, "%s/shim.log", mnt);
    const char *a0[] = {WCT_BUILD_DIR "/examples/logger", f0, n, NULL};
    const char *a1[] = {WCT_BUILD_DIR "/examples/logger", f1, n, NULL};
    twice(a0, a1, f0, f1);
}

Test(fuse, differential, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_difftest"));
    mount_bindfs();
    for (unsigned seed = 1; seed <= 8; seed++) {
        char d[2][4300], s[16];
        char *out[2];
        snprintf(s, sizeof s, "%u", seed);
        for (int shim = 0; shim < 2; shim++) {
            snprintf(d[shim], sizeof d[shim], "%s/d%u-%d", mnt, seed, shim);
            cr_assert_eq(mkdir(d[shim], 0755), 0);
            const char *argv[] = {WCT_PROG("prog_difftest"), d[shim], s,
                                  "400", NULL};
            /* F_SETFL cannot reach a FUSE server's handle: leave it out
             * (prog_difftest.c, op_setfl). */
            const char *env[] = {"WCT_DIFF_NO_SETFL=1", NULL};
            struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                                    .timeout_s = 120};
            struct wct_result r;
            cr_assert_eq(wct_run(&spec, &r), 0);
            cr_assert(!r.timed_out, "seed %u shim=%d hung", seed, shim);
            char *tree = wct_tree_listing(d[shim], 0);
            cr_assert(asprintf(&out[shim], "%s--- %s\n%s", r.out,
                               wct_status_str(&r), tree) > 0);
            free(tree);
            wct_result_free(&r);
        }
        char *diff = wct_first_diff(out[0], out[1]);
        cr_assert_str_eq(diff, "", "seed %u on FUSE differs:\n%s", seed,
                         diff);
        free(diff);
        free(out[0]);
        free(out[1]);
    }
}

Test(fuse, sqlite3, .init = setup, .fini = teardown, .timeout = 180)
{
    wct_require_shim();
    wct_require_tool("sqlite3", "sqlite3");
    mount_bindfs();
    const char *sql = "create table t(a, b); with recursive c(x) as (select 1 "
                      "union all select x + 1 from c where x < 5000) insert "
                      "into t select x, hex(randomblob(8)) from c; "
                      "pragma integrity_check; select count(*), sum(a) from t;";
    char f0[4300], f1[4300];
    snprintf(f0, sizeof f0, "%s/plain.db", mnt);
    snprintf(f1, sizeof f1, "%s/shim.db", mnt);
    const char *a0[] = {"sqlite3", f0, sql, NULL};
    const char *a1[] = {"sqlite3", f1, sql, NULL};
    struct wct_result r[2];
    const char *const *argv[2] = {a0, a1};
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv[shim], .shim = shim,
                             .timeout_s = 120};
        cr_assert_eq(wct_run(&s, &r[shim]), 0);
        cr_assert(wct_ok(&r[shim]), "shim=%d: %s", shim, r[shim].err);
    }
    cr_assert(strstr(r[1].out, "ok\n5000|12502500"), "under the shim: %s",
              r[1].out);
    cr_assert_str_eq(r[1].out, r[0].out);
    wct_result_free(&r[0]);
    wct_result_free(&r[1]);
}

/* The number after `key` in a WCACHE_STATS report (-1: no such key). */
static long stat_after(const char *text, const char *key)
{
    const char *at = strstr(text, key);
    return at ? atol(at + strlen(key)) : -1;
}

/* path's bytes (malloc'd, *len) and its count of lines, in *lines. */
static char *file_lines(const char *path, size_t *len, size_t *lines)
{
    char *data = wct_slurp(path, len);
    cr_assert(data, "cannot read %s", path);
    *lines = 0;
    for (size_t i = 0; i < *len; i++)
        *lines += data[i] == '\n';
    return data;
}

/* Run spec s; it must succeed. */
static void run_ok(const struct wct_spec *s)
{
    struct wct_result r;
    cr_assert_eq(wct_run(s, &r), 0);
    cr_assert(wct_ok(&r), "%s\n%s", wct_status_str(&r), r.err);
    wct_result_free(&r);
}

/* Run argv under the shim, the process's cache made at once and a file
 * cached after the default count of first writes (the tests' is 0); it
 * must succeed. Its WCACHE_STATS report (malloc'd), alone. */
static char *run_stats(const char *const *argv)
{
    char stats[4300], senv[4400];
    snprintf(stats, sizeof stats, "%s/stats", scratch);
    snprintf(senv, sizeof senv, "WCACHE_STATS=%s", stats);
    const char *env[] = {senv, "WCACHE_SETUP_US=0", "WCACHE_MIN_WRITES=8",
                         NULL};
    struct wct_spec s = {.argv = argv, .env = env, .shim = 1,
                         .timeout_s = 60};
    run_ok(&s);
    size_t len;
    char *text = wct_slurp(stats, &len);
    cr_assert(text, "no statistics at %s", stats);
    unlink(stats);              /* a report is appended to: the next run's */
    return text;
}

/* The writes of the logger (200 lines) to `path` that passed through
 * before its file was cached, from its WCACHE_STATS report; the file is
 * checked whole. */
static long first_writes(const char *path)
{
    char n[] = "200";
    /* The file's own count alone. */
    const char *argv[] = {WCT_BUILD_DIR "/examples/logger", path, n, NULL};
    char *text = run_stats(argv);
    long few = stat_after(text, "a file's first writes (WCACHE_MIN_WRITES) ");
    if (few < 0)
        few = 0;
    free(text);
    size_t len, lines;
    char *data = file_lines(path, &len, &lines);
    cr_assert_eq(lines, 200, "%s holds %zu lines", path, lines);
    cr_assert(strstr(data, "request 199 handled"), "the last line lacks");
    free(data);
    return few;
}

/* fdtab.c invariant (6): a file's first writes pass through the kernel
 * (8 of them) where a write costs little; where each is a round trip to
 * a server (bindfs), two slow ones in a row bring the file into the
 * cache at once. */
Test(fuse, slow_writes_cache_a_file_early, .init = setup, .fini = teardown,
     .timeout = 120)
{
    wct_require_shim();
    mount_bindfs();
    char local[4300], remote[4300];
    snprintf(local, sizeof local, "%s/local.log", src);
    snprintf(remote, sizeof remote, "%s/remote.log", mnt);
    long few = first_writes(local);
    cr_assert_eq(few, 8, "on the backing file system: %ld", few);
    few = first_writes(remote);
    cr_assert_eq(few, 2, "on bindfs: %ld", few);
}

/* Where a file's first write is slow, the shim asks whether its file
 * system is a server's (fstatfs: a round trip itself on FUSE) once per
 * device, not once per file (shim/fdtab.c wc_fs_remote): tar, git and
 * sqlite3's journal make a new file at every step, and each paid an
 * fstatfs for its first write (2,000 in the bench's sqlite3 row). The
 * shell makes 40 files on bindfs, one write each, traced from outside. */
Test(fuse, file_system_type_asked_once_per_device, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_tool("strace", "strace");
    mount_bindfs();
    char out[4300], script[4600];
    snprintf(out, sizeof out, "%s/trace", scratch);
    snprintf(script, sizeof script,
             "cd %s && i=0; while [ $i -lt 40 ]; do echo line $i > f$i;"
             " i=$((i + 1)); done", mnt);
    const char *argv[] = {"strace", "-f", "-qq", "-e", "trace=fstatfs",
                          "-o", out, "env", "LD_PRELOAD=" WCT_SHIM_SO,
                          "sh", "-c", script, NULL};
    struct wct_spec s = {.argv = argv, .timeout_s = 60};
    run_ok(&s);
    size_t len;
    char *text = wct_slurp(out, &len);
    cr_assert(text);
    int on_mnt = 0;
    for (char *p = text; (p = strstr(p, "fstatfs(")); p++)
        on_mnt += strstr(p, "f_type=FUSE") && strchr(p, '\n') &&
                  strstr(p, "f_type=FUSE") < strchr(p, '\n');
    free(text);
    /* At least one: the question was asked (the writes were slow). */
    cr_assert(on_mnt >= 1 && on_mnt <= 2,
              "fstatfs on bindfs %d times for 40 new files", on_mnt);
    char f[4400];
    snprintf(f, sizeof f, "%s/f39", src);
    char *last = wct_slurp(f, &len);
    cr_assert(last && !strcmp(last, "line 39\n"), "f39 holds %s", last);
    free(last);
}

/* A stream to a server's file system (its first writes were round trips:
 * bindfs) is written back from its first 128 KiB, in batches of 32 pages
 * handed to the flusher (cache/async.c (6), wc_file_remote), while the
 * program goes on (the writer writes one back itself only when the
 * flusher has not started it: which one does is the machine's timing,
 * not asserted): perl's 12,000 autoflushed lines (about 265 KB, fewer
 * pages than a local stream's batch of 126) went back in one call at the
 * close, before; now one batch or two before it. */
Test(fuse, a_remote_stream_is_written_back_early,
     .init = setup, .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_tool("perl", "perl");
    mount_bindfs();
    char path[4300];
    snprintf(path, sizeof path, "%s/perl.out", mnt);
    const char *argv[] = {"perl", "-e",
                          "open(my $f, '>', shift) or die; $f->autoflush(1);"
                          " print $f \"line $_ of the file\\n\" for 1 .. 12000",
                          path, NULL};
    char *text = run_stats(argv);
    const char *at = strstr(text, "flushes: close ");
    long batches = at ? stat_after(at, " pressure ") : -1;
    /* The first at 32 pages; the second at 64 only where the first was
     * done by then (else it waits, and goes with the close's). */
    cr_assert_geq(batches, 1, "%ld stream batches before the close:\n%s",
                  batches, text);
    free(text);
    size_t len, lines;
    char *data = file_lines(path, &len, &lines);
    cr_assert_eq(lines, 12000, "%s holds %zu lines", path, lines);
    const char *last = "line 12000 of the file\n";
    size_t ll = strlen(last);
    cr_assert(len >= ll && !memcmp(data + len - ll, last, ll),
              "the last line lacks");
    free(data);
}
