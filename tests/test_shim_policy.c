/*
 * test_shim_policy.c - which files the shim caches by default
 * (WCACHE_MIN_WRITES, shim/fdtab.c invariants (6) and (7)).
 *
 * A file opened by the program goes to the kernel for its first 8 writes;
 * the 9th brings it into the cache. A process whose files are all written
 * fewer times makes no cache, no backing file and no crash guard. The
 * other suites run with WCACHE_MIN_WRITES=0 (lib_shim.c), so that their
 * few writes are cached; these run with the default, and compare with the
 * kernel as the others do.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

static char *scratch;

static void setup(void)
{
    scratch = wct_scratch("policy");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(policy, .init = setup, .fini = teardown, .timeout = 120);

struct run {
    char dir[4096];
    char *listing;      /* the files left behind, with their contents */
    char *out;          /* stdout + stderr + status */
    char *stats;        /* WCACHE_STATS (shim) */
};

/* WCACHE_SETUP_US for the next runs: NULL, 0 (the cache is made at
 * once, as the harness does); "" the default. */
static const char *setup_us;

/* Run `script` under dash in a fresh directory, with the default
 * WCACHE_MIN_WRITES (or `min`), under the shim or not. $D is a directory
 * for backing files, kept apart so the script can look into it. */
static void run_script(int shim, const char *tag, const char *min,
                       const char *script, struct run *r /* OUT */)
{
    snprintf(r->dir, sizeof r->dir, "%s/%s-%d", scratch, tag, shim);
    cr_assert(mkdir(r->dir, 0755) == 0, "mkdir %s", r->dir);
    char store[4200], stats[4200], denv[4300], senv[4300], menv[64];
    snprintf(store, sizeof store, "%s.store", r->dir);
    cr_assert(mkdir(store, 0700) == 0, "mkdir %s", store);
    snprintf(stats, sizeof stats, "%s.stats", r->dir);
    snprintf(denv, sizeof denv, "WCACHE_DIR=%s", store);
    snprintf(senv, sizeof senv, "WCACHE_STATS=%s", stats);
    snprintf(menv, sizeof menv, "WCACHE_MIN_WRITES=%s", min ? min : "");
    char dvar[4300];
    snprintf(dvar, sizeof dvar, "D=%s", store);
    /* (the kernel's run writes its $D.counts too: removed with scratch) */
    char uenv[64];
    snprintf(uenv, sizeof uenv, "WCACHE_SETUP_US=%s", setup_us ? setup_us
                                                                : "0");
    const char *env[] = {denv, senv, menv, dvar, uenv, NULL};
    const char *argv[] = {"dash", "-c", script, NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                            .cwd = r->dir, .timeout_s = 60};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run dash");
    r->listing = wct_tree_listing(r->dir, 0);
    cr_assert(asprintf(&r->out, "%s--- stderr\n%s--- %s\n", res.out,
                       res.err, wct_status_str(&res)) > 0);
    wct_result_free(&res);
    size_t len;
    r->stats = wct_slurp(stats, &len);
    unlink(stats);
    wct_rmtree(store);
}

static void run_free(struct run *r)
{
    wct_rmtree(r->dir);
    free(r->listing);
    free(r->out);
    free(r->stats);
}

/* The script without and with the shim: the same files and output. The
 * shim's run is left in *s for the caller's checks. */
static void same_as_kernel(const char *tag, const char *min,
                           const char *script, struct run *s /* OUT */)
{
    wct_require_shim();
    wct_require_tool("dash", "dash");
    struct run k;
    run_script(0, tag, min, script, &k);
    run_script(1, tag, min, script, s);
    const char *what = strcmp(k.listing, s->listing) ? "files" : "output";
    char *d = strcmp(k.listing, s->listing)
                  ? wct_first_diff(k.listing, s->listing)
                  : wct_first_diff(k.out, s->out);
    cr_expect(*d == 0, "%s: the shim's %s differ from the kernel's:\n%s",
              tag, what, d);
    free(d);
    run_free(&k);
}

/* Script text: set shell variable v to the number of the shell's own
 * backing files in $D (named after its pid). */
#define STORES(v)                                                           \
    v "=$(ls \"$D\"/wcache-*/ 2>/dev/null | grep -c \"^cache\\.$$\\.\"); "

