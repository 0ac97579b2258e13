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
#include "kcall.h"

struct wc_shim_config wc_cfg = {
    .flush_ms = 1000,
    .inherited = 1,
    .min_writes = 8,
    .setup_ns = 500000,
    .guard = 1,
    .log_level = WC_LOG_WARN,
};

WC_HOT
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
    wc_k_write(2, buf, (size_t)n);
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
        wc_k_write(2, buf, (size_t)n < sizeof buf ? (size_t)n
                                                   : sizeof buf - 1);
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return wc_k_stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

WC_ONCE
static const char *env_get(const char *name)
{
    return getenv(name);
}

WC_ONCE
int wc_env_load(void)
{
    return wc_config_load(&wc_cfg, env_get, is_dir, bad);
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

WC_HOT
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
