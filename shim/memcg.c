/*
 * memcg.c - the memory cgroup's room, read when the cache is created.
 *
 * The kernel's page cache is charged to the program's memory cgroup too,
 * but the kernel writes it back and reclaims it when the cgroup nears its
 * limit. The cache's store is shared memory (tmpfs, the default
 * WCACHE_DIR /dev/shm), which nothing reclaims without swap: a 64 MiB
 * cache in a 16 MiB cgroup got the program OOM-killed where the kernel
 * alone finished (probe M). So the cache is made to fit what the cgroup
 * has left.
 *
 * Invariants:
 *   (1) wc_memcg_room() is called once, when the cache is created (never
 *       at start-up: a process that caches nothing reads nothing), and
 *       returns the smallest (limit - usage) over the process's memory
 *       cgroup and its ancestors, cgroup v2 (memory.max,
 *       memory.current) or v1 (memory.limit_in_bytes,
 *       memory.usage_in_bytes); UINT64_MAX when no limit applies or
 *       nothing can be read.
 *   (2) Its files are read with the kernel's calls, never the shim's
 *       wrappers (no descriptor of the program's table is tracked or
 *       moved), and every descriptor is closed before it returns.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"
#include "kcall.h"

/* The first line of `path` as a number ("max": UINT64_MAX); 0 and *ok = 0
 * when it cannot be read. */
static uint64_t read_num(const char *path, int *ok)
{
    char b[64];
    int fd = wc_k_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    *ok = 0;
    if (fd < 0)
        return 0;
    ssize_t n = wc_k_read(fd, b, sizeof b - 1);
    wc_k_close(fd);
    if (n <= 0)
        return 0;
    b[n] = 0;
    *ok = 1;
    if (!strncmp(b, "max", 3))
        return UINT64_MAX;
    return strtoull(b, NULL, 10);
}

/* Room under the cgroup at `dir` (a directory under the hierarchy's
 * mount) and every ancestor up to `root`. */
static uint64_t room_up(char *dir, size_t root_len, const char *limit_name,
                        const char *usage_name)
{
    uint64_t room = UINT64_MAX;
    size_t len = strlen(dir);
    for (;;) {
        char p[4352];
        int ok_l, ok_u;
        snprintf(p, sizeof p, "%s/%s", dir, limit_name);
        uint64_t lim = read_num(p, &ok_l);
        /* v1 reports no limit as a huge page-rounded number; the usage
         * is read only under a limit. */
        if (ok_l && lim < (1ull << 62)) {
            snprintf(p, sizeof p, "%s/%s", dir, usage_name);
            uint64_t use = read_num(p, &ok_u);
            if (ok_u)
                room = lim > use ? (lim - use < room ? lim - use : room) : 0;
        }
        while (len > root_len && dir[len - 1] != '/')
            len--;
        if (len <= root_len)
            break;
        dir[--len] = 0;         /* the parent */
    }
    return room;
}

uint64_t wc_memcg_room(void)
{
    char b[2048];
    int fd = wc_k_openat(AT_FDCWD, "/proc/self/cgroup", O_RDONLY | O_CLOEXEC,
                         0);
    if (fd < 0)
        return UINT64_MAX;
    ssize_t n = wc_k_read(fd, b, sizeof b - 1);
    wc_k_close(fd);
    if (n <= 0)
        return UINT64_MAX;
    b[n] = 0;
    uint64_t room = UINT64_MAX;
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
        char dir[4096];
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
