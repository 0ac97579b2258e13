/*
 * test_cache_fault.c - writes and reads whose user memory faults.
 *
 * CONTRACT.md points covered:
 *   2      every call returns what the kernel returns (EFAULT, EINVAL, EFBIG)
 *   4      an error the kernel reports at write() time (RLIMIT_FSIZE: EFBIG
 *          and SIGXFSZ, the file system's size limit) is reported then
 *   5.1    a fault during the copy is a short count; no handler runs
 *   5.2    EFAULT only when not one byte could be read; else a short count
 *   5.3    progress with faulting sources; zero-length segments skipped
 *   5.7    i_size follows the bytes committed, not the bytes asked for
 *   5.8    return value == bytes made visible; nothing outside changes
 *   5.10   MAX_RW_COUNT clamping, negative segment lengths, iovcnt range,
 *          unreadable iovec arrays
 *   (and the non-faulting copy itself, at every length it copies by moves,
 *   exact to the byte where the source or the destination stops)
 *
 * Every expected answer comes from running the same call with libc's
 * pwrite/pwritev/pread/preadv on a scratch file (struct wct_pair): return
 * value, errno, start offset of an append, size, bytes in the cache's view
 * and bytes on disk after write-back.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib_cache.h"
#include "wcache/ucopy.h"

TestSuite(fault, .init = wct_setup, .fini = wct_teardown, .timeout = 90);

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Where the faulting write goes: each case runs at every destination. */
struct dest {
    const char *name;
    size_t disk;      /* bytes on disk before */
    off_t pre_pos;    /* a cached write before the call (pre_len > 0) */
    size_t pre_len;
    off_t pos;        /* the call's position */
    int append;
};

static const struct dest dests[] = {
    {"page 0 of an empty file", 0, 0, 0, 0, 0},
    {"mid-page of an empty file", 0, 0, 0, 1000, 0},
    {"inside an uncached file", 9000, 0, 0, 3000, 0},
    {"past EOF leaving a hole", 5000, 0, 0, 20000, 0},
    {"over cached dirty data", 9000, 1000, 7000, 2500, 0},
    {"append", 5000, 0, 0, 0, 1},
    {"append after cached data", 5000, 5000, 300, 123, 1},
};
#define NDESTS (sizeof dests / sizeof dests[0])

typedef void (*case_fn)(struct wct_pair *p, const struct dest *d, const void *arg,
                        const char *what);

/* Run `fn` once per destination, each on a fresh pair of files, then check
 * the cache's view and the bytes written back against the kernel. */
static void at_every_dest(const char *label, case_fn fn, const void *arg)
{
    struct wc_cache *c = wct_cache_open(0);
    for (size_t i = 0; i < NDESTS; i++) {
        const struct dest *d = &dests[i];
        char what[256], name[32];
        snprintf(what, sizeof what, "%s, %s", label, d->name);
        snprintf(name, sizeof name, "f%zu", i);
        wct_watchdog(20, what);
        struct wct_pair p;
        wct_pair_open(&p, c, name, d->disk);
        p.soft = 1;
        if (d->pre_len)
            wct_pair_put_pattern(&p, d->pre_pos, d->pre_len, 2, what);
        fn(&p, d, arg, what);
        wct_pair_check(&p, what);
        wct_pair_close(&p, what);
    }
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- pwrite: one buffer ------------------------------------------------- */

struct buf_case {
    const void *buf;
    size_t len;
};

static void do_pwrite(struct wct_pair *p, const struct dest *d, const void *arg,
                      const char *what)
{
    const struct buf_case *k = arg;
    wct_pair_pwrite(p, k->buf, k->buf, k->len, d->pos, d->append, what);
}

Test(fault, null_buffer)
{
    struct buf_case k = {NULL, 100};
    at_every_dest("NULL, 100 bytes", do_pwrite, &k);
    k.len = 0;
    at_every_dest("NULL, 0 bytes", do_pwrite, &k);
    k.len = 1;
    at_every_dest("NULL, 1 byte", do_pwrite, &k);
}

Test(fault, prot_none_buffer)
{
    void *none = wct_page(PROT_NONE);
    size_t lens[] = {1, 100, 4096, 10000, 0};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct buf_case k = {none, lens[i]};
        char label[64];
        snprintf(label, sizeof label, "PROT_NONE page, %zu bytes", lens[i]);
        at_every_dest(label, do_pwrite, &k);
    }
}

