/*
 * lib_shim.c - helpers for the tests of the preloaded shim; see lib_shim.h.
 *
 * Linked into every test binary: no main(), every external name wct_.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib_shim.h"

extern char **environ;

/* ---- scratch directories --------------------------------------------- */

/* What wct_scratch() made, for wct_scratch_cleanup(). */
static char *scratch_made[16];

char *wct_scratch(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/wct-%s-XXXXXX", base, tag) > 0);
    cr_assert(mkdtemp(path) != NULL, "mkdtemp %s: %s", path, strerror(errno));
    for (size_t i = 0; i < sizeof scratch_made / sizeof *scratch_made; i++)
        if (!scratch_made[i]) {
            scratch_made[i] = strdup(path);
            break;
        }
    return path;
}

/* Is `pid` gone (or a zombie)? */
static int gone(long pid)
{
    char p[64], st[512] = {0};
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    ssize_t n = read(fd, st, sizeof st - 1);
    close(fd);
    const char *close_p = n > 0 ? strrchr(st, ')') : NULL;
    return !close_p || close_p[1] != ' ' || close_p[2] == 'Z';
}

int wct_guards(const char *dir, int under, pid_t *pids, int max)
{
    size_t len = strlen(dir);
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        long pid = strtol(e->d_name, NULL, 10);
        if (pid <= 0)
            continue;
        char p[64], cmd[4600];
        snprintf(p, sizeof p, "/proc/%ld/cmdline", pid);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t k = read(fd, cmd, sizeof cmd - 1);
        close(fd);
        if (k <= 0)
            continue;
        cmd[k] = 0;
        /* "wcache\0__guard\0DIR\0" */
        const char *arg1 = cmd + strlen(cmd) + 1;
        if (arg1 >= cmd + k || strcmp(arg1, "__guard"))
            continue;
        const char *arg2 = arg1 + strlen(arg1) + 1;
        if (arg2 >= cmd + k || strncmp(arg2, dir, len) ||
            !(arg2[len] == 0 || (under && arg2[len] == '/')))
            continue;
        if (n < max)
            pids[n] = (pid_t)pid;
        n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* Stop the crash guards that watch a store directory under `dir`: a
 * guard outlives the programs it watches (it lingers, shim/cli_recover.c
 * G3), and one that replayed a dead program's data after the test's
 * cleanup wrote a recovered file into the scratch directory the cleanup
 * had just emptied (a mount point: fuse_failfs gone, "cannot open it"),
 * leaving it behind. SIGKILL, then up to 2 s for each to end. */
static void stop_guards(const char *dir)
{
    pid_t pids[64];
    int n = wct_guards(dir, 1, pids, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (kill(pids[i], SIGKILL) == 0)
            for (int t = 0; t < 200 && !gone(pids[i]); t++)
                usleep(10000);
}

void wct_scratch_cleanup(void)
{
    for (size_t i = 0; i < sizeof scratch_made / sizeof *scratch_made; i++)
        if (scratch_made[i]) {
            stop_guards(scratch_made[i]);
            wct_rmtree(scratch_made[i]);
            free(scratch_made[i]);
            scratch_made[i] = NULL;
        }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st; (void)ftw;
    if (flag == FTW_DP)
        return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
    return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int wct_rmtree(const char *dir)
{
    if (!dir)
        return 0;
    struct stat st;
    if (lstat(dir, &st) < 0)
        return errno == ENOENT ? 0 : -1;
    /* Make every directory writable first: tests create read-only ones. */
    return nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* ---- environment ------------------------------------------------------ */

void wct_require_shim(void)
{
    cr_assert(access(WCT_SHIM_SO, R_OK) == 0,
              "%s is missing: run `make` first (does the shim build?)",
              WCT_SHIM_SO);
}

void wct_require_prog(const char *path)
{
    cr_assert(access(path, X_OK) == 0,
              "%s is missing: `make test` builds it", path);
}

static int in_path(const char *tool)
{
    const char *p = getenv("PATH");
    if (!p)
        p = "/usr/bin:/bin";
    char buf[4096];
    while (*p) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, tool);
        if (access(buf, X_OK) == 0)
            return 1;
        p += n;
        if (*p == ':')
            p++;
    }
    return 0;
}

void wct_require_tool(const char *tool, const char *debian_package)
{
    if (in_path(tool))
        return;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0)
        cr_assert_fail("%s is not installed (Debian package %s); .ci/run "
                       "must install it", tool, debian_package);
    wct_scratch_cleanup();     /* no .fini runs after a skip */
    cr_skip_test("%s is not installed: apt-get install %s", tool,
                 debian_package);
}

int wct_shim_long(void)
{
    const char *s = getenv("WCT_LONG");
    return s && strcmp(s, "1") == 0;
}

/* ---- running programs ------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The child's environment: ours without LD_PRELOAD and WCACHE_*, plus.
 * The library in it, or asked for in spec->env, caches files from their
 * open (WCACHE_MIN_WRITES=0) and makes its cache at once
 * (WCACHE_SETUP_US=0), so that a test of the cache's rules can make few
 * writes; a test of the default sets them itself ("" is the default).
 * With WCT_BACKGROUND=1 in the test's own environment (make test's second
 * pass of the shim suites), every stream's write-back goes to the flusher
 * thread (WCACHE_BACKGROUND_NS=0), which fast local file systems would
 * otherwise never see (cache/async.c). */
static char **child_env(const struct wct_spec *spec)
{
    size_t n = 0, extra = 0;
    int preload = spec->shim, min_given = 0, setup_given = 0, bg_given = 0;
    const char *bg = getenv("WCT_BACKGROUND");
    while (environ[n])
        n++;
    while (spec->env && spec->env[extra]) {
        if (!strncmp(spec->env[extra], "LD_PRELOAD=", 11))
            preload = 1;
        if (!strncmp(spec->env[extra], "WCACHE_MIN_WRITES=", 18))
            min_given = 1;
        if (!strncmp(spec->env[extra], "WCACHE_SETUP_US=", 16))
            setup_given = 1;
        if (!strncmp(spec->env[extra], "WCACHE_BACKGROUND_NS=", 21))
            bg_given = 1;
        extra++;
    }
    char **env = calloc(n + extra + 5, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
            strncmp(environ[i], "WCACHE_", 7) == 0)
            continue;
        env[k++] = environ[i];
    }
    if (spec->shim)
        env[k++] = (char *)"LD_PRELOAD=" WCT_SHIM_SO;
    for (size_t i = 0; i < extra; i++)
        env[k++] = (char *)spec->env[i];
    if (preload && !min_given)
        env[k++] = (char *)"WCACHE_MIN_WRITES=0";
    if (preload && !setup_given)
        env[k++] = (char *)"WCACHE_SETUP_US=0";
    if (preload && !bg_given && bg && !strcmp(bg, "1"))
        env[k++] = (char *)"WCACHE_BACKGROUND_NS=0";
    env[k] = NULL;
    return env;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p != NULL);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

