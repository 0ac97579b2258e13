/*
 * cli_recover.c - `wcache ls [DIR]`, `wcache recover [--dry-run] [DIR]`,
 * and the guard (`wcache __guard DIR`, started by the shim, guard.c).
 *
 * Invariants:
 *   (1) Only backing files named cache.<pid>.<nonce> in the caller's own
 *       per-user directory (<base>/wcache-<uid>, or DIR itself) are read;
 *       each is handed to wc_replay (cache/replay.c), which refuses files
 *       of other users and validates everything.
 *   (2) recover exits 0 when everything of dead processes was written
 *       back (in place or into a recovery file), 1 when anything could not
 *       be (the backing file is then kept), 125 on a usage error, as
 *       the command's own errors (cli.c (3)); --help prints the usage on
 *       standard output and exits 0.
 *   (3) This binary is never under the shim: wc_sys holds libc's own
 *       functions (fill_sys).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../cache/format.h"
#include "../cache/replay.h"
#include "cli.h"
#include "wcache/clock.h"
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
    const char *chain[4] = {getenv("WCACHE_DIR")};
    size_t nc = 1 + wc_fmt_bases(chain + 1);
    for (size_t i = 0; i < nc && n < max; i++) {
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

/* A backing file recover and ls read: a live one's name, or a kept one's
 * (G6). */
static int is_store_name(const char *name)
{
    int kept;
    return wc_fmt_name_parse(name, &kept) != 0;
}

