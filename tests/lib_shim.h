/*
 * lib_shim.h - helpers for the tests of the preloaded shim (test_shim_*.c).
 *
 * The shim tests never link the shim: they run programs (tests/prog_*.c,
 * Debian tools, /bin/sh scripts) once without and once with
 * LD_PRELOAD=WCT_BUILD_DIR/libwcache.so and compare what the programs print
 * and what the files hold afterwards, read by the test process itself,
 * which is never under the shim. The kernel run is the expected answer.
 *
 * The hash and the status field below are header-only so that the
 * stand-alone programs (tests/prog_*.c, built from one source file each)
 * can use them too.
 */
#ifndef WCT_LIB_SHIM_H
#define WCT_LIB_SHIM_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef WCT_BUILD_DIR
#define WCT_BUILD_DIR "build"
#endif
#ifndef WCT_SRC_DIR
#define WCT_SRC_DIR "."
#endif

#define WCT_SHIM_SO WCT_BUILD_DIR "/libwcache.so"
#define WCT_PROG(name) WCT_BUILD_DIR "/tests/" name

/* FNV-1a, 64 bits: enough to tell two byte strings apart in a transcript. */
/* SIGALRM every `usec` microseconds to `handler` (SA_RESTART), for the
 * programs that interrupt their own writes; usec 0 stops the timer (the
 * handler stays). */
