/*
 * config.h - the shim's configuration (CONTRACT.md section 7) and the one
 * function that validates it, shared by libwcache.so and the `wcache`
 * command (config.c).
 */
#ifndef WCACHE_SHIM_CONFIG_H
#define WCACHE_SHIM_CONFIG_H

#include <stdint.h>

#include "wcache/cache.h"

enum { WC_LOG_ERROR, WC_LOG_WARN, WC_LOG_INFO, WC_LOG_DEBUG };

struct wc_shim_config {
    struct wc_config cache;   /* handed to wc_cache_open() */
    uint64_t flush_ms;        /* WCACHE_FLUSH_MS */
    int inherited;            /* WCACHE_INHERITED */
    int min_writes;           /* WCACHE_MIN_WRITES: writes a file opened
                                 here makes through the kernel before it
                                 is cached (fdtab.c invariant (6)) */
    uint64_t setup_ns;        /* WCACHE_SETUP_US, in ns: what a process's
                                 writes must have cost before it makes its
                                 cache (fdtab.c invariant (6b)) */
    int guard;                /* WCACHE_GUARD */
    int stats;                /* 0 off, 1 stderr, 2 file stats_path */
    int log_level;            /* WCACHE_LOG */
    char stats_path[512];     /* WCACHE_STATS when it is a path */
    char stats_raw[512];      /* WCACHE_STATS_RAW: where the wcache command
                                 collects one record per process image
                                 (appended to the file it made, never
                                 made here: stats_report.c) */
    char dir[512];            /* WCACHE_DIR (cache.dir points here) */
    char include[1024];       /* WCACHE_INCLUDE, ':'-separated */
    char exclude[1024];       /* WCACHE_EXCLUDE, ':'-separated */
};
/* Fill cfg from the variables that get(name) returns (NULL: unset), in a
 * fixed order (WCACHE_LOG first; WCACHE_DIRTY after WCACHE_SIZE). isdir
 * says whether a path is an existing directory. Returns 1 to run the
 * cache, 0 for pass-through: WCACHE_DISABLE=1, or a bad value, after one
 * call of bad(variable, value, what is accepted), whose result is
 * returned. */
int wc_config_load(struct wc_shim_config *cfg, const char *(*get)(const char *),
                   int (*isdir)(const char *),
                   int (*bad)(const char *, const char *, const char *));

#endif /* WCACHE_SHIM_CONFIG_H */
