/*
 * test_shim_stdio.c - glibc's internal writes on descriptors the shim
 * caches (CONTRACT.md section 1: stdio streams, dprintf, perror,
 * backtrace_symbols_fd), mixed with write(): each scenario of
 * tests/prog_stdio.c runs without and with the shim, plain and built with
 * _FORTIFY_SOURCE=2 (__dprintf_chk); the transcripts (return values, errno
 * after every call including successful ones, offsets, sizes, what a
 * second open reads) and the files left behind must be identical.
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
    scratch = wct_scratch("stdio");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(stdio, .init = setup, .fini = teardown, .timeout = 60);

/* Transcript, status and file listing of one run, in a fresh directory. */
static char *run_once(const char *prog, const char *scenario, int shim,
                      const char *const *env)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s-%d", scratch, scenario, shim);
    cr_assert(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    const char *argv[] = {prog, scenario, dir, NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                            .timeout_s = 30};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run %s", prog);
    char *tree = wct_tree_listing(dir, 0);
    char *all = NULL;
    cr_assert(asprintf(&all, "%s--- %s\n--- files\n%s", res.out,
                       wct_status_str(&res), tree) > 0);
    cr_assert(strstr(res.out, "done\n") != NULL,
              "%s %s did not finish (%s): %s", prog, scenario,
              wct_status_str(&res), res.err);
    free(tree);
    wct_result_free(&res);
    wct_rmtree(dir);
    return all;
}

static void differential(const char *scenario, const char *const *env)
{
    const char *progs[] = {WCT_PROG("prog_stdio"),
                           WCT_PROG("prog_stdio_fortify")};
    wct_require_shim();
    for (int i = 0; i < 2; i++) {
        wct_require_prog(progs[i]);
        char *ref = run_once(progs[i], scenario, 0, env);
        char *got = run_once(progs[i], scenario, 1, env);
        if (strcmp(ref, got) != 0) {
            char *d = wct_first_diff(ref, got);
            cr_assert_fail("%s %s: the shim differs from the kernel:\n%s",
                           strrchr(progs[i], '/') + 1, scenario, d);
        }
        free(ref);
        free(got);
    }
}

/* stdout dup2'd from a cached file: printf/puts/fputs between write(1),
 * one line left in stdio's buffer until exit. */
Test(stdio, printf_and_write_on_stdout) { differential("dup2_stdout", NULL); }
/* The same on an O_APPEND description. */
Test(stdio, printf_and_write_on_appending_stdout)
{
    differential("dup2_stdout_append", NULL);
}
/* lseek back, printf over cached bytes, pwrite past the offset, pread,
 * SEEK_END: nothing written back over glibc's bytes. */
Test(stdio, printf_over_cached_bytes) { differential("seek_back", NULL); }
/* dprintf (and __dprintf_chk) between cached writes: order, offsets,
 * sizes, a large format, EBADF after close. */
Test(stdio, dprintf_between_writes) { differential("dprintf", NULL); }
Test(stdio, backtrace_symbols_fd_between_writes)
{
    differential("backtrace", NULL);
}
/* perror, psignal, fprintf(stderr) between write(2). */
Test(stdio, perror_and_stderr) { differential("stderr", NULL); }
/* freopen of stdout onto a file that is cached through another fd. */
Test(stdio, freopen_onto_a_cached_file) { differential("freopen", NULL); }
/* fork: parent and child write to the shared stdout in turn. */
Test(stdio, fork_with_cached_stdout) { differential("fork", NULL); }
/* stdin on a cached file: scanf reads what write() put there. */
Test(stdio, scanf_on_cached_stdin) { differential("stdin", NULL); }
/* A tiny cache and flush deadline: write-back happens between the
 * program's calls, at any moment. */
Test(stdio, printf_and_write_small_cache)
{
    const char *env[] = {"WCACHE_SIZE=64K", "WCACHE_FLUSH_MS=1", NULL};
    differential("dup2_stdout", env);
    differential("seek_back", env);
    differential("dprintf", env);
}

/* ---- descriptor 1 guarded (the shim's stdio.c invariant (2)) ----------- */

/* Every stdio call that can write stdout's bytes out, on a stdout whose
 * file the shim caches as the program's own: glibc's bytes land after the
 * cached ones, as with the kernel. */
Test(stdio, stdio_calls_fence_a_guarded_stdout)
{
    differential("fences", NULL);
    const char *env[] = {"WCACHE_SIZE=64K", "WCACHE_FLUSH_MS=1", NULL};
    differential("fences", env);
}
Test(stdio, wide_stdio_calls_fence_a_guarded_stdout)
{
    differential("fence_wide", NULL);
}
/* dd's way of opening its output: close(1), open. */
Test(stdio, a_file_opened_on_descriptor_1) { differential("open_on_1", NULL); }

/* The guard is real: on a file the program put on descriptor 1 itself,
 * write(1) is cached with the kernel's offset left behind (no lseek per
 * write); the first printf makes the kernel's offset exact, and it stays
 * so. Without the shim the kernel's offset is always exact. */
Test(stdio, own_file_on_stdout_is_cached_until_stdio_writes)
{
    wct_require_shim();
    const char *prog = WCT_PROG("prog_stdio");
    wct_require_prog(prog);
    for (int shim = 0; shim < 2; shim++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/own-%d", scratch, shim);
        cr_assert(mkdir(dir, 0755) == 0);
        const char *argv[] = {prog, "fences", dir, NULL};
        struct wct_spec spec = {.argv = argv, .shim = shim, .timeout_s = 30};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        char want[64];
        snprintf(want, sizeof want, "guarded kernel_behind=%d\n", shim);
        cr_expect(strstr(res.err, want), "%s: expected %s in:\n%s",
                  shim ? "shim" : "kernel", want, res.err);
        cr_expect(strstr(res.err, "fenced kernel_behind=0\n"), "%s",
                  res.err);
        cr_expect(strstr(res.err, "reserved kernel_behind=0\n"), "%s",
                  res.err);
        wct_result_free(&res);
        wct_rmtree(dir);
    }
}