/* The shim's run of a script wrote `want` to $D.counts (its own count
 * of backing files, at `when`); the file is removed. Then its statistics
 * exist. */
static void expect_counts(const struct run *s, const char *want,
                          const char *when)
{
    char path[4300];
    snprintf(path, sizeof path, "%s.store.counts", s->dir);
    size_t len;
    char *counts = wct_slurp(path, &len);
    unlink(path);
    cr_expect(counts && !strcmp(counts, want), "backing files %s: %s "
              "(want %s)", when, counts ? counts : "(none)", want);
    free(counts);
    cr_assert(s->stats, "no statistics");
}

/* Three files written once, then one written twelve times through a
 * redirect: no backing file exists while only the first three are
 * written (the script looks for its own, named after its pid), one does
 * once the fourth file's 9th write is cached; 4 writes are absorbed,
 * 3 + 8 + 1 (the counts) pass through, counted under their reason. */
Test(policy, files_written_a_few_times_cost_no_cache)
{
    struct run s;
    same_as_kernel("few", NULL,
                   "echo 1 > a; echo 2 > b; printf 3 > c; " STORES("n1")
                   "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i; done > g; "
                   STORES("n2") "echo \"$n1 $n2\" > \"$D.counts\"", &s);
    expect_counts(&s, "0 1\n", "of the shell before and after the 9th "
                  "write to g");
    cr_expect(strstr(s.stats, "4 writes absorbed"),
              "writes absorbed:\n%s", s.stats);
    cr_expect(strstr(s.stats, "a file's first writes (WCACHE_MIN_WRITES) "
                              "12"), "reasons:\n%s", s.stats);
    run_free(&s);
}

/* The default WCACHE_SETUP_US (shim/fdtab.c invariant (6b)): a process
 * whose writes would save less than making its cache costs makes none.
 * A file written in 20 lines: no backing file, nothing absorbed, the 12
 * writes after the first 8 passed for that reason. */
Test(policy, a_small_file_makes_no_cache)
{
    struct run s;
    setup_us = "";
    same_as_kernel("small", NULL,
                   "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 "
                   "20; do echo line $i; done > f; " STORES("n")
                   "echo $n > \"$D.counts\"", &s);
    setup_us = NULL;
    expect_counts(&s, "0\n", "after a 20-line file");
    cr_expect(strstr(s.stats, " 0 writes absorbed") ||
                  !strstr(s.stats, "writes absorbed"),
              "absorbed:\n%s", s.stats);
    cr_expect(strstr(s.stats, "cheaper than making a cache (WCACHE_SETUP_US) "
                              "12"), "reasons:\n%s", s.stats);
    run_free(&s);
}

/* ... and a long stream makes it once its passed writes cost more than
 * WCACHE_SETUP_US (2 ms here: at most a few thousand writes on any file
 * system): the rest is absorbed, the same file in the end. */
Test(policy, a_stream_makes_its_cache_when_its_writes_paid_for_it)
{
    struct run s;
    setup_us = "2000";
    same_as_kernel("stream", NULL,
                   "i=0; while [ $i -lt 30000 ]; do echo $i; i=$((i + 1)); "
                   "done > f", &s);
    setup_us = NULL;
    cr_assert(s.stats, "no statistics");
    unsigned long absorbed = 0, rented = 0;
    const char *a = strstr(s.stats, " writes absorbed");
    const char *b = strstr(s.stats, "(WCACHE_SETUP_US) ");
    while (a && a > s.stats && a[-1] >= '0' && a[-1] <= '9')
        a--;
    if (a)
        absorbed = strtoul(a, NULL, 10);
    if (b)
        rented = strtoul(b + strlen("(WCACHE_SETUP_US) "), NULL, 10);
    cr_expect(rented > 0 && absorbed > 0 && absorbed + rented + 8 == 30000,
              "30000 writes: %lu passed to pay for the cache, %lu absorbed:"
              "\n%s", rented, absorbed, s.stats);
    run_free(&s);
}

