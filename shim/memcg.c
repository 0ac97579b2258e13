/*
 * memcg.c - the memory cgroup's room, asked as the store grows.
 *
 * The kernel's page cache is charged to the program's memory cgroup too,
 * but the kernel writes it back and reclaims it when the cgroup nears its
 * limit. The cache's store is shared memory (tmpfs, the default
 * WCACHE_DIR /dev/shm), which nothing reclaims without swap: a 64 MiB
 * cache in a 16 MiB cgroup got the program OOM-killed where the kernel
 * alone finished (probe M). So the cache keeps to what the cgroup has
 * left.
 *
 * Invariants:
 *   (1) wc_memcg_room() is the engine's room function (wc_config.room,
 *       cache/store.h (3)): the store asks it at every growth past
 *       WC_ROOM_FREE and at the flusher's ticks. It returns the smallest
 *       (limit - usage + clean page cache - limit / 4: a quarter kept for
 *       what is not the cache) over the process's memory cgroup and its
 *       ancestors, cgroup v2 (memory.max, memory.current, memory.stat) or
 *       v1 (memory.limit_in_bytes, memory.usage_in_bytes, memory.stat);
 *       UINT64_MAX when no limit applies or nothing can be read. The
 *       clean page cache counts as room: the kernel gives it back for a
 *       new page, and a cgroup whose programs wrote more than its limit
 *       is full of it (without it the cache there was made at its least,
 *       256 KiB).
 *   (2) Its files are read with the kernel's calls, never the shim's
 *       wrappers, in a child with a descriptor table of its own
 *       (flusher.c invariant (8)), never in the program's: there, a
 *       descriptor of ours, even for microseconds, meets another program
 *       thread's (or a signal handler's) dup2 onto its number or close of
 *       it. Where no such child can be made (a seccomp filter), a program
 *       thread reads them itself in a window (ownfd.c invariant (7)), and
 *       the flusher keeps the last answer.
 *   (3) Its buffers are static, not on the caller's stack (17 KB: a
 *       write that grows the store may run on a thread with a small
 *       stack), and g_lock protects them with the state of (4): taken
 *       under the cache lock (the store asks with it held), never the
 *       other way round.
 *   (4) The first answer is asked when the store first grows past
 *       WC_ROOM_FREE (64 KiB), not when the cache is made: 50 to 140 us
 *       of cgroup files, a quarter of the cache's making here, that a
 *       process whose cache stays small (a short log, small files
 *       written and closed) never pays. Without a limit nothing is read
 *       again (one atomic load a question); under one, the dirty limit
 *       is fitted then: an eighth of the room (half of the quarter the
 *       store may hold), unless WCACHE_DIRTY set it. (Asked by the
 *       flusher as the cache is made, even apart, it took 50 us off the
 *       writer and nothing off a stream, for a clone per process.)
 *       States, per process (a fork child starts over,
 *       wc_memcg_after_fork_child):
 *
 *           unasked --first answer--> none (no limit: UINT64_MAX for good)
 *                   \--first answer--> limited (asked again each time)
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "kcall.h"

/* The start of file `path` in b (NUL-terminated); its length, or -1. */
static ssize_t read_text(const char *path, char *b, size_t cap)
{
    int fd = wc_k_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    ssize_t n = wc_k_read(fd, b, cap - 1);
    wc_k_close(fd);
    if (n <= 0)
        return -1;
    b[n] = 0;
    return n;
}

/* The first line of `path` as a number ("max": UINT64_MAX); 0 and *ok = 0
 * when it cannot be read. */
static uint64_t read_num(const char *path, int *ok)
{
    char b[64];
    *ok = read_text(path, b, sizeof b) > 0;
    if (!*ok)
        return 0;
    if (!strncmp(b, "max", 3))
        return UINT64_MAX;
    return strtoull(b, NULL, 10);
}

/* The file pages the kernel can take back at once from the cgroup at
 * `dir` (and below it): its clean page cache, from memory.stat (v1 keys
 * "total_" prefixed, hierarchical; v2 "file_dirty", "file_writeback").
 * Shared memory is not among them (it lies on the anon lists). 0 when it
 * cannot be read. */
