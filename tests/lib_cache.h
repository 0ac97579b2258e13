/*
 * lib_cache.h - helpers shared by the Criterion suites of the cache engine
 * (tests/test_cache_*.c). Test binaries link build/libwcache_core.a and
 * never load the shim.
 *
 *   - wct_setup()/wct_teardown(): the fixture of every test. Fills wc_sys
 *     with libc's functions, makes a scratch directory under /tmp, starts a
 *     watchdog process that kills a test that hangs (with a message saying
 *     which step hung) and removes the scratch directory (and unmounts what
 *     the test mounted) even when the test crashed or was killed.
 *   - wct_cache_open(): a cache with a small configuration whose backing
 *     store lives in the scratch directory.
 *   - struct wct_pair: the same operations run against the kernel on one
 *     scratch file and against the cache on another; every answer (return
 *     value, -errno, start offset of an append, size, bytes in the cache's
 *     view and on disk after write-back) is compared. The kernel is the
 *     specification: expected answers are never written by hand.
 *   - wct_rec_*(): a recording, fault-injecting wrapper over the wc_sys
 *     entries that write back (pwrite, pwritev, ftruncate, fsync,
 *     fdatasync, fallocate): logs (call, fd, offset, length) of the calls
 *     that reach one target file, and fails the Nth of them with a chosen
 *     errno (or makes it short), as SQLite's test_syscall.c does.
 *   - memory with holes: readable bytes that end where a PROT_NONE page, an
 *     unmapped page or a read-only page begins.
 */
#ifndef WCT_LIB_CACHE_H
#define WCT_LIB_CACHE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "wcache/cache.h"

#define WCT_PG 4096u

/* ---- fixture, scratch directory, watchdog ----------------------------- */

/* Scratch directory of the running test ("/tmp/wct.XXXXXX"). */
extern char wct_dir[PATH_MAX];

/* .init and .fini of every suite. */
void wct_setup(void);
void wct_teardown(void);

/* A path inside the scratch directory. The result lives in one of 16
 * rotating static buffers. */
const char *wct_path(const char *name);

/* (Re)arm the watchdog: if the test has not re-armed or finished within
 * `seconds`, "<test>: <what>: no progress after N s" goes to stderr and the
 * test is killed. The fixture arms it with 30 s. */
void wct_watchdog(unsigned seconds, const char *what);

/* Mount a tmpfs of `size_opt` ("1m") on a new directory of the scratch
 * directory, in a private mount namespace when possible, so the mount goes
 * away with the test process whatever happens; teardown unmounts it too.
 * Returns the directory, or NULL with errno set. */
const char *wct_mount_tmpfs(const char *name, const char *size_opt);

/* True when WCT_LONG is set in the environment (make check-long). */
int wct_long(void);

/* ---- data ---------------------------------------------------------------- */

/* Printable bytes (0x21..0x7e: never 0x00, never 0xCD) that depend on the
 * absolute file offset `off` and on `seed`, so that a misplaced byte shows. */
void wct_pattern(void *buf, size_t len, off_t off, unsigned seed);
unsigned char wct_pattern_byte(off_t off, unsigned seed);

/* Create the scratch file `name` holding `len` pattern bytes (seed) and
 * return a descriptor opened with `flags` (O_RDWR...). Asserts. */
int wct_create(const char *name, size_t len, unsigned seed, int flags);

/* Whole contents of a file by path (malloc'd, *len set). Asserts. */
unsigned char *wct_read_path(const char *path, size_t *len /* OUT */);

/* Asserts that the file at `path` holds exactly want[0..len). */
void wct_expect_file(const char *path, const void *want, size_t len);

/* Offset of the first byte equal to `byte` in buf, or -1. */
long wct_find_byte(const void *buf, size_t len, int byte);

/* Offset of the first difference, or -1 when equal. */
long wct_diff(const void *a, const void *b, size_t len);

/* ---- the cache ------------------------------------------------------------ */

/* A cache of `size` bytes (0: 64 blocks) whose store lives in
 * <scratch>/store; dirty, bypass, max_files left at their defaults. */
struct wc_cache *wct_cache_open(size_t size);
struct wc_cache *wct_cache_open_cfg(struct wc_config *cfg);

/* wc_file_get, asserting success. */
struct wc_file *wct_get(struct wc_cache *c, int fd);

/* wc_pread of the whole file [0, wc_file_size) into a malloc'd buffer. */
unsigned char *wct_cache_view(struct wc_file *f, int fd, size_t *len /* OUT */);

/* ---- memory with holes ---------------------------------------------------- */

enum wct_hole {
    WCT_NONE,       /* a PROT_NONE page follows */
    WCT_UNMAPPED,   /* an unmapped page follows */
    WCT_RDONLY,     /* a read-only page follows (for reads into it) */
};

/* `n` readable and writable bytes (pattern, seed) that end exactly where a
 * page of kind `hole` begins. Never freed (each test is its own process). */
void *wct_edge(size_t n, enum wct_hole hole, unsigned seed);

/* One page with protection `prot` (PROT_NONE...). */
void *wct_page(int prot);

/* Is the page holding p mapped at all? */
int wct_mapped(const void *p);

/* ---- the kernel against the cache ----------------------------------------- */

