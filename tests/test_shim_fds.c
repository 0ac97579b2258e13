/*
 * test_shim_fds.c - the shim's own descriptors and the fd table's objects
 * (issue 6, points 5 and 6).
 *
 *   fds/       tests/prog_fdlimit.c with and without the shim: how many
 *              descriptors a program can open under a low RLIMIT_NOFILE,
 *              dup2/dup3/F_DUPFD onto high numbers (512, limit - 1, the
 *              limit), the closefrom repro, a raised limit; transcripts
 *              and files must be the kernel's (with the hard limit equal
 *              to the soft one, at most one descriptor fewer).
 *   fdstress/  tests/prog_fdstress.c: threads racing open, dup, dup2,
 *              dup3, F_DUPFD, close, write and pwrite on shared numbers;
 *              every byte of every file checked, with and without the
 *              shim.
 *   tsan/      the thread programs (prog_threads, prog_sigstorm,
 *              prog_fdstress) built with ThreadSanitizer against
 *              build/tsan/libwcache.so: no report (tests/tsan.supp lists
 *              what is suppressed and why), and the same checks; and
 *              prog_tsanrace's one deliberate report, symbolized without
 *              the running shim (shim/tsan.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

#define REC 64

static char *scratch;

static void setup(void)
{
    scratch = wct_scratch("fds");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(fds, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(fdstress, .init = setup, .fini = teardown, .timeout = 180);
TestSuite(tsan, .init = setup, .fini = teardown, .timeout = 300);

/* A fresh, empty sub-directory of the scratch directory. */
static char *subdir(const char *name)
{
    char *p;
    cr_assert(asprintf(&p, "%s/%s", scratch, name) > 0);
    wct_rmtree(p);
    cr_assert(mkdir(p, 0700) == 0, "mkdir %s", p);
    return p;
}

/* Run prog_fdlimit ARGS... in a fresh directory with and without the
 * shim; return both transcripts and tree listings (malloc'd). */
struct pair {
    char *out[2];
    char *tree[2];
};

static void run_pair(struct pair *p, const char *mode, const char *limit,
                     const char *hard)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fdlimit"));
    for (int shim = 0; shim < 2; shim++) {
        char *dir = subdir(shim ? "shim" : "kernel");
        const char *argv[] = {WCT_PROG("prog_fdlimit"), mode, dir, limit,
                              hard, NULL};
        struct wct_spec spec = {.argv = argv, .shim = shim};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_assert(wct_ok(&res), "%s %s (shim %d): %s\n%s", mode,
                  limit ? limit : "", shim, wct_status_str(&res), res.err);
        p->out[shim] = strdup(res.out);
        p->tree[shim] = wct_tree_listing(dir, 0);
        wct_result_free(&res);
        free(dir);
    }
}

static void free_pair(struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        free(p->out[i]);
        free(p->tree[i]);
    }
}

static void same(const char *mode, const char *limit, const char *hard)
{
    struct pair p;
    run_pair(&p, mode, limit, hard);
    char *d = wct_first_diff(p.out[0], p.out[1]);
    cr_expect(!*d, "%s %s: transcript differs from the kernel's:\n%s", mode,
              limit ? limit : "", d);
    free(d);
    d = wct_first_diff(p.tree[0], p.tree[1]);
    cr_expect(!*d, "%s %s: files differ from the kernel's:\n%s", mode,
              limit ? limit : "", d);
    free(d);
    free_pair(&p);
}

/* A limit of 16 or 1024 with a higher hard limit: the shim's
 * descriptors go above the soft limit, the program opens exactly as many
 * files as without the shim, and gets the same numbers. */
Test(fds, count_limit_16) { same("count", "16", NULL); }
Test(fds, count_limit_1024) { same("count", "1024", NULL); }

/* dup2, dup3 and F_DUPFD onto 512, limit - 1, limit - 2, the limit, half
 * of it; close of every number the program does not hold: EBADF. */
Test(fds, dup_onto_high_numbers_limit_1024) { same("high", "1024", NULL); }
Test(fds, dup_onto_high_numbers_limit_64) { same("high", "64", NULL); }

/* The repro: a file opened twice, written through both, the first
 * closed, closefrom() above the second, another file opened. */
Test(fds, closefrom_after_closing_one_of_two) { same("closefrom", NULL, NULL); }

