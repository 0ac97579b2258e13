/*
 * prog_stdio_fortify.c - prog_stdio built with _FORTIFY_SOURCE=2, so that
 * its dprintf calls go through glibc's __dprintf_chk, which the shim must
 * interpose as well.
 */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "prog_stdio.c"
