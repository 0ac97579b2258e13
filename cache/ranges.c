/*
 * ranges.c - the dirty-range sets of a block record: which bytes of a page
 * the program wrote and write-back has yet to write (struct wc_brec, in
 * the backing file: format.h).
 *
 * Invariants:
 *   (1) Between updates, a record's ranges are sorted, non-empty, within
 *       the page, and neither overlap nor touch (at most WC_RANGES; the
 *       write path writes the file back when one more would not fit).
 *   (2) Every update keeps format.h (1) and (2) at each of its stores, for
 *       a replay that reads the record at any instant (below).
 */
#include "cache_int.h"

/*
 * The ranges live in the mapped block record and a replay may read them at
 * any instant (format.h (1), (2)): every update is a sequence of 16-bit
 * stores ordered so that each intermediate state covers every byte the old
 * one did (that a returned write left dirty) and only bytes already
 * copied. Ranges are sorted and neither overlap nor touch, so for entries
 * p < q, hi[p] < lo[q]: an entry holding lo of a later one with hi of an
 * earlier one is empty, and the other mix (which would cover a gap) never
 * occurs. ORDER() keeps the compiler from reordering the stores; a dead
 * process's stores are all in the shared mapping, in program order.
 */
#define ORDER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

int wc_range_add(struct wc_brec *r, unsigned a, unsigned b)
{
    unsigned n = r->nr, i, j;

    /* Common case: extends the last range (sequential writes). */
    if (n && a <= r->hi[n - 1] && a >= r->lo[n - 1]) {
        if (b > r->hi[n - 1])
            r->hi[n - 1] = (uint16_t)b;
        return 0;
    }
    /* First range that ends at or after a (touching counts). */
    for (i = 0; i < n && r->hi[i] < a; i++)
        ;
    /* Ranges i..j-1 overlap or touch [a, b). */
    for (j = i; j < n && r->lo[j] <= b; j++)
        ;
    if (i == j) {                       /* insert at i */
        if (n == WC_RANGES)
            return -1;
        if (i == n) {                   /* after the last: unseen, then nr */
            r->lo[n] = (uint16_t)a;
            r->hi[n] = (uint16_t)b;
            ORDER();
            r->nr = (uint16_t)(n + 1);
            return 0;
        }
        /* Shift right, last first; hi before lo: entry k is (lo_k,
         * hi_k-1), empty, between the two stores. */
        r->lo[n] = r->lo[n - 1];
        r->hi[n] = r->hi[n - 1];
        ORDER();
        r->nr = (uint16_t)(n + 1);      /* entry n - 1, twice */
        ORDER();
        for (unsigned k = n - 1; k > i; k--) {
            r->hi[k] = r->hi[k - 1];
            ORDER();
            r->lo[k] = r->lo[k - 1];
            ORDER();
        }
        r->hi[i] = (uint16_t)b;         /* (lo_i, b): empty, b < lo_i */
        ORDER();
        r->lo[i] = (uint16_t)a;
        return 0;
    }
    /* Merge into entry i: each intermediate entry lies within the union,
     * which is contiguous and copied. */
    unsigned lo = r->lo[i] < a ? r->lo[i] : a;
    unsigned hi = r->hi[j - 1] > b ? r->hi[j - 1] : b;
    r->lo[i] = (uint16_t)lo;
    ORDER();
    r->hi[i] = (uint16_t)hi;
    ORDER();
    unsigned d = j - i - 1;             /* entries absorbed */
    if (d == 0)
        return 0;
    /* Shift left, first first; lo before hi: (lo_k, hi_p), empty. */
    for (unsigned k = j; k < n; k++) {
        r->lo[k - d] = r->lo[k];
        ORDER();
        r->hi[k - d] = r->hi[k];
        ORDER();
    }
    r->nr = (uint16_t)(n - d);
    return 0;
}

void wc_range_sub(struct wc_brec *r, unsigned a, unsigned b)
{
    unsigned n = r->nr;
    for (unsigned i = 0; i < n; i++) {
        if (r->lo[i] != a)
            continue;
        if (b < r->hi[i]) {
            r->lo[i] = (uint16_t)b;     /* a prefix was written */
        } else {
            for (unsigned k = i + 1; k < n; k++) {  /* lo before hi */
                r->lo[k - 1] = r->lo[k];
                ORDER();
                r->hi[k - 1] = r->hi[k];
                ORDER();
            }
            r->nr = (uint16_t)(n - 1);
        }
        return;
    }
}

void wc_range_cut(struct wc_brec *r, unsigned a)
{
    unsigned n = r->nr;
    while (n && r->lo[n - 1] >= a)
        n--;
    r->nr = (uint16_t)n;                /* only shrinks: any order */
    if (n && r->hi[n - 1] > a)
        r->hi[n - 1] = (uint16_t)a;
}

int wc_range_covers(const struct wc_brec *r, unsigned a, unsigned b)
{
    if (r->flags & WC_BR_UPTODATE)
        return 1;
    for (unsigned i = 0; i < r->nr; i++)
        if (r->lo[i] <= a && b <= r->hi[i])
            return 1;
    return 0;
}

