/*
 * prog_threads.c - several threads writing at once, for test_shim_threads.c.
 *
 *   prog_threads MODE DIR THREADS RECORDS
 *
 * MODE:
 *   append    every thread write()s records to one O_APPEND descriptor
 *   shared    every thread write()s to one descriptor without O_APPEND
 *             (the kernel advances the shared offset atomically per call)
 *   pwrite    every thread pwrite()s its records to disjoint, interleaved
 *             slots of one file: slot (i * THREADS + t)
 *   separate  every thread writes its own file, alternating write, writev
 *             and an occasional pwrite rewriting an earlier record
 *   dup       like shared, but each thread uses its own dup() of the
 *             descriptor, and half of them writev
 *   late      like shared, but the main thread, as thread 0, writes half
 *             its records before it makes the others (the shim skips the
 *             description's lock while the program has one thread), then
 *             the rest while they write
 *   stdout    like shared, through descriptor 1 (the file dup2'd there:
 *             the shim guards it); thread 0 writes every 25th record with
 *             fputs and fflush (the first fence makes it shared while the
 *             others write), then dup2s the file onto 1 again (which
 *             changes nothing: shared stays shared)
 *   cell      the file is opened on descriptor 1, as dash does for
 *             `prog > out`, and kept while a child execs this program in
 *             mode "inherited" and the parent waits (under the shim the
 *             offset goes to a cell: shared.c invariant (6)); prints the
 *             size and the child's errors
 *   inherited like stdout, through the descriptor 1 it was given, its
 *             fences settling the cell while the others write; reports
 *             on stderr and by its exit status
 *   uring     like shared, while the main thread sets up an io_uring
 *             once a quarter of the records are written (under the shim
 *             the process stops caching then: shim/aio.c invariant (2))
 *   exitwhile in a child, every thread appends records through an
 *             O_APPEND description of its own and notes where lseek says
 *             each ended; the main thread calls exit(0) once a quarter of
 *             them are written, while the others go on (the shim's exit
 *             work makes descriptions pass through one at a time). The
 *             parent then prints how many returned records are not where
 *             their lseek said ("misplaced N")
 *   exitopen  like exitwhile, but the second half of the threads start
 *             writing only once an atexit handler of the main thread's
 *             has run, each through a new O_APPEND description every 20
 *             records: their opens meet the shim's exit work
 *   ownappend every thread appends its records through an O_APPEND
 *             description of its own, all to one file (under the shim the
 *             threads share the engine's file, each owning its own
 *             description: wcache/blk.h)
 *   forkwhile the same appends, run to the end, while another thread
 *             forks every 2 ms (each child _exits at once: fork's prepare
 *             makes O_APPEND descriptions pass through one at a time)
 *   execwhile every thread pwrites its records to its own slots of one
 *             file and counts them in a mapped file; after 10 ms the main
 *             thread execs this program in mode "execcheck", which reads
 *             back every record counted and prints how many are missing
 *             ("lost N"), then removes both files
 *   publish   the main thread writes a file of RECORDS records and
 *             closes it, RECORDS/50 times, while THREADS threads open and
 *             close it read-only in a loop; after each close it asks the
 *             kernel for the size with a raw system call (what another
 *             process sees: the shim is not asked) and counts each round
 *             the bytes are not all there as an error (close-to-open)
 *   handover  RECORDS/1000 rounds (at least one), each on a new file
 *             DIR/out.<round> opened once and shared: every thread writes
 *             1000 records to it at the shared offset in bursts of 200 to
 *             359 (around the 256 writes in a row that claim; every
 *             third record of a burst with writev), sleeping a
 *             little between bursts, so that the description and the file
 *             pass from thread to thread (under the shim each burst may
 *             claim them and the next thread's write revoke them, the
 *             owner often inside: wcache/blk.h); new threads each round.
 *             After each round the file is read back and checked: every
 *             thread's records once, whole, in its order; "handover-bad N"
 *             counts the rounds that fail, and the files are removed
 *   closerace RECORDS rounds, each on a new file DIR/out: THREADS threads
 *             write() 1-byte records to one descriptor in a loop while the
 *             main thread closes it (close, close_range and closefrom by
 *             turns) after 30 records and a pause; each write that
 *             returned 1 must be in the file (a write after the close
 *             gets EBADF). Prints "closerace lost N in M rounds" and
 *             removes the file
 *   adoptrace RECORDS/ADOPT_RECS rounds (at least one), each on a new
 *             file DIR/out.<round>: every thread opens an O_APPEND
 *             description of its own, and all start together, each
 *             appending ADOPT_RECS records and noting where lseek says
 *             each ended (under the shim the file comes into the cache at
 *             one description's 9th write while the others still write
 *             their first ones to the kernel: fdtab.c attach_watchers).
 *             Every record must be where its lseek said; "adoptrace-bad
 *             N" counts the rounds where one is not; the files are removed
 *   adoptread the same rounds, each thread pwriting record s to its own
 *             slots through a description of its own (opened first, by
 *             the main thread) while 64 more of
 *             the file are open (WATCH under the shim), and after each
 *             pwrite returns, reading the record back through one of
 *             those (pread) and asking its end (lseek SEEK_END): the
 *             record must be there; "adoptread-bad N" counts the rounds
 *             where one was not
 *   adoptseek RECORDS/100 rounds (THREADS unused), each on a new file
 *             of 64 KiB of known words: one thread reads it through a
 *             description of its own, 16 bytes at a time, in order or
 *             after an lseek (odd rounds), checking each word, while
 *             another brings the file into the cache with 14 pwrites far
 *             past it through another description; "adoptseek-bad N"
 *             counts the rounds where a read returned the wrong bytes
 *   forkstorm writer threads append to their own files while the main
 *             thread forks RECORDS/100 children in a row; each child
 *             writes a file of its own and _exits. A child that hangs
 *             (a lock held by a writer thread at fork time) is killed by
 *             alarm() and counted as an error.
 *
 * A record is 64 bytes: "T<thread> S<seq> <filler>\n". Files go to DIR/out
 * (or DIR/out.<t> for separate). Prints "errors N" (short or failed calls).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define REC 64

static const char *mode, *dir;
static int nthreads, nrecs, shared_fd;
static int errors;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;

static void record(char *buf, int t, int s)
{
    int n = snprintf(buf, REC + 1, "T%02d S%07d ", t, s);
    for (int i = n; i < REC - 1; i++)
        buf[i] = (char)('a' + (t + s + i) % 26);
    buf[REC - 1] = '\n';
}

/* One record with write, or with writev as two segments split at
 * `split` (0: write). */