static uint64_t reclaimable(const char *dir, int v1)
{
    static char p[4352], b[8192];       /* (3) */
    snprintf(p, sizeof p, "%s/memory.stat", dir);
    if (read_text(p, b, sizeof b) <= 0)
        return 0;
    static const char *const keys[2][4] = {
        {"inactive_file ", "active_file ", "file_dirty ", "file_writeback "},
        {"total_inactive_file ", "total_active_file ", "total_dirty ",
         "total_writeback "}};
    uint64_t v[4] = {0, 0, 0, 0};
    for (char *line = b; line && *line;) {
        for (int k = 0; k < 4; k++) {
            size_t kl = strlen(keys[v1][k]);
            if (!strncmp(line, keys[v1][k], kl))
                v[k] = strtoull(line + kl, NULL, 10);
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    uint64_t file = v[0] + v[1], busy = v[2] + v[3];
    return file > busy ? file - busy : 0;
}

/* Room under the cgroup at `dir` (a directory under the hierarchy's
 * mount) and every ancestor up to `root`: its limit less its usage, plus
 * the clean page cache the kernel would take back for a new page (a
 * cgroup whose files were written fills its limit with them). */
static uint64_t room_up(char *dir, size_t root_len, const char *limit_name,
                        const char *usage_name)
{
    int v1 = strstr(limit_name, "limit_in_bytes") != NULL;
    uint64_t room = UINT64_MAX;
    size_t len = strlen(dir);
    for (;;) {
        static char p[4352];            /* (3) */
        int ok_l, ok_u;
        snprintf(p, sizeof p, "%s/%s", dir, limit_name);
        uint64_t lim = read_num(p, &ok_l);
        /* v1 reports no limit as a huge page-rounded number; the usage
         * is read only under a limit. */
        if (ok_l && lim < (1ull << 62)) {
            snprintf(p, sizeof p, "%s/%s", dir, usage_name);
            uint64_t use = read_num(p, &ok_u);
            if (ok_u) {
                uint64_t here = (lim > use ? lim - use : 0) +
                                reclaimable(dir, v1);
                if (here > lim)
                    here = lim;
                /* A quarter of the limit is left to what is not the
                 * cache: the programs' own memory, the kernel's (the
                 * dirty page cache, page tables), whatever grows there
                 * after the cache did. */
                here = here > lim / 4 ? here - lim / 4 : 0;
                if (here < room)
                    room = here;
            }
        }
        while (len > root_len && dir[len - 1] != '/')
            len--;
        if (len <= root_len)
            break;
        dir[--len] = 0;         /* the parent */
    }
    return room;
}

/* The room now (invariant (1)), read from the cgroup files. g_lock held. */
static uint64_t room_read(void)
{
    static char b[2048];                /* (3) */
    uint64_t room = UINT64_MAX;
    if (read_text("/proc/self/cgroup", b, sizeof b) <= 0)
        return room;
    for (char *line = b, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        /* "ID:CONTROLLERS:PATH": v2 is "0::PATH", v1 names "memory". */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        const char *mount, *lim, *use;
        size_t clen = (size_t)(c2 - c1 - 1);
        if (clen == 0 && !strncmp(line, "0:", 2)) {
            mount = "/sys/fs/cgroup";
            lim = "memory.max";
            use = "memory.current";
        } else if (memmem(c1 + 1, clen, "memory", 6)) {
            mount = "/sys/fs/cgroup/memory";
            lim = "memory.limit_in_bytes";
            use = "memory.usage_in_bytes";
        } else {
            continue;
        }
        static char dir[4096];          /* (3) */
        size_t root_len = strlen(mount);
        const char *path = c2 + 1;
        if (!strcmp(path, "/"))
            path = "";
        if (snprintf(dir, sizeof dir, "%s%s", mount, path) >=
            (int)sizeof dir)
            continue;
        uint64_t r = room_up(dir, root_len, lim, use);
        if (r < room)
            room = r;
    }
    return room;
}

static int ask_apart(void *room)
{
    *(uint64_t *)room = room_read();
    return 0;
}

/* The apart child's stack (invariant (2)), g_lock's like the buffers. */
WC_LARGE static char g_stack[64u << 10];

/* The room now into *room, g_lock held, read apart (invariant (2)); where
 * no child can be made, read here by a program thread, in a window
 * (ownfd.c invariant (7)). 0: not asked (on the flusher, no child). */
static int room_now(uint64_t *room)
{
    if (wc_apart_on(g_stack + sizeof g_stack, ask_apart, room) == 0)
        return 1;
    if (wc_on_flusher())
        return 0;
    wc_fd_window_open(0);
    *room = room_read();
    wc_fd_window_close();
    return 1;
}

enum { MC_UNASKED, MC_NONE, MC_LIMITED };
/* A fork child resets them (WC_BOOT, shim.h). */
WC_BOOT static int g_state;             /* invariant (4); atomic */
WC_BOOT static struct wc_lock g_lock;   /* protects the buffers (3), g_last */
WC_BOOT static uint64_t g_last = UINT64_MAX;    /* the last answer */

/* Under a limit, from its first answer on: the dirty limit an eighth of
 * the room (invariant (4)), as the cache would have been sized had it
 * been asked before it was made. */
static void fit_dirty(uint64_t room)
{
    uint64_t budget = room / 4 & ~(uint64_t)(WC_PAGE_SIZE - 1);
    if (budget < (256u << 10))
        budget = 256u << 10;            /* the least WCACHE_SIZE takes */
    struct wc_cache *c = wc_cachep;
    if (c && !wc_cfg.cache.dirty)
        wc_cache_fit_dirty(c, (size_t)(budget / 2));
    wc_log(WC_LOG_INFO, "memory cgroup: %llu KiB left, the store keeps to "
           "a quarter of it, write-back from %llu KiB dirty",
           (unsigned long long)(room >> 10),
           (unsigned long long)((wc_cfg.cache.dirty ? wc_cfg.cache.dirty
                                                    : budget / 2) >> 10));
}

/* The answer, g_lock held: asked again unless there is no limit; the
 * last one where it cannot be asked now. */
static uint64_t answer_locked(void)
{
    int s = __atomic_load_n(&g_state, __ATOMIC_RELAXED);
    if (s == MC_NONE)
        return UINT64_MAX;
    uint64_t r;
    if (!room_now(&r))
        return g_last;
    g_last = r;
    if (s == MC_UNASKED) {
        __atomic_store_n(&g_state, r == UINT64_MAX ? MC_NONE : MC_LIMITED,
                         __ATOMIC_RELEASE);
        if (r != UINT64_MAX)
            fit_dirty(r);
    }
    return r;
}

uint64_t wc_memcg_room(void)
{
    if (__atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == MC_NONE)
        return UINT64_MAX;
    wc_lock(&g_lock);
    uint64_t r = answer_locked();
    wc_unlock(&g_lock);
    return r;
}

WC_ONCE
void wc_memcg_after_fork_child(void)
{
    WC_RESET(g_lock.v, 0);
    WC_RESET(g_state, MC_UNASKED);
    WC_RESET(g_last, UINT64_MAX);
}
