/*
 * prog_difftest_fortify.c - prog_difftest built with _FORTIFY_SOURCE=2, so
 * that its reads go through glibc's __read_chk, __pread_chk... entry
 * points, which the shim must interpose as well.
 */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "prog_difftest.c"