static ssize_t put_record(int fd, char *buf, size_t split)
{
    if (!split)
        return write(fd, buf, REC);
    struct iovec iov[2] = {{buf, split}, {buf + split, REC - split}};
    return writev(fd, iov, 2);
}

static void bad(void)
{
    pthread_mutex_lock(&err_lock);
    errors++;
    pthread_mutex_unlock(&err_lock);
}

static int first_rec;       /* late: where thread 0 goes on */
static int g_exiting;       /* exitopen: the atexit handler ran (atomic) */

static void note_exiting(void)
{
    __atomic_store_n(&g_exiting, 1, __ATOMIC_RELEASE);
}
/* exitwhile: where each record ended (lseek), records done per thread;
 * shared with the parent. */
static long *g_ends;
static int *g_done;
static int progress;        /* uring: records written so far (atomic) */

/* exitopen: thread t opens only once the exit began, and again and
 * again. */
static int late_opener(int t)
{
    return t >= nthreads / 2 && strcmp(mode, "exitopen") == 0;
}

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    char buf[REC + 1], buf2[REC + 1];
    int fd = shared_fd;
    if (strcmp(mode, "separate") == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/out.%d", dir, t);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    } else if (strcmp(mode, "dup") == 0) {
        fd = dup(shared_fd);
    } else if (strcmp(mode, "exitwhile") == 0 ||
               strcmp(mode, "exitopen") == 0 ||
               strcmp(mode, "forkwhile") == 0 ||
               strcmp(mode, "ownappend") == 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/out", dir);
        if (late_opener(t))
            while (!__atomic_load_n(&g_exiting, __ATOMIC_ACQUIRE))
                sched_yield();
        fd = open(path, O_WRONLY | O_APPEND);
    } else if (strcmp(mode, "stdout") == 0 ||
               strcmp(mode, "inherited") == 0) {
        fd = 1;
    }
    for (int s = t == 0 ? first_rec : 0; s < nrecs; s++) {
        if (s && s % 20 == 0 && late_opener(t)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/out", dir);
            if (close(fd) != 0 || (fd = open(path, O_WRONLY | O_APPEND)) < 0)
                bad();
        }
        record(buf, t, s);
        ssize_t r;
        if (strcmp(mode, "pwrite") == 0) {
            r = pwrite(fd, buf, REC, ((off_t)s * nthreads + t) * REC);
        } else if (fd == 1 && t == 0 && s % 25 == 24) {
            buf[REC] = 0;
            r = fputs(buf, stdout) >= 0 && fflush(stdout) == 0 ? REC : -1;
            if (dup2(shared_fd, 1) != 1)
                bad();
        } else {
            /* some records as two segments */
            r = put_record(fd, buf, (strcmp(mode, "separate") == 0 ||
                                     (strcmp(mode, "dup") == 0 && t % 2)) &&
                                            s % 2
                                        ? 10
                                        : 0);
        }
        if (r != REC)
            bad();
        if (g_ends) {
            g_ends[(long)t * nrecs + s] = lseek(fd, 0, SEEK_CUR);
            __atomic_store_n(&g_done[t], s + 1, __ATOMIC_RELEASE);
        }
        __atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
        if (strcmp(mode, "separate") == 0 && s % 97 == 96) {
            /* rewrite an earlier record with the same bytes, and read it */
            int old = s - 50;
            record(buf, t, old);
            if (pwrite(fd, buf, REC, (off_t)old * REC) != REC)
                bad();
            if (pread(fd, buf2, REC, (off_t)old * REC) != REC ||
                memcmp(buf, buf2, REC) != 0)
                bad();
        }
    }
    if (fd != shared_fd && fd != 1)
        close(fd);
    return NULL;
}

