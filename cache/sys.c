/*
 * sys.c - the table of real libc functions (see include/wcache/sys.h).
 *
 * The table starts empty; the shim fills it with dlsym(RTLD_NEXT) and tests
 * fill it with libc's own functions. cache/ only reads it.
 */
#include "wcache/sys.h"

struct wc_sys wc_sys;

#define WC_SYS_NAME(ret, name, args) #name,
const char *const wc_sys_names[] = {WC_SYSCALLS(WC_SYS_NAME)};
#undef WC_SYS_NAME