/* ... and so does `prog > f` run by a shell under the shim, keeping its
 * cell: the description's offset is in a cell (shim/shared.c (6)); the
 * writes that pay for the cache go to the kernel at offsets reserved in
 * the cell (wc_cell_write_kernel), not at the kernel's offset, which
 * would end the cell and leave the description to reserve mode (an lseek
 * per write; before, such a description made its cache at once, 0.5 ms
 * in each forked child writing a line). dd's 3000 one-byte writes: some
 * passed to pay for the cache, the others absorbed, and no offset
 * reserved with lseek. */
static unsigned long stat_before(const char *stats, const char *label)
{
    const char *a = strstr(stats, label);
    while (a && a > stats && a[-1] >= '0' && a[-1] <= '9')
        a--;
    return a ? strtoul(a, NULL, 10) : 0;
}

Test(policy, a_cell_description_pays_for_its_cache_too)
{
    struct run s;
    setup_us = "";
    same_as_kernel("cell", NULL,
                   "dd if=/dev/zero bs=1 count=3000 status=none > f", &s);
    setup_us = NULL;
    cr_assert(s.stats, "no statistics");
    const char *b = strstr(s.stats, "(WCACHE_SETUP_US) ");
    unsigned long rented = b ? strtoul(b + strlen("(WCACHE_SETUP_US) "),
                                       NULL, 10) : 0;
    unsigned long absorbed = stat_before(s.stats, " writes absorbed");
    const char *r = strstr(s.stats, " offset reservations");
    cr_expect(rented > 0 && absorbed > 0 && rented + absorbed == 3000 && r &&
                  stat_before(s.stats, " offset reservations") == 0 &&
                  r[-1] == '0' && r[-2] == ' ',
              "dd's writes to its inherited > f:\n%s", s.stats);
    run_free(&s);
}

/* WCACHE_MIN_WRITES=2: a file written twice stays in the kernel's hands,
 * its third write is cached; =0 caches from the open. */
Test(policy, the_threshold_is_the_variable)
{
    struct run s;
    same_as_kernel("two", "2", "printf a > a; printf b >> a; "
                   "for i in 1 2 3; do printf $i; done > b", &s);
    cr_expect(s.stats && strstr(s.stats, "1 writes absorbed"),
              "WCACHE_MIN_WRITES=2:\n%s", s.stats ? s.stats : "");
    run_free(&s);
    same_as_kernel("zero", "0", "for i in 1 2 3; do printf $i; done > b", &s);
    cr_expect(s.stats && strstr(s.stats, "3 writes absorbed"),
              "WCACHE_MIN_WRITES=0:\n%s", s.stats ? s.stats : "");
    run_free(&s);
}

/* Descriptions of one file in every state at once, all in one process
 * (dash builtins: no fork or exec to flush anything): a new file made
 * with O_CREAT|O_EXCL (`set -C`: its identity not asked yet), a reader
 * opened before it is cached, a second writer. The second writer's 9th
 * write caches the file; from then on the reader reads its cached lines
 * (w9 to w11 are in no kernel page), and the first writer's next line,
 * at its own offset inside the cached range, lands after them in program
 * order, as the kernel's would. */
Test(policy, every_description_follows_when_the_file_is_cached)
{
    struct run s;
    same_as_kernel("states", NULL,
                   "set -C; exec 3> f; set +C; exec 4< f; exec 5<> f; "
                   "echo 012345678901234567890123456789 >&3; "
                   "for i in 1 2 3 4 5 6 7 8 9 10 11; do echo w$i >&5; done; "
                   "echo after >&3; "
                   "for i in 1 2 3 4 5 6 7 8 9 10 11; do read x <&4; "
                   "echo \"$x\" >> r; done; "
                   "echo end >&5; exec 3>&- 4<&- 5>&-", &s);
    run_free(&s);
}

/* A file cached by its 9th write while a child made by fork shares one of
 * its descriptions: both processes' writes, in order. */
Test(policy, fork_while_watched)
{
    struct run s;
    same_as_kernel("fork", NULL,
                   "exec 3> f; echo a >&3; (echo child >&3); "
                   "for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >&3; done; "
                   "(for i in x y z; do echo $i >&3; done); echo end >&3",
                   &s);
    run_free(&s);
}

