/*
 * store.h - the backing file: its on-disk layout and the block allocator.
 *
 * One sparse file per process, <dir>/wcache-<uid>/cache.<pid>.<nonce>,
 * created 0600 with O_EXCL|O_NOFOLLOW in a 0700 directory we own, mapped
 * MAP_SHARED in one piece. Because the mapping is shared, whatever the
 * process stored survives its death (even SIGKILL); the layout below is
 * what a replay (`wcache recover`, the guard) reads back:
 *
 *   offset 0         struct wc_header                     (one page)
 *   off_files        nfiles x struct wc_fslot             (file table)
 *   off_brecs        nblocks x struct wc_brec             (block table)
 *   off_data         nblocks x 4 KiB data blocks
 *
 * Layout invariants (a replay relies on them):
 *   (1) A block's bytes are stored before the block record that claims
 *       them: a record's ranges only ever cover bytes already copied.
 *   (2) A block record names its file by slot number and the slot's
 *       generation; a record whose gen differs from its slot's is stale.
 *   (3) A record's ranges are sorted, disjoint, within the page, and
 *       within the slot's size; they are cleared only after the bytes
 *       reached the file (pwritev returned).
 *   (4) Every page of the file that is stored into was reserved with
 *       fallocate first, so a full file system gives ENOSPC at reservation
 *       time, never SIGBUS at store time.
 *   (5) All integers are little-endian, fixed width; sizes are in bytes.
 */
#ifndef WCACHE_STORE_H
#define WCACHE_STORE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "wcache/cache.h"

#define WC_STORE_MAGIC "WCACHE\0\1"
#define WC_STORE_VERSION 1
#define WC_RANGES 26            /* dirty ranges one block record holds:
                                   random records of n per page fragment
                                   it into ~n/4 runs at worst */
#define WC_FSLOT_SIZE 1024      /* bytes per file-table slot */
#define WC_CHUNK_BLOCKS 64      /* blocks reserved per fallocate */

enum { WC_STORE_LIVE = 1, WC_STORE_CLOSED = 2 };
enum { WC_SLOT_FREE = 0, WC_SLOT_LIVE = 1 };
enum { WC_BR_UPTODATE = 1 };    /* every byte of the block is valid */

struct wc_header {
    char magic[8];              /* WC_STORE_MAGIC */
    uint32_t version;           /* WC_STORE_VERSION */
    uint32_t header_size;       /* sizeof(struct wc_header) */
    uint32_t page_size;         /* WC_PAGE_SIZE */
    uint32_t nfiles;            /* file-table slots */
    uint32_t fslot_size;        /* WC_FSLOT_SIZE */
    uint32_t brec_size;         /* sizeof(struct wc_brec) */
    uint64_t nblocks;           /* data blocks */
    uint64_t off_files;         /* byte offset of the file table */
    uint64_t off_brecs;         /* byte offset of the block table */
    uint64_t off_data;          /* byte offset of block 0 */
    uint64_t file_size;         /* total size of the backing file */
    int64_t pid;                /* the process that owns it */
    uint64_t uid;               /* its real uid */
    uint64_t created_ns;        /* CLOCK_REALTIME at creation */
    uint32_t state;             /* WC_STORE_LIVE, WC_STORE_CLOSED */
    uint32_t reserved0;
    uint8_t reserved[128];      /* room for the guard's fields */
};

struct wc_fslot {
    uint32_t state;             /* WC_SLOT_FREE, WC_SLOT_LIVE */
    uint32_t gen;               /* bumped each time the slot is claimed */
    uint64_t dev;               /* st_dev of the target */
    uint64_t ino;               /* st_ino of the target */
    uint64_t size;              /* i_size as the program sees it */
    uint64_t disk_size;         /* size on disk as far as we know */
    uint64_t mtime_ns;          /* target's mtime when claimed */
    uint32_t path_len;          /* bytes in path[], without the NUL */
    uint32_t reserved0;
    uint8_t reserved[64];
    char path[WC_FSLOT_SIZE - 120]; /* absolute path at claim time, NUL */
};

