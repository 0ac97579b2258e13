/*
 * cli.h - the pieces of the `wcache` command (cli*.c), which runs programs
 * with libwcache.so preloaded and is never itself under the shim.
 */
#ifndef WCACHE_CLI_H
#define WCACHE_CLI_H

#include <stdio.h>

/* The exit statuses of coreutils wrappers (env, nice, timeout, stdbuf). */
enum {
    WC_EXIT_OWN = 125,        /* wcache's own error */
    WC_EXIT_CANNOT_RUN = 126, /* the program exists but cannot be run */
    WC_EXIT_NOT_FOUND = 127,  /* the program cannot be found */
};

/* Print the whole-run summary from the per-process records in `records`
 * (WCACHE_STATS_RAW) to `out`. 0, or -1 when out of memory. */
int wc_cli_summary(const char *records, FILE *out);

#endif /* WCACHE_CLI_H */