/* Writes of 8 KiB or more (WC_LARGE_WRITE) do not count toward caching a
 * file: the engine would send them straight to the kernel anyway, so a
 * file written in large blocks never gets a cache, a store or a guard.
 * Small writes still do. */
Test(policy, large_writes_never_cache_a_file)
{
    struct run s;
    same_as_kernel("large", NULL,
                   "dd if=/dev/zero of=f bs=64k count=20 2>/dev/null; "
                   "dd if=/dev/zero of=g bs=100 count=20 2>/dev/null", &s);
    cr_assert(s.stats, "no statistics");
    cr_expect(strstr(s.stats, "20 writes passed through uncached"),
              "the 64 KiB writes (never cached, so never written through by "
              "the engine):\n%s", s.stats);
    cr_expect(strstr(s.stats, "12 writes absorbed (1200 bytes)"),
              "the 100-byte writes:\n%s", s.stats);
    run_free(&s);
}

/* Run prog_futile MODE with N records, with and without the shim (the
 * default WCACHE_MIN_WRITES): the same output and file. Returns the shim's
 * statistics (malloc'd). */
static char *futile(const char *mode, int n)
{
    wct_require_shim();
    const char *prog = WCT_PROG("prog_futile");
    wct_require_prog(prog);
    char path[4200], count[16], stats[4200], senv[4300];
    snprintf(path, sizeof path, "%s/f", scratch);
    snprintf(stats, sizeof stats, "%s/stats", scratch);
    snprintf(senv, sizeof senv, "WCACHE_STATS=%s", stats);
    snprintf(count, sizeof count, "%d", n);
    const char *argv[] = {prog, mode, path, count, NULL};
    const char *env[] = {senv, "WCACHE_MIN_WRITES=", NULL};
    struct wct_result r[2];
    char *file[2];
    size_t len[2];
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .env = env, .shim = shim,
                             .timeout_s = 60};
        cr_assert_eq(wct_run(&s, &r[shim]), 0);
        cr_assert(wct_ok(&r[shim]), "shim=%d: %s\n%s%s", shim,
                  wct_status_str(&r[shim]), r[shim].out, r[shim].err);
        file[shim] = wct_slurp(path, &len[shim]);
        cr_assert_not_null(file[shim]);
        unlink(path);
    }
    cr_assert_str_eq(r[1].out, r[0].out, "%s: the shim printed %s", mode,
                     r[1].out);
    cr_assert(len[0] == len[1] && !memcmp(file[0], file[1], len[0]),
              "%s: the files differ", mode);
    size_t slen;
    char *s = wct_slurp(stats, &slen);
    cr_assert_not_null(s, "no statistics");
    unlink(stats);
    for (int i = 0; i < 2; i++) {
        free(file[i]);
        wct_result_free(&r[i]);
    }
    return s;
}

/* A record written under its own lock would be written back at its
 * unlock: the cache would save nothing, so the file is never cached
 * (fdtab.c invariant (6): its writes saw a lock call each) and its writes
 * go to the kernel, counted under that reason; it is asked again after
 * 16, 32, 64... more writes. A reader's description and the writer's
 * offset see every record throughout. */
Test(policy, a_file_written_back_at_every_lock_is_not_cached)
{
    char *s = futile("locked", 3000);
    cr_expect(strstr(s, "caching the file gains nothing (its writes cost "
                     "a system call each all the same: at least "
                     "WCACHE_BYPASS, written back at every lock, or "
                     "scattered) 2992"),
              "the locked records (all but the first 8):\n%s", s);
    cr_expect(strstr(s, "]: 0 writes absorbed"),
              "locked records were cached:\n%s", s);
    free(s);
}

/* prog_futile MODE's 3000 writes: nearly all cached. */
static void expect_cached(const char *mode)
{
    char *s = futile(mode, 3000);
    const char *p = strstr(s, "]: ");      /* wcache[PID]: N writes absorbed */
    cr_assert(p && strstr(p, " writes absorbed"), "%s", s);
    long absorbed = atol(p + 3);
    cr_expect(absorbed >= 2900, "%s: %ld of 3000 writes cached:\n%s", mode,
              absorbed, s);
    free(s);
}

/* The same records under one lock taken at the start: cached (a lock
 * call now and then does not keep a file out of the cache). */