static int run(const char *given, int flags)
{
    uint64_t own_ns = wc_fmt_mnt_ns(stat);
    char d[4][PATH_MAX];
    int nd = dirs(given, d, 4), status = 0, seen = 0;
    /* A directory named that holds no store is an empty one, as the
     * default directories and WCACHE_DIR are (probe AA F11: 1 one way, 0
     * the other); a name that is no directory is an error. */
    struct stat st;
    if (given && nd == 0 && stat(given, &st) != 0) {
        fprintf(stderr, "wcache: %s: %s\n", given, strerror(errno));
        return 1;
    }
    if (given && nd == 0 && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "wcache: %s: not a directory\n", given);
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
            int sfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                     O_NOCTTY | O_NONBLOCK);
            uint64_t ns = sfd >= 0 ? wc_replay_ns(sfd) : 0;
            if (sfd >= 0)
                close(sfd);
            if (!wc_replay_may_ns(d[i], own_ns, ns)) {      /* (G7) */
                fprintf(stderr, "wcache: %s: made in another mount "
                        "namespace (mnt:[%llu]), whose guard watches it: "
                        "left to it\n", path, (unsigned long long)ns);
                status = 1;
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

/* ---- the guard (`wcache __guard DIR`) ----------------------------------
 *
 * One guard per store directory, shared by every process whose backing
 * file is there (shim/guard.c starts it when none runs): starting a
 * process of its own for each program cost every program that caches a
 * file about a millisecond (an exec and a clone on a 2-core machine).
 *
 *   (G1) The guard holds its lock (flock LOCK_EX) for as long as it
 *        watches; a program, after publishing its backing file, asks for
 *        the lock shared and without waiting: refused means a guard
 *        watches (and will see the file), granted means none does, and
 *        the program starts one. A program's probe holds the lock for a
 *        few microseconds, so a starting guard retries for a while
 *        before concluding that another guard holds it (then it leaves).
 *   (G2) Every SWEEP_MS, and at once when a process it saw alive ends
 *        (a pidfd of each, polled between sweeps: a hint only, the lock
 *        decides; a program restarted by a supervisor after 100 ms found
 *        its dead predecessor's last writes not replayed yet, 150-240 ms
 *        after the kill), the guard tries each backing file's lock without
 *        waiting (store.h (2)): held, its owner lives; free, its owner
 *        died (or exec'd, or exited without removing it) and the file is
 *        replayed as `wcache recover` does (cache/replay.c), logging to
 *        DIR/guard.log. A file that cannot be replayed is kept (logged
 *        once) for `wcache recover` (G6).
 *   (G3) It leaves when its sweeps have found no living owner for
 *        GUARD_LINGER_MS, so that a run of short programs (a
 *        build, a shell script) keeps one guard: it drops the
 *        lock, sweeps once more, and stays (taking the lock again) only
 *        if an owner appeared meanwhile. A program that published before
 *        the drop is seen by the second sweep; one that probes after it
 *        is granted the lock and starts a guard: no file is left
 *        unwatched. Two guards at once (both started, or a second
 *        taking the lock between) are harmless: a replay takes the
 *        file's own lock first.
 *        It is not woken when a backing file appears (inotify did that
 *        at first): woken on the program's CPU, it delayed the program's
 *        first cached write by its sweep, 100-200 us.
 *   (G4) It holds nothing open in DIR but the lock file, chdir("/"), and
 *        tells a program's terminal (its stderr when a sweep first saw
 *        it alive, from /proc) when that program's data had to be set
 *        aside; of a program that died before any sweep saw it, only the
 *        log (DIR/guard.log) tells.
 *   (G5) `wcache -- prog` makes one sweep of the directory prog will
 *        cache in before it starts prog (wc_cli_replay_dead; none with
 *        the guard off or the cache disabled, as by hand): what a
 *        program killed together with its guard left (a cgroup's kill,
 *        an OOM kill of the group: no guard outlives them) reaches the
 *        files before the program that replaces it writes there, as the
 *        kernel would have had it (a probe: a restarted appender's
 *        records landed before the dead one's, 18 of 20 runs). Every
 *        program the shim is loaded in makes the same sweep
 *        (wc_replay_sweep) at start-up (guard.c (9)): this one remains
 *        for a prog the shim does not load into (static, setuid).
 *   (G6) A backing file a replay could not empty (its file's directory
 *        gone, a file system refusing the write, a corrupt file) is
 *        renamed cache.<pid>.<nonce>.kept: no guard and no sweep of
 *        `wcache --` (G5) reads it again, `wcache ls` and `wcache
 *        recover` do (recover removes it once it replays). Kept under its
 *        own name, it was tried again, and logged again, by every guard
 *        started after the last one left (a test's store whose directory
 *        was gone: five lines per program started, a guard.log of 800 KB
 *        in a day). A name that cannot be changed is remembered for the
 *        guard's life, as before.
 *   (G7) A guard watches the backing files of its own mount namespace:
 *        its lock is dir/guard.<ns>.lock (wc_fmt_guard_lock; the program
 *        asks for the one of its namespace, and starts a guard there),
 *        and a dead owner's file whose header names another namespace
 *        (cache/format.h (11)) is left to that namespace's guard while
 *        one holds that namespace's lock (passed by in every sweep,
 *        refused by `wcache recover` with a message): its paths mean what
 *        they say only there. With no guard there (the namespace's
 *        processes killed together, its guard with them: `unshare -m`,
 *        a service's PrivateTmp= under a cgroup's kill), it is replayed
 *        here like our own (wc_replay_may_ns): no one else would, and the
 *        replay's checks (cache/replay.c (4)) write in place only where
 *        the path names the very file here, else aside. Before, such a
 *        file waited for a namespace that would never come back (probe
 *        U: 3 of 3 runs kept none of 9,000 lines; a later namespace that
 *        got the dead one's number replayed it after a restarted
 *        service's records).
 */
#define SWEEP_MS 250
#define GUARD_LINGER_MS 1000    /* with no owner before leaving (G3) */
#define GUARD_MAX 512           /* living owners remembered (terminals) */

struct owner {
    char name[64];              /* cache.<pid>.<nonce> */
    char tty[64];               /* its stderr's terminal, or "" */
    int pidfd;                  /* the pid's pidfd, readable when it ends
                                   (G2); -1: none */
};

struct guard {
    const char *dir;
    uint64_t ns;                /* our mount namespace (G7) */
    struct owner seen[GUARD_MAX], next[GUARD_MAX];
    int nseen, nnext;
    char kept[GUARD_MAX][64];   /* could not be replayed: left alone */
    int nkept;
};

static int is_kept(const struct guard *g, const char *name)
{
    for (int i = 0; i < g->nkept; i++)
        if (!strcmp(g->kept[i], name))
            return 1;
    return 0;
}

/* The terminal of the owner's stderr, learned while it lives. */
static void owner_tty(const char *name, char *tty, size_t cap)
{
    unsigned pid = 0;
    char link[64], buf[256];
    tty[0] = 0;
    if (sscanf(name, "cache.%u.", &pid) != 1)
        return;
    snprintf(link, sizeof link, "/proc/%u/fd/2", pid);
    ssize_t n = readlink(link, buf, sizeof buf - 1);
    if (n <= 0)
        return;
    buf[n] = 0;
    if ((!strncmp(buf, "/dev/pts/", 9) || !strncmp(buf, "/dev/tty", 8)) &&
        (size_t)n < cap)
        memcpy(tty, buf, (size_t)n + 1);
}

static struct owner *find_owner(struct guard *g, const char *name)
{
    for (int i = 0; i < g->nseen; i++)
        if (!strcmp(g->seen[i].name, name))
            return &g->seen[i];
    return NULL;
}

/* Has the process behind pidfd ended? */
static int pidfd_ended(int pidfd)
{
    struct pollfd p = {pidfd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
}

/* A pidfd for a backing file's owner, first seen alive (G2): -1 when the
 * kernel has none to give. */
static int owner_pidfd(const char *name)
{
    unsigned pid = wc_fmt_name_pid(name);
    if (!pid)
        return -1;
    int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
    if (fd >= 0)
        fcntl(fd, F_SETFD, FD_CLOEXEC);
    return fd;
}

/* Between sweeps (G2): SWEEP_MS, or less if a process seen alive ends. */
static void guard_wait(const struct guard *g)
{
    struct pollfd p[GUARD_MAX];
    int n = 0;
    for (int i = 0; i < g->nseen; i++)
        if (g->seen[i].pidfd >= 0)
            p[n++] = (struct pollfd){g->seen[i].pidfd, POLLIN, 0};
    if (n == 0 || poll(p, (nfds_t)n, SWEEP_MS) < 0)
        usleep(SWEEP_MS * 1000);
}

/* A backing file whose owner is gone (fd holds its lock): replay it.
 * name: its entry, shorter than 64 bytes (guard_sweep). */
static void guard_replay(struct guard *g, int fd, const char *path,
                         const char *name)
{
    char log[PATH_MAX + 16];
    int lfd = wc_replay_log_open(g->dir, log, sizeof log);
    struct wc_rp_result res;
    if (wc_replay_dead(fd, path, lfd, &res) == 2 && g->nkept < GUARD_MAX)
        memcpy(g->kept[g->nkept++], name, strlen(name) + 1);   /* (G6) */
    if (lfd >= 0)
        close(lfd);
    /* The terminal, if the program had one, hears of data set aside. */
    const struct owner *o = find_owner(g, name);
    if ((res.aside || res.failed) && o && o->tty[0]) {
        int t = open(o->tty, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (t >= 0) {
            dprintf(t, "wcache: process %lld died with unwritten data: see "
                    "%s\n", (long long)res.pid, log);
            close(t);
        }
    }
}

/* One look at every backing file in the directory (G2): the number whose
 * owner lives, or -1 when the directory is gone. */
static int guard_sweep(struct guard *g)
{
    DIR *dir = opendir(g->dir);
    if (!dir)
        return -1;
    int live = 0;
    g->nnext = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (!wc_fmt_name_pid(e->d_name) || strlen(e->d_name) >= 64 ||
            is_kept(g, e->d_name))      /* (G6) */
            continue;
        char path[PATH_MAX + 80];
        snprintf(path, sizeof path, "%s/%s", g->dir, e->d_name);
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                                O_NONBLOCK);
        if (fd < 0)
            continue;           /* removed meanwhile: a clean exit */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            live++;
            if (g->nnext < GUARD_MAX) {
                struct owner *o = &g->next[g->nnext++];
                struct owner *was = find_owner(g, e->d_name);
                memcpy(o->name, e->d_name, strlen(e->d_name) + 1);
                if (was) {
                    memcpy(o->tty, was->tty, sizeof o->tty);
                    o->pidfd = was->pidfd;      /* taken over */
                    was->pidfd = -1;
                } else {
                    owner_tty(e->d_name, o->tty, sizeof o->tty);
                    o->pidfd = owner_pidfd(e->d_name);
                }
                /* Ended, with the lock held by another (a fork child's
                 * copy of the descriptor, for an instant): the sweeps
                 * tell when it goes. */
                if (o->pidfd >= 0 && pidfd_ended(o->pidfd)) {
                    close(o->pidfd);
                    o->pidfd = -1;
                }
            }
            continue;
        }
        if (!wc_replay_may_ns(g->dir, g->ns, wc_replay_ns(fd))) {
            close(fd);          /* (G7): another namespace's guard's */
            continue;
        }
        guard_replay(g, fd, path, e->d_name);   /* closes fd */
    }
    closedir(dir);
    for (int i = 0; i < g->nseen; i++)      /* owners not seen again */
        if (g->seen[i].pidfd >= 0)
            close(g->seen[i].pidfd);
    memcpy(g->seen, g->next, sizeof g->seen[0] * (size_t)g->nnext);
    g->nseen = g->nnext;
    return live;
}

