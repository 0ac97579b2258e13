/*
 * pages.c - the cache's pages: finding or creating a file's page (and its
 * block), the clean-page LRU, eviction, and a page's changes of state.
 *
 * Invariants (numbered as the engine has always cited them; (3), of file
 * slots, is in file.c):
 *   (1) Page i is stored in block i; a page is in its file's hash exactly
 *       when page->file != NULL, and then its block record names the file.
 *   (2) A page is on the clean LRU only when it has no dirty range and all
 *       its bytes are valid (WC_BR_UPTODATE); a page with neither dirty nor
 *       valid bytes does not exist (its block is freed at once).
 *   (4) A block record is claimed in the order: ranges cleared, index, gen,
 *       file last; released in the order: file cleared first.
 *
 * Locks: the caller holds the file's lock; the LRU and the allocator are
 * the cache lock's (cache_int.h).
 */
#include <errno.h>
#include <string.h>

#include "cache_int.h"
#include "wcache/sys.h"

static void lru_remove(struct wc_cache *c, struct wc_page *p)
{
    if (p->lru_prev)
        p->lru_prev->lru_next = p->lru_next;
    else
        c->lru_head = p->lru_next;
    if (p->lru_next)
        p->lru_next->lru_prev = p->lru_prev;
    else
        c->lru_tail = p->lru_prev;
    p->lru_prev = p->lru_next = NULL;
    p->on_lru = 0;
    c->nlru--;
}

static void lru_append(struct wc_cache *c, struct wc_page *p)
{
    p->lru_next = NULL;
    p->lru_prev = c->lru_tail;
    if (c->lru_tail)
        c->lru_tail->lru_next = p;
    else
        c->lru_head = p;
    c->lru_tail = p;
    p->on_lru = 1;
    c->nlru++;
}

/* Unhook p from f's structures and free its block. Caller holds f->lock
 * and c->lock. */
static void page_free_locked(struct wc_cache *c, struct wc_file *f,
                             struct wc_page *p)
{
    struct wc_brec *rec = wc_page_rec(c, p);
    rec->file = 0;                       /* invariant (4): file first */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    rec->nr = 0;
    if (p->on_lru)
        lru_remove(c, p);
    HASH_DEL(f->pages, p);
    if (f->hint == p)
        f->hint = NULL;
    p->file = NULL;
    wc_store_free(&c->store, p->block);
}

void wc_page_drop(struct wc_file *f, struct wc_page *p)
{
    struct wc_cache *c = f->cache;
    if (f->recycle && !p->dirty && !p->on_lru && f->nstash < WC_STASH) {
        /* A recycling flush's page: its block stays with the file, for
         * its next new page, without the cache lock (f->stash). */
        struct wc_brec *rec = wc_page_rec(c, p);
        rec->file = 0;                   /* invariant (4): file first */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        rec->nr = 0;
        HASH_DEL(f->pages, p);
        if (f->hint == p)
            f->hint = NULL;
        p->file = NULL;
        f->stash[f->nstash++] = p->block;
        return;
    }
    if (p->dirty) {
        /* Unlink from the dirty list (rare path: truncate). */
        struct wc_page **pp = &f->dirty;
        while (*pp != p)
            pp = &(*pp)->dnext;
        *pp = p->dnext;
        p->dirty = 0;
        f->ndirty--;
        __atomic_fetch_sub(&c->dirty_pages, 1, __ATOMIC_RELAXED);
        if (!f->ndirty)
            __atomic_store_n(&f->dirty_since, 0, __ATOMIC_RELAXED);
    }
    wc_lock(&c->lock);
    page_free_locked(c, f, p);
    wc_unlock(&c->lock);
}

void wc_page_cleaned(struct wc_file *f, struct wc_page *p)
{
    struct wc_cache *c = f->cache;
    wc_lock(&c->lock);
    if (wc_page_rec(c, p)->flags & WC_BR_UPTODATE)
        lru_append(c, p);
    else
        page_free_locked(c, f, p);
    wc_unlock(&c->lock);
}

void wc_page_dirtied(struct wc_file *f, struct wc_page *p)
{
    struct wc_cache *c = f->cache;
    if (p->on_lru) {
        wc_lock(&c->lock);
        lru_remove(c, p);
        wc_unlock(&c->lock);
    }
}

/* Free up to `want` clean pages, oldest first. Caller holds self->lock and
 * c->lock; other files' locks are only tried. Returns pages freed. */
static int evict(struct wc_cache *c, struct wc_file *self, int want)
{
    int freed = 0;
    struct wc_page *p = c->lru_head;
    while (p && freed < want) {
        struct wc_page *next = p->lru_next;
        struct wc_file *g = p->file;
        if (g == self) {
            page_free_locked(c, g, p);
            freed++;
        } else if (wc_file_trylock(g)) {
            page_free_locked(c, g, p);
            wc_blk_unlock(&g->lock);
            freed++;
        }
        p = next;
    }
    c->totals.evictions += (uint64_t)freed;
    return freed;
}

