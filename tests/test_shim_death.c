/*
 * test_shim_death.c - death by a catchable signal (CONTRACT.md section 3,
 * "death by a signal"): with the default action the shim flushes and the
 * process still dies of that signal; the program sees its own actions,
 * never the shim's stand-in; its handlers and SIG_IGN work as without the
 * shim. Each case runs without and with the shim and compares the exit
 * status, what the program printed, and the file it wrote.
 * (SIGKILL cannot be caught: the crash guard, a later issue, replays it.)
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "lib_shim.h"

static void one(int sig, const char *mode)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_death"));
    char *dir = wct_scratch("death");
    char path[4200], signum[16];
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(signum, sizeof signum, "%d", sig);
    const char *argv[] = {WCT_PROG("prog_death"), path, signum, mode, NULL};
    struct wct_result r[2];
    char *file[2];
    size_t len[2];
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .shim = shim, .timeout_s = 30};
        cr_assert_eq(wct_run(&s, &r[shim]), 0);
        cr_assert_not(r[shim].timed_out, "%s %d hung", mode, sig);
        file[shim] = wct_slurp(path, &len[shim]);
        cr_assert_not_null(file[shim]);
        unlink(path);
    }
    cr_assert_eq(r[1].status, r[0].status,
                 "sig %d %s: status %s under the shim, %#x without", sig,
                 mode, wct_status_str(&r[1]), r[0].status);
    cr_assert_str_eq(r[1].out, r[0].out, "sig %d %s: printed differently",
                     sig, mode);
    cr_assert_eq(len[1], len[0], "sig %d %s: file has %zu bytes, kernel %zu",
                 sig, mode, len[1], len[0]);
    cr_assert_eq(memcmp(file[0], file[1], len[0]), 0);
    cr_assert_eq(len[0], 2000 * 10);        /* the case really wrote */
    for (int i = 0; i < 2; i++) {
        free(file[i]);
        wct_result_free(&r[i]);
    }
    wct_scratch_cleanup();
}

Test(death, default_action_flushes_then_dies, .fini = wct_scratch_cleanup, .timeout = 120)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGALRM,
                               SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        one(sigs[i], "dfl");
}

Test(death, handler_then_default_again, .fini = wct_scratch_cleanup, .timeout = 60)
{
    one(SIGTERM, "reset");
}

Test(death, program_handler_runs, .fini = wct_scratch_cleanup, .timeout = 60)
{
    one(SIGTERM, "handler");
    one(SIGUSR2, "handler");
}

Test(death, ignored_signal_is_ignored, .fini = wct_scratch_cleanup, .timeout = 60)
{
    one(SIGTERM, "ignore");
}

/* A fault whose signal the program ignores kills it all the same (the
 * kernel forces the default action): the shim writes back first, as at
 * the default action (probe M: the file was short at wait, 3/3 each).
 * Sent by a process, the same signals stay ignored; an exec or a spawn
 * gives the new image SIG_IGN, as the kernel does. */
Test(death, ignored_fault_still_flushes, .fini = wct_scratch_cleanup,
     .timeout = 120)
{
    static const int sigs[] = {SIGILL, SIGFPE, SIGTRAP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        one(sigs[i], "fault");
        one(sigs[i], "ignore");
        one(sigs[i], "exec");
        one(sigs[i], "spawn");
    }
}

/* A signal the kernel cannot deliver (its handler, set behind the shim,
 * lacks the restorer x86-64 needs) kills with SIGSEGV, which no
 * instruction raises again: the shim's SIGSEGV handler wrote back, then
 * returned expecting the fault to repeat, and the program ran on (exit 0
 * where the kernel's run died). */
Test(death, a_signal_without_a_frame_kills_with_sigsegv,
     .fini = wct_scratch_cleanup, .timeout = 60)
{
    one(SIGUSR1, "noframe");
}

Test(death, sigpipe, .fini = wct_scratch_cleanup, .timeout = 60)
{
    one(SIGPIPE, "pipe");
}
