/*
 * replay.c - a dead process's backing file, written back into its files.
 *
 * Invariants:
 *   (1) Nothing read from the backing file is trusted: every header field
 *       is checked against the layout, the checksum and the file's real
 *       size; every slot against its identity checksum and bounds; every
 *       record against its slot, its generation and the page. The file is
 *       read with pread into our own buffers (never mapped: a file cut
 *       short under us cannot SIGBUS us).
 *   (2) Only the owner's lock tells that the owner is gone (store.h (2)):
 *       a file whose lock is held is never touched; the lock is held for
 *       the whole replay, so a guard and `wcache recover` never both
 *       replay one file.
 *   (3) Bytes written are exactly the dirty ranges (format.h (1), (2)),
 *       clipped at the size the program saw; a file is extended to that
 *       size with ftruncate (zeros), never beyond it, never shortened.
 *   (4) A target is written in place only when open(path, O_NOFOLLOW)
 *       gives the recorded dev and ino and the recorded size and ctime,
 *       or, if the engine or a replay was changing it (busy: a replay
 *       marks the slot before it writes in place, mark_busy), a size
 *       between the one recorded and the program's (changed_since). Otherwise the
 *       data goes to a new file <path>.wcache-recovered.<pid> (O_EXCL,
 *       O_NOFOLLOW, 0600; <pid>.1, .2... when the name is taken: a
 *       process that set bytes aside already, wc_aside_open), with a
 *       message, and is removed again when it could not be completed.
 *       No other file is written.
 *   (4b) When the path no longer names the file, another entry of the
 *       same directory with the recorded ino that opens to the recorded
 *       dev and ino is the file, renamed since by another process
 *       (logrotate's `mv app.log app.log.1`: the kernel went on writing
 *       into app.log.1); its size, not its ctime (the rename moved it),
 *       must be the one recorded. A file moved to another directory is
 *       not looked for: its bytes go aside (or stay, when the directory
 *       went).
 *   (5) Records are replayed in sequence order (format.h (6)).
 *   (6) A backing file with any corrupt record is not replayed at all
 *       (the lost bytes would become holes of zeros).
 *   (7) The backing file is removed only when every file was replayed
 *       (in place or aside) and synced; else it stays for `wcache
 *       recover`, and the result says what failed.
 *   (8) A run of appended bytes (format.h (9)), one contiguous run from
 *       the slot's append_run on, is written at the end of the file as it
 *       is now, in one O_APPEND write, after the slot's other bytes: its
 *       offsets are where the program believed the end was, and another
 *       process may have appended there since (two loggers of one file on
 *       a full disk: the guard's replay of one wrote its failed run over
 *       12,588 of the other's acknowledged records). A file holding only
 *       such a run is appended to even when it changed (it covers nothing
 *       of another's: the engine's retry does the same, errors.c (2)),
 *       provided it is still the same file; its size is not set from the
 *       slot. A run that is not contiguous goes at its offsets, as the
 *       engine's write-back does (flush.c). An append is never made
 *       twice where it can be told (format.h (9)): what a replay appended
 *       is stored in the slot after each write, and the call the engine
 *       died in is looked for in the file (run_landed).
 *   (9) A slot marked gone (format.h (10): the file had no name, unlinked)
 *       whose path does not name the same file now is dropped, neither
 *       written in place nor aside: the kernel freed the file's data when
 *       the dead process's descriptors went. (Before the mark, an unlinked
 *       scratch file's bytes came back as <name>.wcache-recovered.<pid>.)
 *   (10) The guard is the program's descendant and runs under the seccomp
 *       filter the program inherited (a service manager's
 *       SystemCallFilter=, a sandbox): where it refuses pread or pwrite
 *       (EPERM, ENOSYS), every read and write here is lseek+read or
 *       lseek+write (seekio.h), as the engine writes back then (errors.c,
 *       THROUGH); every descriptor read or written here is the replay's
 *       own. Where it refuses fsync and fdatasync, the bytes stay in the
 *       page cache, synced no more than the program's own writes could be
 *       under that filter, and the replay counts as done (7). (Before, a
 *       refused pwrite kept the backing file aside as .kept and the file
 *       lacked every acknowledged byte: 12 of 12 runs of probe R.) The
 *       calls a replay cannot do without (flock, ftruncate, open) are
 *       tried when the cache is made (store.c, store.h (2)): where the
 *       filter refuses them, no cache is made.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "format.h"
#include "replay.h"
#include "seekio.h"
#include "wcache/raw.h"
#include "wcache/str.h"
#include "wcache/sys.h"

static void say(int fd, const char *fmt, ...)
{
    if (fd < 0)
        return;
    char buf[4608];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    for (int off = 0; off < n;) {
        ssize_t w = wc_sys.write(fd, buf + off, (size_t)(n - off));
        if (w <= 0)
            break;
        off += (int)w;
    }
}

/* One dirty record, copied out of the file. */
struct rec {
    uint32_t age;       /* header seq - record seq: larger is older */
    uint32_t slot;
    uint32_t block;
    uint16_t nr;
    uint64_t index;
    uint16_t lo[WC_RANGES], hi[WC_RANGES];
};

/* A piece of a run of appended bytes (invariant 8). */
struct piece {
    uint32_t slot;
    uint32_t block;
    uint64_t off;       /* in the program's offsets */
    uint16_t lo, hi;    /* within the block */
};

#define NO_RUN UINT64_MAX

/* What a replay knows of one file slot. */
struct target {
    int ok;             /* the slot passed its checks */
    int used;           /* has dirty records or a size to restore */
    uint64_t bytes;
    int fd;             /* where the data goes, -1 until opened */
    int aside;          /* fd is a recovery file */
    int dropped;        /* unlinked: its bytes went with it (9) */
    int failed;
    uint64_t run_from;  /* where appended bytes begin (format.h (9)), or
                           NO_RUN */
    int run;            /* those bytes are one run, appended (8) */
    uint64_t run_start, run_len;
    uint64_t below;     /* dirty bytes before run_from */
    size_t piece0, npieces;     /* the run's pieces, by offset */
    char why[160];      /* why it went aside */
    char aside_path[sizeof ((struct wc_fslot *)0)->path + 64];
};

