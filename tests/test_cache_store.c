/*
 * test_cache_store.c - the backing store: exhaustion, capacity, eviction,
 * unlinked files, and how the store file is created.
 *
 * CONTRACT.md points covered:
 *   3      the cache full / dirty above WCACHE_DIRTY are consistency points
 *   4      nothing is lost when the store cannot grow (a full tmpfs: writes
 *          go to the file); the store is created 0600 in a per-user 0700
 *          directory and refuses a directory that is not ours
 *   6      after write-back the file holds every write in program order
 *   (unlinked files are written back too: a holder the engine never saw
 *   may read them)
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_cache.h"

TestSuite(store, .init = wct_setup, .fini = wct_teardown, .timeout = 90);

/* Small writes of `total` bytes in a pattern that moves around, mirrored
 * into `model`; returns the final size. */
static size_t scribble(struct wc_file *f, unsigned char *model, size_t total,
                       size_t span, unsigned seed)
{
    size_t size = 0;
    unsigned char b[1500];
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t done = 0; done < total;) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len = 1 + (size_t)(x % sizeof b);
        off_t pos = (x >> 20) % 4 ? (off_t)size : (off_t)((x >> 24) % (span - len));
        if ((size_t)pos + len > span)
            pos = (off_t)(span - len);
        wct_pattern(b, len, pos, seed + (unsigned)done);
        ssize_t r = wc_pwrite(f, b, len, pos, 0, NULL);
        cr_assert_eq(r, (ssize_t)len, "write of %zu at %lld after %zu bytes: %zd", len,
                     (long long)pos, done, r);
        memcpy(model + pos, b, len);
        if ((size_t)pos + len > size)
            size = (size_t)pos + len;
        done += len;
    }
    return size;
}

static void check_disk(const char *path, const unsigned char *model, size_t size)
{
    size_t n;
    unsigned char *d = wct_read_path(path, &n);
    cr_assert_eq(n, size, "%s: %zu bytes, expected %zu", path, n, size);
    long at = wct_diff(d, model, n);
    cr_assert_eq(at, -1, "%s: byte %ld is 0x%02x, expected 0x%02x", path, at,
                 at >= 0 ? d[at] : 0, at >= 0 ? model[at] : 0);
    free(d);
}