/* Read what `fd` has; hand complete lines to the callback.
 * Returns 1 after reading, 0 at EOF or error, 2 when nothing was ready. */
static int pump(int fd, struct buf *b, size_t *line_start,
                const struct wct_spec *spec, int reply_fd)
{
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 2;
    if (n <= 0)
        return 0;
    buf_add(b, tmp, (size_t)n);
    if (spec->on_line) {
        char *nl;
        while ((nl = memchr(b->p + *line_start, '\n',
                            b->len - *line_start)) != NULL) {
            size_t len = (size_t)(nl - (b->p + *line_start));
            char *line = strndup(b->p + *line_start, len);
            *line_start += len + 1;
            spec->on_line(spec->ctx, line, reply_fd);
            free(line);
        }
    }
    return 1;
}

int wct_run(const struct wct_spec *spec, struct wct_result *res)
{
    memset(res, 0, sizeof *res);
    int out[2], err[2], in[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        return -1;
    if (spec->on_line && pipe2(in, O_CLOEXEC) < 0)
        return -1;
    char **env = child_env(spec);
    double start = now_s();
    double timeout = spec->timeout_s > 0 ? spec->timeout_s : 60;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGPIPE, SIG_DFL);   /* ignored dispositions survive exec */
        int devnull = open("/dev/null", O_RDONLY);
        dup2(in[0] >= 0 ? in[0] : devnull, 0);
        if (spec->stdout_path) {
            int fd = open(spec->stdout_path,
                          O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                _exit(126);
            dup2(fd, 1);
        } else {
            dup2(out[1], 1);
        }
        dup2(err[1], 2);
        /* Nothing else of the test process reaches the program: not the
         * /dev/null above, nor what the test runner inherited (a program
         * that calls fchmod on numbers it did not open, as prog_fdlimit
         * does, changed /dev/null's mode to 0600 through one). */
        syscall(SYS_close_range, 3u, ~0u, 0u);
        if (spec->cwd && chdir(spec->cwd) < 0)
            _exit(126);
        environ = env;
        execvp(spec->argv[0], (char *const *)spec->argv);
        dprintf(2, "wct_run: exec %s: %s\n", spec->argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(out[1]);
    close(err[1]);
    if (in[0] >= 0)
        close(in[0]);
    free(env);
    signal(SIGPIPE, SIG_IGN);

    struct buf bo = {0}, be = {0};
    buf_add(&bo, "", 0);
    buf_add(&be, "", 0);
    size_t line_start = 0, dummy = 0;
    int open_out = 1, open_err = 1, exited = 0, status = 0;
    struct wct_spec nolines = *spec;
    nolines.on_line = NULL;
    while (!exited) {
        struct pollfd pf[2] = {{open_out ? out[0] : -1, POLLIN, 0},
                               {open_err ? err[0] : -1, POLLIN, 0}};
        poll(pf, 2, 20);
        if (pf[0].revents && !pump(out[0], &bo, &line_start, spec, in[1]))
            open_out = 0;
        if (pf[1].revents && !pump(err[0], &be, &dummy, &nolines, -1))
            open_err = 0;
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            exited = 1;
        } else if (now_s() - start > timeout) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            res->timed_out = 1;
            exited = 1;
        }
    }
    /* Drain what the child left, without waiting for descendants. */
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    while (open_out && pump(out[0], &bo, &line_start, spec, in[1]) == 1)
        ;
    while (open_err && pump(err[0], &be, &dummy, &nolines, -1) == 1)
        ;
    close(out[0]);
    close(err[0]);
    if (in[1] >= 0)
        close(in[1]);
    res->status = status;
    res->out = bo.p;
    res->out_len = bo.len;
    res->err = be.p;
    res->err_len = be.len;
    res->seconds = now_s() - start;
    return 0;
}

