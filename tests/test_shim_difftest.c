/*
 * test_shim_difftest.c - the differential tester: tests/prog_difftest.c
 * run for a set of seeds without and with the shim; the transcripts (every
 * return value, errno, offset, hash of bytes read) and the files left on
 * disk, read by this process which is not under the shim, must be
 * identical. Each test varies the shim's settings to force a different
 * path: the default cache, a tiny cache (evictions, pressure flushes), a
 * tiny bypass threshold, a 1 ms flush deadline. Odd seeds run the program
 * built with _FORTIFY_SOURCE=2 (prog_difftest_fortify.c), so that glibc's
 * __read_chk/__pread_chk entry points are exercised too.
 *
 * WCT_LONG=1 (make check-long) runs many more and longer sequences.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib_shim.h"

static char *scratch;

static void setup(void)
{
    scratch = wct_scratch("diff");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

/* Run one seed in a fresh directory; returns transcript + tree listing. */
static char *run_seed(const char *prog, int shim, const char *const *env,
                      unsigned seed, long nops, const char *tag,
                      char *status /* OUT */)
{
    char dir[4096], s[32], n[32];
    snprintf(dir, sizeof dir, "%s/%s-%u", scratch, tag, seed);
    cr_assert(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    snprintf(s, sizeof s, "%u", seed);
    snprintf(n, sizeof n, "%ld", nops);
    const char *argv[] = {prog, dir, s, n, NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                            .timeout_s = 20};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run prog_difftest");
    char *tree = wct_tree_listing(dir, 0);
    char *all = NULL;
    snprintf(status, 64, "%s", wct_status_str(&res));
    cr_assert(asprintf(&all, "%s--- stderr\n%s--- %s\n--- files\n%s",
                       res.out, res.err, status, tree) > 0);
    free(tree);
    wct_result_free(&res);
    wct_rmtree(dir);
    return all;
}

/* Odd seeds run the fortified build (reads through __read_chk...). */
static void run_seeds(const char *const *env, const char *what)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_difftest"));
    wct_require_prog(WCT_PROG("prog_difftest_fortify"));
    unsigned nseeds = wct_shim_long() ? 100 : 12;
    long nops = wct_shim_long() ? 2000 : 600;
    int failed = 0;
    for (unsigned seed = 1; seed <= nseeds; seed++) {
        char st_ref[64], st_got[64];
        const char *prog = seed % 2 ? WCT_PROG("prog_difftest_fortify")
                                    : WCT_PROG("prog_difftest");
        char *ref = run_seed(prog, 0, env, seed, nops, "ref", st_ref);
        char *got = run_seed(prog, 1, env, seed, nops, "shim", st_got);
        if (strcmp(ref, got) != 0) {
            char *d = wct_first_diff(ref, got);
            cr_log_error("%s: seed %u differs (rerun: %s DIR %u %ld; %s "
                         "without the shim, %s with it):\n%s", what, seed,
                         strrchr(prog, '/') + 1, seed, nops, st_ref, st_got,
                         d);
            free(d);
            failed++;
        }
        free(ref);
        free(got);
        if (failed >= 3)
            break;
    }
    cr_assert(failed == 0, "%s: %d seed(s) differ from the kernel", what,
              failed);
}

TestSuite(difftest, .init = setup, .fini = teardown);

/* The harness caches every file from its open (WCACHE_MIN_WRITES=0:
 * lib_shim.c); the default caches a file after its first 8 writes, so its
 * descriptions change from WATCH to CACHED in the middle of the ops. */
Test(difftest, cached_from_open, .timeout = 900)
{
    run_seeds(NULL, "WCACHE_MIN_WRITES=0");
}

Test(difftest, default_settings, .timeout = 900)
{
    const char *env[] = {"WCACHE_MIN_WRITES=", NULL};
    run_seeds(env, "default settings");
}

Test(difftest, adopted_at_the_second_write, .timeout = 900)
{
    const char *env[] = {"WCACHE_MIN_WRITES=1", NULL};
    run_seeds(env, "WCACHE_MIN_WRITES=1");
}

Test(difftest, small_cache_evicts, .timeout = 900)
{
    const char *env[] = {"WCACHE_SIZE=256K", "WCACHE_DIRTY=64K", NULL};
    run_seeds(env, "WCACHE_SIZE=256K WCACHE_DIRTY=64K");
}

Test(difftest, small_bypass, .timeout = 900)
{
    const char *env[] = {"WCACHE_BYPASS=1K", NULL};
    run_seeds(env, "WCACHE_BYPASS=1K");
}

Test(difftest, short_deadline, .timeout = 900)
{
    const char *env[] = {"WCACHE_FLUSH_MS=1", NULL};
    run_seeds(env, "WCACHE_FLUSH_MS=1");
}
