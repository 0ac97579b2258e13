/*
 * sys.c - the table of real libc functions (see include/wcache/sys.h).
 *
 * The table starts empty; the shim fills it with dlsym(RTLD_NEXT) and tests
 * fill it with libc's own functions. cache/ only reads it.
 */
#include "wcache/sys.h"

/* A start-up writes every slot (shim/real.c): in .data, within one page
 * (it is under 1 KiB), next to what the loader writes in every start (the
 * relocated data, and the end of the last page it maps from the file,
 * which it zeroes), not in a page of .bss of its own (a page fault in
 * each start-up, 7 us here). */
struct wc_sys wc_sys __attribute__((section(".data.wc_boot"), aligned(1024)));

#define WC_SYS_NAME(ret, name, args) #name,
const char *const wc_sys_names[] = {WC_SYSCALLS(WC_SYS_NAME)};
#undef WC_SYS_NAME