/* Files cached under a limit of 64, then the limit raised to 256: every
 * number from 64 up is the program's (dup2 onto each), and it opens as
 * many more files as without the shim. */
Test(fds, raised_limit) { same("raise", NULL, NULL); }

/* Soft limit == hard limit: when the process may not raise its limit
 * (no CAP_SYS_RESOURCE), the shim's descriptors take the top numbers and
 * give them back as the program needs them (a cached file leaves the
 * cache): at most one fewer descriptor (the backing store), every dup2
 * onto a high number as the kernel does. */
static int opened_count(const char *out)
{
    const char *p = strstr(out, "opened ");
    return p ? atoi(p + 7) : -1;
}

static void count_hard(const char *limit)
{
    struct pair p;
    run_pair(&p, "count", limit, "hard");
    int k = opened_count(p.out[0]), s = opened_count(p.out[1]);
    cr_assert(k > 0, "kernel transcript:\n%s", p.out[0]);
    cr_expect(s == k || s == k - 1,
              "limit %s (hard): the kernel opens %d files, the shim %d",
              limit, k, s);
    cr_expect(strstr(p.out[1], "close failures 0"), "%s", p.out[1]);
    cr_expect(!strstr(p.out[1], "on success"), "%s", p.out[1]);
    free_pair(&p);
}

/* A soft limit above 1024 (1,048,576 in many containers): the shim's
 * descriptors take numbers from 1024 up, not at the limit, where the
 * kernel's table would grow to the limit's size and every fork copy it
 * (shim/ownfd.c (1b)); they are given back as under an equal hard limit
 * (at most one descriptor fewer), every dup2 onto them as the kernel
 * does, and a child's table stays small. Needs a hard limit of 4096. */
static void need_hard_4096(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 4096)
        cr_skip_test("hard RLIMIT_NOFILE %llu: below 4096",
                     (unsigned long long)rl.rlim_max);
}

Test(fds, count_limit_4096)
{
    need_hard_4096();
    struct pair p;
    run_pair(&p, "count", "4096", NULL);
    int k = opened_count(p.out[0]), s = opened_count(p.out[1]);
    cr_assert(k > 0, "kernel transcript:\n%s", p.out[0]);
    cr_expect(s == k || s == k - 1,
              "limit 4096: the kernel opens %d files, the shim %d", k, s);
    cr_expect(strstr(p.out[1], "close failures 0"), "%s", p.out[1]);
    cr_expect(!strstr(p.out[1], "on success"), "%s", p.out[1]);
    free_pair(&p);
}
Test(fds, dup_onto_high_numbers_limit_4096)
{
    need_hard_4096();
    same("high", "4096", NULL);
}
static int count_after(const char *out, const char *label)
{
    const char *p = strstr(out, label);
    return p ? atoi(p + strlen(label)) : -1;
}

/* Sockets and pipes, which the shim wraps only for this: at EMFILE a
 * cached file gives its number back (probe AF F1: 6 sockets fewer with 5
 * files cached). */
Test(fds, sockets_and_pipes_limit_1100)
{
    need_hard_4096();
    struct pair p;
    run_pair(&p, "sockets", "1100", NULL);
    for (int i = 0; i < 2; i++) {
        const char *what = i ? "pipes " : "sockets ";
        int k = count_after(p.out[0], what), s = count_after(p.out[1], what);
        cr_assert(k > 0, "kernel transcript:\n%s", p.out[0]);
        cr_expect(s == k || s == k - 1, "limit 1100: the kernel makes %d %s"
                  "the shim %d", k, what, s);
    }
    free_pair(&p);
}

/* dup2 onto 1024-1031 with a lock held on a cached file: the lock stays
 * (probe AF F2: the shim's write-back descriptor was there, moved, and
 * its close dropped the lock; now they sit from 2047 down). */
Test(fds, lock_kept_across_dup2_onto_1024_limit_4096)
{
    need_hard_4096();
    same("lockdup", "4096", NULL);
}

Test(fds, fork_copies_a_small_table_limit_4096)
{
    need_hard_4096();
    same("forktable", "4096", NULL);
}

/* A fork child holds none of its parent's engine descriptors: one
 * descriptor of each cached file (the program's), none of the store. */
