/*
 * lib_sys.c - the libc-filled syscall table for tests of cache/ alone.
 *
 * Test binaries do not load the shim, so libc's symbols are the real
 * functions. Tests replace single entries afterwards to inject faults.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib_sys.h"

void wct_sys_use_libc(void)
{
    void **slot = (void **)&wc_sys;
    for (size_t i = 0; i < WC_SYS_COUNT; i++) {
        slot[i] = dlsym(RTLD_DEFAULT, wc_sys_names[i]);
        if (!slot[i]) {
            fprintf(stderr, "wct_sys_use_libc: no symbol %s\n",
                    wc_sys_names[i]);
            abort();
        }
    }
}
