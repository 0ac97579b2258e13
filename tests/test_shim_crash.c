/*
 * test_shim_crash.c - death by a synchronous fault (CONTRACT.md section 4:
 * a process that dies loses no write() that returned). A program writes
 * 1000 lines, then faults (NULL, stack overflow, division by zero, trap,
 * breakpoint, SIGBUS, SIGSYS, abort, in the main thread or another). Run
 * without and with the shim: the same lines on disk, the same termination
 * signal and core-dump flag, the same output. The program's own handler
 * still runs. And 400,000 lines with the flusher writing the stream's
 * batches (cache/async.c) as the fault comes.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lib_shim.h"

/* Wait (bounded) until no backing file is left in dir's store directory:
 * the crash guard removes what a death leaves. */
static void no_store_left(const char *dir, const char *how)
{
    char sd[4300];
    snprintf(sd, sizeof sd, "%s/wcache-%u", dir, (unsigned)getuid());
    for (int i = 0; i < 3000; i++) {
        DIR *d = opendir(sd);
        int n = 0;
        struct dirent *e;
        while (d && (e = readdir(d)))
            n += strncmp(e->d_name, "cache.", 6) == 0;
        if (d)
            closedir(d);
        if (!n)
            return;
        usleep(5000);
    }
    cr_assert_fail("%s: a backing file is left in %s", how, sd);
}

/* prog_crash writes `lines` lines and dies by `how`; `extra`: one more
 * variable for the shim run, or NULL. */
static void crash_after(const char *how, long lines, const char *extra)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_crash"));
    char *dir = wct_scratch("crash");
    char path[4200], nl[32];
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(nl, sizeof nl, "%ld", lines);
    const char *argv[] = {WCT_PROG("prog_crash"), path, how, nl, NULL};
    struct wct_result r[2];
    char *file[2];
    size_t len[2];
    char dv[4300];
    snprintf(dv, sizeof dv, "WCACHE_DIR=%s", dir);
    const char *env[] = {dv, extra, NULL};
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .shim = shim, .timeout_s = 30,
                             .cwd = dir, .env = env};
        cr_assert_eq(wct_run(&s, &r[shim]), 0);
        cr_assert_not(r[shim].timed_out, "%s hung", how);
        no_store_left(dir, how);
        file[shim] = wct_slurp(path, &len[shim]);
        cr_assert_not_null(file[shim]);
        unlink(path);
    }
    cr_assert(WIFSIGNALED(r[0].status), "%s: the kernel run did not die (%s)",
              how, wct_status_str(&r[0]));
    cr_assert_eq(r[1].status, r[0].status,
                 "%s: status %#x under the shim, %#x without (stderr: %s)",
                 how, r[1].status, r[0].status, r[1].err);
    cr_assert_str_eq(r[1].out, r[0].out, "%s: printed differently", how);
    cr_assert_eq(len[0], (size_t)lines * (lines > 1000 ? 13 : 10),
                 "%s: the kernel run wrote %zu", how, len[0]);
    cr_assert_eq(len[1], len[0], "%s: file has %zu bytes, kernel %zu", how,
                 len[1], len[0]);
    cr_assert_eq(memcmp(file[0], file[1], len[0]), 0, "%s: bytes differ",
                 how);
    for (int i = 0; i < 2; i++) {
        free(file[i]);
        wct_result_free(&r[i]);
    }
    wct_scratch_cleanup();
}

static void one(const char *how)
{
    crash_after(how, 1000, NULL);
}

Test(crash, null_dereference, .fini = wct_scratch_cleanup, .timeout = 60) { one("null"); }
Test(crash, stack_overflow, .fini = wct_scratch_cleanup, .timeout = 60) { one("stack"); }
Test(crash, divide_by_zero, .fini = wct_scratch_cleanup, .timeout = 60) { one("fpe"); }
Test(crash, builtin_trap, .fini = wct_scratch_cleanup, .timeout = 60) { one("trap"); }
Test(crash, breakpoint, .fini = wct_scratch_cleanup, .timeout = 60) { one("int3"); }
Test(crash, sigbus, .fini = wct_scratch_cleanup, .timeout = 60) { one("bus"); }
Test(crash, sigsys, .fini = wct_scratch_cleanup, .timeout = 60) { one("sys"); }
Test(crash, abort, .fini = wct_scratch_cleanup, .timeout = 60) { one("abort"); }
Test(crash, thread_null_dereference, .fini = wct_scratch_cleanup, .timeout = 60) { one("thread"); }
Test(crash, thread_stack_overflow, .fini = wct_scratch_cleanup, .timeout = 60) { one("tstack"); }
Test(crash, thread_raises_sigsegv, .fini = wct_scratch_cleanup, .timeout = 60) { one("tsegv"); }

