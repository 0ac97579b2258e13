/*
 * sys.c - the table of real libc functions (see include/wcache/sys.h).
 *
 * The table starts empty; the shim fills it with dlsym(RTLD_NEXT) and tests
 * fill it with libc's own functions. cache/ only reads it.
 */
#include "wcache/sys.h"

/* Within one page (it is under 1 KiB): a start-up writes every slot
 * (shim/real.c), a fault for each page it spans. */
struct wc_sys wc_sys __attribute__((aligned(1024)));

#define WC_SYS_NAME(ret, name, args) #name,
const char *const wc_sys_names[] = {WC_SYSCALLS(WC_SYS_NAME)};
#undef WC_SYS_NAME