void wct_result_free(struct wct_result *res)
{
    free(res->out);
    free(res->err);
    res->out = res->err = NULL;
}

const char *wct_status_str(const struct wct_result *res)
{
    static char s[64];
    if (res->timed_out)
        snprintf(s, sizeof s, "timed out");
    else if (WIFEXITED(res->status))
        snprintf(s, sizeof s, "exit %d", WEXITSTATUS(res->status));
    else if (WIFSIGNALED(res->status))
        snprintf(s, sizeof s, "signal %d", WTERMSIG(res->status));
    else
        snprintf(s, sizeof s, "status %#x", res->status);
    return s;
}

int wct_ok(const struct wct_result *res)
{
    return !res->timed_out && WIFEXITED(res->status) &&
           WEXITSTATUS(res->status) == 0;
}

int wct_sh(int shim, const char *cwd, const char *const *env,
           double timeout_s, struct wct_result *res, const char *script)
{
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                            .cwd = cwd, .timeout_s = timeout_s};
    return wct_run(&spec, res);
}

/* ---- files ------------------------------------------------------------ */

char *wct_slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct buf b = {0};
    buf_add(&b, "", 0);
    char tmp[65536];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        buf_add(&b, tmp, (size_t)n);
    int e = errno;
    close(fd);
    if (n < 0) {
        free(b.p);
        errno = e;
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.p;
}

int wct_spit(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd);
}

void wct_fill(void *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        if (i % 8 == 0) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        p[i] = (unsigned char)(x >> (8 * (i % 8)));
    }
}