Test(policy, a_file_locked_once_is_cached) { expect_cached("locked_once"); }

/* pwrites at scattered offsets, each to a page of its own, gain nothing
 * either (each would be written back by a system call of its own): the
 * file is never cached (fdtab.c invariant (6)). */
Test(policy, scattered_pwrites_are_not_cached)
{
    char *s = futile("scatter", 3000);
    cr_expect(strstr(s, "caching the file gains nothing (its writes cost "
                     "a system call each all the same: at least "
                     "WCACHE_BYPASS, written back at every lock, or "
                     "scattered) 2992"),
              "the scattered writes (all but the first 8):\n%s", s);
    cr_expect(strstr(s, "]: 0 writes absorbed"),
              "scattered writes were cached:\n%s", s);
    free(s);
}

/* A stream of large records written by pwrite, each where the last one
 * ended (more than a page apart at their starts), is cached. */
Test(policy, a_pwrite_stream_of_large_records_is_cached)
{
    expect_cached("stream");
}

/* pwrites that go round a few records, near each other, are cached. */
Test(policy, pwrites_near_each_other_are_cached) { expect_cached("hot"); }

/* How often the loader was asked for `name` (LD_DEBUG=symbols lines on
 * stderr) while `script` ran under the shim. */
static int lookups(const char *script, const char *min, const char *name)
{
    char store[4200], denv[4300], menv[64], want[128];
    snprintf(store, sizeof store, "%s/lookups.store", scratch);
    cr_assert(mkdir(store, 0700) == 0 || errno == EEXIST, "mkdir %s", store);
    snprintf(denv, sizeof denv, "WCACHE_DIR=%s", store);
    snprintf(menv, sizeof menv, "WCACHE_MIN_WRITES=%s", min);
    const char *env[] = {denv, menv, "WCACHE_LOG=debug", NULL};
    const char *argv[] = {"dash", "-c", script, NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = 1,
                            .cwd = scratch, .timeout_s = 60};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run dash");
    cr_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0,
              "%s: %s\n%s", script, wct_status_str(&res), res.err);
    snprintf(want, sizeof want, "real function %s found", name);
    int n = 0;
    for (const char *p = res.err; (p = strstr(p, want)); p += strlen(want))
        n++;
    wct_result_free(&res);
    wct_rmtree(store);
    return n;
}

/* shim/real.c (1b): a process that caches nothing looks up only the real
 * functions it calls (here none of posix_spawnp, which only the shim's
 * table names); one that makes its cache looks them all up then. */
Test(policy, a_process_that_caches_nothing_resolves_few_functions)
{
    wct_require_shim();
    wct_require_tool("dash", "dash");
    cr_expect(lookups("echo x > f; /bin/true", "", "posix_spawnp") == 0,
              "posix_spawnp was looked up by a process that cached nothing");
    cr_expect(lookups("echo x > f", "0", "posix_spawnp") >= 1,
              "the cache was made without resolving the table");
}

/* dash running `script` in the scratch directory under the shim, its
 * files cached from their open (WCACHE_MIN_WRITES=0, in a store of its
 * own: <tag>.store, removed after), traced from outside by strace -f for
 * `calls`: the trace's text (malloc'd). */
static char *traced_dash(const char *tag, const char *calls,
                         const char *script)
{
    wct_require_shim();
    wct_require_tool("dash", "dash");
    wct_require_tool("strace", "strace");
    char store[4200], denv[4300], out[4200];
    snprintf(store, sizeof store, "%s/%s.store", scratch, tag);
    cr_assert(mkdir(store, 0700) == 0, "mkdir %s", store);
    snprintf(denv, sizeof denv, "WCACHE_DIR=%s", store);
    snprintf(out, sizeof out, "%s/%s.trace", scratch, tag);
    const char *argv[] = {"strace", "-f", "-qq", "-e", calls, "-o", out,
                          "env", "LD_PRELOAD=" WCT_SHIM_SO, denv,
                          "WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0",
                          "dash", "-c", script, NULL};
    struct wct_spec spec = {.argv = argv, .cwd = scratch, .timeout_s = 60};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run strace");
    cr_assert(wct_ok(&res), "%s\n%s", wct_status_str(&res), res.err);
    wct_result_free(&res);
    wct_rmtree(store);
    size_t len;
    char *text = wct_slurp(out, &len);
    cr_assert(text, "no trace");
    return text;
}

