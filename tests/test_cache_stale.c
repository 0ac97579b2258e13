/*
 * test_cache_stale.c - no stale or uninitialised byte is ever readable or
 * written back.
 *
 * CONTRACT.md points covered:
 *   5.4    a short copy commits only bytes really copied
 *   5.5    a new block's uncovered bytes are zeroed before the page is
 *          unlocked; reused blocks hold garbage
 *   5.6    fill bytes (zeros, file bytes) are never written back
 *   5.7    bytes between the old i_size and pos read as zeros
 *   4      (replay never writes stale bytes: here, write-back never does)
 *
 * Every test first fills the whole backing store with 0xCD and frees it
 * (wc__store_poison), so every block the cache hands out holds 0xCD. The
 * data written never contains 0xCD (wct_pattern); every view of the file,
 * through the cache and on disk after write-back, is compared with the
 * kernel's answer for the same calls and searched for 0xCD.
 */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib_cache.h"

TestSuite(stale, .init = wct_setup, .fini = wct_teardown, .timeout = 90);

#define POISON 0xCD

static struct wc_cache *poisoned(size_t size)
{
    struct wc_cache *c = wct_cache_open(size);
    int r = wc__store_poison(c, POISON);
    cr_assert_eq(r, 0, "wc__store_poison: %d", r);
    size_t bytes = 0;
    unsigned char *data = wc__store_data(c, &bytes);
    cr_assert(data && bytes >= WCT_PG);
    cr_assert_eq(data[0], POISON, "the store was not poisoned");
    cr_assert_eq(data[bytes - 1], POISON, "the store was not poisoned to its end");
    return c;
}

static void open_poisoned_pair(struct wct_pair *p, struct wc_cache *c,
                               const char *name, size_t disk)
{
    wct_pair_open(p, c, name, disk);
    p->poison = POISON;
    p->soft = 1;
}

/* Short copies (the source faults after `readable` bytes) at many places. */
struct spot {
    const char *name;
    size_t disk;
    off_t pos;
};
static const struct spot spots[] = {
    {"mid-page of a new file", 0, 1000},
    {"page start of a new file", 0, 8192},
    {"past EOF in the EOF page", 5000, 7000},
    {"past EOF, leaving a hole of pages", 5000, 40000},
    {"inside an uncached page of the file", 9000, 4500},
    {"at EOF", 9000, 9000},
    {"across a page boundary", 9000, 4000},
};

static void short_copies(enum wct_hole hole)
{
    struct wc_cache *c = poisoned(0);
    size_t readable[] = {1, 50, 700, 4095, 4096 + 300};
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++)
        for (size_t r = 0; r < sizeof readable / sizeof readable[0]; r++) {
            char what[160], name[32];
            snprintf(what, sizeof what, "%s, %zu of %zu bytes readable",
                     spots[s].name, readable[r], readable[r] + 3000);
            snprintf(name, sizeof name, "s%zu_%zu", s, r);
            struct wct_pair p;
            open_poisoned_pair(&p, c, name, spots[s].disk);
            const void *src = wct_edge(readable[r], hole, 40 + (unsigned)r);
            wct_pair_pwrite(&p, src, src, readable[r] + 3000, spots[s].pos, 0, what);
            wct_pair_check(&p, what);
            /* and a later write elsewhere must not expose anything */
            wct_pair_put_pattern(&p, spots[s].pos + 20000, 10, 3, what);
            wct_pair_check(&p, what);
            wct_pair_close(&p, what);
        }
    cr_assert_eq(wc_cache_close(c), 0);
}

Test(stale, short_copies_prot_none)
{
    short_copies(WCT_NONE);
}

Test(stale, short_copies_unmapped)
{
    short_copies(WCT_UNMAPPED);
}

/* A copy that makes no progress may have allocated a block: the page must
 * not leak its garbage, now or when a later write lands nearby. */
Test(stale, failed_copies_then_neighbours)
{
    struct wc_cache *c = poisoned(0);
    void *none = wct_page(PROT_NONE);
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
        char what[160], name[32];
        snprintf(name, sizeof name, "z%zu", s);
        struct wct_pair p;
        open_poisoned_pair(&p, c, name, spots[s].disk);
        snprintf(what, sizeof what, "%s, PROT_NONE source", spots[s].name);
        wct_pair_pwrite(&p, none, none, 3000, spots[s].pos, 0, what);
        wct_pair_pwrite(&p, NULL, NULL, 10, spots[s].pos + 100, 0, what);
        wct_pair_check(&p, what);
        snprintf(what, sizeof what, "%s, then 10 bytes 100 further", spots[s].name);
        wct_pair_put_pattern(&p, spots[s].pos + 100, 10, 4, what);
        wct_pair_check(&p, what);
        snprintf(what, sizeof what, "%s, then 1 byte 3 pages further", spots[s].name);
        wct_pair_put_pattern(&p, spots[s].pos + 3 * 4096 + 7, 1, 5, what);
        wct_pair_check(&p, what);
        wct_pair_close(&p, what);
    }
    cr_assert_eq(wc_cache_close(c), 0);
}