void wc_pages_fit_room(struct wc_cache *c)
{
    uint32_t over;
    wc_lock(&c->lock);
    wc_store_fit(&c->store, &over);
    /* Still past it with every free block given back: the oldest clean
     * pages go too (their bytes are in the kernel's page cache), then
     * their blocks. Dirty ones wait for their write-back. */
    if (over && evict(c, NULL, (int)(over < 4096 ? over : 4096)) > 0)
        wc_store_fit(&c->store, &over);
    wc_unlock(&c->lock);
}

/* Give the blocks other files keep for their next pages (f->stash) back
 * to the store: the store is full and nothing clean is left to evict.
 * Caller holds self->lock and c->lock; other files' locks are only tried.
 * Returns blocks given back. */
static int steal_stashes(struct wc_cache *c, struct wc_file *self)
{
    int got = 0;
    for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
        struct wc_file *g = &c->files[i];
        if (g == self || !__atomic_load_n(&g->live, __ATOMIC_ACQUIRE) ||
            !wc_file_trylock(g))
            continue;
        got += wc_file_stash_free(c, g);
        wc_blk_unlock(&g->lock);
    }
    return got;
}

struct wc_page *wc_page_get(struct wc_file *f, uint64_t idx, int *isnew,
                            int *err)
{
    struct wc_cache *c = f->cache;
    struct wc_page *p = f->hint;

    if (p && p->index == idx) {
        *isnew = 0;
        return p;
    }
    HASH_FIND(hh, f->pages, &idx, sizeof idx, p);
    if (p) {
        f->hint = p;
        *isnew = 0;
        return p;
    }

    int64_t b = -EAGAIN;
    int saved_errno = errno;    /* the answer is *err, not errno */
    if (f->nstash)              /* a block this file's flush recycled */
        b = f->stash[--f->nstash];
    for (int round = 0; b < 0; round++) {
        wc_lock(&c->lock);
        /* Recycle warm: with no free block at hand and more clean pages
         * than WC_CLEAN_KEEP, the oldest clean page's block is reused
         * before a new one is reserved (a new block is a page the kernel
         * must allocate, zero and fault in; the clean page's bytes are in
         * the kernel's page cache anyway). A stream's resident set stays
         * at its dirty data plus WC_CLEAN_KEEP pages, whatever its length. */
        if (c->store.nfree == 0 && c->nlru > WC_CLEAN_KEEP)
            evict(c, f, 1);
        b = wc_store_alloc(&c->store);
        /* Full (EAGAIN) or unable to grow (ENOSPC): reuse clean blocks,
         * then those other files keep for their streams. */
        if ((b == -EAGAIN || b == -ENOSPC) &&
            (evict(c, f, 16) > 0 || steal_stashes(c, f) > 0))
            b = wc_store_alloc(&c->store);
        wc_unlock(&c->lock);
        if (b >= 0 || (b != -EAGAIN && b != -ENOSPC) || round == 2)
            break;
        /* Nothing clean to evict: write back, ours first (we hold our
         * lock), then every file whose lock is free. */
        if (round == 0 && f->ndirty) {
            wc_flush_locked(f, WC_WHY_FULL);
            continue;
        }
        for (uint32_t i = 0, hi = wc_files_hi(c); i < hi; i++) {
            struct wc_file *g = &c->files[i];
            if (g == f || !g->live || !g->ndirty || !wc_file_trylock(g))
                continue;
            if (g->live && g->ndirty)
                wc_flush_locked(g, WC_WHY_FULL);
            wc_blk_unlock(&g->lock);
        }
    }
    if (b < 0) {
        *err = b == -EAGAIN ? -ENOSPC : (int)b;
        if (b == -ENOSPC)
            __atomic_fetch_add(&c->totals.store_full, 1, __ATOMIC_RELAXED);
        errno = saved_errno;
        return NULL;
    }

    p = &c->pages[b];
    p->block = (uint32_t)b;             /* first use: set lazily */
    struct wc_brec *rec = wc_page_rec(c, p);
    rec->file = 0;                      /* invariant (4) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    rec->nr = 0;
    rec->flags = 0;
    rec->index = idx;
    rec->gen = f->slot->gen;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    rec->file = f->id + 1;
    p->index = idx;
    p->file = f;
    p->dirty = 0;
    p->on_lru = 0;
    p->dnext = NULL;
    memset(&p->hh, 0, sizeof p->hh);    /* tbl stays NULL if add fails */
    HASH_ADD(hh, f->pages, index, sizeof p->index, p);
    if (!p->hh.tbl) {                   /* uthash could not allocate */
        wc_lock(&c->lock);
        rec->file = 0;
        p->file = NULL;
        wc_store_free(&c->store, p->block);
        wc_unlock(&c->lock);
        *err = -ENOMEM;
        errno = saved_errno;
        return NULL;
    }
    f->hint = p;
    *isnew = 1;
    errno = saved_errno;
    return p;
}

