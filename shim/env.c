/*
 * env.c - the environment variables of CONTRACT.md section 7, validated,
 * and the shim's one logging function.
 *
 * Invariants:
 *   (1) wc_env_load() runs once, in the constructor, before any caching.
 *   (2) A bad value produces exactly one line on stderr naming the variable,
 *       the value and what is accepted; the shim then runs pass-through.
 *       Nothing here aborts or changes the exit status.
 *   (3) Nothing here allocates: values are copied into fixed buffers in
 *       wc_cfg (too long a value is a bad value).
 */
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

struct wc_shim_config wc_cfg = {
    .flush_ms = 1000,
    .inherited = 1,
    .guard = 1,
    .log_level = WC_LOG_WARN,
};

void wc_log(int level, const char *fmt, ...)
{
    if (level > wc_cfg.log_level)
        return;
    char buf[512];
    int e = errno;
    int n = snprintf(buf, sizeof buf, "wcache[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof buf)
        n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf - 1)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    REAL(write)(2, buf, (size_t)n);
    errno = e;
}

/* One line for a bad value. Always printed (it is the one message a user
 * must see), whatever WCACHE_LOG says. */
static int bad(const char *var, const char *val, const char *accepted)
{
    char buf[768];
    int n = snprintf(buf, sizeof buf,
                     "wcache: %s='%.200s' is not valid (accepted: %s); "
                     "running without the cache\n", var, val, accepted);
    if (n > 0)
        REAL(write)(2, buf, (size_t)n < sizeof buf ? (size_t)n
                                                   : sizeof buf - 1);
    return 0;
}

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

int wc_env_load(void)
{
    const char *v;
    int b;
    uint64_t n;

    /* WCACHE_LOG first, so that later messages obey it. */
    if ((v = getenv("WCACHE_LOG")) && *v) {
        static const char *const lv[] = {"error", "warn", "info", "debug"};
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, lv[i]))
                found = i;
        if (found < 0)
            return bad("WCACHE_LOG", v, "error, warn, info or debug");
        wc_cfg.log_level = found;
    }
    if ((v = getenv("WCACHE_DISABLE"))) {
        if (parse_bool(v, &b))
            return bad("WCACHE_DISABLE", v, "0 or 1");
        if (b)
            return 0;
    }
    if ((v = getenv("WCACHE_SIZE")) && *v) {
        if (parse_size(v, &n) || n < (256u << 10) || n > (1ull << 40))
            return bad("WCACHE_SIZE", v, SIZE_HELP ", from 256K to 1T");
        wc_cfg.cache.size = n;
    }
    uint64_t size = wc_cfg.cache.size ? wc_cfg.cache.size : 64u << 20;
    if ((v = getenv("WCACHE_DIRTY")) && *v) {
        if (parse_size(v, &n) || n < WC_PAGE_SIZE || n > size)
            return bad("WCACHE_DIRTY", v,
                       SIZE_HELP ", from 4K to WCACHE_SIZE");
        wc_cfg.cache.dirty = n;
    }
    if ((v = getenv("WCACHE_FLUSH_MS")) && *v) {
        if (parse_uint(v, 86400000, &n) || n < 1)
            return bad("WCACHE_FLUSH_MS", v,
                       "milliseconds, from 1 to 86400000");
        wc_cfg.flush_ms = n;
    }
    if ((v = getenv("WCACHE_BYPASS")) && *v) {
        if (parse_size(v, &n) || n < 1 || n > WC_MAX_RW_COUNT)
            return bad("WCACHE_BYPASS", v, SIZE_HELP ", at least 1");
        wc_cfg.cache.bypass = n;
    }
    if ((v = getenv("WCACHE_DIR")) && *v) {
        struct stat st;
        if (v[0] != '/' || copy(wc_cfg.dir, sizeof wc_cfg.dir, v) ||
            REAL(stat)(v, &st) != 0 || !S_ISDIR(st.st_mode))
            return bad("WCACHE_DIR", v, "the absolute path of an existing "
                       "directory, shorter than 512");
        wc_cfg.cache.dir = wc_cfg.dir;
    }
    if ((v = getenv("WCACHE_INCLUDE")) && *v)
        if (copy(wc_cfg.include, sizeof wc_cfg.include, v))
            return bad("WCACHE_INCLUDE", v,
                       "':'-separated fnmatch patterns, shorter than 1024");
    if ((v = getenv("WCACHE_EXCLUDE")) && *v)
        if (copy(wc_cfg.exclude, sizeof wc_cfg.exclude, v))
            return bad("WCACHE_EXCLUDE", v,
                       "':'-separated fnmatch patterns, shorter than 1024");
    if ((v = getenv("WCACHE_INHERITED"))) {
        if (parse_bool(v, &wc_cfg.inherited))
            return bad("WCACHE_INHERITED", v, "0 or 1");
    }
    if ((v = getenv("WCACHE_GUARD"))) {
        if (parse_bool(v, &wc_cfg.guard))
            return bad("WCACHE_GUARD", v, "0 or 1");
    }
    if ((v = getenv("WCACHE_STATS")) && *v && strcmp(v, "0")) {
        if (!strcmp(v, "1")) {
            wc_cfg.stats = 1;
        } else {
            if (copy(wc_cfg.stats_path, sizeof wc_cfg.stats_path, v))
                return bad("WCACHE_STATS", v,
                           "0, 1 (stderr) or a file path shorter than 512");
            wc_cfg.stats = 2;
        }
    }
    return 1;
}

/* Match `path` against a ':'-separated list of fnmatch patterns. */
static int match_list(const char *list, const char *path)
{
    char pat[1024];
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && n < sizeof pat) {
            memcpy(pat, p, n);
            pat[n] = 0;
            if (fnmatch(pat, path, 0) == 0)
                return 1;
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return 0;
}

int wc_env_path_ok(int dirfd, const char *path)
{
    if (!wc_cfg.include[0] && !wc_cfg.exclude[0])
        return 1;
    if (!path)
        return 0;
    char abs[PATH_MAX + 1];
    const char *p = path;
    if (path[0] != '/') {
        size_t n = 0;
        if (dirfd == AT_FDCWD) {
            if (!REAL(getcwd)(abs, sizeof abs))
                return 0;
            n = strlen(abs);
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t r = REAL(readlink)(link, abs, sizeof abs - 1);
            if (r <= 0)
                return 0;
            n = (size_t)r;
        }
        size_t pl = strlen(path);
        if (n + 1 + pl >= sizeof abs)
            return 0;
        if (n == 0 || abs[n - 1] != '/')
            abs[n++] = '/';
        memcpy(abs + n, path, pl + 1);
        p = abs;
    }
    if (wc_cfg.include[0] && !match_list(wc_cfg.include, p))
        return 0;
    if (wc_cfg.exclude[0] && match_list(wc_cfg.exclude, p))
        return 0;
    return 1;
}