Test(fds, a_fork_child_holds_no_descriptor_of_the_cache) { same("forkfds", NULL, NULL); }

Test(fds, count_hard_limit_16) { count_hard("16"); }
Test(fds, count_hard_limit_1024) { count_hard("1024"); }
Test(fds, dup_onto_high_numbers_hard_limit_64) { same("high", "64", "hard"); }

/* The shim's descriptors, above the limit or (hard limit) below it, are
 * reached by no call that takes a descriptor: fstat, read, write,
 * ftruncate, mmap... of a number the program never opened give EBADF, as
 * without the shim (probe M: ftruncate of one emptied the program's file
 * and the backing store). */
Test(fds, own_descriptors_unreachable_limit_64) { same("reach", "64", NULL); }
Test(fds, own_descriptors_unreachable_hard_limit_64)
{
    same("reach", "64", "hard");
}

/* ---- the stress test -------------------------------------------------- */

/* Check prog_fdstress's files in `dir` against its transcript `out`.
 * Returns "ok" or what is wrong (static buffer). */
static const char *check_stress(const char *dir, const char *out,
                                int threads, int ops)
{
    static char msg[512];
    size_t len[4];
    char *s[4];
    for (int i = 0; i < 4; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/s%d", dir, i);
        s[i] = wct_slurp(p, &len[i]);
        if (!s[i])
            return "a shared file is missing";
    }
    const char *res = "ok";
    char want[REC + 1];
    /* Every 64-byte slot: zeros or the record that belongs there. */
    for (int i = 0; i < 4 && res == (const char *)"ok"; i++) {
        if (len[i] % REC) {
            snprintf(msg, sizeof msg, "s%d: size %zu", i, len[i]);
            res = msg;
        }
        static const char zero[REC];
        for (size_t off = 0; off + REC <= len[i]; off += REC) {
            if (!memcmp(s[i] + off, zero, REC))
                continue;
            size_t slot = off / REC;
            int t = (int)(slot / (size_t)ops), q = (int)(slot % (size_t)ops);
            int n = snprintf(want, sizeof want, "T%02d S%07d ", t, q);
            for (int j = n; j < REC - 1; j++)
                want[j] = (char)('a' + (t * 7 + q + j) % 26);
            want[REC - 1] = '\n';
            if (t >= threads || memcmp(s[i] + off, want, REC)) {
                snprintf(msg, sizeof msg, "s%d: wrong bytes at %zu: %.20s",
                         i, off, s[i] + off);
                res = msg;
                break;
            }
        }
    }
    /* Every pwrite that returned 64 is in some shared file. */
    const char *l = out;
    int checked = 0;
    while (res == (const char *)"ok" && (l = strstr(l, "\nok ")) != NULL) {
        int t, q;
        l++;
        if (sscanf(l, "ok %d %d", &t, &q) != 2)
            break;
        off_t off = ((off_t)t * ops + q) * REC;
        int found = 0;
        for (int i = 0; i < 4 && !found; i++)
            found = (size_t)off + REC <= len[i] && s[i][off] == 'T';
        if (!found) {
            snprintf(msg, sizeof msg, "record T%d S%d (returned 64) is in "
                     "no file", t, q);
            res = msg;
        }
        checked++;
    }
    if (res == (const char *)"ok" && checked == 0)
        res = "no successful pwrite in the transcript";
    /* Each private file: the thread's write() records, in order. */
    for (int t = 0; t < threads && res == (const char *)"ok"; t++) {
        char p[4096], key[32];
        size_t n;
        snprintf(p, sizeof p, "%s/p%d", dir, t);
        char *d = wct_slurp(p, &n);
        snprintf(key, sizeof key, "private %d ", t);
        const char *k = strstr(out, key);
        int want_n = k ? atoi(k + strlen(key)) : -1;
        if (!d || n != (size_t)want_n * REC) {
            snprintf(msg, sizeof msg, "p%d: %zu bytes, %d records written",
                     t, d ? n : 0, want_n);
            res = msg;
        }
        int last = -1;
        for (size_t off = 0; d && off + REC <= n && res == (const char *)"ok";
             off += REC) {
            int tt, q;
            if (sscanf(d + off, "T%d S%d", &tt, &q) != 2 || tt != t ||
                q <= last) {
                snprintf(msg, sizeof msg, "p%d: bad record at %zu", t, off);
                res = msg;
                break;
            }
            int m = snprintf(want, sizeof want, "T%02d S%07d ", t, q);
            for (int j = m; j < REC - 1; j++)
                want[j] = (char)('a' + (t * 7 + q + j) % 26);
            want[REC - 1] = '\n';
            if (memcmp(d + off, want, REC)) {
                snprintf(msg, sizeof msg, "p%d: torn record at %zu", t, off);
                res = msg;
            }
            last = q;
        }
        free(d);
    }
    for (int i = 0; i < 4; i++)
        free(s[i]);
    return res;
}