static int by_offset(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int by_age(const void *a, const void *b)
{
    const struct rec *x = a, *y = b;
    if (x->age != y->age)
        return x->age > y->age ? -1 : 1;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int read_all(int fd, void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = wc_pread_own(fd, (char *)buf + done, n - done,
                                 (off_t)(off + done), NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        done += (size_t)r;
    }
    return 0;
}

/* pwrite until n bytes are written; where a filter refuses pwrite,
 * lseek+write (invariant (10): every fd written here is the replay's
 * own). */
static int write_all(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = wc_pwrite_own(fd, (const char *)buf + done, n - done,
                                  (off_t)(off + done), NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -EIO;
        done += (size_t)r;
    }
    return 0;
}

/* fsync(fd); where a filter refuses it and fdatasync (EPERM, ENOSYS),
 * the bytes stay in the page cache (invariant (10)). 0 or -1 with errno. */
static int sync_target(int fd)
{
    if (wc_sys.fsync(fd) == 0)
        return 0;
    if (!wc_refused(errno))
        return -1;
    if (wc_sys.fdatasync(fd) == 0 || wc_refused(errno))
        return 0;
    return -1;
}

/* Header checks (invariant 1). Returns NULL or what is wrong. */
static const char *check_header(const struct wc_header *h,
                                const struct stat *st)
{
    uint64_t of, ob, od, size;
    if (memcmp(h->magic, WC_STORE_MAGIC, 7) == 0 &&
        h->magic[7] != WC_STORE_MAGIC[7])
        return "made by another version of wcache (its format is unknown "
               "here)";
    if (memcmp(h->magic, WC_STORE_MAGIC, sizeof h->magic) != 0)
        return "bad magic (not a wcache backing file)";
    if (h->version != WC_STORE_VERSION)
        return "unknown version";
    if (h->sum != wc_fmt_header_sum(h))
        return "header checksum mismatch";
    if (h->header_size != sizeof *h || h->page_size != WC_FMT_PAGE ||
        h->fslot_size != WC_FSLOT_SIZE || h->brec_size != WC_BREC_SIZE)
        return "unexpected record sizes";
    if (h->nfiles == 0 || h->nfiles > WC_FMT_MAX_FILES || h->nblocks == 0 ||
        h->nblocks > WC_FMT_MAX_BLOCKS)
        return "table sizes out of range";
    wc_fmt_layout(h->nfiles, h->nblocks, &of, &ob, &od, &size);
    if (h->off_files != of || h->off_brecs != ob || h->off_data != od ||
        h->file_size != size)
        return "table offsets do not match the layout";
    if ((uint64_t)st->st_size < size)
        return "file shorter than its header says (truncated)";
    if (h->pid <= 0 || h->pid > (1 << 22))
        return "owner pid out of range";
    if (h->uid != (uint64_t)st->st_uid)
        return "owner uid differs from the file's";
    return NULL;
}

/* Slot checks (invariant 1). Returns NULL or what is wrong. */
static const char *check_slot(const struct wc_fslot *s)
{
    if (s->state != WC_SLOT_LIVE)
        return "slot not in use";
    if (s->busy == 2)
        return "its name was being changed";    /* format.h (5) */
    if (s->path_len == 0 || s->path_len >= sizeof s->path ||
        s->path[s->path_len] != 0 || strlen(s->path) != s->path_len ||
        s->path[0] != '/')
        return "bad path";
    if (s->id_sum != wc_fmt_slot_sum(s))
        return "slot checksum mismatch";
    if (s->gone > 1)
        return "bad mark of a file without a name";
    if (s->size > ((uint64_t)1 << 40))
        return "size out of range";
    return NULL;
}

static uint64_t ctime_ns(const struct stat *st)
{
    return (uint64_t)st->st_ctim.tv_sec * 1000000000u +
           (uint64_t)st->st_ctim.tv_nsec;
}

/* Was the file changed by someone else since the engine last changed it
 * (invariant 4)? While the slot is busy the engine was changing it, so its
 * ctime and exact size are unknown; but its write-back never goes past
 * the size the program saw, and a truncation is recorded before the cut:
 * a size outside [min, max] of the last one seen and the program's is
 * someone else's doing. */
static int changed_since(const struct wc_fslot *s, const struct stat *st)
{
    uint64_t n = (uint64_t)st->st_size;
    uint64_t lo = s->seen_size < s->size ? s->seen_size : s->size;
    uint64_t hi = s->seen_size < s->size ? s->size : s->seen_size;
    if (s->shared == 1)     /* others write it after our ranges (format.h) */
        return n < lo;
    if (!s->busy)
        return n != s->seen_size || ctime_ns(st) != s->seen_ctime_ns;
    return n < lo || n > hi;
}

/* changed_since for a file another process renamed (4b): the rename
 * moved its ctime, not its data; the size alone tells. */
static int changed_size(const struct wc_fslot *s, const struct stat *st)
{
    if (s->shared == 1 || s->busy)
        return changed_since(s, st);
    return (uint64_t)st->st_size != s->seen_size;
}

int wc_aside_open(const char *path, int64_t pid, char *name, size_t len)
{
    for (int k = 0; k < 100; k++) {
        int n = k ? snprintf(name, len, "%s.wcache-recovered.%lld.%d", path,
                             (long long)pid, k)
                  : snprintf(name, len, "%s.wcache-recovered.%lld", path,
                             (long long)pid);
        if (n < 0 || (size_t)n >= len) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = wc_sys.open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                                       O_CLOEXEC | O_NOCTTY, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;                          /* errno EEXIST */
}

/* The slot's file under another name in the same directory (invariant
 * (4b)): opened with `flags` and its stat in *st, or -1. */
static int find_renamed(const struct wc_fslot *s, int flags, struct stat *st,
                        char *name, size_t cap)
{
    char dir[sizeof s->path];
    const char *slash = strrchr(s->path, '/');
    if (slash == s->path)
        snprintf(dir, sizeof dir, "/");
    else if (slash)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - s->path), s->path);
    else
        snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int fd = -1;
    struct dirent *e;
    while (fd < 0 && (e = readdir(d)) != NULL) {
        if ((uint64_t)e->d_ino != s->ino)
            continue;
        int n = snprintf(name, cap, "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= cap)
            continue;
        fd = wc_sys.open(name, flags);
        if (fd >= 0 && (wc_sys.fstat(fd, st) != 0 || !S_ISREG(st->st_mode) ||
                        (uint64_t)st->st_dev != s->dev ||
                        (uint64_t)st->st_ino != s->ino)) {
            wc_sys.close(fd);
            fd = -1;
        }
    }
    closedir(d);
    return fd;
}

/* Open where slot s's data goes (invariant 4); with `dry`, only say
 * whether it is the file itself (t->fd then -1, t->aside set or not). */
static void open_target(struct target *t, const struct wc_fslot *s,
                        int64_t pid, int log_fd, int dry)
{
    struct stat st;
    int flags = (dry ? O_RDONLY : O_WRONLY) | O_NOFOLLOW | O_CLOEXEC |
                O_NOCTTY | O_NONBLOCK;
    int fd = wc_sys.open(s->path, flags);
    int same = 0;       /* the path names the slot's file */
    int moved = 0;      /* another name of the directory does (4b) */
    t->why[0] = 0;
    if (fd < 0 || wc_sys.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_dev != s->dev || (uint64_t)st.st_ino != s->ino) {
        char name[sizeof s->path + 256];
        struct stat st2;
        int f2 = find_renamed(s, flags, &st2, name, sizeof name);
        if (f2 >= 0) {
            if (fd >= 0)
                wc_sys.close(fd);
            fd = f2;
            st = st2;
            moved = 1;
            say(log_fd, "wcache: %s: renamed to %s since: replayed there",
                s->path, name);
        }
    }
    if (fd < 0) {
        snprintf(t->why, sizeof t->why, "cannot open it: %s",
                 strerror(errno));
    } else if (!moved && (wc_sys.fstat(fd, &st) != 0 ||
                          !S_ISREG(st.st_mode))) {
        snprintf(t->why, sizeof t->why, "not a regular file now");
    } else if (!(same = (uint64_t)st.st_dev == s->dev &&
                        (uint64_t)st.st_ino == s->ino)) {
        snprintf(t->why, sizeof t->why, "another file has its name now");
    } else if (!(t->run && !t->below) &&
               (moved ? changed_size(s, &st) : changed_since(s, &st))) {
        snprintf(t->why, sizeof t->why, "changed after the crash (size "
                 "%llu, was %llu)", (unsigned long long)st.st_size,
                 (unsigned long long)s->seen_size);
    } else if (dry) {
        wc_sys.close(fd);
        return;
    } else {
        t->fd = fd;
        return;
    }
    if (fd >= 0)
        wc_sys.close(fd);
    if (s->gone && !same) {
        t->dropped = 1;         /* invariant (9) */
        return;
    }
    t->aside = 1;
    if (dry)
        return;
    t->fd = wc_aside_open(s->path, pid, t->aside_path, sizeof t->aside_path);
    if (t->fd < 0) {
        say(log_fd, "wcache: %s: %s; cannot create %s either: %s", s->path,
            t->why, t->aside_path, strerror(errno));
        t->failed = 1;
    }
}

/* Slot i of the backing file (fd) is marked busy before its target is
 * written in place, as the engine marks a write-back (format.h (5)): a
 * replay that fails part-way (ENOSPC, EIO) has moved the file's size and
 * times, and the next replay must not take that for another process's
 * change (invariant (4)): it then allows any size between the two it
 * knows. Through a descriptor of our own (the guard's is read-only). */
static int store_slot(int fd, const struct wc_header *h, uint32_t i,
                      size_t field, const void *v, size_t n)
{
    char p[64];
    int w = wc_sys.open(wc_str_procfd(p, sizeof p, fd),
                        O_WRONLY | O_CLOEXEC | O_NOCTTY);
    if (w < 0)
        return -1;
    off_t at = (off_t)(h->off_files + (uint64_t)i * WC_FSLOT_SIZE + field);
    int r = wc_pwrite_own(w, v, n, at, NULL) == (ssize_t)n ? 0 : -1;
    wc_sys.close(w);
    return r;
}

static void mark_busy(int fd, const struct wc_header *h, uint32_t i,
                      struct wc_fslot *s)
{
    uint32_t one = 1;
    if (!s->busy && store_slot(fd, h, i, offsetof(struct wc_fslot, busy),
                               &one, sizeof one) == 0)
        s->busy = 1;
}

/* Each slot's run of appended bytes (invariant 8): its pieces, sorted by
 * offset into *out, and whether they make one run. Returns 0 or -ENOMEM. */
static int find_runs(const struct wc_fslot *slots, struct target *tg,
                     uint32_t nfiles, const struct rec *recs, size_t nrecs,
                     struct piece **out)
{
    size_t n = 0, cap = 0;
    struct piece *pc = NULL;
    for (uint32_t i = 0; i < nfiles; i++) {
        const struct wc_fslot *s = &slots[i];
        tg[i].run_from = tg[i].ok && s->append_run &&
                         s->append_run - 1 < s->size ? s->append_run - 1
                                                     : NO_RUN;
    }
    for (size_t k = 0; k < nrecs; k++) {
        const struct rec *rc = &recs[k];
        struct target *t = &tg[rc->slot];
        uint64_t base = rc->index * WC_FMT_PAGE;
        for (unsigned i = 0; i < rc->nr; i++) {
            uint64_t lo = base + rc->lo[i], hi = base + rc->hi[i];
            if (lo < t->run_from)
                t->below += (hi < t->run_from ? hi : t->run_from) - lo;
            if (hi <= t->run_from)
                continue;
            if (n == cap) {
                size_t nc = cap ? 2 * cap : 64;
                struct piece *np = realloc(pc, nc * sizeof *pc);
                if (!np) {
                    free(pc);
                    return -ENOMEM;
                }
                pc = np;
                cap = nc;
            }
            uint64_t from = lo > t->run_from ? lo : t->run_from;
            pc[n++] = (struct piece){.slot = rc->slot, .block = rc->block,
                                     .off = from,
                                     .lo = (uint16_t)(from - base),
                                     .hi = rc->hi[i]};
        }
    }
    if (n)
        qsort(pc, n, sizeof *pc, by_offset);
    for (size_t k = 0; k < n;) {
        struct target *t = &tg[pc[k].slot];
        size_t j = k;
        uint64_t end = pc[k].off;
        int one = 1;
        for (; j < n && pc[j].slot == pc[k].slot; j++) {
            if (pc[j].off != end)
                one = 0;        /* a gap, or a page twice: at offsets */
            end = pc[j].off + (uint64_t)(pc[j].hi - pc[j].lo);
        }
        t->run = one;
        t->run_start = pc[k].off;
        t->run_len = end - pc[k].off;
        t->piece0 = k;
        t->npieces = j - k;
        if (!one)
            t->below = 1;       /* written as the rest: at offsets */
        k = j;
    }
    *out = pc;
    return 0;
}

/* Target t's run of appended bytes, read from the backing file (fd) into
 * a new buffer (*out). Returns 0 or -errno. */
static int load_run(int fd, const struct wc_header *h, const struct target *t,
                    const struct piece *pc, char **out)
{
    char *buf = malloc(t->run_len ? t->run_len : 1);
    if (!buf)
        return -ENOMEM;
    int e = 0;
    for (size_t k = t->piece0; k < t->piece0 + t->npieces && e == 0; k++)
        e = read_all(fd, buf + (pc[k].off - t->run_start),
                     (size_t)(pc[k].hi - pc[k].lo),
                     h->off_data + (uint64_t)pc[k].block * WC_FMT_PAGE +
                         pc[k].lo);
    if (e < 0) {
        free(buf);
        return e;
    }
    *out = buf;
    return 0;
}

/* How many of the n bytes of buf the file (rfd) holds at offset at, from
 * the first: the common prefix. */
static uint64_t prefix(int rfd, uint64_t at, const char *buf, uint64_t n)
{
    char chunk[4096];
    uint64_t k = 0;
    while (k < n) {
        size_t want = n - k < sizeof chunk ? (size_t)(n - k) : sizeof chunk;
        ssize_t r = wc_pread_own(rfd, chunk, want, (off_t)(at + k), NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t same = 0;
        while (same < (size_t)r && chunk[same] == buf[k + same])
            same++;
        k += same;
        if (same < (size_t)r)
            break;
    }
    return k;
}

/* Bytes of an append call (buf, n) that landed at offset at of a file
 * of size eof: all of them; or, cut by a death, up to the end of the
 * file (64 bytes or more); or up to a page boundary of the file, where
 * the kernel cuts a write a death interrupts, at least a page of them:
 * the last boundary within the bytes the file has in common with buf,
 * since what follows the cut is another's and may begin as ours does
 * (two loggers' records starting "W0": the common bytes ran 2 bytes past
 * the cut, the call was taken as not landed and appended again, 4 runs
 * in 30 of a probe), and never less than a page, since another's bytes
 * where ours did not land at all may begin as ours do for as long (a
 * probe: records of 300 'x' then a number, the first 80 bytes of the run
 * taken as landed and lost). Else 0: a part of the call that reached
 * the file only in its first page is written again (twice rather than
 * lost), as is one that only someone else's identical page could fake. */
static uint64_t landed_at(int rfd, uint64_t at, const char *buf, uint64_t n,
                          uint64_t eof)
{
    uint64_t k = prefix(rfd, at, buf, n);
    if (k == n || (k >= 64 && at + k == eof))
        return k;
    uint64_t cut = (at + k) / WC_FMT_PAGE * WC_FMT_PAGE;
    return cut >= at + WC_FMT_PAGE ? cut - at : 0;
}

/* Bytes of t's run (buf) that reached the file already (format.h (9)):
 * a replay's own progress, or, when the engine died in an append call,
 * what of that call the file (rfd, readable; -1: cannot look) holds where
 * it would have put it (landed_at: a death cuts the call at a page
 * boundary), or, where another process appended first (the engine's end
 * of file was behind), at the first place after that holds it (a call of
 * at least 64 bytes: shorter ones are taken as not there, written twice
 * rather than lost). */
static uint64_t run_landed(const struct target *t, const struct wc_fslot *s,
                           const char *buf, int rfd)
{
    if (s->append_done)
        return s->append_done < t->run_len ? s->append_done : t->run_len;
    struct stat st;
    if (!s->append_wip || rfd < 0 || wc_sys.fstat(rfd, &st) != 0)
        return 0;
    uint64_t at = s->append_wip - 1, n = s->append_wip_len;
    uint64_t eof = (uint64_t)st.st_size;
    if (n == 0 || n > t->run_len)
        return 0;
    uint64_t k = landed_at(rfd, at, buf, n, eof);
    if (k || n < 64 || eof < at + 1 + 64)
        return k;
    /* The bytes appended since, at most 16 MiB of them, searched for the
     * call's first 64. */
    uint64_t len = eof - at - 1;
    if (len > ((uint64_t)16 << 20))
        len = (uint64_t)16 << 20;
    char *area = malloc(len);
    if (!area)
        return 0;
    uint64_t got = 0;
    while (got < len) {
        ssize_t r = wc_pread_own(rfd, area + got, len - got,
                                 (off_t)(at + 1 + got), NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (uint64_t)r;
    }
    for (const char *p = area, *e = area + got; p && e - p >= 64 && !k;) {
        p = memmem(p, (size_t)(e - p), buf, 64);
        if (p)
            k = landed_at(rfd, at + 1 + (uint64_t)(p++ - area), buf, n, eof);
    }
    free(area);
    return k;
}

/* Target t's run of appended bytes (slot i of the backing file fd),
 * written at the end of the file in one O_APPEND write (invariant 8),
 * after what reached it already (run_landed), the file first made as
 * long as the run's start where neither it nor the engine's last note
 * reached it and no byte of the run landed yet (a hole the program saw as
 * zeros, as flush.c does); the progress is stored in the slot after
 * each write. Returns 0 or -errno. */
static int append_run(int fd, const struct wc_header *h, uint32_t i,
                      struct target *t, const struct wc_fslot *s,
                      const struct piece *pc)
{
    char *buf;
    int e = load_run(fd, h, t, pc, &buf);
    if (e < 0)
        return e;
    char p[64];
    int rfd = wc_sys.open(wc_str_procfd(p, sizeof p, t->fd),
                          O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    uint64_t done = run_landed(t, s, buf, rfd);
    if (rfd >= 0)
        wc_sys.close(rfd);
    struct stat st;
    if (wc_sys.fstat(t->fd, &st) != 0)
        e = -errno;
    if (e == 0 && done == 0 && t->run_start == t->run_from &&
        s->disk_size < t->run_start &&
        (uint64_t)st.st_size < t->run_start &&
        wc_sys.ftruncate(t->fd, (off_t)t->run_start) != 0)
        e = -errno;
    int fl = e == 0 ? wc_sys.fcntl(t->fd, F_GETFL) : -1;
    if (e == 0 && (fl < 0 || wc_sys.fcntl(t->fd, F_SETFL, fl | O_APPEND) < 0))
        e = -errno;
    while (e == 0 && done < t->run_len) {
        ssize_t w = wc_sys.write(t->fd, buf + done, t->run_len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            e = w < 0 ? -errno : -EIO;
            break;
        }
        done += (size_t)w;
        /* Not twice (format.h (9)): the next replay goes on from here. */
        store_slot(fd, h, i, offsetof(struct wc_fslot, append_done), &done,
                   sizeof done);
    }
    free(buf);
    return e;
}

/* What run_landed says of target t (slot s) without writing anything:
 * for `wcache recover --dry-run`. */
static uint64_t dry_landed(int fd, const struct wc_header *h,
                           const struct target *t, const struct wc_fslot *s,
                           const struct piece *pc)
{
    char *buf;
    if (load_run(fd, h, t, pc, &buf) < 0)
        return 0;
    struct stat st;
    int rfd = wc_sys.open(s->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
                                       O_NOCTTY | O_NONBLOCK);
    if (rfd >= 0 && (wc_sys.fstat(rfd, &st) != 0 ||
                     (uint64_t)st.st_dev != s->dev ||
                     (uint64_t)st.st_ino != s->ino)) {
        wc_sys.close(rfd);
        rfd = -1;
    }
    uint64_t n = run_landed(t, s, buf, rfd);
    if (rfd >= 0)
        wc_sys.close(rfd);
    free(buf);
    return n;
}

/* Does the process whose pid a backing file's name carries
 * ("cache.<pid>.<nonce>", store.c) live? */
static int creator_alive(const char *path)
{
    const char *base = strrchr(path, '/');
    unsigned pid = wc_fmt_name_pid(base ? base + 1 : path);
    if (pid == 0)
        return 0;
    int e = errno;
    int alive = kill((pid_t)pid, 0) == 0 || errno == EPERM;
    errno = e;
    return alive;
}

uint64_t wc_replay_ns(int fd)
{
    struct wc_header h;
    if (read_all(fd, &h, sizeof h, 0) != 0 ||
        memcmp(h.magic, WC_STORE_MAGIC, sizeof h.magic) != 0)
        return 0;
    return h.mnt_ns;
}

int wc_replay_may_ns(const char *dir, uint64_t mine, uint64_t theirs)
{
    if (wc_fmt_same_ns(mine, theirs))
        return 1;
    char lock[PATH_MAX + 48];
    if (wc_fmt_guard_lock(lock, sizeof lock, dir, theirs) != 0)
        return 0;
    int e = errno;
    int fd = wc_sys.open(lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                                   O_NONBLOCK);
    int watched = fd >= 0 && wc_sys.flock(fd, LOCK_SH | LOCK_NB) != 0 &&
                  errno == EWOULDBLOCK;
    if (fd >= 0)
        wc_sys.close(fd);       /* (releases a lock it got) */
    errno = e;
    return !watched;
}

int wc_replay_log_open(const char *dir, char *log, size_t cap)
{
    snprintf(log, cap, "%s/guard.log", dir);
    return wc_sys.open(log, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
                                O_CLOEXEC, 0600);
}

int wc_replay_dead(int fd, const char *path, int log_fd,
                   struct wc_rp_result *out)
{
    int r = wc_replay_fd(fd, path, WC_RP_QUIET, log_fd, out);
    if (r >= 0 && !out->failed)
        return 0;
    if (r == -EPERM)
        return 2;               /* another user's: not ours to set aside */
    /* cli_recover.c (G6): renamed, so that no later sweep tries it again
     * (and logs it again). */
    char kept[PATH_MAX + 96];
    snprintf(kept, sizeof kept, "%s" WC_FMT_KEPT, path);
    int named = wc_sys.rename(path, kept) == 0;
    say(log_fd, "wcache guard: %s kept%s%s: `wcache recover` retries it",
        path, named ? " as " : "", named ? kept : "");
    return named ? 1 : 2;
}

/* The sweep's look at one backing file's name in its directory
 * (wc_replay_sweep). Not inlined: its 8 KiB of names on the stack would
 * be a page fault in every program's start-up, which meets no such name
 * (a dead process's store) but seldom. No sscanf (whose code a process
 * that never scans would fault in). */
__attribute__((cold, noinline))
static void sweep_one(const char *dir, const char *name, uint64_t *ns,
                      int *lfd, int *n)
{
    char path[PATH_MAX + 80];
    if (!wc_fmt_name_pid(name) ||
        snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return;                 /* not one, or a kept one */
    int fd = wc_sys.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                                   O_NONBLOCK);
    if (fd < 0)
        return;                 /* removed meanwhile */
    if (*ns == WC_RP_NS_ASK)
        *ns = wc_fmt_mnt_ns(wc_sys.stat);
    if (wc_sys.flock(fd, LOCK_EX | LOCK_NB) != 0 ||         /* (2) */
        !wc_replay_may_ns(dir, *ns, wc_replay_ns(fd))) {
        wc_sys.close(fd);       /* alive, being replayed, or left to the
                                   guard of its mount namespace */
        return;
    }
    if (*lfd < 0) {
        char log[PATH_MAX + 16];
        *lfd = wc_replay_log_open(dir, log, sizeof log);
    }
    struct wc_rp_result res;
    wc_replay_dead(fd, path, *lfd, &res);       /* closes fd */
    ++*n;
}

/* Read with getdents64 into a buffer on the stack: a program's start-up
 * (wc_cache_replay_dead) pays no malloc arena and no 32 KiB buffer of
 * opendir's for a directory of a few names. `cold`, as every function a
 * program's start-up runs: placed together with the others, a page fault
 * fewer each (shim/shim.h WC_ONCE). */
__attribute__((cold))
int wc_replay_sweep(const char *dir, uint64_t ns)
{
    int dfd = wc_sys.openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    int n = 0, lfd = -1;
    char buf[2048] __attribute__((aligned(8)));
    long got;
    while ((got = wc_raw_syscall(SYS_getdents64, dfd, (long)buf, sizeof buf,
                                 0, 0, 0)) > 0) {
        for (long at = 0; at < got;) {
            struct dirent64 *e = (struct dirent64 *)(buf + at);
            at += e->d_reclen;
            if (!strncmp(e->d_name, "cache.", 6))
                sweep_one(dir, e->d_name, &ns, &lfd, &n);
        }
    }
    wc_sys.close(dfd);
    if (lfd >= 0)
        wc_sys.close(lfd);
    return n;
}

int wc_replay(const char *path, int flags, int log_fd,
              struct wc_rp_result *out)
{
    int fd = wc_sys.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY |
                                   O_NONBLOCK);
    if (fd < 0) {
        int r = -errno;
        memset(out, 0, sizeof *out);
        say(log_fd, "wcache: %s: %s", path, strerror(errno));
        return r;
    }
    return wc_replay_fd(fd, path, flags, log_fd, out);
}

int wc_replay_fd(int fd, const char *path, int flags, int log_fd,
                 struct wc_rp_result *out)
{
    struct wc_header h;
    struct stat st;
    struct wc_fslot *slots = NULL;
    struct target *tg = NULL;
    struct rec *recs = NULL;
    struct piece *pieces = NULL;
    size_t nrecs = 0, caprecs = 0;
    int r = 0;
    const char *bad;

    memset(out, 0, sizeof *out);
    if (wc_sys.fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        say(log_fd, "wcache: %s: not a regular file", path);
        wc_sys.close(fd);
        return -EINVAL;
    }
    if (st.st_uid != geteuid()) {
        say(log_fd, "wcache: %s: owned by uid %u, not by you: refused", path,
            (unsigned)st.st_uid);
        wc_sys.close(fd);
        return -EPERM;
    }
    /* Invariant (2): the owner's lock. */
    while (wc_sys.flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK && (flags & WC_RP_LIST)) {
            out->alive = 1;     /* a listing only reads: go on */
            break;
        }
        if (errno == EWOULDBLOCK) {
            out->alive = 1;
            if (read_all(fd, &h, sizeof h, 0) == 0 && !check_header(&h, &st))
                out->pid = h.pid;
            if (!(flags & (WC_RP_LIST | WC_RP_QUIET)))
                say(log_fd, "wcache: %s: its process (%lld) is alive: left "
                    "alone", path, (long long)out->pid);
            wc_sys.close(fd);
            return 0;
        }
        r = -errno;
        say(log_fd, "wcache: %s: cannot lock it: %s", path, strerror(errno));
        wc_sys.close(fd);
        return r;
    }
    if (wc_sys.fstat(fd, &st) != 0) {
        r = -errno;
        wc_sys.close(fd);
        return r;
    }
    /* No name (removed at a clean exit, or never given one) and nothing
     * in it: done. A file without a name but with data is replayed. An
     * empty one holds nothing to replay: its owner died making it
     * (before its size was set), or something emptied it. Said once,
     * counted as failed (bytes may have been lost with it), and removed:
     * every later recover said "too short" and kept it. */
    if (st.st_size == 0 && (out->alive || creator_alive(path))) {
        /* Being made: created by name (no O_TMPFILE there), its lock
         * not taken yet (store.c). Removing it would leave its process
         * caching into a file no replay can find. Looked at again
         * later. */
        out->alive = 1;
        wc_sys.close(fd);
        return 0;
    }
    if (st.st_size == 0) {
        /* A listing (or a dry run) removes nothing: it says what a
         * recover would do (probe AA: "removed", the file still there). */
        say(log_fd, "wcache: %s: empty: nothing to replay (its process "
            "died making it, or it was emptied); %s", path,
            flags & (WC_RP_LIST | WC_RP_DRY) ? "recover removes it"
                                             : "removed");
        out->failed++;
        goto clean;
    }
    if ((uint64_t)st.st_size < sizeof h) {
        say(log_fd, "wcache: %s: too short for a header (%lld bytes)", path,
            (long long)st.st_size);
        r = -EINVAL;
        goto done;
    }
    if ((r = read_all(fd, &h, sizeof h, 0)) < 0) {
        say(log_fd, "wcache: %s: cannot read: %s", path, strerror(-r));
        goto done;
    }
    static const char zero8[8];
    if (memcmp(h.magic, zero8, 8) == 0 && h.sum == 0) {
        /* Its owner died while creating it: nothing was ever stored. */
        goto clean;
    }
    if ((bad = check_header(&h, &st)) != NULL) {
        say(log_fd, "wcache: %s: corrupt: %s", path, bad);
        r = -EINVAL;
        goto done;
    }
    out->pid = h.pid;
    /* Closed by a clean exit (wc_cache_close: every slot was released
     * before the state was stored): nothing to read past the header.
     * The guard of every process that exits normally ends here, without
     * reading the block table (megabytes for a large WCACHE_SIZE). */
    if (h.state == WC_STORE_CLOSED)
        goto clean;

    size_t slots_len = (size_t)h.nfiles * WC_FSLOT_SIZE;
    slots = malloc(slots_len);
    tg = calloc(h.nfiles, sizeof *tg);
    if (!slots || !tg) {
        say(log_fd, "wcache: %s: out of memory", path);
        r = -ENOMEM;
        goto done;
    }
    if ((r = read_all(fd, slots, slots_len, h.off_files)) < 0) {
        say(log_fd, "wcache: %s: cannot read the file table: %s", path,
            strerror(-r));
        goto done;
    }
    for (uint32_t i = 0; i < h.nfiles; i++) {
        tg[i].fd = -1;
        tg[i].ok = check_slot(&slots[i]) == NULL;
        /* A size the file on disk does not have yet is data too. */
        if (tg[i].ok && slots[i].size > slots[i].disk_size)
            tg[i].used = 1;
    }

    /* The block table, in chunks. */
    enum { CHUNK = 1024 };
    struct wc_brec *chunk = malloc(CHUNK * sizeof *chunk);
    if (!chunk) {
        r = -ENOMEM;
        goto done;
    }
    uint32_t corrupt = 0;
    for (uint64_t b0 = 0; b0 < h.nblocks && r == 0; b0 += CHUNK) {
        uint64_t n = h.nblocks - b0 < CHUNK ? h.nblocks - b0 : CHUNK;
        if ((r = read_all(fd, chunk, n * sizeof *chunk,
                          h.off_brecs + b0 * WC_BREC_SIZE)) < 0)
            break;
        for (uint64_t k = 0; k < n; k++) {
            const struct wc_brec *b = &chunk[k];
            if (b->file == 0 || b->nr == 0)
                continue;
            if (b->file > h.nfiles || b->nr > WC_RANGES ||
                b->index > WC_FMT_MAX_INDEX) {
                corrupt++;
                continue;
            }
            uint32_t si = b->file - 1;
            if (!tg[si].ok) {
                /* Data for a slot we cannot trust: one in use that
                 * failed its checks, or one in no state of the format
                 * (a stray store over it: its data was dropped, the
                 * backing file removed, probe AA). A free slot's
                 * records are stale (format.h (3)). */
                if (slots[si].state != WC_SLOT_FREE)
                    corrupt++;
                continue;
            }
            if (b->gen != slots[si].gen)
                continue;           /* stale (format.h (3)) */
            struct rec rc = {.age = h.seq - b->seq, .slot = si,
                             .block = (uint32_t)(b0 + k), .index = b->index};
            uint64_t base = b->index * WC_FMT_PAGE, held = 0;
            for (unsigned i = 0; i < b->nr; i++) {
                unsigned lo = b->lo[i], hi = b->hi[i];
                if (hi > WC_FMT_PAGE) {
                    corrupt++;
                    rc.nr = 0;
                    break;
                }
                if (lo >= hi || base + lo >= slots[si].size)
                    continue;       /* empty (format.h (2)) or past EOF */
                if (base + hi > slots[si].size)
                    hi = (unsigned)(slots[si].size - base);
                rc.lo[rc.nr] = (uint16_t)lo;
                rc.hi[rc.nr] = (uint16_t)hi;
                rc.nr++;
                held += hi - lo;
            }
            if (rc.nr == 0)
                continue;
            if (nrecs == caprecs) {
                size_t nc = caprecs ? 2 * caprecs : 256;
                struct rec *nr = realloc(recs, nc * sizeof *recs);
                if (!nr) {
                    r = -ENOMEM;
                    break;
                }
                recs = nr;
                caprecs = nc;
            }
            recs[nrecs++] = rc;
            tg[si].used = 1;
            tg[si].bytes += held;
            out->bytes += held;
        }
    }
    free(chunk);
    if (r < 0) {
        say(log_fd, "wcache: %s: cannot read the block table: %s", path,
            strerror(-r));
        goto done;
    }
    if ((r = find_runs(slots, tg, h.nfiles, recs, nrecs, &pieces)) < 0) {
        say(log_fd, "wcache: %s: out of memory", path);
        goto done;
    }
    /* A replay's progress through a run it does not have, or past its
     * end, is no progress (format.h (9)): the run would be skipped. */
    uint32_t bad_done = 0;
    for (uint32_t i = 0; i < h.nfiles; i++)
        bad_done += tg[i].used && slots[i].append_done &&
                    (!tg[i].run || slots[i].append_done > tg[i].run_len);
    if (corrupt || bad_done) {
        /* Which file lost what is unknowable: writing the rest would
         * leave holes of zeros where the lost bytes belong. Nothing is
         * written; the file is kept for inspection. */
        if (corrupt)
            say(log_fd, "wcache: %s: corrupt: %u block records out of "
                "range or of a broken file slot; nothing replayed, the "
                "file is kept", path, corrupt);
        else
            say(log_fd, "wcache: %s: corrupt: a replay's progress past its "
                "run of appended bytes; nothing replayed, the file is kept",
                path);
        out->failed += corrupt + bad_done;
        if (!(flags & WC_RP_LIST))
            goto done;
    }
    for (uint32_t i = 0; i < h.nfiles; i++)
        out->files += tg[i].used;

    if (flags & WC_RP_LIST) {
        for (uint32_t i = 0; i < h.nfiles; i++)
            if (tg[i].used)
                say(log_fd, "  %s: %llu bytes", slots[i].path,
                    (unsigned long long)tg[i].bytes);
        goto done;
    }
    if (out->files == 0 && corrupt == 0)
        goto clean;

    /* Where each file's data goes. */
    for (uint32_t i = 0; i < h.nfiles; i++) {
        if (!tg[i].used)
            continue;
        if (flags & WC_RP_DRY) {
            open_target(&tg[i], &slots[i], h.pid, log_fd, 1);
            if (tg[i].dropped)
                say(log_fd, "wcache: %s: unlinked: would drop its %llu "
                    "bytes, as the kernel frees an unlinked file's",
                    slots[i].path, (unsigned long long)tg[i].bytes);
            else if (tg[i].aside)
                say(log_fd, "wcache: %s: %s: would save %llu bytes beside "
                    "it", slots[i].path, tg[i].why,
                    (unsigned long long)tg[i].bytes);
            else if (tg[i].run) {
                uint64_t in = dry_landed(fd, &h, &tg[i], &slots[i], pieces);
                say(log_fd, "wcache: %s: would write %llu bytes, %llu of "
                    "them appended at its end%s", slots[i].path,
                    (unsigned long long)(tg[i].bytes - in),
                    (unsigned long long)(tg[i].run_len - in),
                    in ? " (the rest of the run is there)" : "");
            }
            else
                say(log_fd, "wcache: %s: would write %llu bytes (size %llu)",
                    slots[i].path, (unsigned long long)tg[i].bytes,
                    (unsigned long long)slots[i].size);
            continue;
        }
        open_target(&tg[i], &slots[i], h.pid, log_fd, 0);
        if (tg[i].fd >= 0 && !tg[i].aside)
            mark_busy(fd, &h, i, &slots[i]);
    }
    if (flags & WC_RP_DRY)
        goto done;

    /* The data, oldest first (invariant 5). */
    qsort(recs, nrecs, sizeof *recs, by_age);
    char page[WC_FMT_PAGE];
    for (size_t k = 0; k < nrecs; k++) {
        struct rec *rc = &recs[k];
        struct target *t = &tg[rc->slot];
        if (t->failed || t->fd < 0)
            continue;
        int e = read_all(fd, page, WC_FMT_PAGE,
                         h.off_data + (uint64_t)rc->block * WC_FMT_PAGE);
        uint64_t base = rc->index * WC_FMT_PAGE;
        for (unsigned i = 0; i < rc->nr && e == 0; i++) {
            uint64_t lo = base + rc->lo[i], hi = base + rc->hi[i];
            if (t->run && !t->aside && hi > t->run_from)
                hi = t->run_from;       /* the run goes last (8) */
            if (lo < hi)
                e = write_all(t->fd, page + (lo - base), hi - lo, lo);
        }
        if (e < 0) {
            say(log_fd, "wcache: %s: write failed: %s", t->aside ?
                t->aside_path : slots[rc->slot].path, strerror(-e));
            t->failed = 1;
        }
    }
    /* Runs of appended bytes, at the end of their files (invariant 8). */
    for (uint32_t i = 0; i < h.nfiles; i++) {
        struct target *t = &tg[i];
        if (!t->used || !t->run || t->aside || t->failed || t->fd < 0)
            continue;
        int e = append_run(fd, &h, i, t, &slots[i], pieces);
        if (e < 0) {
            say(log_fd, "wcache: %s: append failed: %s", slots[i].path,
                strerror(-e));
            t->failed = 1;
        }
    }
    /* Sizes (invariant 3), then sync. */
    for (uint32_t i = 0; i < h.nfiles; i++) {
        struct target *t = &tg[i];
        if (!t->used)
            continue;
        if (!t->failed && t->fd >= 0) {
            struct stat ts;
            int sized = t->run && !t->aside;    /* where it landed (8) */
            if (wc_sys.fstat(t->fd, &ts) != 0 ||
                (!sized && (uint64_t)ts.st_size < slots[i].size &&
                 wc_sys.ftruncate(t->fd, (off_t)slots[i].size) != 0) ||
                sync_target(t->fd) != 0) {
                say(log_fd, "wcache: %s: %s", slots[i].path,
                    strerror(errno));
                t->failed = 1;
            }
        }
        if (t->fd >= 0) {
            wc_sys.close(t->fd);
            /* An incomplete recovery file goes: the data stays in the
             * backing file for the next replay (invariant 7), which
             * would otherwise find the name taken by an empty file. */
            if (t->failed && t->aside)
                wc_sys.unlink(t->aside_path);
        }
        t->fd = -1;
        if (t->failed) {
            out->failed++;
        } else if (t->dropped) {
            if (!(flags & WC_RP_QUIET))
                say(log_fd, "wcache: %s: unlinked before process %lld "
                    "ended: its %llu bytes went with it",
                    slots[i].path, (long long)h.pid,
                    (unsigned long long)t->bytes);
        } else if (t->aside) {
            out->aside++;
            say(log_fd, "wcache: %s: %s: %llu bytes of process %lld saved "
                "to %s", slots[i].path, t->why,
                (unsigned long long)t->bytes, (long long)h.pid,
                t->aside_path);
        } else if (!(flags & WC_RP_QUIET) || t->bytes) {
            say(log_fd, "wcache: %s: %llu bytes of process %lld written "
                "back", slots[i].path, (unsigned long long)t->bytes,
                (long long)h.pid);
        }
    }
    if (out->failed)
        goto done;
clean:
    if (!(flags & (WC_RP_LIST | WC_RP_DRY))) {
        /* Still the file we locked? Then it goes (invariant 6). */
        struct stat now;
        if (wc_sys.lstat(path, &now) == 0 && now.st_ino == st.st_ino &&
            now.st_dev == st.st_dev && wc_sys.unlink(path) == 0)
            out->removed = 1;
    }
done:
    free(pieces);
    free(recs);
    free(slots);
    free(tg);
    wc_sys.close(fd);       /* releases the lock */
    return r;
}
