/*
 * test_shim_locks.c - the shim never drops a POSIX record lock the program
 * holds (CONTRACT.md sections 2 and 3): its write-back descriptor is a dup
 * of the program's, never closed while the file is open. The lock state a
 * second process sees after each step must match the run without the shim,
 * and so must the file.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib_shim.h"

Test(locks, record_lock_survives_caching, .timeout = 60)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_locks"));
    char *dir = wct_scratch("locks");
    char path[4200];
    snprintf(path, sizeof path, "%s/locked", dir);
    const char *argv[] = {WCT_PROG("prog_locks"), path, NULL};
    struct wct_result r[2];
    char *file[2];
    size_t len[2];
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec s = {.argv = argv, .shim = shim, .timeout_s = 30};
        cr_assert_eq(wct_run(&s, &r[shim]), 0);
        cr_assert(wct_ok(&r[shim]), "shim=%d: %s\n%s", shim,
                  wct_status_str(&r[shim]), r[shim].err);
        file[shim] = wct_slurp(path, &len[shim]);
        cr_assert_not_null(file[shim]);
    }
    cr_assert_str_eq(r[1].out, r[0].out,
                     "lock state differs under the shim:\n%s\n--- kernel:\n%s",
                     r[1].out, r[0].out);
    cr_assert(strstr(r[0].out, "after fsync: locked by the parent"),
              "the case did not hold the lock: %s", r[0].out);
    cr_assert_eq(len[1], len[0]);
    cr_assert_eq(memcmp(file[0], file[1], len[0]), 0);
    for (int i = 0; i < 2; i++) {
        free(file[i]);
        wct_result_free(&r[i]);
    }
    wct_rmtree(dir);
    free(dir);
}