static void stress(const char *prog, const char *so, int shim_runs,
                   int threads, int ops, const char *const *env)
{
    wct_require_shim();
    wct_require_prog(prog);
    char nt[16], no[16];
    snprintf(nt, sizeof nt, "%d", threads);
    snprintf(no, sizeof no, "%d", ops);
    for (int shim = 2 - shim_runs; shim < 2; shim++) {
        char *dir = subdir(shim ? "shim" : "kernel");
        const char *argv[] = {prog, dir, nt, no, NULL};
        char pre[4200];
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", so);
        const char *envs[8] = {NULL};
        int ne = 0;
        if (shim && so)
            envs[ne++] = pre;
        for (int i = 0; env && env[i] && ne < 7; i++)
            envs[ne++] = env[i];
        struct wct_spec spec = {.argv = argv, .env = envs,
                                .shim = shim && !so, .timeout_s = 150};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_assert(wct_ok(&res), "%s (shim %d): %s\n%.2000s", prog, shim,
                  wct_status_str(&res), res.err);
        cr_expect(!strstr(res.err, "ThreadSanitizer"), "%.4000s", res.err);
        cr_expect(strstr(res.out, "close failures 0"), "%.200s", res.out);
        const char *r = check_stress(dir, res.out, threads, ops);
        cr_expect(!strcmp(r, "ok"), "%s (shim %d): %s", prog, shim, r);
        wct_result_free(&res);
        free(dir);
    }
}

/* Four threads, 20000 operations each, on eight shared numbers. */
Test(fdstress, shared_numbers)
{
    stress(WCT_PROG("prog_fdstress"), NULL, 2, 4, 20000, NULL);
}

/* The same with a cache small enough that write-back runs all the time. */
Test(fdstress, shared_numbers_small_cache)
{
    const char *env[] = {"WCACHE_SIZE=1M", "WCACHE_FLUSH_MS=5", NULL};
    stress(WCT_PROG("prog_fdstress"), NULL, 1, 4, 20000, env);
}

/* ---- ThreadSanitizer -------------------------------------------------- */

#define TSAN_SO WCT_BUILD_DIR "/tsan/libwcache.so"
#define TSAN_PROG(name) WCT_BUILD_DIR "/tsan/" name
#define TSAN_ENV "TSAN_OPTIONS=halt_on_error=0 exitcode=66 " \
                 "suppressions=" WCT_SRC_DIR "/tests/tsan.supp"

/* The sanitizer build has no crash guard (no wcache binary beside it),
 * and a run that ends through TSan's exit code may leave its backing file:
 * it goes with the scratch directory, not into /dev/shm. */
static const char *tsan_dir(void)
{
    static char buf[4300];
    snprintf(buf, sizeof buf, "WCACHE_DIR=%s", scratch);
    return buf;
}

static void require_tsan(void)
{
    struct stat st;
    cr_assert(stat(TSAN_SO, &st) == 0, "%s missing: run make test", TSAN_SO);
}

/* prog_fdstress under the sanitizer: four threads x 4000 operations. Its
 * races on descriptor numbers are reported (and suppressed) all through
 * the run. Without shim/tsan.c it hung in about one run in three: the
 * first report's symbolizer opened its files through the shim, inside the
 * report (the next test checks that cause on every run). */
Test(tsan, fdstress)
{
    require_tsan();
    const char *env[] = {TSAN_ENV, tsan_dir(), NULL};
    stress(TSAN_PROG("prog_fdstress"), TSAN_SO, 1, 4, 4000, env);
}

/* The sanitizer symbolizes every report (suppressed ones too), and reads
 * its files (the program's, each library's) the first time, from inside
 * the report, with open, mmap and close: the shim's. shim/tsan.c has it
 * read them at start-up, before the shim is on: the running shim, which
 * logs every open it sees (WCACHE_LOG=debug), must see none of them when
 * prog_tsanrace's main thread makes the process's first report. */