struct wc_brec {
    uint64_t index;             /* page index in the file */
    uint32_t file;              /* slot number + 1; 0: holds no page */
    uint32_t gen;               /* the slot's gen when claimed */
    uint16_t nr;                /* ranges in use */
    uint16_t flags;             /* WC_BR_* */
    uint32_t reserved0;
    uint16_t lo[WC_RANGES];     /* dirty range starts, ascending */
    uint16_t hi[WC_RANGES];     /* dirty range ends (exclusive) */
};

_Static_assert(sizeof(struct wc_fslot) == WC_FSLOT_SIZE, "slot size");
#define WC_BREC_SIZE 128
_Static_assert(sizeof(struct wc_brec) == WC_BREC_SIZE, "block record size");
_Static_assert(sizeof(struct wc_header) <= 4096, "header size");

/*
 * The allocator. All fields are protected by the cache lock (c->lock in
 * cache.c); the mapped tables are written under the locks of their users.
 */
struct wc_store {
    int fd;                     /* the backing file, O_CLOEXEC */
    char path[PATH_MAX];        /* its name */
    uint8_t *map;               /* the whole file, MAP_SHARED */
    size_t map_len;
    struct wc_header *hdr;
    uint32_t nblocks;
    uint32_t nfiles;
    uint32_t reserved;          /* blocks [0, reserved) were fallocated */
    uint32_t files_reserved;    /* file slots [0, files_reserved) too */
    uint32_t *ring;             /* free reserved blocks: a ring, newest at
                                   tail (reused first), oldest at head
                                   (given back first) */
    uint32_t head, nfree;       /* ring start and length */
    uint32_t *punched;          /* blocks whose space was given back */
    uint32_t npunched;
    uint32_t used;              /* blocks handed out */
    uint32_t enospc_backoff;    /* allocations to skip before trying
                                   fallocate again after ENOSPC */
    int no_fallocate;           /* fallocate unsupported: touch instead */
    int no_populate;            /* MADV_POPULATE_WRITE unsupported */
};

static inline struct wc_fslot *wc_store_slot(struct wc_store *s, uint32_t i)
{
    return (struct wc_fslot *)(s->map + s->hdr->off_files +
                               (uint64_t)i * WC_FSLOT_SIZE);
}

static inline struct wc_brec *wc_store_brec(struct wc_store *s, uint32_t b)
{
    return (struct wc_brec *)(s->map + s->hdr->off_brecs) + b;
}

static inline uint8_t *wc_store_block(struct wc_store *s, uint32_t b)
{
    return s->map + s->hdr->off_data + ((uint64_t)b << WC_PAGE_SHIFT);
}

/* Create the backing file for `nblocks` blocks and `nfiles` slots under
 * `dir` (NULL: the default chain). Returns 0 or -errno. */
int wc_store_open(struct wc_store *s, const char *dir, uint32_t nblocks,
                  uint32_t nfiles);
/* Unmap and close; unlink the file when `unlink_it`. */
void wc_store_close(struct wc_store *s, int unlink_it);

/* A free block, reserved on disk: its number (>= 0), -EAGAIN when every
 * block is in use (evict and retry), -ENOSPC when the file system cannot
 * hold another one. The block holds garbage. */
int64_t wc_store_alloc(struct wc_store *s);
/* Give a block back (it becomes the next one handed out). */
void wc_store_free(struct wc_store *s, uint32_t b);
/* Reserve the file-table slot i on disk. Returns 0 or -errno. */
int wc_store_reserve_slot(struct wc_store *s, uint32_t i);
/* Punch holes into the oldest free blocks while more than `keep` are
 * free, giving their memory back, one fallocate per run of adjacent
 * blocks. */
void wc_store_trim(struct wc_store *s, uint32_t keep);

/* Zeroed memory for arrays sized by the store (untouched until used:
 * never counted against memory the program does not use), and its
 * release. */
void *wc_big_alloc(size_t bytes);
void wc_big_free(void *p, size_t bytes);

#endif /* WCACHE_STORE_H */