/* nftw has no context pointer: the listing being built. */
static struct buf *listing;
static size_t listing_root;
static int listing_mtimes;

static int list_one(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)flag; (void)ftw;
    char line[8192];
    const char *rel = path + listing_root;
    char mt[64] = "";
    if (listing_mtimes && !S_ISLNK(st->st_mode))
        snprintf(mt, sizeof mt, " mtime=%lld.%09ld",
                 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
    if (S_ISREG(st->st_mode)) {
        size_t len = 0;
        char *data = wct_slurp(path, &len);
        snprintf(line, sizeof line, "%s f %o size=%lld hash=%016llx%s\n",
                 *rel ? rel : ".", st->st_mode & 07777,
                 (long long)st->st_size,
                 data ? (unsigned long long)wct_hash(data, len) : 0ull, mt);
        free(data);
    } else if (S_ISLNK(st->st_mode)) {
        char target[4096] = "";
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0)
            target[n] = 0;
        snprintf(line, sizeof line, "%s l -> %s\n", rel, target);
    } else if (S_ISDIR(st->st_mode)) {
        snprintf(line, sizeof line, "%s d %o%s\n", *rel ? rel : ".",
                 st->st_mode & 07777, *rel ? mt : "");
    } else {
        snprintf(line, sizeof line, "%s other %o\n", rel, st->st_mode);
    }
    buf_add(listing, line, strlen(line));
    return 0;
}

static int cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void wct_store_dir(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/wcache-%u", dir, (unsigned)getuid());
}

int wct_stores_left(const char *dir)
{
    char d[4300];
    wct_store_dir(dir, d, sizeof d);
    DIR *dh = opendir(d);
    if (!dh)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dh)))
        n += strncmp(e->d_name, "cache.", 6) == 0;
    closedir(dh);
    return n;
}

char *wct_tree_listing(const char *dir, int mtimes)
{
    struct buf b = {0};
    buf_add(&b, "", 0);
    listing = &b;
    listing_root = strlen(dir);
    listing_mtimes = mtimes;
    nftw(dir, list_one, 32, FTW_PHYS);
    listing = NULL;
    /* Sort the lines so that directory order does not matter. */
    size_t n = 0;
    for (size_t i = 0; i < b.len; i++)
        n += b.p[i] == '\n';
    char **lines = calloc(n + 1, sizeof *lines);
    size_t k = 0;
    for (char *s = strtok(b.p, "\n"); s; s = strtok(NULL, "\n"))
        lines[k++] = s;
    qsort(lines, k, sizeof *lines, cmp_lines);
    struct buf out = {0};
    buf_add(&out, "", 0);
    for (size_t i = 0; i < k; i++) {
        buf_add(&out, lines[i], strlen(lines[i]));
        buf_add(&out, "\n", 1);
    }
    free(lines);
    free(b.p);
    return out.p;
}

/* Length of the line at `s`. */
static int line_len(const char *s)
{
    const char *e = strchr(s, '\n');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    return n > 400 ? 400 : (int)n;
}

char *wct_first_diff(const char *a, const char *b)
{
    const char *pa = a, *pb = b, *prev = NULL;
    int line = 1;
    while (*pa && *pb) {
        const char *ea = strchr(pa, '\n'), *eb = strchr(pb, '\n');
        size_t la = ea ? (size_t)(ea - pa) : strlen(pa);
        size_t lb = eb ? (size_t)(eb - pb) : strlen(pb);
        if (la != lb || memcmp(pa, pb, la) != 0)
            break;
        prev = pa;
        pa += la + (ea ? 1 : 0);
        pb += lb + (eb ? 1 : 0);
        line++;
    }
    if (!*pa && !*pb)
        return strdup("");
    char *s = NULL;
    const char *ca = *pa ? pa : "<end>", *cb = *pb ? pb : "<end>";
    if (asprintf(&s, "first difference at line %d%s%.*s:\n"
                 "  without shim: %.*s\n  with shim:    %.*s", line,
                 prev ? ", after: " : "", prev ? line_len(prev) : 0,
                 prev ? prev : "", line_len(ca), ca, line_len(cb), cb) < 0)
        return strdup("(diff failed)");
    return s;
}