struct wct_pair {
    struct wc_cache *c;
    struct wc_file *f;   /* the cached file */
    int cfd;             /* the program's descriptor of it (O_RDWR) */
    int kfd;             /* the kernel's file, O_RDWR */
    int kafd;            /* the kernel's file, O_RDWR | O_APPEND */
    int poison;          /* a byte that must never be read or written back
                            (0xCD after wc__store_poison); -1: none */
    int soft;            /* mismatches fail the test but do not stop it;
                            the pair is then marked failed */
    int failed;          /* a mismatch changed state: later operations on
                            this pair are skipped */
    char cpath[PATH_MAX], kpath[PATH_MAX];
};

/* What the pair operations return once the pair has failed (soft mode). */
#define WCT_SKIPPED ((ssize_t)0x7eadbeef)

/* Two scratch files "<name>.c" and "<name>.k" each holding `disk_len`
 * pattern bytes (seed 1); the first is handed to the cache. */
void wct_pair_open(struct wct_pair *p, struct wc_cache *c, const char *name,
                   size_t disk_len);

/* Run the same pwrite on both (kernel: pwrite on kfd, or on kafd when
 * `append`; cache: wc_pwrite) and assert the same return value, the same
 * size, and for an append that wrote something, *where == the size before.
 * The kernel and the cache get their own source buffers (for sources that
 * are mappings of each side's own file); pass the same pointer otherwise.
 * Returns the common result (bytes or -errno). */
ssize_t wct_pair_pwrite(struct wct_pair *p, const void *kbuf, const void *cbuf,
                        size_t len, off_t pos, int append, const char *what);
ssize_t wct_pair_pwritev(struct wct_pair *p, const struct iovec *kiov,
                         const struct iovec *ciov, int iovcnt, off_t pos,
                         int append, const char *what);
/* A plain successful write of pattern bytes (seed), on both. */
void wct_pair_put_pattern(struct wct_pair *p, off_t pos, size_t len,
                          unsigned seed, const char *what);
/* ftruncate on the kernel's file, wc_file_truncate on the cache's. */
void wct_pair_truncate(struct wct_pair *p, off_t size, const char *what);

/* Run the same pread/preadv into the same user memory: first the kernel
 * (whose bytes are saved), then the cache; assert the same return value and
 * the same bytes in the part the call reports written. */
ssize_t wct_pair_pread(struct wct_pair *p, void *buf, size_t len, off_t pos,
                       const char *what);
ssize_t wct_pair_preadv(struct wct_pair *p, const struct iovec *iov,
                        int iovcnt, off_t pos, const char *what);

/* Assert the cache's view (wc_pread of the whole file) equals the kernel's
 * file, byte for byte, and holds no poison byte. */
void wct_pair_check(struct wct_pair *p, const char *what);

/* wc_file_put (asserts 0: everything written back), then assert the cached
 * file on disk equals the kernel's file and holds no poison byte. */
void wct_pair_close(struct wct_pair *p, const char *what);

/* ---- recording and failing the real calls -------------------------------- */

enum wct_op {
    WCT_PWRITE = 1 << 0,
    WCT_PWRITEV = 1 << 1,
    WCT_FTRUNCATE = 1 << 2,
    WCT_FSYNC = 1 << 3,
    WCT_FDATASYNC = 1 << 4,
    WCT_FALLOCATE = 1 << 5,
    WCT_PREAD = 1 << 6,
    WCT_PREADV = 1 << 7,
};
#define WCT_WRITEBACK (WCT_PWRITE | WCT_PWRITEV | WCT_FTRUNCATE)

struct wct_call {
    enum wct_op op;
    int fd;
    off_t off;          /* offset; ftruncate: the new length */
    size_t len;         /* bytes asked for (sum of the segments) */
    int iovcnt;         /* pwritev/preadv: segments; others 1 */
    ssize_t ret;        /* what the caller got (-1 on failure) */
    int err;            /* errno when ret == -1 */
    int injected;       /* this call was failed or shortened on purpose */
};

#define WCT_MAX_CALLS 100000
extern struct wct_call wct_calls[WCT_MAX_CALLS];
extern int wct_ncalls;  /* entries used in wct_calls */

/* Wrap the entries of wc_sys and record every call whose descriptor refers
 * to the same file (st_dev, st_ino) as `target_fd`, from now on. The log is
 * emptied; injection is disarmed. May be called again for another file. */
void wct_rec_start(int target_fd);
/* Put libc's functions back. The log stays readable. */
void wct_rec_stop(void);
/* Empty the log and reset the injection counter. */
void wct_rec_reset(void);

/* The `nth` (1-based, counted from now) recorded call whose op is in `ops`
 * fails with `err` without doing anything; nth == 0 disarms. */
void wct_inject_fail(unsigned ops, int nth, int err);
/* The `nth` recorded call whose op is in `ops` writes only `keep` bytes
 * (truncating its iovec) and returns that short count. */
void wct_inject_short(unsigned ops, int nth, size_t keep);
/* Has the armed injection fired? */
int wct_injected(void);

/* Recorded calls whose op is in `ops`. */
int wct_count(unsigned ops);
/* One line per recorded call, for failure messages (static buffer). */
const char *wct_rec_dump(void);

#endif /* WCT_LIB_CACHE_H */