/* cache.h wc_file_open_truncated: a file created (or empty) at an open
 * with O_TRUNC and cached from that open (WCACHE_MIN_WRITES=0) is not
 * truncated again by the shim: on ext4 the truncation marks the file to
 * be written to disk at its close (auto_da_alloc), and the program's
 * unlink of it then waits for that write. strace from outside the shim:
 * with the library before, one ftruncate(..., 0) per file. The files
 * hold what the shell wrote, as without the shim. */
Test(policy, a_file_created_at_open_is_not_truncated_again)
{
    char *text = traced_dash("trunc", "trace=ftruncate",
                             "i=0; while [ $i -lt 20 ]; do echo line $i > f$i;"
                             " i=$((i + 1)); done; echo again > f3");
    int zero = 0;
    for (char *p = text; (p = strstr(p, "ftruncate(")); p++) {
        char *nl = strchr(p, '\n'), *z = strstr(p, ", 0)");
        zero += z && (!nl || z < nl);
    }
    free(text);
    /* The last echo opens f3, which holds a line, with O_TRUNC: the
     * kernel truncates it, and the shim may again (it cached f3 before). */
    cr_assert(zero <= 1, "%d ftruncate(..., 0) for 20 new files", zero);
    for (int i = 0; i < 20; i++) {
        char f[4300], want[32];
        snprintf(f, sizeof f, "%s/f%d", scratch, i);
        snprintf(want, sizeof want, i == 3 ? "again\n" : "line %d\n", i);
        size_t len;
        char *got = wct_slurp(f, &len);
        cr_assert(got && !strcmp(got, want), "f%d holds %s", i, got);
        free(got);
    }
}

/* A fork child of a process with a cache receives none of the store nor
 * the arrays sized by it (store.h (5)): it unmaps nothing of them (before,
 * seven munmaps in each child, the 64 MiB store's and its arrays of 1.7
 * and 3 MiB among them: 11% of a fork's time). strace from outside: dash,
 * its output cached from the open, runs 20 subshells that append to it
 * through the shared description; each child's munmaps are of the cache
 * object and its file slots alone, under 1 MiB. The file holds every line
 * in order, as without the shim. */
Test(policy, a_fork_child_unmaps_none_of_the_store)
{
    char *text = traced_dash("fork", "trace=munmap,clone,clone3,fork,vfork",
                             "i=0; while [ $i -lt 20 ]; do echo parent $i;"
                             " (echo child $i); i=$((i + 1)); done > log");
    size_t len;
    char f[4300];
    snprintf(f, sizeof f, "%s/log", scratch);
    /* The children: what clone returned. */
    long kids[64];
    int nkids = 0;
    for (char *p = text; (p = strstr(p, "clone")); p++) {
        char *nl = strchr(p, '\n'), *eq = strstr(p, ") = ");
        if (eq && (!nl || eq < nl) && nkids < 64)
            kids[nkids++] = strtol(eq + 4, NULL, 10);
    }
    cr_assert_geq(nkids, 20, "%d children in the trace", nkids);
    int child_unmaps = 0, big = 0;
    for (char *line = text; line && *line; ) {
        char *nl = strchr(line, '\n');
        long pid = strtol(line, NULL, 10);
        char *m = strstr(line, "munmap(");
        if (m && (!nl || m < nl))
            for (int k = 0; k < nkids; k++)
                if (kids[k] == pid) {
                    child_unmaps++;
                    char *comma = strchr(m, ',');
                    if (comma && strtoul(comma + 1, NULL, 10) >= (1ul << 20))
                        big++;
                }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    cr_assert_eq(big, 0, "the children made %d munmaps of 1 MiB or more "
                 "(%d munmaps in all)", big, child_unmaps);
    char *got = wct_slurp(f, &len);
    cr_assert(got, "no log");
    char want[1024] = "", *w = want;
    for (int i = 0; i < 20; i++)
        w += sprintf(w, "parent %d\nchild %d\n", i, i);
    cr_assert_str_eq(got, want);
    free(got);
}
