/* lib_sys.h - fill wc_sys with libc's functions for tests of cache/ alone. */
#ifndef WCT_LIB_SYS_H
#define WCT_LIB_SYS_H
#include "wcache/sys.h"

/* Point every entry of wc_sys at libc's function of the same name. */
void wct_sys_use_libc(void);

#endif
