/*
 * workload.c - the synthetic rows of `make bench`, each written twice: with
 * system calls (run as is, and under the shim) and rewritten with stdio
 * (what the program's author could do instead).
 *
 *   workload KIND MODE DIR [SIZE] [COUNT]
 *
 * MODE is "sys" or "stdio". Files are created in DIR and left there (the
 * bench removes DIR). KINDs:
 *   append SIZE COUNT   COUNT writes of SIZE bytes to a new file
 *   pwrite SIZE COUNT   COUNT writes of SIZE bytes at random SIZE-aligned
 *                       offsets of a 64 MiB file (fixed seed)
 *   sorted SIZE COUNT   the pwrite kind's writes sorted by offset, each
 *                       run of adjacent (or repeated) ones merged into one
 *                       pwrite: the fewest calls a write-back of them can
 *                       make without reading the file (a floor; sys only)
 *   held SIZE COUNT     the least a write-back cache in the process does
 *                       for the pwrite kind's writes (a ceiling; sys only;
 *                       SIZE divides 4 KiB): each copied, in program
 *                       order, into a pool of pages, one per page written,
 *                       faulted in with one call on anonymous memory (the
 *                       shim's is a shared file, dearer to fault), then
 *                       the runs of adjacent bytes written from the pool
 *                       in ascending order, one pwritev each, as sorted
 *   writev 0 COUNT      COUNT writevs of 8 segments (8-24 bytes each)
 *   raw 0 COUNT         COUNT times: write 64 bytes, read them back
 *   compute SIZE COUNT  COUNT writes of SIZE bytes to a new file, each
 *                       after 4 rounds of a hash per byte (a program that
 *                       computes its output: write-back can overlap it)
 *   threads 0 COUNT     two threads, each appending 64 bytes COUNT times
 *                       to a file of its own
 *   procs 0 COUNT       the same in two processes (fork, nothing shared):
 *                       what two cores give two writers on this machine,
 *                       the ceiling of the threads row
 *   one                 write one 6-byte file (start-up cost)
 *   small               write one 800-byte file in 20 writes of 40 bytes
 *                       (start-up cost of a process that caches a file)
 *   files SIZE COUNT    500 new files, each COUNT writes of SIZE bytes
 *                       (what caching a file costs, once per file)
 *   churn 0 COUNT       a log of 5,000 lines of 64 bytes (cached under
 *                       the shim), then COUNT short threads, two at a
 *                       time, each appending one line to it (a thread per
 *                       task; sys only)
 *   forks 0 COUNT       the same log, then COUNT children, one at a time,
 *                       each appending one line through the shared
 *                       descriptor and exiting (a process per task; sys
 *                       only)
 *   reads SIZE COUNT    COUNT reads of SIZE bytes from /dev/zero and
 *                       nothing else: what `dd bs=SIZE` does besides its
 *                       writes (a floor for the dd row; DIR unused)
 * Exits 1 on any short or failed call.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAN (64L << 20)

static int use_stdio;
static const char *dir;
static long size, count;
static char *buf;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static char *path(const char *name)
{
    static __thread char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* A new file, never a truncated old one: ext4 writes a file truncated at
 * open out to disk when it is closed (auto_da_alloc), which would make
 * every row wait on the disk. */
static const char *fresh(const char *name)
{
    const char *p = path(name);
    unlink(p);
    return p;
}