static inline void wct_alarms(void (*handler)(int), long usec)
{
    if (handler) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
    }
    struct itimerval it = {{0, usec}, {0, usec}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A daemon's way with `sig`: a handler set (h), the signal kept blocked,
 * to be taken with sigtimedwait or a signalfd (shim/flusher.c (2)). */
static inline void wct_handle_blocked(int sig, void (*h)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    sigaction(sig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

/* perror(what), then the exit status of a test program that failed. */
static inline int wct_fail(const char *what)
{
    perror(what);
    return 1;
}

/* For a program whose child must die inside a call that blocks: a helper
 * process that reads a pid from `rd` (a pipe's read end), waits `usec`,
 * and kills that process with SIGKILL. The helper's pid, or -1. */
static inline pid_t wct_killer(int rd, long usec)
{
    pid_t k = fork();
    if (k == 0) {
        pid_t victim;
        if (read(rd, &victim, sizeof victim) != sizeof victim)
            _exit(1);
        usleep((useconds_t)usec);
        kill(victim, SIGKILL);
        _exit(0);
    }
    return k;
}

/* Reap child `pid` and the helper `killer`: 1 when the child was killed
 * by SIGKILL (else its status on stderr, and 0). */
static inline int wct_killed(pid_t pid, pid_t killer)
{
    int st = 0;
    int ok = waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) &&
             WTERMSIG(st) == SIGKILL;
    if (!ok)
        fprintf(stderr, "child: status %#x\n", st);
    waitpid(killer, NULL, 0);
    return ok;
}

static inline uint64_t wct_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* A number field of this process's /proc/self/status ("Threads",
 * "FDSize": the kernel's descriptor table size), or -1. */
static inline long wct_status_field(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long n = -1;
    size_t len = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, name, len) && line[len] == ':') {
            n = strtol(line + len + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return n;
}

/* ---- scratch directories --------------------------------------------- */

/* A fresh 0700 directory under $TMPDIR (else /tmp), "wct-<tag>-XXXXXX".
 * Returns a malloc'd path; fails the test when it cannot be made. */
char *wct_scratch(const char *tag);

/* Remove `dir` and everything below it (no symlinks followed).
 * Returns 0 or -1 with errno set. Ignores a NULL or missing dir. */
int wct_rmtree(const char *dir);

/* The crash guards (`wcache __guard DIR`) running now whose DIR is `dir`,
 * or with `under` anywhere below it: their count, and up to `max` of
 * their pids in pids. */
int wct_guards(const char *dir, int under, pid_t *pids, int max);

/* Remove every directory wct_scratch() made in this process, after
 * stopping the crash guards that watch a store directory under one (a
 * lingering guard's replay wrote into a directory the cleanup had
 * emptied). Call it before cr_skip_test(): Criterion runs no .fini after
 * a skip. */
void wct_scratch_cleanup(void);

/* ---- environment ------------------------------------------------------ */

/* Fail the test (message names `make`) unless build/libwcache.so exists. */
void wct_require_shim(void);

/* Fail the test unless build/tests/<name> exists. */
void wct_require_prog(const char *path);

/* A program from Debian that a test needs: found in PATH -> 1. Missing:
 * under CI=true the test fails with a message naming the package;
 * otherwise the test is skipped (cr_skip) and this does not return. */
void wct_require_tool(const char *tool, const char *debian_package);

/* 1 when WCT_LONG=1 (make check-long). */
int wct_shim_long(void);

/* ---- running programs ------------------------------------------------- */

/* Called for each complete line the child writes on stdout (without the
 * newline), with the write end of the child's stdin to answer on. */
typedef void (*wct_line_fn)(void *ctx, const char *line, int reply_fd);

struct wct_spec {
    const char *const *argv;   /* argv[0] is looked up in PATH */
    const char *const *env;    /* extra "NAME=value" entries, or NULL */
    int shim;                  /* 1: LD_PRELOAD=WCT_SHIM_SO */
    const char *cwd;           /* NULL: inherit */
    const char *stdout_path;   /* NULL: capture into wct_result.out */
    double timeout_s;          /* 0: 60 s; then the process group is killed */
    wct_line_fn on_line;       /* NULL: stdin is /dev/null */
    void *ctx;
};

struct wct_result {
    int status;                /* wait status; valid unless timed_out */
    int timed_out;
    char *out;                 /* stdout, NUL-terminated (malloc'd) */
    size_t out_len;
    char *err;                 /* stderr, NUL-terminated (malloc'd) */
    size_t err_len;
    double seconds;            /* wall time */
};

/*
 * Run a program to completion. The environment is the test's own minus
 * LD_PRELOAD and every WCACHE_* variable, plus LD_PRELOAD when `shim`, plus
 * `env`. The child leads a new process group; on timeout the whole group
 * is killed. Returns 0, or -1 when the program could not be started
 * (errno set). Output is collected until the child exits (descendants that
 * keep the pipes open, such as a crash guard, do not hold us up).
 */
int wct_run(const struct wct_spec *spec, struct wct_result *res /* OUT */);

void wct_result_free(struct wct_result *res);

/* "exit 3", "signal 9", "timed out": for messages. Static buffer. */
const char *wct_status_str(const struct wct_result *res);

/* 1 when the program ran to a normal exit with status 0. */
int wct_ok(const struct wct_result *res);

/* Run `/bin/sh -c script` in `cwd`, otherwise as wct_run. */
int wct_sh(int shim, const char *cwd, const char *const *env,
           double timeout_s, struct wct_result *res /* OUT */,
           const char *script);

/* ---- files ------------------------------------------------------------ */

/* Whole content of `path`; NULL (errno set) when it cannot be read.
 * *len receives the size. The buffer is NUL-terminated. */
char *wct_slurp(const char *path, size_t *len /* OUT */);

/* Write `len` bytes to `path` (created 0644 or truncated). 0 or -1. */
int wct_spit(const char *path, const void *buf, size_t len);

/* Deterministic pseudo-random bytes (xorshift seeded by `seed`). */
void wct_fill(void *buf, size_t len, uint64_t seed);

/*
 * A listing of the tree under `dir`: one line per entry, sorted by path,
 * with type, permissions, size, content hash (files), target (symlinks)
 * and, when `mtimes`, the modification time in nanoseconds. Two trees are
 * identical when their listings are. Returns a malloc'd string.
 */
char *wct_tree_listing(const char *dir, int mtimes);

/* The shim's store directory for WCACHE_DIR=dir (dir/wcache-UID), and the
 * backing files (cache.*) left there. */
void wct_store_dir(const char *dir, char *out, size_t cap);
int wct_stores_left(const char *dir);

/* First differing line of two texts, with a little context, for a failure
 * message. Returns a malloc'd string ("" when equal). */
char *wct_first_diff(const char *a, const char *b);

#endif
