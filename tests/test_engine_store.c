/*
 * test_engine_store.c - the backing file's memory and layout.
 *
 * - Freed blocks are given back (holes punched) once free space is well
 *   above need, and only then; the blocks are reused afterwards.
 * - The file's header and tables say what the layout promises a replay
 *   (store.h): magic, sizes and offsets that fit the file, slots naming
 *   the cached file, block records naming their slot with its generation
 *   and ranges covering exactly the bytes written.
 * - The backing file is 0600 in a 0700 directory, and a directory that is
 *   not private is refused.
 * - Memory goes back in runs (one fallocate per run of adjacent blocks,
 *   never one per page), and never at exit, exec, fork or under pressure.
 * - A stream is written back as it goes and recycles its blocks warm.
 * - Memory follows the data cached, not the store's size: a 64 GiB store
 *   holding one page costs a few MiB; a 1 TiB store can be created.
 */
#include <sys/resource.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../cache/store.h"
#include "lib_cache.h"
#include "lib_sys.h"
#include "wcache/cache.h"

/* Store one whole page at page index i so that it stays cached: a page
 * to a clean file would go straight to the kernel (write.c,
 * WC_DIRECT_MIN), so a byte first, then the rest behind it. Callers go
 * down the file: pages completed in ascending order are a stream, written
 * back early (WC_STREAM_PAGES). */
static void cached_page(struct wc_file *f, const char *buf, int i)
{
    cr_assert_eq(wc_pwrite(f, buf, 1, (off_t)i * 4096, 0, NULL), 1);
    cr_assert_eq(wc_pwrite(f, buf + 1, 4095, (off_t)i * 4096 + 1, 0, NULL),
                 4095);
}

static long allocated_kib(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (long)st.st_blocks / 2;
}

Test(engine_store, holes_punched_only_when_well_above_need, .init = wct_setup,
     .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c;
    struct wc_config cfg = {.size = 32 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    const char *path = wct_path("data");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);

    static char buf[4096];
    memset(buf, 'q', sizeof buf);
    for (int i = 2047; i >= 0; i--)            /* 8 MiB */
        cached_page(f, buf, i);
    long full = allocated_kib(wc_cache_path(c));
    cr_assert_geq(full, 8 * 1024, "8 MiB stored, %ld KiB allocated", full);

    /* A flush while the pages are still in use gives nothing back. */
    cr_assert_eq(wc_cache_flush(c, WC_WHY_OTHER), 0);
    cr_assert_geq(allocated_kib(wc_cache_path(c)), full - 64);

    /* Closing the file frees every block: well above need, so the next
     * whole-cache flush punches holes, keeping a few chunks warm. */
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc__store_used(c), 0);
    cr_assert_eq(wc_cache_flush(c, WC_WHY_DEADLINE), 0);
    long after = allocated_kib(wc_cache_path(c));
    cr_assert_lt(after, full / 2, "after trim %ld KiB of %ld", after, full);
    cr_assert_gt(after, 0, "kept nothing warm");

    /* The punched blocks are usable again. */
    f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    for (int i = 2047; i >= 0; i--)
        cached_page(f, buf, i);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 8 << 20);
    close(fd);
}

