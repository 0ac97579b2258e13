/*
 * prog_fdstress.c - threads racing on shared descriptor numbers (issue 6,
 * point 6), run with and without the shim by test_shim_fds.c.
 *
 *   prog_fdstress DIR THREADS OPS
 *
 * DIR holds four shared files s0..s3 and one private file pT per thread.
 * Each thread does OPS random operations:
 *   - dup2 / dup3 / close / F_DUPFD on the shared numbers 100..107 (each
 *     refers to one of the shared files, or is closed, at any moment);
 *   - dup(shared number), pwrite through the copy, close the copy;
 *   - pwrite straight through a shared number;
 *   - open a shared file by name, pwrite, close;
 *   - write() of the thread's next record to its private file, through a
 *     descriptor no other thread touches.
 * A record for (thread t, sequence s) is 64 bytes naming t and s, and goes
 * to offset (t * OPS + s) * 64 of whichever shared file the descriptor
 * refers to at that moment: whatever the interleaving, every 64-byte slot
 * of a shared file is all zeros or the record that belongs there, and
 * every pwrite that returned 64 is in at least one shared file. The
 * private file holds the thread's write() records in order.
 *
 * Prints "pwrites T N" and then "ok T S" for each successful shared
 * pwrite (the ledger the test checks the files against), "private T N".
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REC 64
#define NSHARED 4
#define NUM0 100
#define NNUM 8

static const char *dir;
static int ops;
static int sfd[NSHARED];          /* the shared files, never closed */
static unsigned char *ledger;     /* [t * ops + s]: pwrite succeeded */

static void record(char *buf, int t, int s)
{
    int n = snprintf(buf, REC + 1, "T%02d S%07d ", t, s);
    for (int i = n; i < REC - 1; i++)
        buf[i] = (char)('a' + (t * 7 + s + i) % 26);
    buf[REC - 1] = '\n';
}

static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int private_writes[64];

static void *worker(void *arg)
{
    int t = (int)(long)arg;
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
    char path[4096], rec[REC + 1];
    snprintf(path, sizeof path, "%s/p%d", dir, t);
    int pfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (pfd < 0) {
        perror("open private");
        exit(1);
    }
    int np = 0;
    for (int s = 0; s < ops; s++) {
        uint64_t r = next_rand(&x);
        int num = NUM0 + (int)(r % NNUM);
        int file = (int)((r >> 8) % NSHARED);
        off_t off = (off_t)((size_t)t * (size_t)ops + (size_t)s) * REC;
        record(rec, t, s);
        ssize_t w = -2;
        switch ((r >> 16) % 10) {
        case 0:
            dup2(sfd[file], num);
            break;
        case 1:
            dup3(sfd[file], num, O_CLOEXEC);
            break;
        case 2:
            close(num);
            break;
        case 3: {
            int d = fcntl(sfd[file], F_DUPFD, num);
            if (d >= NUM0 + NNUM)
                close(d);           /* past the shared range: not ours */
            break;
        }
        case 4: {
            int d = dup(num);
            if (d >= 0) {
                w = pwrite(d, rec, REC, off);
                close(d);
            }
            break;
        }
        case 5:
        case 6:
            w = pwrite(num, rec, REC, off);
            break;
        case 7: {
            char sp[4096];
            snprintf(sp, sizeof sp, "%s/s%d", dir, file);
            int d = open(sp, O_RDWR);
            if (d >= 0) {
                w = pwrite(d, rec, REC, off);
                close(d);
            }
            break;
        }
        default:
            if (write(pfd, rec, REC) == REC)
                np++;
            else
                perror("write private");
            break;
        }
        if (w == REC)
            ledger[(size_t)t * (size_t)ops + (size_t)s] = 1;
    }
    private_writes[t] = np;
    if (close(pfd) != 0)
        perror("close private");
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR THREADS OPS\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    int threads = atoi(argv[2]);
    ops = atoi(argv[3]);
    if (threads < 1 || threads > 64 || ops < 1)
        return 2;
    ledger = calloc((size_t)threads * (size_t)ops, 1);
    for (int i = 0; i < NSHARED; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/s%d", dir, i);
        sfd[i] = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (sfd[i] < 0) {
            perror("open shared");
            return 1;
        }
    }
    for (int n = 0; n < NNUM; n++)
        dup2(sfd[n % NSHARED], NUM0 + n);
    pthread_t th[64];
    for (int t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, worker, (void *)(long)t);
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    int bad = 0;
    for (int n = 0; n < NNUM; n++)
        close(NUM0 + n);
    for (int i = 0; i < NSHARED; i++)
        if (close(sfd[i]) != 0)
            bad++;
    printf("close failures %d\n", bad);
    for (int t = 0; t < threads; t++) {
        int n = 0;
        for (int s = 0; s < ops; s++)
            n += ledger[(size_t)t * (size_t)ops + (size_t)s];
        printf("private %d %d\npwrites %d %d\n", t, private_writes[t], t, n);
        for (int s = 0; s < ops; s++)
            if (ledger[(size_t)t * (size_t)ops + (size_t)s])
                printf("ok %d %d\n", t, s);
    }
    return 0;
}
