/*
 * config.c - the values of CONTRACT.md section 7: what each WCACHE_*
 * variable accepts, decided in one place for the library (env.c, from the
 * environment) and the `wcache` command (cli.c, from its options, before
 * it runs anything).
 *
 * Invariants:
 *   (1) No allocation, no state: values are copied into the caller's
 *       config (too long a value is a bad value).
 *   (2) The first bad value stops the load: `bad` is called once, with the
 *       variable, the value and what is accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include "config.h"

/* "123", "64K", "64M", "1G" (also lower case, optional "iB"/"B"). */
static int parse_size(const char *s, uint64_t *out)
{
    if (!*s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1ull << 10; end++; break;
    case 'm': case 'M': mul = 1ull << 20; end++; break;
    case 'g': case 'G': mul = 1ull << 30; end++; break;
    case 't': case 'T': mul = 1ull << 40; end++; break;
    default: break;
    }
    if (mul > 1 && *end == 'i' && end[1] == 'B')
        end += 2;
    else if (mul > 1 && *end == 'B')
        end++;
    if (*end || (v && mul > UINT64_MAX / v))
        return -1;
    *out = v * mul;
    return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "0") || !strcmp(s, "")) { *out = 0; return 0; }
    if (!strcmp(s, "1")) { *out = 1; return 0; }
    return -1;
}

static int copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

#define SIZE_HELP "a byte count with an optional K, M or G suffix, e.g. 64M"

/* Run once, at start-up: with the shim's others (shim.h, WC_ONCE). */
__attribute__((cold))
int wc_config_load(struct wc_shim_config *cfg, const char *(*get)(const char *),
                   int (*isdir)(const char *),
                   int (*bad)(const char *, const char *, const char *))
{
    const char *v;
    int b;
    uint64_t n;

    /* WCACHE_DISABLE=1 first: nothing else is read then (the wcache
     * command sets it after saying once that a variable is bad: cli.c
     * (1)); then WCACHE_LOG, so that later messages obey it. */
    if ((v = get("WCACHE_DISABLE")) && !parse_bool(v, &b) && b)
        return 0;
    if ((v = get("WCACHE_LOG")) && *v) {
        static const char *const lv[] = {"error", "warn", "info", "debug"};
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, lv[i]))
                found = i;
        if (found < 0)
            return bad("WCACHE_LOG", v, "error, warn, info or debug");
        cfg->log_level = found;
    }
    if ((v = get("WCACHE_DISABLE"))) {
        if (parse_bool(v, &b))
            return bad("WCACHE_DISABLE", v, "0 or 1");
        if (b)
            return 0;
    }
    if ((v = get("WCACHE_SIZE")) && *v) {
        if (parse_size(v, &n) || n < (256u << 10) || n > (1ull << 40))
            return bad("WCACHE_SIZE", v, SIZE_HELP ", from 256K to 1T");
        cfg->cache.size = n;
    }
    uint64_t size = cfg->cache.size ? cfg->cache.size : 64u << 20;
    if ((v = get("WCACHE_DIRTY")) && *v) {
        if (parse_size(v, &n) || n < WC_PAGE_SIZE || n > size)
            return bad("WCACHE_DIRTY", v,
                       SIZE_HELP ", from 4K to WCACHE_SIZE");
        cfg->cache.dirty = n;
    }
    if ((v = get("WCACHE_FLUSH_MS")) && *v) {
        if (parse_uint(v, 86400000, &n) || n < 1)
            return bad("WCACHE_FLUSH_MS", v,
                       "milliseconds, from 1 to 86400000");
        cfg->flush_ms = n;
    }
    if ((v = get("WCACHE_BYPASS")) && *v) {
        if (parse_size(v, &n) || n < 1 || n > WC_MAX_RW_COUNT)
            return bad("WCACHE_BYPASS", v,
                       SIZE_HELP ", from 1 to 2147479552 (the kernel's "
                       "largest write)");
        cfg->cache.bypass = n;
    }
    if ((v = get("WCACHE_DIR")) && *v) {
        if (v[0] != '/' || copy(cfg->dir, sizeof cfg->dir, v) ||
            !isdir(v))
            return bad("WCACHE_DIR", v, "the absolute path of an existing "
                       "directory, shorter than 512");
        cfg->cache.dir = cfg->dir;
    }
    if ((v = get("WCACHE_INCLUDE")) && *v)
        if (copy(cfg->include, sizeof cfg->include, v))
            return bad("WCACHE_INCLUDE", v,
                       "':'-separated fnmatch patterns, shorter than 1024");
    if ((v = get("WCACHE_EXCLUDE")) && *v)
        if (copy(cfg->exclude, sizeof cfg->exclude, v))
            return bad("WCACHE_EXCLUDE", v,
                       "':'-separated fnmatch patterns, shorter than 1024");
    if ((v = get("WCACHE_MIN_WRITES")) && *v) {
        if (parse_uint(v, 1000000, &n))
            return bad("WCACHE_MIN_WRITES", v,
                       "a count of writes, from 0 to 1000000");
        cfg->min_writes = (int)n;
    }
    if ((v = get("WCACHE_SETUP_US")) && *v) {
        if (parse_uint(v, 10000000, &n))
            return bad("WCACHE_SETUP_US", v,
                       "microseconds, from 0 to 10000000");
        cfg->setup_ns = n * 1000;
    }
    if ((v = get("WCACHE_BACKGROUND_NS")) && *v) {
        if (parse_uint(v, 1000000000, &n))
            return bad("WCACHE_BACKGROUND_NS", v,
                       "nanoseconds a page, from 0 (always) to 1000000000");
        cfg->cache.bg_page_ns = n ? (long)n : -1;
    }
    if ((v = get("WCACHE_INHERITED"))) {
        if (parse_bool(v, &cfg->inherited))
            return bad("WCACHE_INHERITED", v, "0 or 1");
    }
    if ((v = get("WCACHE_GUARD"))) {
        if (parse_bool(v, &cfg->guard))
            return bad("WCACHE_GUARD", v, "0 or 1");
    }
    if ((v = get("WCACHE_STATS")) && *v && strcmp(v, "0")) {
        if (!strcmp(v, "1")) {
            cfg->stats = 1;
        } else {
            /* Absolute: a relative one was taken relative to each
             * process's directory at its exit (WCACHE_STATS=true wrote a
             * file "true" wherever a process of the run ended; `wcache
             * --stats FILE` makes FILE absolute itself). */
            if (v[0] != '/' ||
                copy(cfg->stats_path, sizeof cfg->stats_path, v))
                return bad("WCACHE_STATS", v,
                           "0, 1 (stderr) or an absolute file path shorter "
                           "than 512");
            cfg->stats = 2;
        }
    }
    if ((v = get("WCACHE_STATS_RAW")) && *v)
        if (v[0] != '/' || copy(cfg->stats_raw, sizeof cfg->stats_raw, v))
            return bad("WCACHE_STATS_RAW", v,
                       "an absolute file path shorter than 512");
    return 1;
}

