/*
 * cli_recover.c - `wcache ls [DIR]`, `wcache recover [--dry-run] [DIR]`,
 * and the guard (`wcache __guard PATH`, started by the shim, guard.c).
 *
 * Invariants:
 *   (1) Only backing files named cache.<pid>.<nonce> in the caller's own
 *       per-user directory (<base>/wcache-<uid>, or DIR itself) are read;
 *       each is handed to wc_replay (cache/replay.c), which refuses files
 *       of other users and validates everything.
 *   (2) recover exits 0 when everything of dead processes was written
 *       back (in place or into a recovery file), 1 when anything could not
 *       be (the backing file is then kept), 2 on a usage error.
 *   (3) This binary is never under the shim: wc_sys holds libc's own
 *       functions (fill_sys).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cache/replay.h"
#include "wcache/sys.h"

int wc_cli_recover(int argc, char **argv);

static void fill_sys(void)
{
    void **slot = (void **)&wc_sys;
    for (size_t i = 0; i < WC_SYS_COUNT; i++)
        slot[i] = dlsym(RTLD_DEFAULT, wc_sys_names[i]);
}

/* The per-user directory under base (or base itself when it is one). */
static int user_dir(const char *base, char *out, size_t cap)
{
    struct stat st;
    snprintf(out, cap, "%s/wcache-%u", base, (unsigned)getuid());
    if (lstat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    const char *slash = strrchr(base, '/');
    char want[32];
    snprintf(want, sizeof want, "wcache-%u", (unsigned)getuid());
    if (strcmp(slash ? slash + 1 : base, want) == 0) {
        snprintf(out, cap, "%s", base);
        return 0;
    }
    return -1;
}

/* Every per-user directory to look in: DIR, or the engine's chain. */
static int dirs(const char *given, char out[][PATH_MAX], int max)
{
    int n = 0;
    if (given)
        return user_dir(given, out[0], PATH_MAX) == 0;
    const char *env = getenv("WCACHE_DIR"), *tmp = getenv("TMPDIR");
    const char *chain[] = {env, "/dev/shm", tmp, "/tmp"};
    for (size_t i = 0; i < sizeof chain / sizeof *chain && n < max; i++) {
        if (!chain[i] || !*chain[i])
            continue;
        char d[PATH_MAX];
        if (user_dir(chain[i], d, sizeof d) != 0)
            continue;
        int dup = 0;
        for (int k = 0; k < n; k++)
            dup |= strcmp(out[k], d) == 0;
        if (!dup)
            snprintf(out[n++], PATH_MAX, "%s", d);
    }
    return n;
}

static int is_store_name(const char *name)
{
    unsigned pid, nonce;
    char tail;
    return sscanf(name, "cache.%u.%8x%c", &pid, &nonce, &tail) == 2;
}

static int run(const char *given, int flags)
{
    char d[4][PATH_MAX];
    int nd = dirs(given, d, 4), status = 0, seen = 0;
    if (given && nd == 0) {
        fprintf(stderr, "wcache: %s: no wcache-%u directory there\n", given,
                (unsigned)getuid());
        return 1;
    }
    for (int i = 0; i < nd; i++) {
        DIR *dir = opendir(d[i]);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (!is_store_name(e->d_name))
                continue;
            char path[4 * PATH_MAX + 300];
            snprintf(path, sizeof path, "%s/%s", d[i], e->d_name);
            struct wc_rp_result res;
            seen++;
            if (flags & WC_RP_LIST) {
                /* Header line first; the files follow from wc_replay. */
                int r = wc_replay(path, WC_RP_LIST | WC_RP_QUIET, -1, &res);
                if (r < 0) {
                    printf("%s: unreadable (see wcache recover)\n", path);
                    status = 1;
                    continue;
                }
                printf("%s pid %lld %s %llu bytes in %u files\n", path,
                       (long long)res.pid, res.alive ? "alive" : "dead",
                       (unsigned long long)res.bytes, res.files);
                fflush(stdout);
                wc_replay(path, WC_RP_LIST | WC_RP_QUIET, 1, &res);
                continue;
            }
            int r = wc_replay(path, flags, 2, &res);
            if (r < 0 || res.failed)
                status = 1;
            else if (!res.alive && !(flags & WC_RP_DRY))
                printf("%s: %s (process %lld: %llu bytes in %u files)\n",
                       path, res.removed ? "replayed and removed" : "kept",
                       (long long)res.pid, (unsigned long long)res.bytes,
                       res.files);
        }
        closedir(dir);
    }
    if (!seen && !(flags & WC_RP_LIST))
        printf("wcache: no backing files found\n");
    return status;
}

/* The guard: wait for the owner of PATH to die (its lock), replay, and
 * keep a log beside the backing file. Never under the shim, holds no
 * descriptor of the program (guard.c closed them all before exec). */
static int guard(const char *path, int fd)
{
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s", path);
    char *slash = strrchr(log, '/');
    if (slash)
        snprintf(slash + 1, sizeof log - (size_t)(slash + 1 - log),
                 "guard.log");
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
                            O_CLOEXEC, 0600);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    struct wc_rp_result res;
    int r = wc_replay_fd(fd, path, WC_RP_WAIT | WC_RP_QUIET, lfd, &res);
    if ((r < 0 || res.failed) && lfd >= 0) {
        dprintf(lfd, "wcache guard: %s kept: `wcache recover` retries it\n",
                path);
    }
    /* The terminal, if the program had one, hears of data set aside. */
    if ((res.aside || res.failed) && isatty(2))
        fprintf(stderr, "wcache: process %lld died with unwritten data: "
                "see %s\n", (long long)res.pid, log);
    return r < 0 || res.failed;
}

int wc_cli_recover(int argc, char **argv)
{
    fill_sys();
    const char *cmd = argv[0], *given = NULL;
    int flags = 0;
    if (!strcmp(cmd, "__guard"))
        return argc == 3 ? guard(argv[1], atoi(argv[2])) : 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(cmd, "recover") && !strcmp(argv[i], "--dry-run"))
            flags |= WC_RP_DRY;
        else if (argv[i][0] == '-' || given) {
            fprintf(stderr, "usage: wcache ls [DIR]\n"
                    "       wcache recover [--dry-run] [DIR]\n");
            return 2;
        } else
            given = argv[i];
    }
    if (!strcmp(cmd, "ls"))
        flags = WC_RP_LIST;
    return run(given, flags);
}