static void append(const char *name, long sz, long n)
{
    if (use_stdio) {
        FILE *f = fopen(fresh(name), "w");
        if (!f)
            die("fopen");
        for (long i = 0; i < n; i++)
            if (fwrite(buf, 1, (size_t)sz, f) != (size_t)sz)
                die("fwrite");
        if (fclose(f))
            die("fclose");
        return;
    }
    int fd = open(fresh(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open");
    for (long i = 0; i < n; i++)
        if (write(fd, buf, (size_t)sz) != sz)
            die("write");
    if (close(fd))
        die("close");
}

/* A program that computes between its writes: `work` rounds of a small
 * hash per byte written (the same in every run), then the write. */
static unsigned long crunch(long rounds)
{
    static volatile unsigned long sink;
    unsigned long h = sink;
    for (long r = 0; r < rounds; r++)
        h = (h ^ (unsigned long)r) * 0x100000001b3ul;
    sink = h;
    return h;
}

static void compute(const char *name, long sz, long n, long work)
{
    FILE *f = NULL;
    int fd = -1;
    if (use_stdio ? !(f = fopen(fresh(name), "w"))
                  : (fd = open(fresh(name), O_WRONLY | O_CREAT | O_TRUNC,
                               0644)) < 0)
        die("open");
    for (long i = 0; i < n; i++) {
        buf[0] = (char)('a' + crunch(work * sz) % 26);
        if (use_stdio ? fwrite(buf, 1, (size_t)sz, f) != (size_t)sz
                      : write(fd, buf, (size_t)sz) != sz)
            die("write");
    }
    if (use_stdio ? fclose(f) : close(fd))
        die("close");
}

/* The random kinds' next offset: SIZE-aligned in the 64 MiB span, from a
 * fixed seed (*x starts at 12345), the same sequence in each kind. */
static off_t next_off(unsigned long *x)
{
    *x = *x * 6364136223846793005ul + 1442695040888963407ul;
    return (off_t)((*x >> 33) % (unsigned long)(SPAN / size)) * size;
}

static int cmp_off(const void *a, const void *b)
{
    off_t x = *(const off_t *)a, y = *(const off_t *)b;
    return x < y ? -1 : x > y;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define PG 4096L

/* The held kind (see the top). Counted generously for the cache: the
 * pages written are known before the first write (one populate call for
 * all of them: a cache must fault them in as writes arrive), and the
 * pool is anonymous memory, which this VM faults in at 0.7 us a page
 * against 1.2 us for a shared file (MADV_POPULATE_WRITE of 32 MiB). */
static void held(void)
{
    long pages = SPAN / PG, per = PG / size, npool = 0;
    if (size <= 0 || PG % size || per > 64) {
        fprintf(stderr, "workload: held: SIZE must divide 4096 in at most "
                        "64 parts\n");
        exit(1);
    }
    long *slot = malloc((size_t)pages * sizeof *slot);
    unsigned long *dirty = calloc((size_t)pages, sizeof *dirty);
    off_t *offs = malloc((size_t)count * sizeof *offs);
    struct iovec *v = malloc(IOV_MAX * sizeof *v);
    if (!slot || !dirty || !offs || !v)
        die("malloc");
    unsigned long x = 12345;
    for (long i = 0; i < count; i++)
        offs[i] = next_off(&x);
    for (long pg = 0; pg < pages; pg++)
        slot[pg] = -1;
    for (long i = 0; i < count; i++)
        if (slot[offs[i] / PG] < 0)
            slot[offs[i] / PG] = npool++;
    int fd = open(fresh("random"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ftruncate(fd, SPAN))
        die("open");
    char *pool = mmap(NULL, (size_t)(npool * PG), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (pool == MAP_FAILED ||
        madvise(pool, (size_t)(npool * PG), MADV_POPULATE_WRITE))
        die("mmap");
    for (long i = 0; i < count; i++) {
        long pg = offs[i] / PG, part = (offs[i] % PG) / size;
        memcpy(pool + slot[pg] * PG + part * size, buf, (size_t)size);
        dirty[pg] |= 1ul << part;
    }
    /* Ascending: each run of adjacent written parts, one pwritev (split
     * at IOV_MAX pieces, a piece being a page's share of the run). */
    int nv = 0;
    off_t from = -1, to = -1;
    for (long pg = 0; pg <= pages; pg++) {
        for (long part = 0; part < per; part++) {
            off_t at = pg * PG + part * size;
            int on = pg < pages && (dirty[pg] >> part & 1);
            if (on && to == at && nv < IOV_MAX &&
                (char *)v[nv - 1].iov_base + v[nv - 1].iov_len ==
                    pool + slot[pg] * PG + part * size) {
                v[nv - 1].iov_len += (size_t)size;      /* same page */
                to += size;
                continue;
            }
            if (on && to == at && nv < IOV_MAX) {
                v[nv].iov_base = pool + slot[pg] * PG + part * size;
                v[nv++].iov_len = (size_t)size;
                to += size;
                continue;
            }
            if (nv && pwritev(fd, v, nv, from) != to - from)
                die("pwritev");
            nv = 0;
            if (on) {
                from = at;
                to = at + size;
                v[nv].iov_base = pool + slot[pg] * PG + part * size;
                v[nv++].iov_len = (size_t)size;
            }
            if (pg == pages)
                break;
        }
    }
    if (close(fd))
        die("close");
}

static void *thread_main(void *arg)
{
    append(arg, 64, count);
    return NULL;
}

static int g_log = -1;          /* churn and forks: the shared log */

static void log_line(void)
{
    if (write(g_log, buf, 64) != 64)
        die("write");
}

static void *task_main(void *arg)
{
    log_line();
    return arg;
}

static void open_log(void)
{
    if ((g_log = open(fresh("log"), O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
        die("open");
    for (int i = 0; i < 5000; i++)
        log_line();
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    const char *kind = argv[1];
    use_stdio = !strcmp(argv[2], "stdio");
    dir = argv[3];
    size = argc > 4 ? atol(argv[4]) : 0;
    count = argc > 5 ? atol(argv[5]) : 0;
    buf = malloc(size > 4096 ? (size_t)size : 4096);
    if (!buf)
        die("malloc");
    for (long i = 0; i < (size > 4096 ? size : 4096); i++)
        buf[i] = (char)('a' + i % 26);

    if (!strcmp(kind, "append")) {
        append("append", size, count);
    } else if (!strcmp(kind, "compute")) {
        compute("compute", size, count, 4);
    } else if (!strcmp(kind, "pwrite")) {
        unsigned long x = 12345;
        int fd = open(fresh("random"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        FILE *f = use_stdio ? fdopen(fd, "r+") : NULL;
        if (fd < 0 || ftruncate(fd, SPAN) || (use_stdio && !f))
            die("open");
        for (long i = 0; i < count; i++) {
            off_t off = next_off(&x);
            if (use_stdio) {
                if (fseeko(f, off, SEEK_SET) ||
                    fwrite(buf, 1, (size_t)size, f) != (size_t)size)
                    die("fwrite");
            } else if (pwrite(fd, buf, (size_t)size, off) != size) {
                die("pwrite");
            }
        }
        if (use_stdio ? fclose(f) : close(fd))
            die("close");
    } else if (!strcmp(kind, "sorted")) {
        unsigned long x = 12345;
        off_t *offs = malloc((size_t)count * sizeof *offs);
        int fd = open(fresh("random"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (!offs || fd < 0 || ftruncate(fd, SPAN))
            die("open");
        for (long i = 0; i < count; i++)
            offs[i] = next_off(&x);
        qsort(offs, (size_t)count, sizeof *offs, cmp_off);
        /* Runs in place: offs[k] = start, and a buffer as long as the
         * longest (a 64 MiB one would cost its page faults in the run). */
        long nruns = 0;
        off_t longest = 0, *ends = malloc((size_t)count * sizeof *ends);
        if (!ends)
            die("malloc");
        for (long i = 0; i < count; nruns++) {
            off_t from = offs[i], to = offs[i] + size;
            while (++i < count && offs[i] <= to)
                to = offs[i] + size;
            offs[nruns] = from;
            ends[nruns] = to;
            if (to - from > longest)
                longest = to - from;
        }
        char *run = malloc((size_t)longest);
        if (!run)
            die("malloc");
        memset(run, buf[0], (size_t)longest);
        for (long k = 0; k < nruns; k++)
            if (pwrite(fd, run, (size_t)(ends[k] - offs[k]), offs[k]) !=
                ends[k] - offs[k])
                die("pwrite");
        if (close(fd))
            die("close");
    } else if (!strcmp(kind, "held")) {
        held();
    } else if (!strcmp(kind, "writev")) {
        struct iovec v[8];
        size_t total = 0;
        for (int k = 0; k < 8; k++) {
            v[k].iov_base = buf + 64 * k;
            v[k].iov_len = 8 + (size_t)k * 2;
            total += v[k].iov_len;
        }
        FILE *f = NULL;
        int fd = -1;
        if (use_stdio ? !(f = fopen(fresh("writev"), "w"))
                      : (fd = open(fresh("writev"),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
            die("open");
        for (long i = 0; i < count; i++) {
            if (!use_stdio) {
                if (writev(fd, v, 8) != (ssize_t)total)
                    die("writev");
                continue;
            }
            for (int k = 0; k < 8; k++)
                if (fwrite(v[k].iov_base, 1, v[k].iov_len, f) != v[k].iov_len)
                    die("fwrite");
        }
        if (use_stdio ? fclose(f) : close(fd))
            die("close");
    } else if (!strcmp(kind, "raw")) {
        char got[64];
        int fd = open(fresh("raw"), O_RDWR | O_CREAT | O_TRUNC, 0644);
        FILE *f = use_stdio ? fdopen(fd, "w+") : NULL;
        if (fd < 0 || (use_stdio && !f))
            die("open");
        for (long i = 0; i < count; i++) {
            off_t off = (off_t)(i % 16384) * 64;
            buf[0] = (char)i;
            if (use_stdio) {
                if (fseeko(f, off, SEEK_SET) || fwrite(buf, 1, 64, f) != 64 ||
                    fseeko(f, off, SEEK_SET) || fread(got, 1, 64, f) != 64)
                    die("stdio");
            } else if (pwrite(fd, buf, 64, off) != 64 ||
                       pread(fd, got, 64, off) != 64) {
                die("pwrite/pread");
            }
            if (memcmp(got, buf, 64))
                die("read-after-write: different bytes");
        }
        if (use_stdio ? fclose(f) : close(fd))
            die("close");
    } else if (!strcmp(kind, "threads")) {
        pthread_t t[2];
        char *names[2] = {"t0", "t1"};
        for (int k = 0; k < 2; k++)
            if (pthread_create(&t[k], NULL, thread_main, names[k]))
                die("pthread_create");
        for (int k = 0; k < 2; k++)
            pthread_join(t[k], NULL);
    } else if (!strcmp(kind, "procs")) {
        pid_t p[2];
        char *names[2] = {"p0", "p1"};
        for (int k = 0; k < 2; k++) {
            p[k] = fork();
            if (p[k] < 0)
                die("fork");
            if (p[k] == 0) {
                append(names[k], 64, count);
                _exit(0);
            }
        }
        for (int k = 0; k < 2; k++) {
            int st;
            if (waitpid(p[k], &st, 0) != p[k] || !WIFEXITED(st) ||
                WEXITSTATUS(st) != 0)
                die("child");
        }
    } else if (!strcmp(kind, "one")) {
        append("one", 6, 1);
    } else if (!strcmp(kind, "small")) {
        append("small", 40, 20);
    } else if (!strcmp(kind, "files")) {
        for (int i = 0; i < 500; i++) {
            char name[32];
            snprintf(name, sizeof name, "files.%d", i);
            append(name, size, count);
        }
    } else if (!strcmp(kind, "churn")) {
        open_log();
        for (long i = 0; i < count; i += 2) {
            pthread_t t[2];
            for (int k = 0; k < 2; k++)
                if (pthread_create(&t[k], NULL, task_main, NULL))
                    die("pthread_create");
            for (int k = 0; k < 2; k++)
                pthread_join(t[k], NULL);
        }
        if (close(g_log))
            die("close");
    } else if (!strcmp(kind, "forks")) {
        open_log();
        for (long i = 0; i < count; i++) {
            pid_t c = fork();
            if (c < 0)
                die("fork");
            if (c == 0) {
                log_line();
                _exit(0);
            }
            int st;
            if (waitpid(c, &st, 0) != c || !WIFEXITED(st) ||
                WEXITSTATUS(st) != 0)
                die("child");
        }
        if (close(g_log))
            die("close");
    } else if (!strcmp(kind, "reads")) {
        int z = open("/dev/zero", O_RDONLY);
        if (z < 0)
            die("/dev/zero");
        for (long i = 0; i < count; i++)
            if (read(z, buf, (size_t)size) != size)
                die("read");
        close(z);
    } else {
        fprintf(stderr, "workload: unknown kind %s\n", kind);
        return 2;
    }
    return 0;
}
