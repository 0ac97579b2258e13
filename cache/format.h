/*
 * format.h - the backing file's on-disk format, shared by the engine (which
 * writes it with plain stores into a MAP_SHARED mapping, cache/store.c,
 * file.c, write.c, flush.c) and the replay (cache/replay.c: the guard and
 * `wcache recover`), which trusts nothing in it.
 *
 *   offset 0         struct wc_header                     (one page)
 *   off_files        nfiles x struct wc_fslot             (file table)
 *   off_brecs        nblocks x struct wc_brec             (block table)
 *   off_data         nblocks x 4 KiB data blocks
 *
 * The offsets are exactly those wc_fmt_layout() computes from nfiles and
 * nblocks; a replay rejects any other.
 *
 * Invariants (the process may die, by SIGKILL, between any two stores;
 * whatever it stored is in the file, in program order of its stores):
 *   (1) A block's bytes are stored before the block record range that
 *       claims them: at every instant, a record's ranges only cover bytes
 *       already copied (never stale, never uninitialised).
 *   (2) At every instant the ranges of a record cover every byte of the
 *       page that a returned write() left dirty: a range update is a
 *       sequence of single 16-bit stores ordered so that each intermediate
 *       state is a superset of the old acknowledged set and a subset of
 *       the copied bytes (ranges.c, wc_range_*). An intermediate range may
 *       be empty (lo >= hi): a replay skips it.
 *   (3) A block record names its file by slot number + 1 and the slot's
 *       generation; a record whose gen differs from its slot's, or whose
 *       slot is not live, is stale. A reused block is unclaimed (file = 0)
 *       before its ranges are reset and before new bytes go into it; it is
 *       claimed (file last) with no ranges.
 *   (4) Ranges are cleared only after the bytes reached the file (pwritev
 *       returned): a replay may write some twice, never lose one.
 *   (5) A slot's identity (gen, dev, ino, path) is written before its
 *       state becomes live and is covered by id_sum. size is the file's
 *       size as the program sees it (i_size); a shrinking truncation is
 *       recorded there before the file is cut. seen_size and seen_ctime_ns
 *       are what fstat said after the engine last changed the file: a
 *       file that differs from them was changed by someone else. busy is
 *       set before the engine changes the file and cleared after seen_*
 *       are updated: while it is set, only dev, ino and a size between
 *       seen_size and size can be checked (what the engine was writing
 *       is what a replay writes again). busy is 2 while the path is
 *       being changed (the program renamed the file or a directory above
 *       it: wc_cache_renamed), path, path_len and id_sum then possibly
 *       torn: a replay trusts nothing of that slot. shared (set before the first
 *       byte a shared description caches, cleared when the slot is
 *       claimed) says that other processes write the file at offsets
 *       reserved apart from this process's: a larger size or a newer
 *       ctime is theirs, and only a size below both seen_size and size
 *       is someone else's doing.
 *   (6) seq orders records: a page takes the next number when it becomes
 *       dirty, so replaying in seq order follows the program's order.
 *       32-bit serial-number arithmetic (compare differences).
 *   (7) The header's fields before `sum` never change after creation and
 *       are covered by sum; magic is stored last.
 *   (8) All integers are little-endian (x86_64), fixed width.
 *   (9) append_run says which dirty bytes were written with O_APPEND: those
 *       at or past append_run - 1 (in the program's offsets, which are
 *       where it believed the end of file was; another process appending
 *       to the file meanwhile makes them stale). They belong at the end of
 *       the file as it is when they are written, as the kernel puts an
 *       O_APPEND write, and the engine (flush.c) and a replay both write
 *       them there, in one run. It is stored before the first byte of the
 *       run is claimed by a block record, and cleared (0) before a write
 *       at an offset turns the run into positional bytes: a replay never
 *       appends bytes that were not appends. A slot written by an older
 *       version has 0 there: its bytes go at their offsets, as before.
 *       An append, unlike a positional write, must not be made twice:
 *       append_wip and append_wip_len are stored before each of the
 *       engine's append calls and cleared after its ranges are cleared
 *       (a SIGKILL during the call kills the process before it can store
 *       anything after it), so a replay looks at the file there: the
 *       part of the run found at append_wip - 1 landed. append_done is
 *       a replay's own progress, stored after each of its writes, so a
 *       replay that failed part-way (ENOSPC) is completed, not repeated.
 *       All three are 0 when a run starts.
 *   (10) gone is 1 while the file has no name (unlinked, or made with
 *       O_TMPFILE and not linked yet), as the engine last saw it: at the
 *       slot's claim, at each look at the file on disk after a
 *       write-back, and after each rename, link or unlink the program
 *       makes (wc_cache_renamed). The kernel frees an unlinked file's
 *       data with its last descriptor, so a replay drops a gone slot's
 *       bytes unless its path still names the same file (linked again
 *       by someone else). A slot written by an older version has 0
 *       there (its pad).
 *   (11) mnt_ns names the owner's mount namespace, set at creation (a
 *       process that changes its namespace stops caching first: shim/
 *       proc.c). Paths are replayed by a process of the same namespace
 *       (wc_fmt_same_ns): a guard of another one, looking the path up in
 *       its own mounts, sent a private-/tmp service's bytes to a recovery
 *       file in the host's /tmp (probe Q). Each namespace has its own
 *       guard (shim/guard.c, cli_recover.c (G7)); a file whose namespace
 *       has no guard left is replayed by any (replay.h wc_replay_may_ns).
 *       The number is the namespace's inode, which the kernel reuses: a
 *       later namespace may take a dead one's files for its own, and
 *       replays them as any would.
 */