/* A SIGSEGV handler of the program's, which set no signal stack: at a
 * stack overflow the kernel has no room to run it and the process dies
 * of SIGSEGV; under the shim the fault came on the shim's stack and the
 * handler ran there, choosing the exit status (probe AE F1). Now the
 * default action, as the kernel's (cache/ucopy.c (5)). */
Test(crash, stack_overflow_with_a_handler, .fini = wct_scratch_cleanup,
     .timeout = 60)
{
    one("segvstack");
}
Test(crash, stack_overflow_with_an_onstack_handler,
     .fini = wct_scratch_cleanup, .timeout = 60)
{
    one("segvostack");
}
Test(crash, thread_stack_overflow_with_a_handler,
     .fini = wct_scratch_cleanup, .timeout = 60)
{
    one("tsegvstack");
}

/* Where the kernel can run it (a NULL pointer), the handler runs under
 * the shim too, on its stack: exit 9, "handler ran", the file whole. */
static void handled(const char *how)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_crash"));
    char *dir = wct_scratch("crash");
    char path[4200];
    snprintf(path, sizeof path, "%s/out", dir);
    const char *argv[] = {WCT_PROG("prog_crash"), path, how, NULL};
    char dv[4300];
    snprintf(dv, sizeof dv, "WCACHE_DIR=%s", dir);
    const char *env[] = {dv, NULL};
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .shim = shim, .timeout_s = 30,
                             .cwd = dir, .env = env};
        struct wct_result r;
        cr_assert_eq(wct_run(&s, &r), 0);
        cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 9 &&
                  !strcmp(r.out, "handler ran for 11\n"),
                  "%s (shim %d): %s, printed %s", how, shim,
                  wct_status_str(&r), r.out);
        size_t len;
        char *file = wct_slurp(path, &len);
        cr_assert(file && len == 10000, "%s (shim %d): %zu bytes", how, shim,
                  len);
        free(file);
        wct_result_free(&r);
        unlink(path);
    }
    wct_scratch_cleanup();
}
Test(crash, null_with_a_handler, .fini = wct_scratch_cleanup, .timeout = 60)
{
    handled("segvnull");
}
Test(crash, thread_null_with_a_handler, .fini = wct_scratch_cleanup,
     .timeout = 60)
{
    handled("tsegvnull");
}

/* 400,000 lines (5.2 MB) with every stream batch written by the flusher
 * thread (cache/async.c): the fault comes while batches are in flight,
 * and the stand-in handler's write-back settles them (writes a batch
 * nobody started, waits for one the flusher is writing). */
Test(crash, faults_during_background_write_back,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    static const char *const hows[] = {"null", "abort", "thread", "bus"};
    for (size_t i = 0; i < sizeof hows / sizeof *hows; i++)
        crash_after(hows[i], 400000, "WCACHE_BACKGROUND_NS=0");
}

/* A SIGSEGV sent by raise() while the program ignores it is ignored, as
 * by the kernel, though the shim's handler stands in front of SIG_IGN. */
Test(crash, ignored_sigsegv_from_kill, .fini = wct_scratch_cleanup, .timeout = 60)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_crash"));
    char *dir = wct_scratch("crash");
    char path[4200];
    snprintf(path, sizeof path, "%s/out", dir);
    const char *argv[] = {WCT_PROG("prog_crash"), path, "ignored", NULL};
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .shim = shim, .timeout_s = 30,
                             .cwd = dir};
        struct wct_result r;
        cr_assert_eq(wct_run(&s, &r), 0);
        cr_assert(wct_ok(&r), "shim %d: %s", shim, wct_status_str(&r));
        cr_assert_str_eq(r.out, "still alive\n");
        wct_result_free(&r);
    }
    wct_scratch_cleanup();
}

/* The program's own SIGFPE handler runs, as without the shim (it exits 9;
 * the shim's exit path writes back). */
Test(crash, program_handler_runs, .fini = wct_scratch_cleanup, .timeout = 60)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_crash"));
    char *dir = wct_scratch("crash");
    char path[4200];
    snprintf(path, sizeof path, "%s/out", dir);
    const char *argv[] = {WCT_PROG("prog_crash"), path, "handler", NULL};
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .shim = shim, .timeout_s = 30,
                             .cwd = dir};
        struct wct_result r;
        cr_assert_eq(wct_run(&s, &r), 0);
        cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 9,
                  "shim %d: %s", shim, wct_status_str(&r));
        cr_assert_str_eq(r.out, "handler ran for 8\n");
        size_t n;
        char *f = wct_slurp(path, &n);
        cr_assert_eq(n, 10000, "shim %d: %zu bytes", shim, n);
        free(f);
        wct_result_free(&r);
    }
    wct_scratch_cleanup();
}
