/*
 * check.c - the engine's invariants, asserted in debug builds (-DWC_DEBUG,
 * `make test` runs the engine suites against such a build too). Each check
 * names the invariant it guards, as numbered at the top of its file.
 */
#ifdef WC_DEBUG
#include <stdio.h>
#include <stdlib.h>

#include "cache_int.h"

static void fail(const struct wc_file *f, const char *what, unsigned long a,
                 unsigned long b)
{
    fprintf(stderr, "wcache: invariant broken (file slot %u): %s [%lu %lu]\n",
            f->id, what, a, b);
    abort();
}

void wc_check_file(struct wc_file *f)
{
    struct wc_cache *c = f->cache;
    uint32_t ndirty = 0;

    for (struct wc_page *p = f->dirty; p; p = p->dnext) {
        if (!p->dirty || p->file != f)
            fail(f, "dirty list holds a page not marked dirty or not ours",
                 p->block, p->dirty);
        if (++ndirty > c->store.nblocks)
            fail(f, "dirty list has a loop", ndirty, 0);
    }
    if (ndirty != f->ndirty)
        fail(f, "ndirty differs from the dirty list", f->ndirty, ndirty);

    uint32_t n = 0;
    struct wc_page *p, *tmp;
    HASH_ITER(hh, f->pages, p, tmp) {
        struct wc_brec *r = wc_page_rec(c, p);
        n++;
        /* pages.c (1): page i in block i, named by its record */
        if (p->file != f || p != &c->pages[p->block])
            fail(f, "pages.c (1): page not ours or not its block's", p->block, 0);
        if (r->file != f->id + 1 || r->index != p->index ||
            r->gen != f->slot->gen)
            fail(f, "format.h (3): record does not name its page", r->file,
                 r->index);
        /* ranges.c (1): ranges sorted, disjoint, within the page; (3): below
         * i_size */
        if (r->nr > WC_RANGES)
            fail(f, "ranges.c (1): too many ranges", r->nr, 0);
        for (unsigned i = 0; i < r->nr; i++) {
            if (r->lo[i] >= r->hi[i] || r->hi[i] > WC_PAGE_SIZE)
                fail(f, "ranges.c (1): empty or oversized range", r->lo[i],
                     r->hi[i]);
            if (i && r->lo[i] <= r->hi[i - 1])
                fail(f, "ranges.c (1): ranges overlap or touch", r->hi[i - 1],
                     r->lo[i]);
            if ((p->index << WC_PAGE_SHIFT) + r->hi[i] > f->slot->size)
                fail(f, "flush.c (3): dirty bytes past i_size",
                     (p->index << WC_PAGE_SHIFT) + r->hi[i], f->slot->size);
        }
        /* pages.c (2): clean pages are on the LRU only when up to date;
         * a page with nothing valid does not exist */
        if (r->nr && !p->dirty)
            fail(f, "dirty ranges on a page off the dirty list", p->block, 0);
        if (p->on_lru && (r->nr || !(r->flags & WC_BR_UPTODATE)))
            fail(f, "pages.c (2): LRU page dirty or not up to date", p->block,
                 r->nr);
        if (!p->dirty && !(r->flags & WC_BR_UPTODATE))
            fail(f, "pages.c (2): page with no valid byte kept", p->block, 0);
    }
    if (f->hint && (f->hint->file != f))
        fail(f, "hint points to a page not ours", f->hint->block, 0);
    if (n != HASH_COUNT(f->pages))
        fail(f, "hash count", n, HASH_COUNT(f->pages));
    /* errors.c (1), (2): only an OK file caches; a FAILED file has its
     * error */
    if (f->state != WC_FS_OK && f->space_left > 0)
        fail(f, "errors.c (1): room to cache in a file that is not OK",
             (unsigned long)f->state, (unsigned long)f->space_left);
    if (f->state == WC_FS_FAILED && f->err >= 0)
        fail(f, "errors.c (2): FAILED without an error",
             (unsigned long)-f->err, 0);
}
#endif