#ifndef WCACHE_FORMAT_H
#define WCACHE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wcache/str.h"

#define WC_STORE_MAGIC "WCACHE\0\2"
#define WC_STORE_VERSION 2
#define WC_RANGES 26            /* dirty ranges one block record holds:
                                   random records of n per page fragment
                                   it into ~n/4 runs at worst */
#define WC_FSLOT_SIZE 1024      /* bytes per file-table slot */
#define WC_FMT_PAGE 4096u       /* page and block size */
#define WC_FMT_MAX_FILES (1u << 16)     /* bounds a replay accepts */
#define WC_FMT_MAX_BLOCKS (1u << 30)
#define WC_FMT_MAX_INDEX (((uint64_t)1 << 40) >> 12)  /* 1 TiB of file */

enum { WC_STORE_LIVE = 1, WC_STORE_CLOSED = 2 };
enum { WC_SLOT_FREE = 0, WC_SLOT_LIVE = 1 };
enum { WC_BR_UPTODATE = 1 };    /* every byte of the block is valid */

struct wc_header {
    char magic[8];              /* WC_STORE_MAGIC, stored last */
    uint32_t version;           /* WC_STORE_VERSION */
    uint32_t header_size;       /* sizeof(struct wc_header) */
    uint32_t page_size;         /* WC_FMT_PAGE */
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
    uint64_t sum;               /* wc_fmt_sum of the bytes before it */
    uint32_t state;             /* WC_STORE_LIVE, WC_STORE_CLOSED */
    uint32_t seq;               /* last sequence number given (6) */
    uint64_t mnt_ns;            /* the owner's mount namespace (the inode
                                   of /proc/self/ns/mnt; 0: unknown, as
                                   in files made before it was kept):
                                   its paths mean what they say only
                                   there (11) */
    uint8_t reserved[120];      /* zero */
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
    uint32_t busy;              /* 1 while the engine changes the file:
                                   seen_* may be behind it; 2 while the
                                   path changes (5) */
    uint64_t seen_size;         /* st_size after our last change (5) */
    uint64_t seen_ctime_ns;     /* st_ctime then */
    uint64_t id_sum;            /* wc_fmt_slot_sum(): gen, dev, ino, path */
    uint32_t shared;            /* 1: other processes write the file too,
                                   at offsets reserved apart from ours
                                   (the shim's RESERVE descriptions): a
                                   replay allows it to have grown (5) */
    uint32_t gone;              /* 1: the file had no name when the
                                   engine last looked (unlinked): a
                                   replay drops its bytes (10) */
    uint64_t append_run;        /* 1 + where the program's run of O_APPEND
                                   bytes begins; 0: none (9) */
    uint64_t append_wip;        /* 1 + the end of file the engine's append
                                   call in flight starts from; 0: none */
    uint64_t append_wip_len;    /* bytes of that call (9) */
    uint64_t append_done;       /* bytes of the run a replay appended (9) */
    char path[WC_FSLOT_SIZE - 120]; /* absolute path at claim time, NUL */
};

struct wc_brec {
    uint64_t index;             /* page index in the file */
    uint32_t file;              /* slot number + 1; 0: holds no page */
    uint32_t gen;               /* the slot's gen when claimed */
    uint16_t nr;                /* ranges in use */
    uint16_t flags;             /* WC_BR_* */
    uint32_t seq;               /* when the page became dirty (6) */
    uint16_t lo[WC_RANGES];     /* dirty range starts, ascending */
    uint16_t hi[WC_RANGES];     /* dirty range ends (exclusive) */
};

_Static_assert(sizeof(struct wc_fslot) == WC_FSLOT_SIZE, "slot size");
#define WC_BREC_SIZE 128
_Static_assert(sizeof(struct wc_brec) == WC_BREC_SIZE, "block record size");
_Static_assert(sizeof(struct wc_header) <= 4096, "header size");

/* Does a name from /proc/self/fd say that the file has none (unlinked:
 * "<its last name> (deleted)")? format.h (10). */
static inline int wc_name_gone(const char *name, size_t n)
{
    static const char tail[] = " (deleted)";
    size_t t = sizeof tail - 1;
    return n > t && memcmp(name + n - t, tail, t) == 0;
}