/* nthreads threads running fn(t), t = 0..nthreads-1; returns when all
 * have ended. */
static void run_all(void *(*fn)(void *))
{
    pthread_t th[64];
    for (int t = 0; t < nthreads; t++)
        pthread_create(&th[t], NULL, fn, (void *)(long)t);
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
}

/* handover (the header): one round's writer. */
#define HANDOVER_RECS 1000
static void *handover_writer(void *arg)
{
    int t = (int)(long)arg;
    char buf[REC + 1];
    for (int s = 0; s < HANDOVER_RECS;) {
        int burst = 200 + (t * 37 + s * 13) % 160;
        for (int k = 0; k < burst && s < HANDOVER_RECS; k++, s++) {
            record(buf, t, s);
            if (put_record(shared_fd, buf, k % 3 == 2 ? 20 : 0) != REC)
                bad();
        }
        usleep(20 + (unsigned)(t * 37 + s) % 150);
    }
    return NULL;
}

/* Every thread's records once, whole and in order: 0 or -1. */
static int handover_check(const char *path)
{
    int fd = open(path, O_RDONLY);
    size_t len = (size_t)nthreads * HANDOVER_RECS * REC;
    char *data = malloc(len + 1);
    int next[64] = {0}, ok = fd >= 0 && data;
    if (ok)
        ok = read(fd, data, len + 1) == (ssize_t)len;
    for (size_t off = 0; ok && off < len; off += REC) {
        int t, s;
        char want[REC + 1], rec[REC + 1];
        memcpy(rec, data + off, REC);
        rec[REC] = 0;
        ok = sscanf(rec, "T%d S%d", &t, &s) == 2 && t >= 0 && t < nthreads &&
             s == next[t];
        if (ok) {
            record(want, t, s);
            ok = memcmp(want, rec, REC) == 0;
            next[t]++;
        }
    }
    if (fd >= 0)
        close(fd);
    free(data);
    return ok ? 0 : -1;
}