Test(tsan, symbolizer_reads_before_shim_starts)
{
    require_tsan();
    wct_require_prog(TSAN_PROG("prog_tsanrace"));
    char *dir = subdir("symbolizer");
    char path[4200];
    snprintf(path, sizeof path, "%s/f", dir);
    const char *argv[] = {TSAN_PROG("prog_tsanrace"), path, NULL};
    const char *env[] = {"LD_PRELOAD=" TSAN_SO, TSAN_ENV, tsan_dir(),
                         "WCACHE_LOG=debug",
                         NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .timeout_s = 60};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_expect(!res.timed_out && WIFEXITED(res.status) &&
              WEXITSTATUS(res.status) == 66,
              "want exit 66 (one report): %s\n%.2000s",
              wct_status_str(&res), res.err);
    cr_expect(strstr(res.err, "WARNING: ThreadSanitizer: data race") &&
              strstr(res.err, "racy_store"),
              "no symbolized report\n%.2000s", res.err);
    const char *line = strstr(res.err, "/proc/self/exe");
    while (line && line > res.err && line[-1] != '\n')
        line--;
    cr_expect(!line, "the symbolizer opened its files through the running "
              "shim: %.200s", line ? line : "");
    size_t n;
    char *f = wct_slurp(path, &n);
    cr_expect(f && n == 5 && !memcmp(f, "done\n", 5), "file: %s", f ? f : "(none)");
    free(f);
    wct_result_free(&res);
    free(dir);
}

/* prog_threads MODE DIR THREADS RECORDS under the sanitizer: exit 0, no
 * report, "errors 0" (its own checks). */
static void tsan_threads_recs(const char *mode, const char *extra,
                              const char *recs)
{
    require_tsan();
    wct_require_prog(TSAN_PROG("prog_threads"));
    char *dir = subdir(extra ? "adopt" : mode);
    const char *argv[] = {TSAN_PROG("prog_threads"), mode, dir, "4", recs,
                          NULL};
    const char *env[] = {"LD_PRELOAD=" TSAN_SO, TSAN_ENV, tsan_dir(), extra,
                         NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .timeout_s = 150};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_expect(wct_ok(&res), "%s: %s\n%.4000s", mode, wct_status_str(&res),
              res.err);
    cr_expect(!strstr(res.err, "ThreadSanitizer"), "%.4000s", res.err);
    cr_expect(strstr(res.out, "errors 0"), "%s: %.300s", mode, res.out);
    wct_result_free(&res);
    free(dir);
}

static void tsan_threads_env(const char *mode, const char *extra)
{
    tsan_threads_recs(mode, extra, "2000");
}

static void tsan_threads(const char *mode)
{
    tsan_threads_env(mode, NULL);
}

Test(tsan, threads_append) { tsan_threads("append"); }
Test(tsan, threads_made_after_writes) { tsan_threads("late"); }
/* The default WCACHE_MIN_WRITES: four threads write through one
 * description while it turns from WATCH to CACHED under them. */
Test(tsan, threads_dup_while_adopted)
{
    tsan_threads_env("dup", "WCACHE_MIN_WRITES=");
}
/* Four threads open the file and append while it comes into the cache
 * under them (the default WCACHE_MIN_WRITES): fdtab.c attach_watchers. */
Test(tsan, threads_open_while_adopted)
{
    tsan_threads_env("adoptrace", "WCACHE_MIN_WRITES=");
}
Test(tsan, threads_shared_offset) { tsan_threads("shared"); }
Test(tsan, threads_dup) { tsan_threads("dup"); }
Test(tsan, threads_stdout_guard_and_fences) { tsan_threads("stdout"); }
Test(tsan, threads_cell_reserves_and_settles) { tsan_threads("cell"); }
Test(tsan, threads_pwrite) { tsan_threads("pwrite"); }
Test(tsan, threads_separate_files) { tsan_threads("separate"); }
Test(tsan, threads_caching_stops) { tsan_threads("uring"); }
/* Every stream's write-back to the flusher thread (cache/async.c), files
 * long enough for batches (20000 records of 64 bytes a thread): posts,
 * the flusher's writes, settles and reaps under the sanitizer. */