/* iovecs whose middle segment faults, into poisoned blocks. */
Test(stale, short_iovecs)
{
    struct wc_cache *c = poisoned(0);
    unsigned char *a = malloc(5000);
    wct_pattern(a, 5000, 0, 6);
    void *edge = wct_edge(33, WCT_NONE, 7);
    struct iovec v[] = {{a, 100}, {NULL, 0}, {edge, 500}, {a, 4000}};
    for (size_t s = 0; s < sizeof spots / sizeof spots[0]; s++) {
        char what[160], name[32];
        snprintf(name, sizeof name, "v%zu", s);
        snprintf(what, sizeof what, "%s, iov {100, 0, 33 of 500, 4000}", spots[s].name);
        struct wct_pair p;
        open_poisoned_pair(&p, c, name, spots[s].disk);
        wct_pair_pwritev(&p, v, v, 4, spots[s].pos, 0, what);
        wct_pair_check(&p, what);
        wct_pair_pwritev(&p, v, v, 4, 0, 1, what);
        wct_pair_check(&p, what);
        wct_pair_close(&p, what);
    }
    cr_assert_eq(wc_cache_close(c), 0);
}

/* Bytes dropped by a truncate must not come back when the file grows. */
Test(stale, truncate_then_grow)
{
    struct wc_cache *c = poisoned(0);
    struct wct_pair p;
    open_poisoned_pair(&p, c, "tg", 3000);
    wct_pair_put_pattern(&p, 0, 3 * 4096, 2, "fill three pages");
    wct_pair_truncate(&p, 100, "truncate into page 0");
    wct_pair_put_pattern(&p, 6000, 10, 3, "write in page 1 past EOF");
    wct_pair_check(&p, "page 0 tail and page 1 head must be zeros");
    wct_pair_truncate(&p, 5000, "truncate into page 1");
    wct_pair_truncate(&p, 12000, "extend by truncate");
    wct_pair_check(&p, "extended by truncate");
    const void *src = wct_edge(10, WCT_NONE, 8);
    wct_pair_pwrite(&p, src, src, 100, 11000, 0, "short copy into the extension");
    wct_pair_pwrite(&p, src, src, 100, 15000, 0, "short copy past the extension");
    wct_pair_check(&p, "after the short copies");
    wct_pair_close(&p, "truncate then grow");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* A cache much smaller than the data: blocks are evicted and reused all
 * the time, each time holding another page's old bytes. */
Test(stale, reuse_under_eviction)
{
    struct wc_cache *c = poisoned(16 * WCT_PG);
    struct wct_pair p;
    open_poisoned_pair(&p, c, "ev", 20000);
    char what[128];
    for (int i = 0; i < 400; i++) {
        off_t pos = (off_t)((i * 7919) % 300) * 1000 + (i % 7) * 13;
        size_t readable = (size_t)(i % 5) * 700 + 1;
        const void *src = wct_edge(readable, i % 2 ? WCT_NONE : WCT_UNMAPPED,
                                   (unsigned)i);
        snprintf(what, sizeof what, "round %d: %zu readable at %lld", i, readable,
                 (long long)pos);
        wct_pair_pwrite(&p, src, src, readable + 2000, pos, 0, what);
        if (i % 50 == 49)
            wct_pair_check(&p, what);
    }
    wct_pair_check(&p, "after eviction rounds");
    wct_pair_close(&p, "after eviction rounds");
    cr_assert_eq(wc_cache_close(c), 0);
}

/* The whole chain once more, with the file written back by closing the
 * cache (not by putting the file) */
Test(stale, close_cache_writes_no_poison)
{
    struct wc_cache *c = poisoned(0);
    int fd = wct_create("cc", 6000, 1, O_RDWR);
    struct wc_file *f = wct_get(c, fd);
    const void *src = wct_edge(100, WCT_NONE, 9);
    cr_assert_eq(wc_pwrite(f, src, 1000, 9000, 0, NULL), 100);
    cr_assert_eq(wc_pwrite(f, src, 1000, 5990, 0, NULL), 100);
    cr_assert_eq(wc_cache_close(c), 0);
    size_t n;
    unsigned char *d = wct_read_path(wct_path("cc"), &n);
    cr_assert_eq(n, 9100);
    cr_assert_eq(wct_find_byte(d, n, POISON), -1, "0xCD at %ld", wct_find_byte(d, n, POISON));
    for (size_t i = 6090; i < 9000; i++)
        cr_assert_eq(d[i], 0, "byte %zu: 0x%02x", i, d[i]);
    free(d);
    close(fd);
}