static int handover(void)
{
    int rounds = nrecs / HANDOVER_RECS, failed = 0;
    if (rounds < 1)
        rounds = 1;
    for (int r = 0; r < rounds; r++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/out.%d", dir, r);
        shared_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (shared_fd < 0) {
            perror(path);
            return 1;
        }
        run_all(handover_writer);
        if (close(shared_fd) != 0)
            bad();
        if (handover_check(path) < 0)
            failed++;
        unlink(path);
    }
    printf("handover-bad %d\nerrors %d\n", failed, errors);
    return failed || errors ? 1 : 0;
}

/* Mode "adoptrace" (the header). */
#define ADOPT_RECS 24
static pthread_barrier_t adopt_start;
static long adopt_ends[64][ADOPT_RECS];
static const char *adopt_path;

static void *adopt_writer(void *arg)
{
    int t = (int)(long)arg;
    char buf[REC + 1];
    int fd = open(adopt_path, O_WRONLY | O_APPEND);
    if (fd < 0)
        bad();
    pthread_barrier_wait(&adopt_start);
    for (int s = 0; s < ADOPT_RECS && fd >= 0; s++) {
        record(buf, t, s);
        if (write(fd, buf, REC) != REC)
            bad();
        adopt_ends[t][s] = lseek(fd, 0, SEEK_CUR);
    }
    if (fd >= 0 && close(fd) != 0)
        bad();
    return NULL;
}

/* The adoption modes' rounds: RECORDS/per of them (at least one), each
 * on a new empty file DIR/out.<r> (adopt_path), on which round(path, r)
 * works and returns 1 when a record was wrong; the file is removed.
 * Prints "<mode>-bad N" (rounds with a wrong record). */
static int adopt_rounds(int per, int (*round)(const char *path, int r))
{
    int rounds = nrecs / per, failed = 0;
    if (rounds < 1)
        rounds = 1;
    pthread_barrier_init(&adopt_start, NULL, (unsigned)nthreads);
    for (int r = 0; r < rounds; r++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/out.%d", dir, r);
        adopt_path = path;
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || close(fd) != 0) {
            perror(path);
            return 1;
        }
        failed += round(path, r);
        unlink(path);
    }
    pthread_barrier_destroy(&adopt_start);
    printf("%s-bad %d\nerrors %d\n", mode, failed, errors);
    return failed || errors ? 1 : 0;
}

#define ADOPT_EXTRA 64
static int adopt_xfd[ADOPT_EXTRA];
static int adopt_bad;       /* this round's misses (atomic) */

static int adopt_wfd[64];