Test(tsan, threads_background_write_back)
{
    tsan_threads_recs("separate", "WCACHE_BACKGROUND_NS=0", "20000");
    tsan_threads_recs("pwrite", "WCACHE_BACKGROUND_NS=0", "20000");
    tsan_threads_recs("late", "WCACHE_BACKGROUND_NS=0", "20000");
}

/* prog_sigstorm PATH MODE SECONDS MAXRECORDS under the sanitizer (which
 * delivers signals at its own points: the handler still writes while the
 * main loop is inside the shim's calls). */
static void tsan_storm_env(const char *mode, const char *extra)
{
    require_tsan();
    wct_require_prog(TSAN_PROG("prog_sigstorm"));
    char *dir = subdir(extra ? "storm-default" : mode);
    char path[4200];
    snprintf(path, sizeof path, "%s/f", dir);
    const char *argv[] = {TSAN_PROG("prog_sigstorm"), path, mode, "1",
                          "100000", NULL};
    const char *env[] = {"LD_PRELOAD=" TSAN_SO, TSAN_ENV, tsan_dir(), extra,
                         NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .timeout_s = 150};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_expect(wct_ok(&res), "%s: %s\n%.4000s", mode, wct_status_str(&res),
              res.err);
    cr_expect(!strstr(res.err, "ThreadSanitizer"), "%.4000s", res.err);
    cr_expect(strstr(res.out, "errors 0"), "%s: %.300s", mode, res.out);
    wct_result_free(&res);
    free(dir);
}

static void tsan_storm(const char *mode)
{
    tsan_storm_env(mode, NULL);
}

Test(tsan, sigstorm_plain) { tsan_storm("plain"); }
/* The default WCACHE_MIN_WRITES: the write that makes the cache may be the
 * handler's, which must not start the flusher thread (flusher.c (2)). */
Test(tsan, sigstorm_cache_made_in_a_handler)
{
    tsan_storm_env("plain", "WCACHE_MIN_WRITES=");
}
Test(tsan, sigstorm_dup) { tsan_storm("dup"); }
Test(tsan, sigstorm_background_write_back)
{
    tsan_storm_env("plain", "WCACHE_BACKGROUND_NS=0");
}

/* shim/ownfd.c invariant (7): a number nobody holds stays free while the
 * engine makes a short-lived descriptor of its own (here the reopen of a
 * cached file whose write-back descriptor shared the description its
 * program closes): another thread's close of it fails with EBADF, its
 * dup2 onto it gives it, a byte written there reaches the pipe dup'ed,
 * and every file keeps its lines. Before the windows: 21,799 of 209,865
 * uses of number 3 went wrong in 2 s, and files lost their lines to the
 * pipe. The kernel's run says the program itself is sound. */
Test(fds, a_free_number_stays_free_while_the_engine_reopens)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_freenumber"));
    for (int shim = 0; shim <= 1; shim++) {
        char *dir = subdir(shim ? "free-shim" : "free-kernel");
        const char *argv[] = {WCT_PROG("prog_freenumber"), dir, "2", NULL};
        struct wct_spec spec = {.argv = argv, .shim = shim,
                                .timeout_s = 60};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_assert(wct_ok(&res), "%s\n%s", wct_status_str(&res), res.err);
        long rounds = 0, uses = 0, wrong = -1, lost = -1;
        cr_assert(sscanf(res.out, "rounds %ld uses %ld wrong %ld lost %ld",
                         &rounds, &uses, &wrong, &lost) == 4,
                  "%s", res.out);
        cr_assert(rounds > 2 && uses > 1000, "%s: %s",
                  shim ? "shim" : "kernel", res.out);
        cr_assert(wrong == 0 && lost == 0, "%s: %s",
                  shim ? "shim" : "kernel", res.out);
        wct_result_free(&res);
        wct_rmtree(dir);
        free(dir);
    }
}

/* The same under the sanitizer build: the engine's reopens, their
 * windows and the other thread's calls on descriptor 3, with no report
 * (the windows' own code is not instrumented: TSAN_PLAIN in the
 * Makefile; the engine's around them is). */