/* The guard's lock (G1): a program's probe holds it for microseconds, a
 * guard for as long as it runs. */
static int guard_lock(int lfd)
{
    for (int i = 0; i < 200; i++) {
        if (flock(lfd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        usleep(1000);
    }
    return -1;
}

static int guard(const char *dir)
{
    static struct guard g;
    g.dir = dir;
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    /* (G4); refused by a filter the program passed on (guard.c (8)),
     * the guard stays where it started, which only keeps that
     * directory busy. */
    if (chdir("/") != 0 && errno != EPERM && errno != ENOSYS)
        return 1;
    char lock[PATH_MAX + 48];
    g.ns = wc_fmt_mnt_ns(stat);
    if (wc_fmt_guard_lock(lock, sizeof lock, dir, g.ns) != 0)
        return 1;
    int lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 || guard_lock(lfd) != 0)
        return 0;               /* another guard watches */
    uint64_t idle_since = wc_now_ns();  /* or the last living owner */
    for (;;) {
        int live = guard_sweep(&g);
        if (live != 0)
            idle_since = wc_now_ns();
        else if (wc_now_ns() - idle_since >= GUARD_LINGER_MS * 1000000ull) {
            flock(lfd, LOCK_UN);        /* G3 */
            live = guard_sweep(&g);
            if (live <= 0 || flock(lfd, LOCK_EX | LOCK_NB) != 0)
                break;
            idle_since = wc_now_ns();
        }
        if (live < 0)
            break;
        guard_wait(&g);
    }
    return 0;
}

void wc_cli_replay_dead(void)
{
    const char *off = getenv("WCACHE_DISABLE"), *guard = getenv("WCACHE_GUARD");
    if ((off && !strcmp(off, "1")) || (guard && !strcmp(guard, "0")))
        return;                 /* pass-through, or recovery left by hand */
    /* The directory the program's cache will be in (cache/store.c
     * pick_dir): WCACHE_DIR, else the first of the chain it may write. */
    char d[PATH_MAX];
    const char *want = getenv("WCACHE_DIR");
    if (!want || !*want) {
        const char *chain[3];
        size_t n = wc_fmt_bases(chain);
        want = NULL;
        for (size_t i = 0; i < n && !want; i++)
            if (access(chain[i], W_OK | X_OK) == 0)
                want = chain[i];
    }
    if (!want || user_dir(want, d, sizeof d) != 0)
        return;                 /* none there yet: nothing left in it */
    fill_sys();
    wc_replay_sweep(d, wc_fmt_mnt_ns(stat));    /* (G5) */
}

int wc_cli_recover(int argc, char **argv)
{
    fill_sys();
    const char *cmd = argv[0], *given = NULL;
    int flags = 0;
    if (!strcmp(cmd, "__guard"))
        return argc == 2 ? guard(argv[1]) : 2;
    for (int i = 1; i < argc; i++) {
        int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
        if (!strcmp(cmd, "recover") && !strcmp(argv[i], "--dry-run"))
            flags |= WC_RP_DRY;
        else if (help || argv[i][0] == '-' || given) {
            fprintf(help ? stdout : stderr, "usage: wcache ls [DIR]\n"
                    "       wcache recover [--dry-run] [DIR]\n");
            return help ? 0 : WC_EXIT_OWN;
        } else
            given = argv[i];
    }
    if (!strcmp(cmd, "ls"))
        flags = WC_RP_LIST;
    return run(given, flags);
}