/* A buffer that crosses into a bad page after `readable` bytes. */
static void crossing(enum wct_hole hole, const char *hname)
{
    size_t splits[] = {1, 100, 4095, 4096 + 100, 3 * 4096 + 1};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0]; i++) {
        struct buf_case k = {wct_edge(splits[i], hole, 3), splits[i] + 5000};
        char label[96];
        snprintf(label, sizeof label, "%zu readable bytes then %s (asking %zu)",
                 splits[i], hname, k.len);
        if (hole == WCT_UNMAPPED)
            cr_assert(!wct_mapped((const char *)k.buf + splits[i]));
        at_every_dest(label, do_pwrite, &k);
    }
}

Test(fault, cross_into_prot_none)
{
    crossing(WCT_NONE, "a PROT_NONE page");
}

Test(fault, cross_into_unmapped)
{
    crossing(WCT_UNMAPPED, "an unmapped page");
}

Test(fault, negative_position)
{
    char b[100];
    memset(b, 'x', sizeof b);
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "neg", 3000);
    p.soft = 1;
    wct_pair_pwrite(&p, b, b, sizeof b, -1, 0, "pwrite at -1");
    wct_pair_pwrite(&p, b, b, sizeof b, -4096, 1, "append with position -4096");
    wct_pair_pwrite(&p, b, b, 0, -1, 0, "0 bytes at -1");
    wct_pair_pwrite(&p, NULL, NULL, 100, -1, 0, "NULL at -1");
    wct_pair_check(&p, "negative positions");
    wct_pair_close(&p, "negative positions");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Lengths beyond what one call may move: the kernel clamps to MAX_RW_COUNT
 * after checking that [buf, buf + len) is inside user space. */