static void *adopt_reader(void *arg)
{
    int t = (int)(long)arg;
    char buf[REC + 1], got[REC];
    int fd = adopt_wfd[t];
    pthread_barrier_wait(&adopt_start);
    for (int s = 0; s < ADOPT_RECS && fd >= 0; s++) {
        off_t at = ((off_t)s * nthreads + t) * REC;
        record(buf, t, s);
        if (pwrite(fd, buf, REC, at) != REC)
            bad();
        int o = adopt_xfd[(t * 13 + s) % ADOPT_EXTRA];
        if (pread(o, got, REC, at) != REC || memcmp(got, buf, REC) != 0 ||
            lseek(o, 0, SEEK_END) < at + REC)
            __atomic_add_fetch(&adopt_bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int adopt_read(const char *path, int r)
{
    (void)r;
    /* The writers' descriptions first: numbered below the others, they
     * are attached first. */
    for (int t = 0; t < nthreads; t++)
        if ((adopt_wfd[t] = open(path, O_RDWR)) < 0)
            bad();
    for (int x = 0; x < ADOPT_EXTRA; x++)
        if ((adopt_xfd[x] = open(path, x % 2 ? O_RDONLY : O_RDWR)) < 0)
            bad();
    adopt_bad = 0;
    run_all(adopt_reader);
    for (int t = 0; t < nthreads; t++)
        if (adopt_wfd[t] >= 0 && close(adopt_wfd[t]) != 0)
            bad();
    for (int x = 0; x < ADOPT_EXTRA; x++)
        if (adopt_xfd[x] >= 0)
            close(adopt_xfd[x]);
    return adopt_bad != 0;
}

/* Mode "adoptseek" (the header). */
#define SEEK_SZ (64 * 1024)
static int seek_rfd, seek_wfd, seek_odd, seek_done, seek_bad;

static uint32_t seek_word(off_t o)
{
    return (uint32_t)(o / 4) * 2654435761u;
}

static void *seek_reader(void *arg)
{
    (void)arg;
    uint32_t w[4];
    off_t at = 0;
    unsigned seed = 1;
    for (int it = 0; !__atomic_load_n(&seek_done, __ATOMIC_ACQUIRE) ||
                     it < 50; it++) {
        if (seek_odd) {
            at = (off_t)(rand_r(&seed) % (SEEK_SZ / 16)) * 16;
            if (lseek(seek_rfd, at, SEEK_SET) != at)
                seek_bad = 1;
        } else if (at + 16 > SEEK_SZ) {
            at = 0;
            if (lseek(seek_rfd, 0, SEEK_SET) != 0)
                seek_bad = 1;
        }
        if (read(seek_rfd, w, 16) != 16)
            seek_bad = 1;
        for (int i = 0; i < 4; i++)
            if (w[i] != seek_word(at + 4 * i))
                seek_bad = 1;
        at += 16;
        if (seek_bad)
            break;
    }
    return NULL;
}

static void *seek_writer(void *arg)
{
    (void)arg;
    char b[REC];
    memset(b, 'a', sizeof b);
    for (int i = 0; i < 14; i++)
        if (pwrite(seek_wfd, b, REC, (off_t)SEEK_SZ * 4 + i * REC) != REC)
            bad();
    return NULL;
}

static int adopt_seek(const char *path, int r)
{
    static uint32_t init[SEEK_SZ / 4];
    static int made;
    for (int i = 0; !made && i < SEEK_SZ / 4; i++)
        init[i] = seek_word((off_t)i * 4);
    made = 1;
    int fd = open(path, O_WRONLY);
    if (fd < 0 || pwrite(fd, init, SEEK_SZ, 0) != SEEK_SZ || close(fd) != 0)
        bad();
    seek_rfd = open(path, O_RDONLY);
    seek_wfd = open(path, O_WRONLY);
    seek_odd = r % 2;
    seek_done = seek_bad = 0;
    pthread_t a, b;
    pthread_create(&b, NULL, seek_reader, NULL);
    for (volatile int k = 0; k < (r % 50) * 2000; k++)
        ;
    pthread_create(&a, NULL, seek_writer, NULL);
    pthread_join(a, NULL);
    __atomic_store_n(&seek_done, 1, __ATOMIC_RELEASE);
    pthread_join(b, NULL);
    close(seek_rfd);
    close(seek_wfd);
    return seek_bad;
}

static int adopt_race(const char *path, int r)
{
    (void)r;
    run_all(adopt_writer);
    int fd = open(path, O_RDONLY), misplaced = fd < 0;
    char want[REC + 1], got[REC];
    for (int t = 0; t < nthreads && fd >= 0; t++)
        for (int s = 0; s < ADOPT_RECS; s++) {
            record(want, t, s);
            if (pread(fd, got, REC, adopt_ends[t][s] - REC) != REC ||
                memcmp(got, want, REC) != 0)
                misplaced++;
        }
    if (fd >= 0)
        close(fd);
    return misplaced != 0;
}

static volatile int writers_done;

static void *fork_writer(void *arg)
{
    int t = (int)(long)arg;
    char path[4096], buf[REC + 1];
    snprintf(path, sizeof path, "%s/w.%d", dir, t);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    for (int s = 0; s < nrecs; s++) {
        record(buf, t, s);
        if (write(fd, buf, REC) != REC)
            bad();
    }
    close(fd);
    return NULL;
}

static int fork_storm(void)
{
    pthread_t th[64];
    for (int t = 0; t < nthreads; t++)
        pthread_create(&th[t], NULL, fork_writer, (void *)(long)t);
    int kids = nrecs / 100, hung = 0;
    for (int k = 0; k < kids; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);
            char path[4096], buf[REC + 1];
            snprintf(path, sizeof path, "%s/child.%d", dir, k);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            for (int s = 0; s < 10; s++) {
                record(buf, 99, k * 10 + s);
                if (write(fd, buf, REC) != REC)
                    _exit(3);
            }
            close(fd);
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            hung++;
            bad();
        }
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    printf("children %d failed %d\n", kids, hung);
    printf("errors %d\n", errors);
    return errors ? 1 : 0;
}

/* Mode "cell": `prog > out` as dash runs it. */
static int cell(char **argv, const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int saved = dup(1);
    if (fd < 0 || saved < 0 || dup2(fd, 1) != 1 || close(fd) != 0) {
        perror(path);
        return 1;
    }
    pid_t p = fork();
    if (p == 0) {
        dup2(saved, 2);             /* the child's report */
        execl("/proc/self/exe", argv[0], "inherited", dir, argv[3], argv[4],
              (char *)NULL);
        _exit(127);
    }
    int st = -1;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
        bad();
    if (dup2(saved, 1) != 1 || close(saved) != 0)
        bad();
    struct stat sb;
    printf("size %lld\n", stat(path, &sb) == 0 ? (long long)sb.st_size : -1);
    printf("errors %d\n", errors);
    return errors ? 1 : 0;
}

/* Mode "inherited": every thread writes to descriptor 1, thread 0 now
 * and then with fputs and fflush. */
static int inherited(void)
{
    shared_fd = 1;
    run_all(worker);
    if (fflush(stdout) != 0)
        bad();
    dprintf(2, "errors %d\n", errors);
    return errors ? 1 : 0;
}

/* Modes "exitwhile", "exitopen" and "forkwhile": the appenders run in a
 * child, the
 * parent checks each record at the end lseek gave. */
static int appenders(const char *path)
{
    g_ends = mmap(NULL, sizeof *g_ends * (size_t)nthreads * (size_t)nrecs,
                  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    g_done = mmap(NULL, sizeof *g_done * 64, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_ends == MAP_FAILED || g_done == MAP_FAILED)
        return 2;
    pid_t p = fork();
    if (p == 0) {
        pthread_t th[64];
        for (int t = 0; t < nthreads; t++)
            pthread_create(&th[t], NULL, worker, (void *)(long)t);
        if (strcmp(mode, "forkwhile") == 0) {
            while (__atomic_load_n(&progress, __ATOMIC_RELAXED) <
                   nthreads * nrecs) {
                pid_t k = fork();
                if (k == 0)
                    _exit(0);
                if (k < 0 || waitpid(k, NULL, 0) != k)
                    bad();
                usleep(2000);
            }
            for (int t = 0; t < nthreads; t++)
                pthread_join(th[t], NULL);
            exit(errors ? 1 : 0);
        }
        while (__atomic_load_n(&progress, __ATOMIC_RELAXED) <
               nthreads * nrecs / 4)
            usleep(200);
        if (strcmp(mode, "exitopen") == 0)
            atexit(note_exiting);
        exit(0);
    }
    int st;
    if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0)
        bad();
    int fd = open(path, O_RDONLY), misplaced = 0;
    char want[REC + 1], got[REC];
    for (int t = 0; t < nthreads; t++) {
        for (int s = 0; s < __atomic_load_n(&g_done[t], __ATOMIC_ACQUIRE);
             s++) {
            record(want, t, s);
            long end = g_ends[(long)t * nrecs + s];
            if (pread(fd, got, REC, end - REC) != REC ||
                memcmp(got, want, REC) != 0)
                misplaced++;
        }
    }
    close(fd);
    printf("misplaced %d\nerrors %d\n", misplaced, errors);
    return errors || misplaced ? 1 : 0;
}

/* Modes "execwhile" and "execcheck". */
static long *g_counts;

static void *exec_writer(void *arg)
{
    int t = (int)(long)arg;
    char buf[REC + 1];
    for (int s = 0; s < nrecs; s++) {
        record(buf, t, s);
        if (pwrite(shared_fd, buf, REC, ((off_t)t * nrecs + s) * REC) != REC)
            bad();
        __atomic_store_n(&g_counts[t], s + 1, __ATOMIC_RELEASE);
    }
    for (;;)
        pause();
    return NULL;
}

static int exec_while(char **argv, const char *path)
{
    char cpath[4200];
    snprintf(cpath, sizeof cpath, "%s/count", dir);
    int c = open(cpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (c < 0 || ftruncate(c, 4096) != 0)
        return 2;
    g_counts = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, c, 0);
    shared_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (g_counts == MAP_FAILED || shared_fd < 0)
        return 2;
    pthread_t th[64];
    for (int t = 0; t < nthreads; t++)
        pthread_create(&th[t], NULL, exec_writer, (void *)(long)t);
    usleep(10000);
    execl("/proc/self/exe", argv[0], "execcheck", dir, argv[3], argv[4],
          (char *)NULL);
    return 2;
}

static int exec_check(const char *path)
{
    char cpath[4200], want[REC + 1], got[REC];
    long counts[64];
    snprintf(cpath, sizeof cpath, "%s/count", dir);
    int c = open(cpath, O_RDONLY), fd = open(path, O_RDONLY);
    if (c < 0 || fd < 0 ||
        pread(c, counts, sizeof counts, 0) != (ssize_t)sizeof counts)
        return 2;
    long lost = 0;
    for (int t = 0; t < nthreads; t++)
        for (long s = 0; s < counts[t]; s++) {
            record(want, t, (int)s);
            if (pread(fd, got, REC, ((off_t)t * nrecs + s) * REC) != REC ||
                memcmp(got, want, REC) != 0)
                lost++;
        }
    close(c);
    close(fd);
    unlink(cpath);
    unlink(path);
    printf("lost %ld\n", lost);
    return lost ? 1 : 0;
}

/* Mode "publish". */
static int publish_stop;

static void *publish_reader(void *arg)
{
    const char *path = arg;
    while (!__atomic_load_n(&publish_stop, __ATOMIC_ACQUIRE)) {
        int fd = open(path, O_RDONLY);
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

/* stat's size from the kernel itself: a raw system call, not the shim's
 * (its stat would be a consistency point of its own). */
static long raw_size(const char *path)
{
    struct stat st;
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"((long)SYS_stat), "D"(path), "S"(&st)
                     : "rcx", "r11", "memory");
    return r < 0 ? r : (long)st.st_size;
}

static int publish(const char *path)
{
    pthread_t th[64];
    for (int t = 0; t < nthreads; t++)
        pthread_create(&th[t], NULL, publish_reader, (void *)path);
    char buf[REC + 1];
    for (int round = 0; round < nrecs / 50; round++) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        for (int s = 0; s < 50; s++) {
            record(buf, 0, round * 50 + s);
            if (write(fd, buf, REC) != REC)
                bad();
        }
        if (close(fd) != 0 || raw_size(path) != 50 * REC)
            bad();
    }
    __atomic_store_n(&publish_stop, 1, __ATOMIC_RELEASE);
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    printf("errors %d\n", errors);
    return errors ? 1 : 0;
}

/* Mode "closerace". */
static int cr_fd;
static int cr_stop;
static long cr_ok;          /* writes that returned 1 (atomic) */

static void *closerace_writer(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&cr_stop, __ATOMIC_ACQUIRE))
        if (write(cr_fd, "a", 1) == 1)
            __atomic_add_fetch(&cr_ok, 1, __ATOMIC_RELAXED);
    return NULL;
}