Test(tsan, a_free_number_stays_free)
{
    require_tsan();
    wct_require_prog(TSAN_PROG("prog_freenumber"));
    char *dir = subdir("free-tsan");
    const char *argv[] = {TSAN_PROG("prog_freenumber"), dir, "1", NULL};
    const char *env[] = {"LD_PRELOAD=" TSAN_SO, TSAN_ENV, tsan_dir(),
                         "WCACHE_MIN_WRITES=0", NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .timeout_s = 150};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_expect(wct_ok(&res), "%s\n%.4000s", wct_status_str(&res), res.err);
    cr_expect(!strstr(res.err, "ThreadSanitizer"), "%.4000s", res.err);
    long rounds = 0, uses = 0, wrong = -1, lost = -1;
    cr_expect(sscanf(res.out, "rounds %ld uses %ld wrong %ld lost %ld",
                     &rounds, &uses, &wrong, &lost) == 4 && rounds > 0 &&
                  wrong == 0 && lost == 0,
              "%s", res.out);
    wct_result_free(&res);
    wct_rmtree(dir);
    free(dir);
}

/* shim/ownfd.c invariant (7): a close that never returns, its caller
 * killed (a vfork child, SIGKILLed in a close that lingers) or cancelled
 * (a thread, close being a cancellation point), leaves no count behind
 * that the engine's later reopens wait for: 500 of them from another
 * thread take well under a second (a count left raised: 100 ms each,
 * past the timeout; a vfork child's that counted: hung for good). Nor
 * does an accept whose thread is cancelled, or that a SIGALRM handler
 * leaves by siglongjmp: no window after it takes a call for blocked (the
 * debug log says when one does; a maker's count left raised: each window
 * waited 20 us for it, 500 lines). */
static void dead_namer(const char *mode)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_deadnamer"));
    for (int shim = 0; shim <= 1; shim++) {
        char *dir = subdir(shim ? "dead-shim" : "dead-kernel");
        char f[4300];
        snprintf(f, sizeof f, "%s/f", dir);
        const char *argv[] = {WCT_PROG("prog_deadnamer"), mode, f, NULL};
        const char *env[] = {"WCACHE_LOG=debug", NULL};
        struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                                .timeout_s = 30};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_assert(wct_ok(&res), "%s %s: %s\n%s", mode,
                  shim ? "shim" : "kernel", wct_status_str(&res), res.err);
        cr_assert_str_eq(res.out, "ok\n");
        cr_expect(!strstr(res.err, "taken for blocked"),
                  "%s: a window took a dead call for blocked:\n%.3000s",
                  mode, strstr(res.err, "taken for blocked"));
        wct_result_free(&res);
        wct_rmtree(dir);
        free(dir);
    }
}

Test(fds, a_vfork_child_killed_in_close_leaves_no_wait) { dead_namer("vfork"); }
Test(fds, a_thread_cancelled_in_close_leaves_no_wait) { dead_namer("cancel"); }
Test(fds, a_thread_cancelled_in_accept_leaves_no_wait) { dead_namer("accept"); }
Test(fds, a_jump_out_of_accept_leaves_no_wait) { dead_namer("jump"); }

/* shim/flusher.c invariant (7): the flusher's own short-lived descriptors
 * (the crash guard's lock file, /proc/self/stat, every 250 ms) are not
 * open while a program thread is inside a call that makes one: a
 * single-threaded program that closes 0 and reopens /dev/null gets 0 each
 * time, as without the shim. With the library before: 12-25 other
 * numbers in 1.5 s (probe AI F1). */
Test(fds, opens_get_the_lowest_number_while_the_flusher_looks_around)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_lowestfd"));
    char *dir = subdir("lowest");
    char f[4300];
    snprintf(f, sizeof f, "%s/f", dir);
    const char *argv[] = {WCT_PROG("prog_lowestfd"), f, "1.5", NULL};
    struct wct_spec spec = {.argv = argv, .shim = 1, .timeout_s = 60};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_assert(wct_ok(&res), "%s\n%s", wct_status_str(&res), res.err);
    long opens = 0, other = -1;
    cr_assert(sscanf(res.out, "opens %ld other %ld", &opens, &other) == 2,
              "%s", res.out);
    cr_assert(opens > 1000, "only %ld opens", opens);
    cr_assert_eq(other, 0, "%ld of %ld opens got another number than 0",
                 other, opens);
    wct_result_free(&res);
    free(dir);
}
