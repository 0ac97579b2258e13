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
 */
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
#include "wcache/cache.h"

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
    for (int i = 0; i < 2048; i++)             /* 8 MiB */
        cr_assert_eq(wc_pwrite(f, buf, sizeof buf, (off_t)i * 4096, 0, NULL),
                     4096);
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
    for (int i = 0; i < 2048; i++)
        cr_assert_eq(wc_pwrite(f, buf, sizeof buf, (off_t)i * 4096, 0, NULL),
                     4096);
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

Test(engine_store, kept_when_write_back_failed_then_replayed,
     .init = wct_setup, .fini = wct_teardown, .timeout = 30)
{
    struct wc_cache *c;
    struct wc_config cfg = {.size = 1 << 20, .dir = wct_dir};
    cr_assert_eq(wc_cache_open(&c, &cfg), 0);
    const char *path = wct_path("target");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int err;
    struct wc_file *f = wc_file_get(c, fd, &err);
    cr_assert_not_null(f);
    cr_assert_eq(wc_pwrite(f, "kept data\n", 10, 0, 0, NULL), 10);
    cr_assert_eq(wc_cache_may_remove(c), 0, "dirty data: must stay");
    struct wc_sys saved = wc_sys;
    wc_sys.pwritev = eio_pwritev;
    wc_sys.pwritev2 = eio_pwritev2;
    cr_assert_lt(wc_file_put(f), 0);
    char store[4200];
    snprintf(store, sizeof store, "%s", wc_cache_path(c));
    cr_assert_lt(wc_cache_close(c), 0);
    wc_sys = saved;
    cr_assert_eq(access(store, F_OK), 0, "the backing file was removed "
                 "although its data never reached the file");
    /* What the guard or `wcache recover` does with it. */
    struct wc_rp_result res;
    cr_assert_eq(wc_replay(store, 0, -1, &res), 0);
    cr_assert_eq(res.failed, 0);
    cr_assert_eq(res.bytes, 10);
    cr_assert(res.removed);
    cr_assert_neq(access(store, F_OK), 0);
    char buf[16] = {0};
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