/* FNV-1a, 64 bits. */
static inline uint64_t wc_fmt_sum(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* The header's checksum (invariant 7). */
static inline uint64_t wc_fmt_header_sum(const struct wc_header *h)
{
    return wc_fmt_sum(h, offsetof(struct wc_header, sum));
}

/* A slot's identity checksum (invariant 5); path_len must be in bounds. */
static inline uint64_t wc_fmt_slot_sum(const struct wc_fslot *s)
{
    uint64_t v[4] = {s->gen, s->dev, s->ino, s->path_len};
    uint64_t a = wc_fmt_sum(v, sizeof v);
    return a ^ (wc_fmt_sum(s->path, s->path_len) * 31);
}

static inline uint64_t wc_fmt_round_page(uint64_t n)
{
    return (n + WC_FMT_PAGE - 1) & ~(uint64_t)(WC_FMT_PAGE - 1);
}

/* The layout for nfiles slots and nblocks blocks. */
static inline void wc_fmt_layout(uint64_t nfiles, uint64_t nblocks,
                                 uint64_t *off_files, uint64_t *off_brecs,
                                 uint64_t *off_data, uint64_t *size)
{
    *off_files = WC_FMT_PAGE;
    *off_brecs = *off_files + wc_fmt_round_page(nfiles * WC_FSLOT_SIZE);
    *off_data = *off_brecs + wc_fmt_round_page(nblocks * WC_BREC_SIZE);
    *size = *off_data + nblocks * WC_FMT_PAGE;
}

/* ---- where backing files are, and their names ------------------------ */

/* A backing file is <base>/wcache-<uid>/cache.<pid>.<nonce> (store.c
 * store_name: the nonce in 8 lowercase hex digits). <base> is WCACHE_DIR,
 * else the first of these the user may write in (store.c pick_dir, and
 * the `wcache` command's ls, recover and sweep, cli_recover.c): out[]
 * gets them in order, the count is returned. */
static inline size_t wc_fmt_bases(const char *out[3])
{
    const char *tmp = getenv("TMPDIR");
    size_t n = 0;
    out[n++] = "/dev/shm";
    if (tmp && *tmp)
        out[n++] = tmp;
    out[n++] = "/tmp";
    return n;
}

/* The pid the name of a backing file (its last component) carries, or 0
 * when name is not one. */
/* The mount namespace of the calling process (format.h (11)): the inode
 * of its /proc/self/ns/mnt, or 0 when /proc cannot tell. `st` is the
 * caller's stat function (a raw one where errno must stay). */
static inline uint64_t wc_fmt_mnt_ns(int (*st)(const char *, struct stat *))
{
    struct stat b;
    return st("/proc/self/ns/mnt", &b) == 0 ? (uint64_t)b.st_ino : 0;
}

/* May a process of mount namespace `mine` replay a backing file made in
 * `theirs` (format.h (11))? Either unknown: yes. */
static inline int wc_fmt_same_ns(uint64_t mine, uint64_t theirs)
{
    return !mine || !theirs || mine == theirs;
}

/* The lock of the guard of directory `dir` for mount namespace `ns`
 * (shim/cli_recover.c (G1), (G7)): dir/guard.lock when ns is unknown,
 * else dir/guard.<ns>.lock. 0, or -1 when it does not fit in cap. */
static inline int wc_fmt_guard_lock(char *out, size_t cap, const char *dir,
                                    uint64_t ns)
{
    struct wc_str p = wc_str_init(out, cap);
    wc_str_add(&p, dir);
    wc_str_add(&p, "/guard.");
    if (ns) {
        wc_str_num(&p, ns, 0, 0);
        wc_str_add(&p, ".");
    }
    wc_str_add(&p, "lock");
    return p.over ? -1 : 0;
}

/* A backing file a guard could not replay is renamed with this suffix
 * (shim/cli_recover.c (G6)): guards pass it by, `wcache recover` and
 * `wcache ls` read it. */
#define WC_FMT_KEPT ".kept"

/* The pid in a backing file's name, "cache.<pid>.<nonce>" (the pid in
 * decimal, 1 to INT32_MAX, the nonce 8 hex digits, as the engine makes
 * them) and, with `kept` not NULL, "cache.<pid>.<nonce>.kept" too (*kept
 * then says which); 0 for any other name. By hand, not sscanf: every
 * program's start-up sweep (replay.c sweep_one) reads the names of the
 * stores of the live processes beside it, and scanf's code (about 0.1 ms
 * of page faults in each start here) is nothing else such a program
 * runs. */
static inline unsigned wc_fmt_name_parse(const char *name, int *kept)
{
    if (strncmp(name, "cache.", 6) != 0)
        return 0;
    const char *p = name + 6;
    uint64_t pid = 0;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((pid = pid * 10 + (uint64_t)(*p - '0')) > INT32_MAX)
            return 0;
    if (pid == 0 || *p++ != '.')
        return 0;
    for (int i = 0; i < 8; i++, p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
              (*p >= 'A' && *p <= 'F')))
            return 0;
    int k = *p != 0;
    if (k && (!kept || strcmp(p, WC_FMT_KEPT) != 0))
        return 0;
    if (kept)
        *kept = k;
    return (unsigned)pid;
}

static inline unsigned wc_fmt_name_pid(const char *name)
{
    return wc_fmt_name_parse(name, NULL);
}

#endif /* WCACHE_FORMAT_H */