Test(fault, huge_lengths)
{
    const void *edge = wct_edge(4096, WCT_NONE, 4);
    const void *edge2 = wct_edge(100, WCT_UNMAPPED, 5);
    struct {
        const void *buf;
        size_t len;
        const char *name;
    } cases[] = {
        {edge, SIZE_MAX, "SIZE_MAX bytes"},
        {edge, (size_t)SSIZE_MAX + 1, "SSIZE_MAX + 1 bytes"},
        {edge, (size_t)SSIZE_MAX, "SSIZE_MAX bytes"},
        {edge, (size_t)1 << 40, "2^40 bytes from 4096 readable"},
        {edge, 0x80000000u, "2^31 bytes from 4096 readable"},
        {edge, WC_MAX_RW_COUNT + 1, "MAX_RW_COUNT + 1 bytes"},
        {edge2, (size_t)1 << 36, "2^36 bytes from 100 readable, then unmapped"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct buf_case k = {cases[i].buf, cases[i].len};
        at_every_dest(cases[i].name, do_pwrite, &k);
    }
}

/* Positions at the limits: pos + len overflowing loff_t is EINVAL, a
 * position beyond the file system's maximum file size is EFBIG. */
Test(fault, position_limits)
{
    char b[100];
    memset(b, 'y', sizeof b);
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "lim", 3000);
    p.soft = 1;
    struct {
        off_t pos;
        int append;
        const char *name;
    } cases[] = {
        {LLONG_MAX - 5, 0, "pos + len overflows loff_t"},
        {LLONG_MAX, 0, "pos LLONG_MAX"},
        {LLONG_MAX - 5, 1, "append, pos + len overflows loff_t"},
        {(off_t)1 << 50, 0, "pos 2^50 (past ext4's limit)"},
        {(off_t)1 << 45, 0, "pos 2^45 (past ext4's limit)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        wct_pair_pwrite(&p, b, b, sizeof b, cases[i].pos, cases[i].append,
                        cases[i].name);
    wct_pair_check(&p, "position limits");
    wct_pair_close(&p, "position limits");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- pwritev ------------------------------------------------------------ */

struct iov_case {
    const struct iovec *iov;
    int iovcnt;
};

static void do_pwritev(struct wct_pair *p, const struct dest *d, const void *arg,
                       const char *what)
{
    const struct iov_case *k = arg;
    wct_pair_pwritev(p, k->iov, k->iov, k->iovcnt, d->pos, d->append, what);
}

static void *good(size_t n, unsigned seed)
{
    unsigned char *b = malloc(n);
    cr_assert(b);
    wct_pattern(b, n, 0, seed);
    return b;
}

Test(fault, iov_bad_segment_in_middle)
{
    void *none = wct_page(PROT_NONE);
    void *edge = wct_edge(50, WCT_NONE, 6);
    void *hole = wct_edge(70, WCT_UNMAPPED, 7);
    void *a = good(4096, 8), *b = good(300, 9);
    struct iovec v1[] = {{a, 300}, {NULL, 100}, {b, 300}};
    struct iovec v2[] = {{a, 300}, {none, 100}, {b, 300}};
    struct iovec v3[] = {{a, 300}, {edge, 100}, {b, 300}};
    struct iovec v4[] = {{a, 300}, {b, 200}, {hole, 4096}, {a, 10}};
    struct iovec v5[] = {{NULL, 100}, {a, 300}};
    struct iovec v6[] = {{a, 4096 - 10}, {edge, 50}, {none, 1}, {b, 300}};
    struct iov_case k1 = {v1, 3}, k2 = {v2, 3}, k3 = {v3, 3}, k4 = {v4, 4},
                    k5 = {v5, 2}, k6 = {v6, 4};
    at_every_dest("iov {300 good, NULL 100, 300 good}", do_pwritev, &k1);
    at_every_dest("iov {300 good, PROT_NONE 100, 300 good}", do_pwritev, &k2);
    at_every_dest("iov {300 good, 50 readable of 100, 300 good}", do_pwritev, &k3);
    at_every_dest("iov {300, 200, 70 readable then unmapped of 4096, 10}",
                  do_pwritev, &k4);
    at_every_dest("iov {NULL 100, 300 good}", do_pwritev, &k5);
    at_every_dest("iov {4086 good, 50 of 50, PROT_NONE 1, 300}", do_pwritev, &k6);
}

Test(fault, iov_zero_length_null_segments)
{
    void *a = good(300, 10), *b = good(5000, 11);
    void *none = wct_page(PROT_NONE);
    struct iovec v1[] = {{NULL, 0}, {a, 300}, {NULL, 0}, {NULL, 0}, {b, 5000}, {NULL, 0}};
    struct iovec v2[] = {{NULL, 0}, {NULL, 0}, {NULL, 0}};
    struct iovec v3[] = {{none, 0}, {a, 1}, {none, 0}, {b, 4095}, {none, 0}};
    struct iovec v4[] = {{NULL, 0}};
    struct iov_case k1 = {v1, 6}, k2 = {v2, 3}, k3 = {v3, 5}, k4 = {v4, 1};
    at_every_dest("iov with NULL zero-length segments around data", do_pwritev, &k1);
    at_every_dest("iov of NULL zero-length segments only", do_pwritev, &k2);
    at_every_dest("iov with PROT_NONE zero-length segments", do_pwritev, &k3);
    at_every_dest("one NULL zero-length segment", do_pwritev, &k4);
}

Test(fault, iov_count)
{
    struct iovec *v = calloc(IOV_MAX + 2, sizeof *v);
    unsigned char *data = good(3 * (IOV_MAX + 2), 12);
    for (int i = 0; i < IOV_MAX + 2; i++)
        v[i] = (struct iovec){data + 3 * i, 3};
    int counts[] = {0, -1, INT_MIN, IOV_MAX + 1, IOV_MAX, IOV_MAX - 1, 1};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        struct iov_case k = {v, counts[i]};
        char label[64];
        snprintf(label, sizeof label, "iovcnt %d", counts[i]);
        at_every_dest(label, do_pwritev, &k);
    }
    struct iov_case knull = {NULL, 0};
    at_every_dest("iov NULL, iovcnt 0", do_pwritev, &knull);
    struct iov_case knull_bad = {NULL, IOV_MAX + 1};
    at_every_dest("iov NULL, iovcnt IOV_MAX + 1", do_pwritev, &knull_bad);
    struct iov_case kneg = {NULL, -1};
    at_every_dest("iov NULL, iovcnt -1", do_pwritev, &kneg);
}

Test(fault, iov_lengths_overflowing_ssize_t)
{
    void *edge = wct_edge(4096, WCT_NONE, 13);
    void *edge100 = wct_edge(100, WCT_NONE, 14);
    void *a = good(4096, 15);
    struct iovec v1[] = {{a, (size_t)SSIZE_MAX + 1}};
    struct iovec v2[] = {{a, 100}, {a, SIZE_MAX}};
    struct iovec v3[] = {{edge, (size_t)1 << 40}, {a, (size_t)1 << 40}, {a, (size_t)1 << 40}};
    struct iovec v4[] = {{a, (size_t)SSIZE_MAX / 2 + 1}, {a, (size_t)SSIZE_MAX / 2 + 1}};
    struct iovec v5[] = {{a, 100}, {edge100, 100}, {edge, WC_MAX_RW_COUNT}};
    struct iovec v6[] = {{edge, (size_t)SSIZE_MAX}};
    struct iovec v7[] = {{a, 10}, {edge, (size_t)SSIZE_MAX}};
    struct iovec v8[] = {{a, 4096}, {a, (size_t)SSIZE_MAX + 1}, {NULL, 0}};
    struct iovec v9[] = {{a, 4096}, {edge100, WC_MAX_RW_COUNT}, {NULL, 5}};
    struct {
        struct iov_case k;
        const char *name;
    } cases[] = {
        {{v1, 1}, "one segment of SSIZE_MAX + 1"},
        {{v2, 2}, "second segment SIZE_MAX"},
        {{v3, 3}, "three segments of 2^40 (first: 4096 readable)"},
        {{v4, 2}, "two segments of SSIZE_MAX/2 + 1 (sum overflows)"},
        {{v5, 3}, "100, 100, MAX_RW_COUNT (4096 readable)"},
        {{v6, 1}, "one segment of SSIZE_MAX, 4096 readable"},
        {{v7, 2}, "10, then SSIZE_MAX with 4096 readable"},
        {{v8, 3}, "4096, SSIZE_MAX + 1, 0"},
        {{v9, 3}, "4096, MAX_RW_COUNT (100 readable), NULL 5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        at_every_dest(cases[i].name, do_pwritev, &cases[i].k);
}

Test(fault, iov_array_unreadable)
{
    void *none = wct_page(PROT_NONE);
    void *a = good(300, 16);
    /* an array whose second element lies on a PROT_NONE page */
    struct iovec *arr = wct_edge(sizeof(struct iovec), WCT_NONE, 0);
    arr[0] = (struct iovec){a, 300};
    struct iovec *arr_hole = wct_edge(sizeof(struct iovec), WCT_UNMAPPED, 0);
    arr_hole[0] = (struct iovec){a, 300};
    /* Two readable entries, the third on a PROT_NONE page: the kernel
     * reads entry by entry, so a negative length before the fault is
     * EINVAL (the engine copies the array at once: wc_iovec_check). */
    struct iovec *arr_neg = wct_edge(2 * sizeof(struct iovec), WCT_NONE, 0);
    arr_neg[0] = (struct iovec){a, 300};
    arr_neg[1] = (struct iovec){a, (size_t)-5};
    struct iovec *arr_two = wct_edge(2 * sizeof(struct iovec), WCT_NONE, 0);
    arr_two[0] = (struct iovec){a, 300};
    arr_two[1] = (struct iovec){a, 10};
    struct {
        struct iov_case k;
        const char *name;
    } cases[] = {
        {{none, 1}, "iovec array on a PROT_NONE page, 1 segment"},
        {{none, 3}, "iovec array on a PROT_NONE page, 3 segments"},
        {{NULL, 1}, "iovec array NULL, 1 segment"},
        {{NULL, 2}, "iovec array NULL, 2 segments"},
        {{arr, 2}, "iovec array crossing into PROT_NONE"},
        {{arr_hole, 2}, "iovec array crossing into an unmapped page"},
        {{arr_neg, 3}, "a negative length, then the array unreadable"},
        {{arr_two, 3}, "two good entries, then the array unreadable"},
        {{arr_two, 2}, "two good entries ending at an unreadable page"},
        {{(struct iovec *)1, 2}, "misaligned iovec array at address 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        at_every_dest(cases[i].name, do_pwritev, &cases[i].k);
}

/* ---- reads into bad memory ----------------------------------------------- */

/* A file whose bytes come from disk, from the cache, and from a hole. */
static void read_pair(struct wct_pair *p, struct wc_cache *c, const char *name)
{
    wct_pair_open(p, c, name, 9000);
    wct_pair_put_pattern(p, 2000, 5000, 2, "read setup: cached over disk");
    wct_pair_put_pattern(p, 12000, 500, 3, "read setup: cached past a hole");
    p->soft = 1;
}

static const off_t read_pos[] = {0, 1500, 6990, 8950, 11990, 12400, 12500, 20000};
#define NREADPOS (sizeof read_pos / sizeof read_pos[0])

Test(fault, read_into_bad_buffers)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    read_pair(&p, c, "r");
    void *none = wct_page(PROT_NONE);
    void *ro = wct_page(PROT_READ);
    char what[160];
    for (size_t i = 0; i < NREADPOS; i++) {
        off_t pos = read_pos[i];
        snprintf(what, sizeof what, "pread NULL, 100 bytes at %lld", (long long)pos);
        wct_pair_pread(&p, NULL, 100, pos, what);
        snprintf(what, sizeof what, "pread NULL, 0 bytes at %lld", (long long)pos);
        wct_pair_pread(&p, NULL, 0, pos, what);
        snprintf(what, sizeof what, "pread into PROT_NONE at %lld", (long long)pos);
        wct_pair_pread(&p, none, 3000, pos, what);
        snprintf(what, sizeof what, "pread into a read-only page at %lld", (long long)pos);
        wct_pair_pread(&p, ro, 3000, pos, what);
    }
    enum wct_hole holes[] = {WCT_NONE, WCT_UNMAPPED, WCT_RDONLY};
    const char *hname[] = {"PROT_NONE", "unmapped", "read-only"};
    size_t splits[] = {1, 100, 4095, 4096 + 100};
    for (size_t h = 0; h < 3; h++)
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            void *buf = wct_edge(splits[s], holes[h], 0);
            for (size_t i = 0; i < NREADPOS; i++) {
                snprintf(what, sizeof what,
                         "pread of %zu at %lld into %zu writable then %s",
                         splits[s] + 3000, (long long)read_pos[i], splits[s],
                         hname[h]);
                wct_pair_pread(&p, buf, splits[s] + 3000, read_pos[i], what);
            }
        }
    void *edge = wct_edge(4096, WCT_NONE, 0);
    wct_pair_pread(&p, edge, SIZE_MAX, 0, "pread of SIZE_MAX");
    wct_pair_pread(&p, edge, (size_t)SSIZE_MAX + 1, 0, "pread of SSIZE_MAX + 1");
    wct_pair_pread(&p, edge, (size_t)1 << 40, 0, "pread of 2^40, 4096 writable");
    wct_pair_pread(&p, edge, 100, -1, "pread at -1");
    wct_pair_pread(&p, edge, 100, LLONG_MAX - 5, "pread where pos + len overflows");
    wct_pair_check(&p, "after the reads");
    wct_pair_close(&p, "after the reads");
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(fault, preadv_into_bad_buffers)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    read_pair(&p, c, "rv");
    void *none = wct_page(PROT_NONE);
    void *edge = wct_edge(50, WCT_NONE, 0);
    unsigned char *a = malloc(4096), *b = malloc(4096);
    struct iovec *arr = wct_edge(sizeof(struct iovec), WCT_NONE, 0);
    arr[0] = (struct iovec){a, 300};
    unsigned char *m = malloc(3 * (IOV_MAX + 1));
    struct iovec *many = calloc(IOV_MAX + 1, sizeof *many);
    for (int i = 0; i < IOV_MAX + 1; i++)
        many[i] = (struct iovec){m + 3 * i, 3};
    struct iovec v1[] = {{a, 300}, {NULL, 100}, {b, 300}};
    struct iovec v2[] = {{a, 300}, {none, 100}, {b, 300}};
    struct iovec v3[] = {{a, 300}, {edge, 100}, {b, 300}};
    struct iovec v4[] = {{NULL, 0}, {a, 300}, {NULL, 0}, {b, 4000}, {none, 0}};
    struct iovec v5[] = {{a, (size_t)SSIZE_MAX + 1}};
    struct iovec v6[] = {{a, 100}, {edge, (size_t)1 << 40}};
    struct {
        const struct iovec *iov;
        int cnt;
        const char *name;
    } cases[] = {
        {v1, 3, "{300, NULL 100, 300}"},
        {v2, 3, "{300, PROT_NONE 100, 300}"},
        {v3, 3, "{300, 50 writable of 100, 300}"},
        {v4, 5, "zero-length NULL and PROT_NONE segments"},
        {v5, 1, "segment of SSIZE_MAX + 1"},
        {v6, 2, "100, then 2^40 with 50 writable"},
        {NULL, 0, "iovcnt 0"},
        {many, -1, "iovcnt -1"},
        {many, IOV_MAX + 1, "iovcnt IOV_MAX + 1"},
        {many, IOV_MAX, "iovcnt IOV_MAX"},
        {none, 2, "iovec array on PROT_NONE"},
        {NULL, 1, "iovec array NULL"},
        {arr, 2, "iovec array crossing into PROT_NONE"},
    };
    char what[160];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (size_t i = 0; i < NREADPOS; i++) {
            snprintf(what, sizeof what, "preadv %s at %lld", cases[k].name,
                     (long long)read_pos[i]);
            wct_pair_preadv(&p, cases[k].iov, cases[k].cnt, read_pos[i], what);
        }
    wct_pair_check(&p, "after the reads");
    wct_pair_close(&p, "after the reads");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Segments that overlap in memory: the kernel fills them in order, so the
 * later segment's bytes win. */
Test(fault, preadv_overlapping_segments)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    read_pair(&p, c, "ov");
    unsigned char *a = malloc(8192);
    struct iovec v[] = {{a, 3000}, {a + 1000, 3000}, {a, 100}};
    char what[128];
    for (size_t i = 0; i < NREADPOS; i++) {
        snprintf(what, sizeof what, "preadv into overlapping segments at %lld",
                 (long long)read_pos[i]);
        wct_pair_preadv(&p, v, 3, read_pos[i], what);
    }
    wct_pair_close(&p, "overlapping segments");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- RLIMIT_FSIZE: EFBIG and SIGXFSZ at write() time --------------------- */

static volatile sig_atomic_t xfsz;
static void on_xfsz(int sig)
{
    (void)sig;
    xfsz++;
}

Test(fault, rlimit_fsize)
{
    struct wc_cache *c = wct_cache_open(0);
    struct wct_pair p;
    wct_pair_open(&p, c, "rl", 3000);
    signal(SIGXFSZ, on_xfsz);
    struct rlimit rl = {20000, RLIM_INFINITY};
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    wc_cache_limits_changed(c); /* what the shim does after setrlimit */
    unsigned char *b = good(8192, 17);
    struct {
        off_t pos;
        size_t len;
        int append;
        const char *name;
    } cases[] = {
        {10000, 4096, 0, "below the limit"},
        {18000, 4096, 0, "across the limit (short)"},
        {20000, 10, 0, "at the limit"},
        {30000, 10, 0, "past the limit"},
        {30000, 0, 0, "0 bytes past the limit"},
        {0, 100, 1, "append at the limit"},
        {19990, 8192, 0, "10 bytes below the limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int before = xfsz;
        ssize_t kr = pwrite(cases[i].append ? p.kafd : p.kfd, b, cases[i].len,
                            cases[i].pos);
        if (kr < 0)
            kr = -errno;
        int ksig = xfsz - before;
        before = xfsz;
        off_t where;
        ssize_t cr = wc_pwrite(p.f, b, cases[i].len, cases[i].pos,
                               cases[i].append, &where);
        int csig = xfsz - before;
        cr_assert_eq(cr, kr, "%s: cache %zd, kernel %zd", cases[i].name, cr, kr);
        cr_assert_eq(csig, ksig, "%s: SIGXFSZ raised %d times, the kernel %d",
                     cases[i].name, csig, ksig);
        cr_assert_eq(wc_file_size(p.f), lseek(p.kfd, 0, SEEK_END), "%s: size",
                     cases[i].name);
    }
    wct_pair_check(&p, "rlimit");
    wct_pair_close(&p, "rlimit");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* ---- faults in one thread while others write ----------------------------- */

struct fw {
    struct wc_file *f;
    off_t base;
    int faulting;
    int rounds;
    ssize_t bad;        /* first unexpected result */
    int bad_round;
};

static void *fault_writer(void *arg)
{
    struct fw *w = arg;
    const unsigned char *edge = wct_edge(100, WCT_NONE, 20);
    void *none = wct_page(PROT_NONE);
    unsigned char buf[300];
    wct_pattern(buf, sizeof buf, 0, 21);
    for (int i = 0; i < w->rounds; i++) {
        off_t pos = w->base + (off_t)((i * 7919) % 50000);
        ssize_t want, r;
        if (!w->faulting) {
            want = sizeof buf;
            r = wc_pwrite(w->f, buf, sizeof buf, pos, 0, NULL);
        } else if (i % 2) {
            want = 100;
            r = wc_pwrite(w->f, edge, 300, pos, 0, NULL);
        } else {
            want = -EFAULT;
            r = wc_pwrite(w->f, none, 300, pos, 0, NULL);
        }
        if (r != want && !w->bad_round) {
            w->bad = r;
            w->bad_round = i + 1;
        }
    }
    return NULL;
}

Test(fault, concurrent_faulting_writers)
{
    struct wc_cache *c = wct_cache_open(64 * WCT_PG);
    int fd1 = wct_create("a", 0, 0, O_RDWR), fd2 = wct_create("b", 0, 0, O_RDWR);
    struct wc_file *f1 = wct_get(c, fd1), *f2 = wct_get(c, fd2);
    int rounds = wct_long() ? 200000 : 20000;
    struct fw w[4] = {
        {f1, 0, 1, rounds, 0, 0},
        {f1, 100000, 0, rounds, 0, 0},
        {f2, 0, 0, rounds, 0, 0},
        {f2, 100000, 1, rounds, 0, 0},
    };
    pthread_t t[4];
    wct_watchdog(40, "four threads writing, two of them from faulting sources");
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, fault_writer, &w[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(w[i].bad_round, 0, "writer %d, round %d: got %zd", i,
                     w[i].bad_round - 1, w[i].bad);
    cr_assert_eq(wc_file_put(f1), 0);
    cr_assert_eq(wc_file_put(f2), 0);
    cr_assert_eq(wc_cache_close(c), 0);
    /* Replay each writer's own sequence (the regions are disjoint). */
    const char *paths[2] = {wct_path("a"), wct_path("b")};
    unsigned char *model[2];
    size_t msize[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        model[k] = calloc(1, 200000);
        cr_assert(model[k]);
    }
    unsigned char buf[300], edge[100];
    wct_pattern(buf, sizeof buf, 0, 21);
    wct_pattern(edge, sizeof edge, 0, 20);
    for (int wi = 0; wi < 4; wi++) {
        int k = wi / 2;
        for (int i = 0; i < rounds; i++) {
            off_t pos = w[wi].base + (off_t)((i * 7919) % 50000);
            size_t n = !w[wi].faulting ? 300 : (i % 2) ? 100 : 0;
            memcpy(model[k] + pos, w[wi].faulting ? edge : buf, n);
            if (n && (size_t)pos + n > msize[k])
                msize[k] = (size_t)pos + n;
        }
    }
    for (int k = 0; k < 2; k++) {
        size_t len;
        unsigned char *d = wct_read_path(paths[k], &len);
        cr_assert_eq(len, msize[k], "file %d: size %zu, expected %zu", k, len, msize[k]);
        long at = wct_diff(d, model[k], len);
        cr_assert_eq(at, -1, "file %d: wrong byte at %ld", k, at);
        free(d);
    }
}

/* ---- the non-faulting copy itself -------------------------------------- */

/* cache/ucopy.c invariant (1): below WC_COPY_REP_MIN (512) bytes the copy
 * moves 16, 8, 4, 2 and 1 bytes at a time, `rep movsb` from there; where
 * the source or the destination stops `stop` bytes in (a PROT_NONE page
 * or no page at all), the count is `stop` exactly, whatever move the fault
 * hit, and the bytes before it are the source's. */
static void copy_edge(int unmap)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, 3 * (size_t)pg, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(map, MAP_FAILED);
    char *bad = map + 2 * pg;        /* the third page: none or gone */
    cr_assert_eq(unmap ? munmap(bad, (size_t)pg)
                       : mprotect(bad, (size_t)pg, PROT_NONE), 0);
    static char src[6000], dst[6000];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (char)(i * 7 + 1);
    for (size_t i = 0; i < (size_t)pg; i++)
        map[pg + (long)i] = (char)(i * 13 + 5);
    size_t lens[330], nlens = 0;
    for (size_t n = 0; n <= 300; n++)
        lens[nlens++] = n;
    size_t more[] = {383, 400, 511, 512, 513, 600, 1000, 4000};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
        lens[nlens++] = more[i];
    for (size_t li = 0; li < nlens; li++) {
        size_t n = lens[li];
        for (size_t stop = 0; stop <= n + 1 && stop <= 4000; stop++) {
            if (stop > 40 && stop + 40 < n && stop % 37)
                continue;       /* every stop near either end, some between */
            size_t want = stop < n ? stop : n;
            /* The source stops. */
            const char *s = bad - stop;
            memset(dst, 0, sizeof dst);
            size_t got = wc_copy_nofault(dst, s, n);
            cr_assert_eq(got, want, "source stops %zu bytes into %zu: %zu copied",
                         stop, n, got);
            cr_assert_eq(memcmp(dst, s, got), 0, "source stops at %zu of %zu",
                         stop, n);
            /* The destination stops. */
            char *d = bad - stop;
            memset(d, 0, stop);
            got = wc_copy_nofault(d, src, n);
            cr_assert_eq(got, want, "destination stops %zu bytes into %zu: %zu copied",
                         stop, n, got);
            cr_assert_eq(memcmp(d, src, got), 0, "destination stops at %zu of %zu",
                         stop, n);
        }
    }
    munmap(map, 2 * (size_t)pg);
    if (!unmap)
        munmap(bad, (size_t)pg);
}

Test(fault, nofault_copy_exact_at_every_length)
{
    cr_assert_eq(wc_fault_install(), 0);
    copy_edge(0);
    copy_edge(1);
}