Test(engine_store, layout_describes_the_data, .init = wct_setup,
     .fini = wct_teardown, .timeout = 60)
{
    struct wc_cache *c;
    struct wc_config cfg = {.size = 1 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    const char *path = wct_path("target");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    cr_assert_eq(wc_pwrite(f, "hello", 5, 4096 + 10, 0, NULL), 5);
    cr_assert_eq(wc_pwrite(f, "world", 5, 4096 + 100, 0, NULL), 5);

    /* Read the backing file as a replay would: through its path. */
    int bfd = open(wc_cache_path(c), O_RDONLY);
    cr_assert(bfd >= 0);
    struct stat st;
    cr_assert_eq(fstat(bfd, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    struct wc_header h;
    cr_assert_eq(pread(bfd, &h, sizeof h, 0), (ssize_t)sizeof h);
    cr_assert_eq(memcmp(h.magic, WC_STORE_MAGIC, 8), 0);
    cr_assert_eq(h.version, WC_STORE_VERSION);
    cr_assert_eq(h.page_size, 4096);
    cr_assert_eq(h.brec_size, sizeof(struct wc_brec));
    cr_assert_eq(h.pid, getpid());
    cr_assert_eq(h.state, WC_STORE_LIVE);
    cr_assert_eq(h.file_size, (uint64_t)st.st_size);
    cr_assert(h.off_files >= sizeof h && h.off_brecs >= h.off_files +
              (uint64_t)h.nfiles * h.fslot_size && h.off_data >=
              h.off_brecs + h.nblocks * h.brec_size &&
              h.off_data + h.nblocks * 4096 == h.file_size);

    struct wc_fslot slot;
    uint32_t live = h.nfiles;
    for (uint32_t i = 0; i < h.nfiles && live == h.nfiles; i++) {
        cr_assert_eq(pread(bfd, &slot, sizeof slot,
                           (off_t)(h.off_files + (uint64_t)i * h.fslot_size)),
                     (ssize_t)sizeof slot);
        if (slot.state == WC_SLOT_LIVE)
            live = i;
    }
    cr_assert_lt(live, h.nfiles, "no live file slot");
    struct stat ts;
    cr_assert_eq(fstat(fd, &ts), 0);
    cr_assert_eq(slot.ino, ts.st_ino);
    cr_assert_eq(slot.size, 4096 + 105);
    cr_assert_str_eq(slot.path, path);

    int found = 0;
    for (uint64_t b = 0; b < h.nblocks; b++) {
        struct wc_brec r;
        cr_assert_eq(pread(bfd, &r, sizeof r,
                           (off_t)(h.off_brecs + b * h.brec_size)),
                     (ssize_t)sizeof r);
        if (r.file != live + 1)
            continue;
        found++;
        cr_assert_eq(r.gen, slot.gen);
        cr_assert_eq(r.index, 1);
        cr_assert_eq(r.nr, 2);
        cr_assert(r.lo[0] == 10 && r.hi[0] == 15 && r.lo[1] == 100 &&
                  r.hi[1] == 105);
        char data[5];
        cr_assert_eq(pread(bfd, data, 5, (off_t)(h.off_data + b * 4096 + 10)),
                     5);
        cr_assert_eq(memcmp(data, "hello", 5), 0);
    }
    cr_assert_eq(found, 1, "%d block records claim the page", found);
    close(bfd);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    cr_assert_neq(access(wc_cache_path(c), F_OK), 0);
    close(fd);
}

Test(engine_store, refuses_a_directory_that_is_not_private, .init = wct_setup,
     .fini = wct_teardown, .timeout = 30)
{
    char name[32];
    snprintf(name, sizeof name, "wcache-%u", (unsigned)getuid());
    const char *udir = wct_path(name);
    cr_assert_eq(mkdir(udir, 0755), 0);
    struct wc_cache *c;
    struct wc_config cfg = {.size = 1 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), -EACCES);
    cr_assert_eq(chmod(udir, 0700), 0);
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    struct stat st;
    cr_assert_eq(stat(wc_cache_path(c), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(wc_cache_close(c), 0);
    /* A symlink where the directory should be is refused too. */
    cr_assert_eq(rmdir(udir), 0);
    cr_assert_eq(symlink("/tmp", udir), 0);
    cr_assert_eq(wc_cache_open(&c, &cfg), -ENOTDIR);
}

/* ---- issue 6 item 7: the backing file goes only when nothing is lost -- */

#include "../cache/replay.h"
#include "wcache/sys.h"

static ssize_t eio_pwritev(int fd, const struct iovec *v, int n, off_t o)
{
    (void)fd, (void)v, (void)n, (void)o;
    errno = EIO;
    return -1;
}

static ssize_t eio_pwritev2(int fd, const struct iovec *v, int n, off_t o,
                            int fl)
{
    (void)fd, (void)v, (void)n, (void)o, (void)fl;
    errno = EIO;
    return -1;
}

/* A backing file kept with 10 dirty bytes of `path` (its write-back failed
 * with EIO, at the last close and at the cache's); returns its name in
 * store. */
/* The write-back of `n` records of `len` bytes from `data` to `path`
 * (appended when `append`) failed: the backing file is kept (its name in
 * store). */
static void kept_writes(const char *path, char *store, size_t cap,
                        const char *data, size_t len, int n, int append)
{
    struct wc_cache *c;
    struct wc_config cfg = {.size = 1 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | (append ? O_APPEND : 0),
                  0600);
    cr_assert_geq(fd, 0);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    for (int k = 0; k < n; k++)
        cr_assert_eq(wc_pwrite(f, data + len * (size_t)k, len,
                               (off_t)(len * (size_t)k), append, NULL),
                     (ssize_t)len);
    cr_assert_eq(wc_cache_may_remove(c), 0, "dirty data: must stay");
    struct wc_sys saved = wc_sys;
    wc_sys.pwritev = eio_pwritev;
    wc_sys.pwritev2 = eio_pwritev2;
    cr_assert_lt(wc_file_put(f), 0);
    snprintf(store, cap, "%s", wc_cache_path(c));
    cr_assert_lt(wc_cache_close(c), 0);
    wc_sys = saved;
    cr_assert_eq(access(store, F_OK), 0, "the backing file was removed "
                 "although its data never reached the file");
    close(fd);
}

/* 10 dirty bytes of `path`, kept. */
static void kept_store(const char *path, char *store, size_t cap)
{
    kept_writes(path, store, cap, "kept data\n", 10, 1, 0);
}

Test(engine_store, kept_when_write_back_failed_then_replayed,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("target");
    char store[4200];
    kept_store(path, store, sizeof store);
    /* What the guard or `wcache recover` does with it. */
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert_eq(res.bytes, 10);
    cr_assert(res.removed);
    cr_assert_neq(access(store, F_OK), 0);
    int fd = open(path, O_RDONLY);
    char buf[16] = {0};
    cr_assert_eq(pread(fd, buf, sizeof buf, 0), 10);
    cr_assert_str_eq(buf, "kept data\n");
    close(fd);
}

/* A sweep (a program's start-up, `wcache --`: replay.h wc_replay_sweep)
 * replays a dead process's backing file of its own user, and leaves one
 * of another user's under its name: refused, not set aside as .kept,
 * which no guard of that user would then read again. */
Test(engine_store, sweep_replays_its_own_and_leaves_another_users,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("target");
    char store[4200], dir[4200], kept[4300];
    kept_store(path, store, sizeof store);
    snprintf(dir, sizeof dir, "%s", store);
    *strrchr(dir, '/') = 0;
    snprintf(kept, sizeof kept, "%s.kept", store);
    if (chown(store, 65534, 65534) != 0)
        cr_skip_test("chown: %s (needs root)", strerror(errno));
    wc_replay_sweep(dir, WC_RP_NS_ASK);
    cr_assert_eq(access(store, F_OK), 0, "another user's file was moved");
    cr_assert_neq(access(kept, F_OK), 0, "another user's file set aside");
    cr_assert_eq(chown(store, getuid(), getgid()), 0);
    cr_assert_eq(wc_replay_sweep(dir, WC_RP_NS_ASK), 1);
    cr_assert_neq(access(store, F_OK), 0, "its own file was not replayed");
    char buf[16] = {0};
    int fd = open(path, O_RDONLY);
    cr_assert_eq(pread(fd, buf, sizeof buf, 0), 10);
    cr_assert_str_eq(buf, "kept data\n");
    close(fd);
}

Test(engine_store, removed_when_clean, .init = wct_setup,
     .fini = wct_teardown, .timeout = 30)
{
    struct wc_cache *c;
    struct wc_config cfg = {.size = 1 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    const char *path = wct_path("target");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_eq(wc_pwrite(f, "x", 1, 0, 0, NULL), 1);
    cr_assert_eq(wc_file_flush(f, WC_WHY_FSYNC), 0);
    cr_assert_eq(wc_cache_may_remove(c), 1);
    char store[4200];
    snprintf(store, sizeof store, "%s", wc_cache_path(c));
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    cr_assert_neq(access(store, F_OK), 0);
    close(fd);
}

/* Counting wrapper around the real fallocate: hole punches only. */
static int punches;
static int (*real_fallocate)(int, int, off_t, off_t);
static int count_fallocate(int fd, int mode, off_t off, off_t len)
{
    if (mode & FALLOC_FL_PUNCH_HOLE)
        punches++;
    return real_fallocate(fd, mode, off, len);
}

/* Write 8 MiB through a new file and close it: every block becomes free. */
static void fill_and_release(struct wc_cache *c, int fd)
{
    static char buf[4096];
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    memset(buf, 'r', sizeof buf);
    for (int i = 2047; i >= 0; i--)
        cached_page(f, buf, i);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc__store_used(c), 0);
}

Test(engine_store, memory_given_back_in_runs_never_at_exit,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    /* A store of 8 MiB: the refill below finds every block reserved once,
     * so it reserves the punched runs again. */
    struct wc_cache *c;
    struct wc_config cfg = {.size = 8 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    int fd = open(wct_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    real_fallocate = wc_sys.fallocate;
    wc_sys.fallocate = count_fallocate;

    /* The image ends: nothing punched (the store is deleted anyway). */
    fill_and_release(c, fd);
    long full = allocated_kib(wc_cache_path(c));
    punches = 0;
    cr_assert_eq(wc_cache_flush(c, WC_WHY_EXIT), 0);
    cr_assert_eq(wc_cache_flush(c, WC_WHY_EXEC), 0);
    cr_assert_eq(wc_cache_flush(c, WC_WHY_FORK), 0);
    cr_assert_eq(punches, 0, "%d punches at exit", punches);
    /* Nor under pressure: the writer needs the blocks again at once. */
    cr_assert_eq(wc_cache_flush(c, WC_WHY_PRESSURE), 0);
    cr_assert_eq(punches, 0, "%d punches under pressure", punches);
    cr_assert_geq(allocated_kib(wc_cache_path(c)), full);

    /* Otherwise ~1,700 free blocks go back in a few calls, not one each:
     * the blocks were handed out in ascending chunks, so they form runs. */
    cr_assert_eq(wc_cache_flush(c, WC_WHY_DEADLINE), 0);
    long after = allocated_kib(wc_cache_path(c));
    cr_assert_lt(after, full / 2, "after trim %ld KiB of %ld", after, full);
    cr_assert_gt(punches, 0);
    cr_assert_leq(punches, 8, "%d punches for %ld KiB", punches,
                  full - after);

    /* Punched runs are reserved again a run at a time and hold data. */
    punches = 0;
    fill_and_release(c, fd);
    long refilled = allocated_kib(wc_cache_path(c));
    cr_assert_gt(refilled, after + 2048, "refilled %ld after %ld", refilled, after);
    wc_sys.fallocate = real_fallocate;
    cr_assert_eq(wc_cache_close(c), 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 8 << 20);
    static char got[4096];
    cr_assert_eq(pread(fd, got, sizeof got, (8 << 20) - 4096), 4096);
    cr_assert_eq(got[0], 'r');
    close(fd);
}

static long rss_kib(void)
{
    long kib = -1;
    char line[256];
    FILE *fp = fopen("/proc/self/status", "r");
    cr_assert_not_null(fp);
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(fp);
    return kib;
}

Test(engine_store, memory_follows_data_not_store_size, .init = wct_setup,
     .fini = wct_teardown, .timeout = 60)
{
    /* 64 GiB and 1 TiB stores holding one page: the arrays and tables
     * sized by the store stay untouched (the old engine touched ~104 bytes
     * per 4 KiB of store at open: 1.7 GB for 64 GiB). */
    static const size_t sizes[] = {(size_t)64 << 30, (size_t)1 << 40};
    for (int i = 0; i < 2; i++) {
        long before = rss_kib();
        struct wc_cache *c;
        struct wc_config cfg = {.size = sizes[i], .dir = wct_dir};
        int r = wc_cache_open(&c, &cfg);
        cr_assert_eq(r, 0, "size %zu: %s", sizes[i], strerror(-r));
        int fd = open(wct_path("data"), O_RDWR | O_CREAT | O_TRUNC, 0600);
        int err;
        struct wc_file *f = wc_file_get(c, fd, &err);
        cr_assert_not_null(f);
        cr_assert_eq(wc_pwrite(f, "x", 1, 0, 0, NULL), 1);
        long grew = rss_kib() - before;
        cr_assert_lt(grew, 8 << 10, "size %zu: RSS grew %ld KiB", sizes[i],
                     grew);
        cr_assert_eq(wc_file_put(f), 0);
        cr_assert_eq(wc_cache_close(c), 0);
        close(fd);
    }
}

Test(engine_store, a_stream_is_written_back_early_and_recycles_blocks,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    /* 16 MiB written in ascending 512-byte writes into a 64 MiB store:
     * complete pages are written back in batches as the stream goes (not
     * at close), and their blocks are reused warm once WC_CLEAN_KEEP
     * clean pages are kept, so the store holds a few MiB, not 16. */
    struct wc_cache *c;
    struct wc_config cfg = {.size = 64 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    int fd = open(wct_path("stream"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    static char rec[512];
    const long n = (16 << 20) / (long)sizeof rec;
    for (long i = 0; i < n; i++) {
        memset(rec, 'a' + (int)(i % 26), sizeof rec);
        cr_assert_eq(wc_pwrite(f, rec, sizeof rec, (off_t)(i * 512), 0, NULL),
                     512);
    }
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_geq(st.st_size, (16 << 20) - (1 << 20),
                  "only %lld bytes written back during the stream",
                  (long long)st.st_size);
    long kib = allocated_kib(wc_cache_path(c));
    cr_assert_lt(kib, 4 << 10, "the store holds %ld KiB for a stream", kib);
    cr_assert_eq(wc_file_put(f), 0);
    cr_assert_eq(wc_cache_close(c), 0);

    static char got[512];
    for (long i = 0; i < n; i += 997) {
        cr_assert_eq(pread(fd, got, sizeof got, (off_t)(i * 512)), 512);
        memset(rec, 'a' + (int)(i % 26), sizeof rec);
        cr_assert_eq(memcmp(got, rec, sizeof rec), 0, "record %ld", i);
    }
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 16 << 20);
    close(fd);
}

/* Counting wrapper around the real mmap. */
static int mmaps;
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *count_mmap(void *a, size_t n, int prot, int fl, int fd, off_t o)
{
    mmaps++;
    return real_mmap(a, n, prot, fl, fd, o);
}

Test(engine_store, a_new_file_costs_no_mapping, .init = wct_setup,
     .fini = wct_teardown, .timeout = 60)
{
    /* Caching a file and releasing it, 100 times: the page hash's memory
     * is reused, not mapped and unmapped for each file. */
    struct wc_cache *c;
    struct wc_config cfg = {.size = 8 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    real_mmap = wc_sys.mmap;
    wc_sys.mmap = count_mmap;
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d", i);
        int fd = open(wct_path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);
        int err;
        struct wc_file *f = wc_file_get(c, fd, &err);
        cr_assert_not_null(f);
        cr_assert_eq(wc_pwrite(f, "data\n", 5, 0, 0, NULL), 5);
        cr_assert_eq(wc_file_put(f), 0);
        close(fd);
    }
    wc_sys.mmap = real_mmap;
    cr_assert_leq(mmaps, 4, "%d mappings for 100 files", mmaps);
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Mark the live slot of the backing file busy, as a death in the middle
 * of a write-back leaves it (format.h (5)). */
static void mark_busy(const char *store)
{
    int fd = open(store, O_RDWR);
    cr_assert_geq(fd, 0);
    struct wc_header h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    int found = 0;
    for (uint32_t i = 0; i < h.nfiles && !found; i++) {
        struct wc_fslot s;
        off_t at = (off_t)(h.off_files + (uint64_t)i * WC_FSLOT_SIZE);
        cr_assert_eq(pread(fd, &s, sizeof s, at), (ssize_t)sizeof s);
        if (s.state != WC_SLOT_LIVE)
            continue;
        s.busy = 1;
        cr_assert_eq(pwrite(fd, &s, sizeof s, at), (ssize_t)sizeof s);
        found = 1;
    }
    cr_assert(found, "no live slot in %s", store);
    close(fd);
}

/* Busy, and the file is where a write-back in progress could have left
 * it (5 of the 10 bytes there): the replay writes in place. */
Test(engine_store, busy_slot_replayed_in_place_within_its_sizes,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("target");
    char store[4200];
    kept_store(path, store, sizeof store);
    mark_busy(store);
    int fd = open(path, O_RDWR);
    cr_assert_eq(pwrite(fd, "kept ", 5, 0), 5);
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert_eq(res.aside, 0, "a file a write-back was changing went "
                 "aside");
    char buf[32] = {0};
    cr_assert_eq(pread(fd, buf, sizeof buf, 0), 10);
    cr_assert_str_eq(buf, "kept data\n");
    close(fd);
}

/* Busy, but the file grew past anything the engine could have made it
 * (someone appended after the crash): the data goes aside, the file keeps
 * its bytes. Before the size bound a busy slot compared only dev and ino,
 * and the replay wrote over the other writer's bytes. */
Test(engine_store, busy_slot_of_a_file_grown_since_goes_aside,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("target");
    char store[4200];
    kept_store(path, store, sizeof store);
    mark_busy(store);
    int fd = open(path, O_RDWR | O_APPEND);
    const char other[] = "another writer's line\n";
    cr_assert_eq(write(fd, other, sizeof other - 1), (ssize_t)sizeof other - 1);
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert_eq(res.aside, 1, "the grown file was written in place");
    char buf[64] = {0};
    cr_assert_eq(pread(fd, buf, sizeof buf, 0), (ssize_t)sizeof other - 1);
    cr_assert_str_eq(buf, other);
    close(fd);
    char aside[4300];
    snprintf(aside, sizeof aside, "%s.wcache-recovered.%d", path,
             (int)getpid());
    int a = open(aside, O_RDONLY);
    cr_assert_geq(a, 0, "no %s", aside);
    memset(buf, 0, sizeof buf);
    cr_assert_eq(pread(a, buf, sizeof buf, 0), 10);
    cr_assert_str_eq(buf, "kept data\n");
    close(a);
    unlink(aside);
}

static ssize_t eio_pwrite(int fd, const void *b, size_t n, off_t off)
{
    (void)fd, (void)b, (void)n, (void)off;
    errno = EIO;
    return -1;
}

/* The recovery file's name is taken (a process that set bytes aside
 * before, an earlier replay): the data goes to <pid>.1, the file there
 * untouched (the replay failed with EEXIST and kept failing until a
 * human removed it). A recovery file that could not be written is
 * removed (the guard left an empty one, which then took the name). A
 * dry run says the bytes would go aside (it said in place). */
Test(engine_store, aside_name_taken_or_aside_unwritable,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("target");
    char store[4200], aside[4300], aside1[4310];
    kept_store(path, store, sizeof store);
    int fd = open(path, O_RDWR | O_APPEND);
    const char other[] = "another writer's line\n";
    cr_assert_eq(write(fd, other, sizeof other - 1), (ssize_t)sizeof other - 1);
    close(fd);
    snprintf(aside, sizeof aside, "%s.wcache-recovered.%d", path,
             (int)getpid());
    snprintf(aside1, sizeof aside1, "%s.1", aside);

    /* A dry run says where the bytes would go (it said "in place"). */
    struct wc_rp_result res;
    FILE *log = tmpfile();
    cr_assert_not_null(log);
    cr_assert_eq(wc_replay(store, WC_RP_DRY, fileno(log), &res), 0);
    char said[512] = {0};
    cr_assert(pread(fileno(log), said, sizeof said - 1, 0) > 0);
    fclose(log);
    cr_assert(strstr(said, "would save 10 bytes beside it"), "%s", said);
    cr_assert_eq(access(aside, F_OK), -1, "a dry run made %s", aside);

    /* Unwritable: nothing left behind, the backing file kept. */
    wc_sys.pwrite = eio_pwrite;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    wc_sys.pwrite = pwrite;
    cr_assert_eq(res.failed, 1);
    cr_assert_eq(access(aside, F_OK), -1, "an incomplete %s left", aside);
    cr_assert_eq(access(store, F_OK), 0);

    /* Taken: the next name. */
    int a = open(aside, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert(a >= 0 && write(a, "someone's\n", 10) == 10 && close(a) == 0);
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert_eq(res.aside, 1);
    char b[32] = {0};
    a = open(aside, O_RDONLY);
    cr_assert(a >= 0 && pread(a, b, sizeof b, 0) == 10 && close(a) == 0);
    cr_assert_str_eq(b, "someone's\n");
    memset(b, 0, sizeof b);
    a = open(aside1, O_RDONLY);
    cr_assert(a >= 0, "no %s", aside1);
    cr_assert(pread(a, b, sizeof b, 0) == 10 && close(a) == 0);
    cr_assert_str_eq(b, "kept data\n");
    unlink(aside);
    unlink(aside1);
}

/* A replay's write in place that fails part-way (ENOSPC after 5 bytes):
 * the file's size and ctime moved by the replay itself, and the next
 * replay took that for another process's change and put every byte
 * aside, the file left with the torn prefix. The slot is now marked busy
 * before the write (replay.c mark_busy): the next replay completes the
 * file in place. */
static int torn_calls;
static ssize_t torn_pwrite(int fd, const void *b, size_t n, off_t off)
{
    if (n == sizeof(uint32_t))
        return pwrite(fd, b, n, off);   /* the busy mark */
    if (torn_calls++ == 0)
        return pwrite(fd, b, n / 2, off);
    errno = ENOSPC;
    return -1;
}

Test(engine_store, replay_failed_part_way_completed_in_place,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("target");
    char store[4200];
    kept_store(path, store, sizeof store);
    struct wc_rp_result res;
    wc_sys.pwrite = torn_pwrite;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    wc_sys.pwrite = pwrite;
    cr_assert_eq(res.failed, 1);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 5, "the torn write: %lld bytes",
                 (long long)st.st_size);
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert_eq(res.aside, 0, "the replay's own torn write taken for "
                 "another's change");
    char buf[32] = {0};
    int fd = open(path, O_RDONLY);
    cr_assert(fd >= 0 && pread(fd, buf, sizeof buf, 0) == 10);
    close(fd);
    cr_assert_str_eq(buf, "kept data\n");
}

Test(engine_store, blocks_kept_for_streams_go_to_a_file_that_needs_them,
     .init = wct_setup, .fini = wct_teardown, .timeout = 60)
{
    /* A 2 MiB store (512 blocks), no dirty limit below it. Three streams
     * of 140 pages each keep blocks for their next pages (pages.c, the
     * stash: 64 each); a fourth file then writes 440 pages out of order
     * (no stream: all stay dirty), more than the store has free. It takes
     * the streams' kept blocks (steal_stashes) instead of writing itself
     * back because the store is full (WC_WHY_FULL); everything reaches
     * the files. */
    struct wc_cache *c;
    struct wc_config cfg = {.size = 2 << 20, .dirty = 2 << 20,
                            .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    static char page[4096];
    int fds[4], err;
    struct wc_file *fs[4];
    for (int k = 0; k < 4; k++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", k);
        fds[k] = open(wct_path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);
        fs[k] = wc_file_get(c, fds[k], &err);
        cr_assert_not_null(fs[k]);
    }
    /* In 512-byte writes: a whole page would go straight to the file. */
    for (int k = 0; k < 3; k++)
        for (long i = 0; i < 140 * 8; i++) {
            memset(page, 'a' + k, 512);
            cr_assert_eq(wc_pwrite(fs[k], page, 512, i * 512, 0, NULL), 512);
        }
    struct wc_stats before, after;
    wc_cache_stats(c, &before);
    for (long i = 439; i >= 0; i--) {
        memset(page, 'A' + (int)(i % 26), 512);
        for (long j = 0; j < 8; j++)
            cr_assert_eq(wc_pwrite(fs[3], page, 512, i * 4096 + j * 512, 0,
                                   NULL), 512);
    }
    wc_cache_stats(c, &after);
    cr_expect_eq(after.flushes[WC_WHY_FULL], before.flushes[WC_WHY_FULL],
                 "the store was full %llu times: the streams' kept blocks "
                 "were not given to the file that needed them",
                 (unsigned long long)(after.flushes[WC_WHY_FULL] -
                                      before.flushes[WC_WHY_FULL]));
    cr_expect_eq(after.through, before.through);
    for (int k = 0; k < 4; k++)
        cr_assert_eq(wc_file_put(fs[k]), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    static char got[4096];
    for (int k = 0; k < 4; k++) {
        long n = k < 3 ? 140 : 440;
        for (long i = 0; i < n; i++) {
            memset(page, k < 3 ? 'a' + k : 'A' + (int)(i % 26), sizeof page);
            cr_assert_eq(pread(fds[k], got, sizeof got, i * 4096), 4096);
            cr_assert_eq(memcmp(got, page, sizeof page), 0, "file %d page %ld",
                         k, i);
        }
        close(fds[k]);
    }
}

/* ---- runs of appended bytes: where and how often they land ------------ */

#include <stddef.h>
#include <sys/uio.h>
#include "../cache/format.h"

/* Five 20-byte records appended to `path` (opened O_APPEND), their
 * write-back failed: the backing file is kept (its name in store). */
static const char app_recs[] = "record 1 of the run\nrecord 2 of the run\n"
                               "record 3 of the run\nrecord 4 of the run\n"
                               "record 5 of the run\n";

static void kept_appends(const char *path, char *store, size_t cap)
{
    kept_writes(path, store, cap, app_recs, 20, 5, 1);
}

static void expect_content(const char *path, const char *want)
{
    size_t n = strlen(want);
    char buf[512] = {0};
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    cr_expect(r == (ssize_t)n && memcmp(buf, want, n) == 0,
              "the file holds %zd bytes:\n%s\nnot %zu:\n%s", r, buf, n, want);
}

static int torn_writes;
static ssize_t torn_write(int fd, const void *b, size_t n)
{
    if (torn_writes++ == 0)
        return write(fd, b, n / 2);
    errno = ENOSPC;
    return -1;
}

/* A replay that appended part of the run and then failed (ENOSPC) is
 * completed by the next one, not made again: the records once each
 * (replay.c append_done; before, 50 + 100 bytes). */
Test(engine_store, appended_run_replayed_part_way_is_completed_not_repeated,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("log");
    char store[4200];
    kept_appends(path, store, sizeof store);
    struct wc_rp_result res;
    torn_writes = 0;
    wc_sys.write = torn_write;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    wc_sys.write = write;
    cr_assert_eq(res.failed, 1);
    struct stat st;
    cr_assert(stat(path, &st) == 0 && st.st_size == 50, "%lld bytes",
              (long long)st.st_size);
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    expect_content(path, app_recs);
}

/* Slot 0's append_wip and append_wip_len of backing file `store`, as the
 * engine leaves them when it dies in an append call (format.h (9)). */
static void set_wip(const char *store, uint64_t at, uint64_t len)
{
    int fd = open(store, O_RDWR);
    cr_assert_geq(fd, 0);
    struct wc_header h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    uint64_t v[2] = {at + 1, len};
    cr_assert_eq(pwrite(fd, v, sizeof v, (off_t)(h.off_files +
                        offsetof(struct wc_fslot, append_wip))),
                 (ssize_t)sizeof v);
    close(fd);
}

/* The engine died in the append call of its run: the replay looks at the
 * file. Landed where the engine's end of file was: not appended again
 * (before: the records twice); landed after another process's append
 * (the engine's end of file behind): found there, not appended again;
 * not landed: appended, after the other's; cut by the death (the kernel
 * stops a write at a page boundary of the file when the process is
 * killed), at the end of the file: only the rest appended (a probe:
 * 500-10,000 records twice, 2 runs in 30-60); before another's append,
 * less than a page of it: all of it again (replay.c landed_at). */
Test(engine_store, appended_run_in_flight_at_death_lands_once,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("log");
    static const char other[] = "another process's line\n";
    char store[4200], want[256];
    static char pad[4096 - 64];
    memset(pad, 'o', sizeof pad);
    for (int how = 0; how < 5; how++) {
        kept_appends(path, store, sizeof store);
        int fd = open(path, O_WRONLY | O_TRUNC);
        cr_assert_geq(fd, 0);
        uint64_t at = 0;
        if (how == 3) {         /* 64 bytes landed, the end of the file */
            cr_assert_eq(write(fd, app_recs, 64), 64);
            snprintf(want, sizeof want, "%s", app_recs);
        } else if (how == 4) {  /* 64 landed up to a page boundary: less
                                   than a page, not told from another's
                                   bytes that begin as ours, written twice
                                   rather than lost */
            cr_assert_eq(write(fd, pad, sizeof pad), (ssize_t)sizeof pad);
            cr_assert_eq(write(fd, app_recs, 64), 64);
            cr_assert_eq(write(fd, other, strlen(other)),
                         (ssize_t)strlen(other));
            at = sizeof pad;
        } else if (how == 0) {
            cr_assert_eq(write(fd, app_recs, 100), 100);
            snprintf(want, sizeof want, "%s", app_recs);
        } else if (how == 1) {
            cr_assert_eq(write(fd, other, strlen(other)),
                         (ssize_t)strlen(other));
            cr_assert_eq(write(fd, app_recs, 100), 100);
            snprintf(want, sizeof want, "%s%s", other, app_recs);
        } else {
            cr_assert_eq(write(fd, other, strlen(other)),
                         (ssize_t)strlen(other));
            snprintf(want, sizeof want, "%s%s", other, app_recs);
        }
        close(fd);
        set_wip(store, at, 100);
        struct wc_rp_result res;
        cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
        cr_assert_eq(res.failed, 0);
        cr_assert_eq(res.aside, 0);
        if (how != 4) {
            expect_content(path, want);
            continue;
        }
        char *got = malloc(8192), *w = malloc(8192);
        int rf = open(path, O_RDONLY);
        ssize_t rn = rf >= 0 ? read(rf, got, 8192) : -1;
        close(rf);
        size_t n = rn > 0 ? (size_t)rn : 0;
        size_t wl = 0;
        memcpy(w, pad, sizeof pad);
        wl += sizeof pad;
        memcpy(w + wl, app_recs, 64);
        wl += 64;
        memcpy(w + wl, other, strlen(other));
        wl += strlen(other);
        memcpy(w + wl, app_recs, 100);
        wl += 100;
        cr_expect(got && n == wl && memcmp(got, w, wl) == 0,
                  "cut in the first page: %zu bytes, not %zu", n, wl);
        free(got);
        free(w);
    }
}

/* Append src (n bytes) to buf at *len. */
static void put_bytes(char *buf, size_t *len, const void *src, size_t n)
{
    memcpy(buf + *len, src, n);
    *len += n;
}

/* A run of nrec appended records of rec bytes kept, its append call in
 * flight at death where the engine expected the end of the file
 * (wip_at), the file holding `file` (len bytes) when the replay looks:
 * the replay must leave exactly want (wl bytes). */
static void replay_in_flight(const char *recs, size_t rec, int nrec,
                             const char *file, size_t len, uint64_t wip_at,
                             const char *want, size_t wl, const char *what)
{
    const char *path = wct_path("log");
    char store[4200];
    kept_writes(path, store, sizeof store, recs, rec, nrec, 1);
    int fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, file, len), (ssize_t)len);
    close(fd);
    set_wip(store, wip_at, rec * (size_t)nrec);
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    char *got = malloc(2 * wl + 64);
    int rf = open(path, O_RDONLY);
    ssize_t n = got && rf >= 0 ? read(rf, got, 2 * wl + 64) : -1;
    close(rf);
    cr_expect(n == (ssize_t)wl && memcmp(got, want, wl) == 0,
              "%s: %zd bytes, not %zu", what, n, wl);
    free(got);
}

/* The same, cut at a page boundary of the file and followed by another
 * process's record that begins as the run's next one does ("record "):
 * the bytes the file has in common with the run go 7 bytes past the cut;
 * only what follows the cut is appended (before: the whole run again,
 * after the other's record; a probe, two loggers whose records begin
 * "W0", 4 runs in 30 with thousands of records twice). */
Test(engine_store, appended_run_cut_before_a_look_alike_lands_once,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    static const char other[] = "record of another process\n";
    enum { REC = 128, NREC = 40, RUN = REC * NREC, CUT = 4096 };
    static char recs[RUN], want[RUN + 64];
    for (int i = 0; i < NREC; i++) {
        memset(recs + i * REC, '.', REC);
        int n = snprintf(recs + i * REC, REC, "record %d of the run", i);
        recs[i * REC + n] = ' ';
        recs[i * REC + REC - 1] = '\n';
    }
    static char file[RUN];
    size_t len = 0, wl = 0;
    put_bytes(file, &len, recs, CUT);
    put_bytes(file, &len, other, strlen(other));
    put_bytes(want, &wl, recs, CUT);
    put_bytes(want, &wl, other, strlen(other));
    put_bytes(want, &wl, recs + CUT, RUN - CUT);
    replay_in_flight(recs, REC, NREC, file, len, 0, want, wl,
                     "cut before a look-alike");
}

/* Nothing of the call landed, and another process's records where it
 * would have begin as the run's do, for longer than the way to the next
 * page boundary of the file: all of the run is appended (before, the
 * bytes up to that boundary were taken as landed and lost; a probe,
 * records of 300 'x' then a number, 80 bytes of the first record gone). */
Test(engine_store, appended_run_not_landed_beside_a_look_alike_is_whole,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    enum { REC = 400, NREC = 12, RUN = REC * NREC, PAD = 4096 - 80 };
    static char recs[RUN], theirs[3 * REC], pad[PAD], want[PAD + 4 * RUN];
    for (int i = 0; i < NREC; i++) {
        memset(recs + i * REC, 'x', REC);
        snprintf(recs + i * REC + 300, REC - 300, "W1 %08d", i);
        recs[i * REC + REC - 1] = '\n';
    }
    for (int i = 0; i < 3; i++) {
        memset(theirs + i * REC, 'x', REC);
        snprintf(theirs + i * REC + 300, REC - 300, "W2 %08d", i);
        theirs[i * REC + REC - 1] = '\n';
    }
    memset(pad, 'o', sizeof pad);
    static char file[PAD + sizeof theirs];
    size_t len = 0, wl = 0;
    put_bytes(file, &len, pad, PAD);
    put_bytes(file, &len, theirs, sizeof theirs);
    put_bytes(want, &wl, file, len);
    put_bytes(want, &wl, recs, RUN);
    replay_in_flight(recs, REC, NREC, file, len, PAD, want, wl,
                     "not landed, beside a look-alike");
}

/* A replay's progress (append_done) past the end of the run is a corrupt
 * backing file: nothing replayed, the file kept, said (before: the run
 * skipped, the bytes lost, "written back"). */
Test(engine_store, appended_run_progress_past_its_end_is_corrupt,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *path = wct_path("log");
    char store[4200];
    kept_appends(path, store, sizeof store);
    int fd = open(store, O_RDWR);
    cr_assert_geq(fd, 0);
    struct wc_header h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    uint64_t v = ~(uint64_t)0;
    cr_assert_eq(pwrite(fd, &v, sizeof v, (off_t)(h.off_files +
                        offsetof(struct wc_fslot, append_done))),
                 (ssize_t)sizeof v);
    close(fd);
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_geq(res.failed, 1);
    cr_assert_eq(access(store, F_OK), 0, "the backing file went");
    struct stat st;
    cr_assert(stat(path, &st) == 0 && st.st_size == 0, "%lld bytes",
              (long long)st.st_size);
}

/* A run's write-back appended part of it (ENOSPC), then another process
 * emptied the file (logrotate's copytruncate): the retry appends the rest
 * at the new end, with no hole of zeros before it. The file was extended
 * to where the rest began (flush.c: only before the run's first byte
 * lands). */
static int half_calls;
static ssize_t half_pwritev2(int fd, const struct iovec *v, int n, off_t o,
                             int fl)
{
    (void)n;
    if (half_calls++ == 0) {
        struct iovec one = {v[0].iov_base, 50};
        return pwritev2(fd, &one, 1, o, fl);
    }
    errno = ENOSPC;
    return -1;
}

Test(engine_store, appended_run_retried_after_truncation_leaves_no_hole,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    struct wc_cache *c;
    struct wc_config cfg = {.size = 1 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    const char *path = wct_path("log");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    char rec[100];
    memcpy(rec, app_recs, 100);
    cr_assert_eq(wc_pwrite(f, rec, 100, 0, 1, NULL), 100);
    half_calls = 0;
    wc_sys.pwritev2 = half_pwritev2;
    cr_assert_lt(wc_file_flush(f, WC_WHY_FSYNC), 0);
    wc_sys.pwritev2 = pwritev2;
    cr_assert_eq(truncate(path, 0), 0);         /* another process */
    cr_assert_eq(wc_file_flush(f, WC_WHY_FSYNC), 0);
    expect_content(path, app_recs + 50);
    cr_assert_lt(wc_file_put(f), 0);    /* the error, once to close too */
    cr_assert_eq(wc_cache_close(c), 0);
    close(fd);
}

/* A backing file its owner died making, still empty (no size set, no
 * header): nothing to replay; a replay says so, counts it failed once
 * (it may also be a store something emptied) and removes it (before:
 * "too short for a header", kept, at every recover). */
/* An empty backing file named for a living process is one being made
 * (created by name, its lock not taken yet): left alone, not reported
 * (before, removed: its process went on caching into a file no replay
 * could find). */
Test(engine_store, empty_backing_file_of_a_living_owner_stays,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    char name[64];
    snprintf(name, sizeof name, "cache.%u.0badc0de", (unsigned)getpid());
    const char *store = wct_path(name);
    int fd = open(store, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert(res.alive && !res.removed);
    cr_assert_eq(access(store, F_OK), 0, "removed while being made");
    unlink(store);
}

Test(engine_store, empty_backing_file_of_a_dead_owner_goes,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    const char *store = wct_path("cache.1.empty");
    int fd = open(store, O_RDWR | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    close(fd);
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 1, "said as failed once");
    cr_assert(res.removed, "kept");
    cr_assert_neq(access(store, F_OK), 0);
}

/* ---- backing files' names (format.h wc_fmt_name_parse) ---------------- */

/* The names a sweep, `wcache ls` and `wcache recover` take for stores:
 * "cache.<pid>.<8 hex digits>", and with ".kept" where asked; the pid
 * back, 0 for anything else (parsed by hand since every start-up's sweep
 * reads them: no scanf). */
Test(engine_store, backing_file_names)
{
    static const struct {
        const char *name;
        unsigned pid, kept_pid;
        int kept;
    } cases[] = {
        {"cache.1681.2bc700c7", 1681, 1681, 0},
        {"cache.1681.2BC700C7", 1681, 1681, 0},
        {"cache.1.00000000", 1, 1, 0},
        {"cache.2147483647.ffffffff", 2147483647u, 2147483647u, 0},
        {"cache.1681.2bc700c7.kept", 0, 1681, 1},
        {"cache.2147483648.ffffffff", 0, 0, 0},
        {"cache.99999999999999999999.ffffffff", 0, 0, 0},
        {"cache.0.2bc700c7", 0, 0, 0},
        {"cache..2bc700c7", 0, 0, 0},
        {"cache.+12.2bc700c7", 0, 0, 0},
        {"cache. 12.2bc700c7", 0, 0, 0},
        {"cache.12.2bc700c", 0, 0, 0},
        {"cache.12.2bc700c77", 0, 0, 0},
        {"cache.12.0x2bc700", 0, 0, 0},
        {"cache.12.2bc700g7", 0, 0, 0},
        {"cache.12.2bc700c7.kep", 0, 0, 0},
        {"cache.12.2bc700c7.keptx", 0, 0, 0},
        {"cache.12.2bc700c7.tmp", 0, 0, 0},
        {"cache.12", 0, 0, 0},
        {"cache.", 0, 0, 0},
        {"Cache.12.2bc700c7", 0, 0, 0},
        {"guard.log", 0, 0, 0},
        {"", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int kept = -1;
        cr_expect_eq(wc_fmt_name_pid(cases[i].name), cases[i].pid,
                     "%s: pid %u", cases[i].name,
                     wc_fmt_name_pid(cases[i].name));
        cr_expect_eq(wc_fmt_name_parse(cases[i].name, &kept),
                     cases[i].kept_pid, "%s (kept allowed): pid %u",
                     cases[i].name,
                     wc_fmt_name_parse(cases[i].name, &kept));
        if (cases[i].kept_pid)
            cr_expect_eq(kept, cases[i].kept, "%s: kept %d", cases[i].name,
                         kept);
    }
}