static int closerace(const char *path)
{
    long lost = 0;
    int rounds = 0;
    for (int round = 0; round < nrecs; round++) {
        cr_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (cr_fd < 0) {
            perror(path);
            return 1;
        }
        cr_ok = 0;
        cr_stop = 0;
        for (int i = 0; i < 30; i++)
            if (write(cr_fd, "a", 1) == 1)
                cr_ok++;
        pthread_t th[64];
        for (int t = 0; t < nthreads; t++)
            pthread_create(&th[t], NULL, closerace_writer, NULL);
        usleep(200 + (unsigned)(round % 7) * 100);
        int r = round % 3 == 0   ? close(cr_fd)
                : round % 3 == 1 ? close_range((unsigned)cr_fd,
                                               (unsigned)cr_fd, 0)
                                 : (closefrom(cr_fd), 0);
        if (r != 0)
            bad();
        usleep(300);
        __atomic_store_n(&cr_stop, 1, __ATOMIC_RELEASE);
        for (int t = 0; t < nthreads; t++)
            pthread_join(th[t], NULL);
        struct stat st;
        if (stat(path, &st) != 0)
            return 1;
        if (st.st_size != cr_ok) {
            lost += cr_ok - st.st_size;
            rounds++;
        }
    }
    unlink(path);
    printf("closerace lost %ld in %d rounds\nerrors %d\n", lost, rounds,
           errors);
    return errors || lost ? 1 : 0;
}