Test(store, tmpfs_exhaustion)
{
    const char *mnt = wct_mount_tmpfs("tmpfs", "1m");
    if (!mnt) {
        if (errno == EPERM)
            cr_skip_test("mount -t tmpfs not permitted here (EPERM): cannot "
                         "test a full backing store");
        cr_assert_fail("mount tmpfs: %s", strerror(errno));
    }
    struct wc_config cfg = {.size = 8 << 20, .dir = mnt};
    struct wc_cache *c = wct_cache_open_cfg(&cfg);
    int fd = wct_create("big", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    size_t span = 6 << 20;
    unsigned char *model = calloc(1, span);
    wct_watchdog(60, "6 MiB through a cache on a 1 MiB tmpfs");
    size_t size = scribble(f, model, 6 << 20, span, 1);
    unsigned char *v = malloc(size + 4096);
    cr_assert_eq(wc_pread(f, fd, v, size + 4096, 0), (ssize_t)size);
    cr_assert_eq(wct_diff(v, model, size), -1, "the cache's view is wrong");
    free(v);
    struct wc_stats st;
    wc_cache_stats(c, &st);
    cr_log_info("tmpfs: %llu cached writes, %llu through, store_full %llu, "
                "evictions %llu", (unsigned long long)st.writes,
                (unsigned long long)st.through, (unsigned long long)st.store_full,
                (unsigned long long)st.evictions);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    check_disk(wct_path("big"), model, size);
    close(fd);
    free(model);
}

Test(store, capacity_and_eviction)
{
    struct wc_config cfg = {.size = 64 * WCT_PG};
    struct wc_cache *c = wct_cache_open_cfg(&cfg);
    int fd1 = wct_create("e1", 0, 1, O_RDWR), fd2 = wct_create("e2", 100000, 1, O_RDWR);
    struct wc_file *f1 = wct_get(c, fd1), *f2 = wct_get(c, fd2);
    size_t span = 4 << 20;
    unsigned char *m1 = calloc(1, span), *m2 = calloc(1, span);
    wct_pattern(m2, 100000, 0, 1);
    wct_watchdog(60, "8 MiB through a 64-block cache");
    size_t s1 = scribble(f1, m1, 4 << 20, span, 2);
    size_t s2 = scribble(f2, m2, 4 << 20, span, 3);
    if (s2 < 100000)
        s2 = 100000;
    /* reads merge evicted (on disk) and cached data */
    unsigned char *v = malloc(span + 4096);
    cr_assert_eq(wc_pread(f1, fd1, v, span + 4096, 0), (ssize_t)s1);
    cr_assert_eq(wct_diff(v, m1, s1), -1, "file 1: the cache's view");
    cr_assert_eq(wc_pread(f2, fd2, v, span + 4096, 0), (ssize_t)s2);
    cr_assert_eq(wct_diff(v, m2, s2), -1, "file 2: the cache's view");
    free(v);
    struct wc_stats st;
    wc_cache_stats(c, &st);
    cr_assert_gt(st.evictions + st.flushes[WC_WHY_FULL] + st.flushes[WC_WHY_PRESSURE], 0,
                 "8 MiB through 256 KiB without eviction or pressure flush");
    cr_assert_leq(wc__store_used(c), 64, "%zu blocks in use in a 64-block cache",
                  wc__store_used(c));
    cr_assert_eq(wc_file_put(f1), 0);
    cr_assert_eq(wc_file_put(f2), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    check_disk(wct_path("e1"), m1, s1);
    check_disk(wct_path("e2"), m2, s2);
    close(fd1);
    close(fd2);
}

/* 200 KB in 1000-byte writes to a new file in c, whose dirty threshold
 * is 16 pages: write-back under pressure keeps it near that. Closes c. */
static void sixteen_dirty_pages_hold(struct wc_cache *c)
{
    int fd = wct_create("d", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    unsigned char b[1000];
    memset(b, 'q', sizeof b);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(wc_pwrite(f, b, sizeof b, (off_t)i * 1000, 0, NULL), 1000);
    cr_assert_leq(wc_cache_dirty(c), 32 * WCT_PG, "dirty %zu with a 16-page threshold",
                  wc_cache_dirty(c));
    struct wc_stats st;
    wc_cache_stats(c, &st);
    cr_assert_gt(st.flushes[WC_WHY_PRESSURE], 0);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    close(fd);
}

Test(store, dirty_threshold_starts_writeback)
{
    struct wc_config cfg = {.size = 256 * WCT_PG, .dirty = 16 * WCT_PG};
    sixteen_dirty_pages_hold(wct_cache_open_cfg(&cfg));
}

/* The dirty limit lowered after the cache was made (a memory cgroup's
 * room, known only then: shim/memcg.c (4)) holds as if configured; one
 * above it changes nothing. */
Test(store, dirty_threshold_fitted_after_open)
{
    struct wc_config cfg = {.size = 256 * WCT_PG};      /* 128 dirty pages */
    struct wc_cache *c = wct_cache_open_cfg(&cfg);
    wc_cache_fit_dirty(c, 16 * WCT_PG);
    wc_cache_fit_dirty(c, 200 * WCT_PG);                /* not raised */
    sixteen_dirty_pages_hold(c);
}

/* An unlinked file keeps its readers (a descriptor opened before the
 * unlink, another process's): its data is written back at the last put,
 * as to any file (it was dropped, and such a reader saw 0 of the bytes). */
Test(store, unlinked_file_written_back_for_its_readers)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("u", 5000, 1, O_RDWR);
    int reader = open(wct_path("u"), O_RDONLY);
    cr_assert_geq(reader, 0);
    struct wc_file *f = wct_get(c, fd);
    cr_assert_eq(wc_pwrite(f, "kept", 4, 100, 0, NULL), 4);
    cr_assert_eq(wc_pwrite(f, "kept", 4, 9000, 0, NULL), 4);
    cr_assert_eq(unlink(wct_path("u")), 0);
    cr_assert_eq(wc_file_put(f), 0);
    struct stat st;
    cr_assert_eq(fstat(reader, &st), 0);
    cr_assert_eq(st.st_size, 9004);
    char b[4];
    cr_assert_eq(pread(reader, b, 4, 100), 4);
    cr_assert_eq(memcmp(b, "kept", 4), 0);
    cr_assert_eq(pread(reader, b, 4, 9000), 4);
    cr_assert_eq(memcmp(b, "kept", 4), 0);
    close(reader);
    close(fd);
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(store, store_file_creation)
{
    struct wc_cache *c = wct_cache_open(0);
    const char *path = wc_cache_path(c);
    cr_assert(path && path[0]);
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    struct stat st;
    cr_assert_eq(lstat(copy, &st), 0, "%s: %s", copy, strerror(errno));
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0600, "store mode %o", st.st_mode & 07777);
    cr_assert_eq(st.st_uid, getuid());
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", copy);
    dirname(dir);
    cr_assert_eq(lstat(dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0700, "per-user directory mode %o", st.st_mode & 07777);
    cr_assert_eq(wc_cache_close(c), 0);
    cr_assert_neq(lstat(copy, &st), 0, "the store file outlived wc_cache_close");
    /* a per-user directory owned by someone else is refused */
    cr_assert_eq(chown(dir, 12345, 12345), 0);
    struct wc_cache *c2 = NULL;
    struct wc_config cfg = {.size = 64 * WCT_PG, .dir = wct_path("store")};
    int r = wc_cache_open(&c2, &cfg);
    cr_assert_lt(r, 0, "a store directory owned by uid 12345 was accepted");
    /* as is a symlink in its place */
    cr_assert_eq(rmdir(dir), 0);
    cr_assert_eq(mkdir(wct_path("elsewhere"), 0700), 0);
    cr_assert_eq(symlink(wct_path("elsewhere"), dir), 0);
    r = wc_cache_open(&c2, &cfg);
    cr_assert_lt(r, 0, "a symlink as the per-user directory was followed");
    /* and a dir that is a file */
    struct wc_config bad = {.size = 64 * WCT_PG, .dir = wct_path("afile")};
    close(wct_create("afile", 1, 1, O_RDWR));
    cr_assert_lt(wc_cache_open(&c2, &bad), 0);
}

/* A child after fork forgets the cache: it writes nothing back and does not
 * unlink the parent's store; the parent's data still lands. */
Test(store, abandon_in_child)
{
    struct wc_cache *c = wct_cache_open(0);
    int fd = wct_create("ab", 0, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    cr_assert_eq(wc_pwrite(f, "parent", 6, 0, 0, NULL), 6);
    char store[PATH_MAX];
    snprintf(store, sizeof store, "%s", wc_cache_path(c));
    wct_rec_start(fd);
    pid_t pid = fork();
    if (pid == 0) {
        wc_cache_after_fork_child();
        struct stat st;
        _exit(stat(store, &st) == 0 && wct_count(WCT_WRITEBACK) == 0 ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child: wrote back or removed the store (status %d)", status);
    wct_rec_stop();
    struct stat st;
    cr_assert_eq(stat(store, &st), 0, "the parent's store file is gone");
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 0, "the child wrote back");
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    check_disk(wct_path("ab"), (const unsigned char *)"parent", 6);
    close(fd);
}