/* Mode "uring": an io_uring made while the others write (the ring is
 * only made, never used: making it is what the shim answers). */
static void uring_midway(void)
{
    while (__atomic_load_n(&progress, __ATOMIC_RELAXED) < nthreads * nrecs / 4)
        usleep(200);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long fd = syscall(SYS_io_uring_setup, 4, &p);
    printf("ring %s\n", fd >= 0 ? "made" : "refused");
    if (fd >= 0)
        close((int)fd);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODE DIR THREADS RECORDS\n", argv[0]);
        return 2;
    }
    mode = argv[1];
    dir = argv[2];
    nthreads = atoi(argv[3]);
    nrecs = atoi(argv[4]);
    if (nthreads > 64)
        nthreads = 64;
    if (strcmp(mode, "forkstorm") == 0)
        return fork_storm();
    if (strcmp(mode, "handover") == 0)
        return handover();
    if (strcmp(mode, "adoptrace") == 0)
        return adopt_rounds(ADOPT_RECS, adopt_race);
    if (strcmp(mode, "adoptread") == 0)
        return adopt_rounds(ADOPT_RECS, adopt_read);
    if (strcmp(mode, "adoptseek") == 0)
        return adopt_rounds(100, adopt_seek);
    char path[4096];
    snprintf(path, sizeof path, "%s/out", dir);
    if (strcmp(mode, "cell") == 0)
        return cell(argv, path);
    if (strcmp(mode, "inherited") == 0)
        return inherited();
    if (strcmp(mode, "publish") == 0)
        return publish(path);
    if (strcmp(mode, "closerace") == 0)
        return closerace(path);
    if (strcmp(mode, "execwhile") == 0)
        return exec_while(argv, path);
    if (strcmp(mode, "execcheck") == 0)
        return exec_check(path);
    int flags = O_RDWR | O_CREAT | O_TRUNC;
    if (strcmp(mode, "append") == 0)
        flags |= O_APPEND;
    if (strcmp(mode, "separate") != 0) {
        shared_fd = open(path, flags, 0644);
        if (shared_fd < 0) {
            perror(path);
            return 1;
        }
    }
    int saved_out = -1;
    if (strcmp(mode, "stdout") == 0 &&
        ((saved_out = dup(1)) < 0 || dup2(shared_fd, 1) != 1)) {
        perror("dup2");
        return 1;
    }
    pthread_t th[64];
    if (nthreads > 64)
        nthreads = 64;
    if (strcmp(mode, "exitwhile") == 0 || strcmp(mode, "exitopen") == 0 ||
        strcmp(mode, "forkwhile") == 0)
        return appenders(path);
    if (strcmp(mode, "late") == 0) {
        char buf[REC + 1];
        for (; first_rec < nrecs / 2; first_rec++) {
            record(buf, 0, first_rec);
            if (write(shared_fd, buf, REC) != REC)
                bad();
        }
        for (int t = 1; t < nthreads; t++)
            pthread_create(&th[t], NULL, worker, (void *)(long)t);
        worker((void *)0L);
        for (int t = 1; t < nthreads; t++)
            pthread_join(th[t], NULL);
    } else {
        for (int t = 0; t < nthreads; t++)
            pthread_create(&th[t], NULL, worker, (void *)(long)t);
        if (strcmp(mode, "uring") == 0)
            uring_midway();
        for (int t = 0; t < nthreads; t++)
            pthread_join(th[t], NULL);
    }
    if (saved_out >= 0 && (fflush(stdout) != 0 || dup2(saved_out, 1) != 1 ||
                           close(saved_out) != 0))
        bad();
    if (strcmp(mode, "separate") != 0) {
        off_t end = lseek(shared_fd, 0, SEEK_END);
        printf("size %lld\n", (long long)end);
        close(shared_fd);
    }
    printf("errors %d\n", errors);
    return errors ? 1 : 0;
}
