/*
 * test_shim_kill.c - the kill loops (CONTRACT.md section 4: a process that
 * dies, by any means, loses no write() that returned).
 *
 * A writer (prog_killwriter) appends checksummed records of random sizes
 * to a (write, writev) and b (pwrite), under the shim, and reports each
 * acknowledged record over a pipe. The test kills it at a random moment
 * (or it dies of a fault, abort, SIGTERM, the OOM killer), waits for the
 * crash guard (or runs `wcache recover`), and checks that both files hold
 * every acknowledged record intact, followed by nothing but a prefix of
 * the records after them: no garbage, no zero runs. No backing file is
 * left behind.
 *
 * 50 SIGKILLs in `make test`, 1000 in `make check-long` (WCT_LONG=1).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/mount.h>
#include <sched.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib_records.h"
#include "lib_shim.h"

extern char **environ;

#define WCACHE_BIN WCT_BUILD_DIR "/wcache"
#define WCACHE_ASAN WCT_BUILD_DIR "/asan/wcache"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct run {
    const char *dir;        /* where a, b and wcache-<uid>/ live */
    uint64_t seed;
    const char *how;        /* prog_killwriter HOW */
    long n;                 /* its N */
    int sig;                /* signal the test sends, 0: none */
    long kill_after;        /* acknowledged records before it is sent */
    int no_guard;           /* WCACHE_GUARD=0 */
    const char *cgroup;     /* cgroup directory to move the writer to */
    int kill_guard;         /* kill the guard before the writer */
    const char *size;       /* WCACHE_SIZE, NULL: default */
    const char *flush_ms;   /* WCACHE_FLUSH_MS, NULL: default */
    const char *store;      /* WCACHE_DIR, NULL: dir */
    int background;         /* WCACHE_BACKGROUND_NS=0 */
    int own_ns;             /* in a mount namespace of its own */
    const char *prog;       /* the writer, NULL: prog_killwriter (same
                               arguments: prog_rename) */
    const char *preload;    /* LD_PRELOAD, NULL: WCT_SHIM_SO */
    /* results */
    long acked;             /* records acknowledged */
    int status;
    pid_t pid;
    /* while it runs */
    int in, out;            /* its stdin and stdout */
    char buf[4096];         /* a partial line of its output */
    size_t have;
    double start;
};

/* The guards watching the stores in dir: how many (in *count, if not
 * NULL), and the pid of one of them, or 0. */
static pid_t find_guards(const char *dir, int *count)
{
    char d[4300];
    wct_store_dir(dir, d, sizeof d);
    pid_t one = 0;
    int n = wct_guards(d, 0, &one, 1);
    if (count)
        *count = n;
    return n ? one : 0;
}

static pid_t find_guard(const char *dir)
{
    return find_guards(dir, NULL);
}

/* Writers started and not yet reaped. */
static pid_t live_writers[8];

/* Start the writer as r says (its pipes in r->in, r->out). */
static void start_writer(struct run *r)
{
    int in[2], out[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(out), 0);
    char seed[32], n[32], dirv[4300];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
    snprintf(n, sizeof n, "%ld", r->n);
    snprintf(dirv, sizeof dirv, "WCACHE_DIR=%s",
             r->store ? r->store : r->dir);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        setpgid(0, 0);
        for (char **e = environ; *e;) {
            if (!strncmp(*e, "LD_PRELOAD=", 11) || !strncmp(*e, "WCACHE_", 7))
                unsetenv(strndup(*e, (size_t)(strchr(*e, '=') - *e)));
            else
                e++;
        }
        setenv("LD_PRELOAD", r->preload ? r->preload : WCT_SHIM_SO, 1);
        setenv("WCACHE_MIN_WRITES", "0", 1);    /* every write cached */
        putenv(dirv);
        if (r->no_guard)
            setenv("WCACHE_GUARD", "0", 1);
        if (r->size)
            setenv("WCACHE_SIZE", r->size, 1);
        if (r->flush_ms)
            setenv("WCACHE_FLUSH_MS", r->flush_ms, 1);
        if (r->background)
            setenv("WCACHE_BACKGROUND_NS", "0", 1);
        if (r->own_ns && (unshare(CLONE_NEWNS) != 0 ||
                          mount(NULL, "/", NULL, MS_REC | MS_PRIVATE,
                                NULL) != 0))
            _exit(126);
        const char *prog = r->prog ? r->prog : WCT_PROG("prog_killwriter");
        execl(prog, prog, r->dir, seed, r->how, n, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    r->pid = pid;
    for (size_t i = 0; i < sizeof live_writers / sizeof *live_writers; i++)
        if (!live_writers[i]) {
            live_writers[i] = pid;
            break;
        }
    r->in = in[1];
    r->out = out[0];
    r->have = 0;
    r->acked = 0;
    r->start = now_ms();
    if (r->cgroup) {
        char p[4300], s[32];
        snprintf(p, sizeof p, "%s/cgroup.procs", r->cgroup);
        snprintf(s, sizeof s, "%d", (int)pid);
        cr_assert_eq(wct_spit(p, s, strlen(s)), 0, "cannot move the writer "
                     "into %s: %s", r->cgroup, strerror(errno));
    }
    cr_assert_eq(write(r->in, "g", 1), 1);
}

/* Read the writer's acknowledgements until `until` of them (or its end):
 * 0 at its end. */
static int read_acks(struct run *r, long until)
{
    while (r->acked < until) {
        ssize_t k = read(r->out, r->buf + r->have,
                         sizeof r->buf - 1 - r->have);
        if (k <= 0)
            return 0;
        r->have += (size_t)k;
        r->buf[r->have] = 0;
        char *line = r->buf, *nl;
        while ((nl = strchr(line, '\n'))) {
            r->acked = atol(line) + 1;
            line = nl + 1;
        }
        r->have = strlen(line);
        memmove(r->buf, line, r->have);
        cr_assert_lt(now_ms() - r->start, 60000.0, "writer ran too long");
    }
    return 1;
}

/* Kill the writer with sig (0: none, it dies by itself), read what it
 * acknowledged to the end, and reap it. */
static void end_writer(struct run *r, int sig)
{
    if (sig)
        kill(r->pid, sig);
    read_acks(r, LONG_MAX);
    close(r->out);
    close(r->in);
    cr_assert_eq(waitpid(r->pid, &r->status, 0), r->pid);
    for (size_t i = 0; i < sizeof live_writers / sizeof *live_writers; i++)
        if (live_writers[i] == r->pid)
            live_writers[i] = 0;
}

/* A test that failed with writers paused: kill them (they hold the
 * runner's stderr), then clean up. */
static void kill_writers_and_clean(void)
{
    for (size_t i = 0; i < sizeof live_writers / sizeof *live_writers; i++)
        if (live_writers[i] > 0)
            kill(live_writers[i], SIGKILL);
    wct_scratch_cleanup();
}

/* Run the writer as r says; fills r->acked and r->status. */
static void run_writer(struct run *r)
{
    start_writer(r);
    if (r->sig && read_acks(r, r->kill_after)) {
        if (r->kill_guard) {
            pid_t g = 0;
            const char *sd = r->store ? r->store : r->dir;
            for (int i = 0; i < 200 && !(g = find_guard(sd)); i++)
                usleep(5000);
            cr_assert(g > 0, "no guard process found");
            /* Killed together with the writer (a cgroup's kill): stopped
             * first, so that it replays nothing, and the writer's flusher
             * does not replace it (guard.c invariant (6)). */
            kill(g, SIGSTOP);
        }
        usleep((useconds_t)(r->seed % 1000));
        end_writer(r, r->sig);
        if (r->kill_guard) {
            const char *sd = r->store ? r->store : r->dir;
            pid_t g = find_guard(sd);
            if (g > 0)
                kill(g, SIGKILL);
            for (int i = 0; i < 400 && find_guard(sd); i++)
                usleep(5000);
        }
    } else {
        end_writer(r, 0);
    }
}

/* Wait (bounded) until the guard removed every backing file. */
static void wait_guard(const char *dir)
{
    double start = now_ms();
    while (wct_stores_left(dir) && now_ms() - start < 15000)
        usleep(5000);
    cr_assert_eq(wct_stores_left(dir), 0, "a backing file is left in %s after "
                 "15 s (the guard did not replay it)", dir);
}

/* file holds records 0..acked-1 of stream seed intact, then at most a
 * prefix of the next ones (written, not yet acknowledged). */
static void check_stream(const char *path, uint64_t seed, long acked,
                         const char *what)
{
    size_t len;
    unsigned char *f = (unsigned char *)wct_slurp(path, &len);
    if (!f && errno == ENOENT && acked == 0)
        return;                 /* killed before it opened the file */
    cr_assert_not_null(f, "%s: cannot read %s", what, path);
    static unsigned char rec[4096];
    size_t off = 0;
    for (long k = 0; off < len || k < acked; k++) {
        size_t n = wct_rec_len(seed, (uint64_t)k);
        if (k >= acked + 2)
            cr_assert_fail("%s: %s has %zu bytes: more than the %ld "
                           "acknowledged records (+1 in flight)", what, path,
                           len, acked);
        wct_rec_fill(seed, (uint64_t)k, rec);
        if (k < acked)
            cr_assert_geq(len, off + n, "%s: %s: acknowledged record %ld "
                          "(bytes %zu..%zu) missing: file has %zu bytes",
                          what, path, k, off, off + n, len);
        size_t m = len - off < n ? len - off : n;
        for (size_t i = 0; i < m; i++)
            if (f[off + i] != rec[i])
                cr_assert_fail("%s: %s: byte %zu (record %ld +%zu) is %#x, "
                               "expected %#x (%ld acknowledged)", what, path,
                               off + i, k, i, f[off + i], rec[i], acked);
        off += n;
    }
    free(f);
}

/* dir/a<suffix> and dir/b<suffix> hold streams seed and seed + 1 as
 * check_stream says; then they go. */
static void check_pair(const char *dir, const char *suffix, uint64_t seed,
                       long acked, const char *what)
{
    char a[4400], b[4400];
    snprintf(a, sizeof a, "%s/a%s", dir, suffix);
    snprintf(b, sizeof b, "%s/b%s", dir, suffix);
    check_stream(a, seed, acked, what);
    check_stream(b, seed + 1, acked, what);
    unlink(a);
    unlink(b);
}

static void check_files(struct run *r, const char *what)
{
    check_pair(r->dir, "", r->seed, r->acked, what);
}

static void setup(void)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_killwriter"));
}

/* Run the writer r describes (how "run"), kill it with r->sig, replay
 * (the guard, or `wcache recover` without one) and check every record it
 * acknowledged. */
static void kill_run(struct run *r)
{
    run_writer(r);
    cr_assert(WIFSIGNALED(r->status) && WTERMSIG(r->status) == r->sig,
              "seed %llu: writer ended with status %#x",
              (unsigned long long)r->seed, r->status);
    if (r->no_guard) {
        struct wct_result res;
        const char *argv[] = {WCACHE_BIN, "recover", r->dir, NULL};
        struct wct_spec s = {.argv = argv, .timeout_s = 60};
        cr_assert_eq(wct_run(&s, &res), 0);
        cr_assert(wct_ok(&res), "recover: %s\n%s%s", wct_status_str(&res),
                  res.out, res.err);
        wct_result_free(&res);
    }
    wait_guard(r->dir);
    char what[64];
    snprintf(what, sizeof what, "seed %llu sig %d",
             (unsigned long long)r->seed, r->sig);
    check_files(r, what);
}

/* One writer killed with `sig` after a random number of records. */
static void kill_once(const char *dir, uint64_t seed, int sig, int no_guard)
{
    struct run r = {.dir = dir, .seed = seed, .how = "run", .sig = sig,
                    .kill_after = (long)(seed * 2654435761u % 400),
                    .no_guard = no_guard};
    kill_run(&r);
}

Test(kill, sigkill_loop, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 900)
{
    char *dir = wct_scratch("kill");
    int n = wct_shim_long() ? 1000 : 50;
    uint64_t base = (uint64_t)time(NULL);
    for (int i = 0; i < n; i++)
        kill_once(dir, base * 1000 + (uint64_t)i, SIGKILL, 0);
}

/* SIGKILL while the flusher writes a's batches in the background
 * (cache/async.c): killed after 300 to 2,300 records (0.5 to 3.5 MB of
 * a, a few batches), every acknowledged record must be in the files once
 * the guard has replayed. */
Test(kill, sigkill_during_background_write_back, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 900)
{
    char *dir = wct_scratch("killbg");
    int n = wct_shim_long() ? 200 : 20;
    uint64_t base = (uint64_t)time(NULL);
    for (int i = 0; i < n; i++) {
        uint64_t seed = base * 1000 + (uint64_t)i;
        struct run r = {.dir = dir, .seed = seed, .how = "run",
                        .sig = SIGKILL, .background = 1,
                        .kill_after = 300 + (long)(seed * 2654435761u % 2000)};
        kill_run(&r);
    }
}

/* LD_PRELOAD names a link to the library from a directory without the
 * wcache binary: the guard is found beside the file the library is mapped
 * from (shim/guard.c find_guard; probe AG F4: no guard was found, and a
 * SIGKILL lost every acknowledged record the cache held). The same path
 * serves a relative LD_PRELOAD after the program changed its directory. */
Test(kill, guard_found_through_a_link_to_the_library, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    char *dir = wct_scratch("killlink");
    char ldir[4300], link[4400];
    snprintf(ldir, sizeof ldir, "%s/lib", dir);
    snprintf(link, sizeof link, "%s/libwcache.so", ldir);
    cr_assert_eq(mkdir(ldir, 0755), 0);
    cr_assert_eq(symlink(WCT_SHIM_SO, link), 0);
    uint64_t base = (uint64_t)time(NULL);
    for (int i = 0; i < 3; i++) {
        struct run r = {.dir = dir, .seed = base * 1000 + (uint64_t)i,
                        .how = "run", .sig = SIGKILL,
                        .kill_after = 100 + 150 * i, .flush_ms = "100000",
                        .preload = link};
        kill_run(&r);
    }
}

Test(kill, unhandled_sigterm, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 300)
{
    char *dir = wct_scratch("kill");
    uint64_t base = (uint64_t)time(NULL);
    for (int i = 0; i < 10; i++)
        kill_once(dir, base * 1000 + (uint64_t)i, SIGTERM, 0);
}

/* Each fault kind, after a random number of records. */
Test(kill, faults_and_abort, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 300)
{
    static const struct { const char *how; int sig; } k[] = {
        {"segv", SIGSEGV}, {"abort", SIGABRT}, {"fpe", SIGFPE},
        {"stack", SIGSEGV},
    };
    char *dir = wct_scratch("kill");
    uint64_t base = (uint64_t)time(NULL);
    for (size_t j = 0; j < sizeof k / sizeof *k; j++) {
        for (int i = 0; i < 3; i++) {
            uint64_t seed = base * 100 + j * 10 + (uint64_t)i;
            struct run r = {.dir = dir, .seed = seed, .how = k[j].how,
                            .n = (long)(seed % 500)};
            run_writer(&r);
            cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == k[j].sig,
                      "%s: status %#x", k[j].how, r.status);
            cr_assert_eq(r.acked, r.n + 1, "%s", k[j].how);
            wait_guard(dir);
            check_files(&r, k[j].how);
        }
    }
}

/* The guard disabled (as if killed before it could act): recover. */
Test(kill, no_guard_then_recover, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 300)
{
    char *dir = wct_scratch("kill");
    uint64_t base = (uint64_t)time(NULL);
    for (int i = 0; i < 5; i++)
        kill_once(dir, base * 1000 + (uint64_t)i, SIGKILL, 1);
}

/* Run the wcache command argv (NULL-terminated): it must succeed. */
static void wcache_ok(const char **argv)
{
    struct wct_result res;
    struct wct_spec s = {.argv = argv, .timeout_s = 60};
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(wct_ok(&res), "%s: %s%s", argv[1], res.out, res.err);
    wct_result_free(&res);
}

/* A writer in dir SIGKILLed after 300 records with no guard to replay
 * it (killed with it, `kill_guard`, or none started): its backing file
 * waits. */
static void killed_unreplayed(struct run *r, const char *dir, int kill_guard)
{
    *r = (struct run){.dir = dir, .seed = (uint64_t)time(NULL), .how = "run",
                      .sig = SIGKILL, .kill_after = 300,
                      .kill_guard = kill_guard, .no_guard = !kill_guard};
    run_writer(r);
    cr_assert(WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGKILL);
    usleep(100000);
    cr_assert_eq(wct_stores_left(dir), 1,
                 "the backing file should be waiting");
}

/* Another process renames the file a writer caches, as logrotate does
 * (`mv app.log app.log.1`, with or without a new app.log), then the
 * writer is SIGKILLed: the kernel went on writing into app.log.1, and the
 * replay finds it there by its inode (cache/replay.c (4b)); before, the
 * bytes went to app.log.wcache-recovered.<pid> (probe Q, 5 of 5). */
Test(kill, replay_after_another_process_renamed_the_file, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    for (int create = 0; create < 2; create++) {
        char *dir = wct_scratch("kill");
        char store[4300], a[4300], a1[4300];
        snprintf(store, sizeof store, "%s/store", dir);
        snprintf(a, sizeof a, "%s/a", dir);
        snprintf(a1, sizeof a1, "%s/a.1", dir);
        cr_assert_eq(mkdir(store, 0700), 0);
        struct run r = {.dir = dir, .store = store,
                        .seed = (uint64_t)time(NULL) + (uint64_t)create,
                        .how = "run", .sig = SIGKILL, .kill_after = 300,
                        .flush_ms = "600000"};
        start_writer(&r);
        cr_assert(read_acks(&r, 300), "the writer ended early");
        cr_assert_eq(rename(a, a1), 0);
        if (create) {
            int fd = open(a, O_WRONLY | O_CREAT | O_EXCL, 0644);
            cr_assert(fd >= 0);
            close(fd);
        }
        end_writer(&r, SIGKILL);
        cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
        wait_guard(store);
        char what[64];
        snprintf(what, sizeof what, "renamed%s", create ? ", a new one made" : "");
        check_stream(a1, r.seed, r.acked, what);
        char b[4300];
        snprintf(b, sizeof b, "%s/b", dir);
        check_stream(b, r.seed + 1, r.acked, what);
        free(dir);
    }
}

/* A writer in a private mount namespace (a service's PrivateTmp=, `unshare
 * -m`), where a bind mount makes `view` name `real`, while a writer of the
 * host namespace keeps a guard watching the same store directory: killed,
 * its bytes must land in view/a as it saw it, that is real/a. The host's
 * guard replayed it, looking view/a up in its own mounts, and set the
 * bytes aside there (probe Q, 4 of 4); now each namespace has its guard
 * (shim/guard.c (2c), cli_recover.c (G7)). */
Test(kill, a_private_mount_namespace_has_its_own_guard, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    char host[4300], real[4300], view[4300], store[4300];
    snprintf(host, sizeof host, "%s/host", dir);
    snprintf(real, sizeof real, "%s/real", dir);
    snprintf(view, sizeof view, "%s/view", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    cr_assert(mkdir(host, 0700) == 0 && mkdir(real, 0700) == 0 &&
              mkdir(view, 0700) == 0 && mkdir(store, 0700) == 0);
    uint64_t seed = (uint64_t)time(NULL) * 16;
    struct run h = {.dir = host, .store = store, .seed = seed, .how = "run",
                    .flush_ms = "600000"};
    start_writer(&h);
    cr_assert(read_acks(&h, 50), "the host's writer ended early");
    for (int i = 0; i < 400 && !find_guard(store); i++)
        usleep(5000);
    cr_assert(find_guard(store) > 0, "no guard for the host's writer");
    /* This test's process (Criterion's, for this test alone) moves to a
     * namespace of its own; the host's writer and guard stay behind. */
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount(real, view, NULL, MS_BIND, NULL) != 0) {
        const char *ci = getenv("CI");
        cr_assert(!(ci && !strcmp(ci, "true")), "mount namespace: %s",
                  strerror(errno));
        end_writer(&h, SIGKILL);
        wct_scratch_cleanup();
        cr_skip_test("no mount namespace here (needs root)");
    }
    struct run r = {.dir = view, .store = store, .seed = seed + 2,
                    .how = "run", .sig = SIGKILL, .flush_ms = "600000"};
    start_writer(&r);
    cr_assert(read_acks(&r, 300), "the namespace's writer ended early");
    end_writer(&r, SIGKILL);
    double start = now_ms();
    while (wct_stores_left(store) > 1 && now_ms() - start < 15000)
        usleep(5000);
    cr_assert_eq(wct_stores_left(store), 1, "the killed writer's backing "
                 "file was not replayed in 15 s");
    check_pair(real, "", r.seed, r.acked, "namespace's writer");
    h.sig = SIGKILL;
    end_writer(&h, SIGKILL);
    wait_guard(store);
    check_files(&h, "host's writer");
    umount2(view, MNT_DETACH);
    free(dir);
}

/* The guard killed together with the writer (a cgroup's kill): the
 * backing file waits, and recover replays. */
Test(kill, guard_killed_then_recover, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    struct run r;
    killed_unreplayed(&r, dir, 1);
    struct wct_result res;
    const char *ls[] = {WCACHE_BIN, "ls", dir, NULL};
    struct wct_spec s = {.argv = ls, .timeout_s = 60};
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(wct_ok(&res));
    /* Which file still holds cached records at the kill depends on what
     * the flusher wrote back before it (a slow spell: a's appends, with
     * b's pwrites still cached, CI once). */
    cr_assert(strstr(res.out, " dead ") &&
              (strstr(res.out, "/a: ") || strstr(res.out, "/b: ")),
              "wcache ls said: %s", res.out);
    wct_result_free(&res);
    const char *rec[] = {WCACHE_BIN, "recover", dir, NULL};
    s.argv = rec;
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(wct_ok(&res), "%s%s", res.out, res.err);
    wct_result_free(&res);
    cr_assert_eq(wct_stores_left(dir), 0);
    check_files(&r, "guard killed");
}

/* A writer killed together with its guard (WCACHE_GUARD=0 stands for
 * that: a cgroup's kill, an OOM kill of the group): the next `wcache --
 * prog` replays its store before prog starts (cli_recover.c (G5)), so a
 * restarted program writes after the dead one's records, as with the
 * kernel; `wcache --no-guard` and `--disable` leave it. */
Test(kill, wcache_command_replays_the_dead_first, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    struct run r;
    killed_unreplayed(&r, dir, 0);
    /* Not with the guard off, nor with the cache disabled: recovery is
     * then left to `wcache recover`, as the user asked. */
    const char *opt[] = {"--no-guard", "--disable"};
    for (int i = 0; i < 2; i++) {
        wcache_ok((const char *[]){WCACHE_BIN, "--dir", dir, opt[i], "--",
                                   "/bin/true", NULL});
        cr_assert_eq(wct_stores_left(dir), 1, "wcache %s replayed", opt[i]);
    }
    wcache_ok((const char *[]){WCACHE_BIN, "--dir", dir, "--", "/bin/true",
                               NULL});
    cr_assert_eq(wct_stores_left(dir), 0, "wcache -- started its program "
                 "with a dead program's store not replayed");
    check_files(&r, "replayed by wcache --");
}

/* A writer killed together with its guard, then a program started with
 * LD_PRELOAD alone (a service's unit, not `wcache --`): the program
 * replays the dead one's store before it runs (guard.c invariant (9)),
 * so what it reads holds every acknowledged record (before, it read the
 * file without them, and its own guard appended them later: probe T,
 * Redis restarted after a group kill lacked 2,000-9,200 keys). Not with
 * the guard off, nor with the cache disabled. */
Test(kill, a_preloaded_program_replays_the_dead_first, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    struct run r;
    killed_unreplayed(&r, dir, 1);
    char store_env[4400];
    snprintf(store_env, sizeof store_env, "WCACHE_DIR=%s", dir);
    const char *script = "cat a > a.copy && cat b > b.copy";
    const char *off[][3] = {{store_env, "WCACHE_GUARD=0", NULL},
                            {store_env, "WCACHE_DISABLE=1", NULL}};
    struct wct_result res;
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(wct_sh(1, dir, off[i], 60, &res, "true"), 0);
        cr_assert(wct_ok(&res), "%s%s", res.out, res.err);
        wct_result_free(&res);
        cr_assert_eq(wct_stores_left(dir), 1, "replayed with %s", off[i][1]);
    }
    const char *env[] = {store_env, NULL};
    cr_assert_eq(wct_sh(1, dir, env, 60, &res, script), 0);
    cr_assert(wct_ok(&res), "%s%s", res.out, res.err);
    wct_result_free(&res);
    cr_assert_eq(wct_stores_left(dir), 0, "a program started with the "
                 "dead one's store not replayed");
    check_pair(dir, ".copy", r.seed, r.acked,
               "what the preloaded program read");
    check_files(&r, "replayed by a preloaded program");
}

/* The same replay at start-up in a program whose linked library started
 * a thread from its constructor (so_ctorthread.so, as OpenBLAS starts its
 * pool) that opens and closes all along: the replay's descriptors (the
 * store directory, the backing file, the files written) are open inside
 * a window (shim/ownfd.c (7), guard.c (9)), so each of the thread's opens
 * gets the lowest free number, as without the shim. */
Test(kill, a_replay_at_start_takes_no_number_from_a_constructors_thread,
     .init = setup, .fini = wct_scratch_cleanup, .timeout = 120)
{
    wct_require_prog(WCT_PROG("prog_ctorthread"));
    char *dir = wct_scratch("kill");
    struct run r;
    killed_unreplayed(&r, dir, 1);
    char store_env[4400];
    snprintf(store_env, sizeof store_env, "WCACHE_DIR=%s", dir);
    const char *env[] = {store_env, "WCT_CTOR_OPENER=1", NULL};
    const char *argv[] = {WCT_PROG("prog_ctorthread"), dir, "opener", NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = 1,
                            .timeout_s = 60};
    struct wct_result res;
    cr_assert_eq(wct_run(&spec, &res), 0);
    cr_assert(wct_ok(&res), "%s%s", res.out, res.err);
    long opens = -1, wrong = -1;
    cr_assert(sscanf(res.out, "opens %ld wrong %ld", &opens, &wrong) == 2,
              "%s%s", res.out, res.err);
    wct_result_free(&res);
    cr_assert_eq(wct_stores_left(dir), 0, "the dead one's store was not "
                 "replayed at start-up");
    /* Two let pass: a thread preempted over 20 us between its count and
     * the kernel's choice of its number is taken for blocked (ownfd.c
     * (7)'s limits). */
    cr_expect(opens > 0, "the constructor's thread made no open");
    cr_expect(wrong <= 2, "%ld of %ld opens got another number than the "
              "lowest free one", wrong, opens);
    check_files(&r, "replayed with a constructor's thread running");
}

/* A writer in a mount namespace of its own (`unshare -m`, a service's
 * PrivateTmp=) killed together with its guard, which was that namespace's
 * (guard.c (2c)): no guard of that namespace is left, so the next program
 * under the shim here replays its store before it runs, and so does
 * `wcache recover` (cli_recover.c (G7)). Before, both passed it by as
 * another namespace's, and it waited for good (probe U). */
Test(kill, a_namespace_killed_whole_is_replayed_from_another, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    char *base = wct_scratch("kill");
    for (int by_recover = 0; by_recover < 2; by_recover++) {
        char dir[4300];
        snprintf(dir, sizeof dir, "%s/%d", base, by_recover);
        cr_assert_eq(mkdir(dir, 0700), 0);
        struct run r = {.dir = dir, .seed = (uint64_t)time(NULL) + 7u *
                        (uint64_t)by_recover, .how = "run", .sig = SIGKILL,
                        .kill_after = 300, .kill_guard = 1, .own_ns = 1};
        run_writer(&r);
        cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL,
                  "writer: status %#x", r.status);
        usleep(100000);
        cr_assert_eq(wct_stores_left(dir), 1, "nothing left to replay");
        struct wct_result res;
        if (by_recover) {
            const char *rec[] = {WCACHE_BIN, "recover", dir, NULL};
            struct wct_spec s = {.argv = rec, .timeout_s = 60};
            cr_assert_eq(wct_run(&s, &res), 0);
        } else {
            char store_env[4400];
            snprintf(store_env, sizeof store_env, "WCACHE_DIR=%s", dir);
            const char *env[] = {store_env, NULL};
            cr_assert_eq(wct_sh(1, dir, env, 60, &res, "true"), 0);
        }
        cr_assert(wct_ok(&res), "%s: %s%s", by_recover ? "recover" : "sh",
                  res.out, res.err);
        wct_result_free(&res);
        cr_assert_eq(wct_stores_left(dir), 0, "%s left the store of a "
                     "namespace killed whole", by_recover ? "wcache "
                     "recover" : "a program's start-up");
        check_files(&r, by_recover ? "namespace gone, recover"
                                   : "namespace gone, start-up");
    }
}

/* Lines of guard.log in store dir d that say a backing file was kept. */
static int kept_lines(const char *d)
{
    char log[4400];
    snprintf(log, sizeof log, "%s/guard.log", d);
    char *t = wct_slurp(log, NULL);
    int n = 0;
    for (char *p = t; p && (p = strstr(p, " kept")); p++)
        n++;
    free(t);
    return n;
}

/* A store no replay can empty (its files' directory removed after the
 * kill) is renamed .kept by the first sweep that fails on it, and logged
 * once: neither the next guard nor the next `wcache --` tries it again
 * (cli_recover.c (G6); before, every guard started retried it and logged
 * it again). `wcache ls` lists it, `recover` retries it: failing while
 * the directory is missing, then replaying into a recovery file beside
 * the vanished file once the directory is back, and removing it. */
Test(kill, unreplayable_store_is_kept_once, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    char sub[4300], store[4300], d[4400];
    snprintf(sub, sizeof sub, "%s/files", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(mkdir(store, 0700), 0);
    struct run r = {.dir = sub, .store = store, .seed = (uint64_t)time(NULL),
                    .how = "run", .sig = SIGKILL, .kill_after = 300,
                    .no_guard = 1};
    run_writer(&r);
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL);
    cr_assert_eq(wct_stores_left(store), 1);
    cr_assert_eq(wct_rmtree(sub), 0);
    wct_store_dir(store, d, sizeof d);
    for (int i = 0; i < 3; i++) {
        wcache_ok((const char *[]){WCACHE_BIN, "--dir", store, "--",
                                   "/bin/true", NULL});
        cr_assert_eq(wct_stores_left(store), 1);
        cr_assert_eq(kept_lines(d), 1, "run %d: the store was tried again "
                     "(%d lines in guard.log)", i, kept_lines(d));
    }
    struct wct_result res;
    const char *ls[] = {WCACHE_BIN, "ls", store, NULL};
    struct wct_spec s = {.argv = ls, .timeout_s = 60};
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(wct_ok(&res) && strstr(res.out, ".kept pid ") &&
              strstr(res.out, " dead "), "wcache ls said: %s", res.out);
    wct_result_free(&res);
    const char *rec[] = {WCACHE_BIN, "recover", store, NULL};
    s.argv = rec;
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 1,
              "recover with the directory gone: %s%s", res.out, res.err);
    wct_result_free(&res);
    cr_assert_eq(wct_stores_left(store), 1);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(wct_ok(&res), "recover: %s%s", res.out, res.err);
    wct_result_free(&res);
    cr_assert_eq(wct_stores_left(store), 0);
    DIR *dh = opendir(sub);
    int aside = 0;
    struct dirent *e;
    while (dh && (e = readdir(dh)))
        aside += strstr(e->d_name, ".wcache-recovered.") != NULL;
    if (dh)
        closedir(dh);
    cr_assert(aside >= 1, "no recovery file in %s", sub);
}

/* The guard killed alone while the writer caches: the writer's flusher
 * starts another (guard.c invariant (6)), which replays the writer's
 * SIGKILL (before, nothing did until the next program caching there, or
 * `wcache recover`: a probe, 10 of 10). */
Test(kill, guard_killed_alone_is_replaced, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    uint64_t seed = (uint64_t)time(NULL);
    struct run r = {.dir = dir, .seed = seed, .how = "pause", .n = 200,
                    .flush_ms = "600000"};
    start_writer(&r);
    cr_assert(read_acks(&r, r.n + 1), "the writer ended early");
    pid_t g = 0, g2 = 0;
    for (int i = 0; i < 400 && !(g = find_guard(dir)); i++)
        usleep(5000);
    cr_assert(g > 0, "no guard");
    kill(g, SIGKILL);
    for (int i = 0; i < 600 && ((g2 = find_guard(dir)) == g || !g2); i++)
        usleep(5000);
    cr_assert(g2 > 0 && g2 != g, "no guard again 3 s after the first was "
              "killed");
    end_writer(&r, SIGKILL);
    wait_guard(dir);
    check_files(&r, "replayed by the guard started again");
}

/* Are some of the records r acknowledged still only in its cache (its
 * file a shorter than they are)? */
static int cached(const struct run *r)
{
    char a[4300];
    struct stat st;
    snprintf(a, sizeof a, "%s/a", r->dir);
    uint64_t len = 0;
    for (long k = 0; k < r->acked; k++)
        len += wct_rec_len(r->seed, (uint64_t)k);
    return stat(a, &st) != 0 || (uint64_t)st.st_size < len;
}

/* One guard watches every program whose store is in a directory
 * (shim/cli_recover.c (G1)-(G3)): two writers paused with data cached
 * share one; killed, the guard replays the first; after the guard itself
 * was killed a new one starts (writer 1's flusher or writer 2's start),
 * which replays the second
 * writer's store too (one it never heard of), then the third's; with no
 * owner left it leaves. */
Test(kill, one_guard_watches_every_writer, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    char *top = wct_scratch("kill");
    char dirs[3][4300];
    struct run r[3];
    uint64_t seed = (uint64_t)time(NULL) * 10;
    for (int i = 0; i < 3; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/w%d", top, i);
        cr_assert_eq(mkdir(dirs[i], 0700), 0);
        r[i] = (struct run){.dir = dirs[i], .store = top, .seed = seed + 2 * i,
                            .how = "pause", .n = 100 + 50 * i,
                            .flush_ms = "600000"};
    }
    start_writer(&r[0]);
    cr_assert(read_acks(&r[0], r[0].n + 1), "writer 0 ended early");
    start_writer(&r[1]);
    cr_assert(read_acks(&r[1], r[1].n + 1), "writer 1 ended early");
    int count = 0;
    pid_t g = 0;
    for (int i = 0; i < 400 && !(g = find_guards(top, &count)); i++)
        usleep(5000);
    cr_assert(g > 0, "no guard");
    /* A second writer that probed while the first one's guard was still
     * starting (a loaded machine) starts one too, which finds the lock
     * held and leaves within 200 ms (cli_recover.c (G1), (G3)). */
    for (int i = 0; i < 200 && count > 1; i++) {
        usleep(5000);
        g = find_guards(top, &count);
    }
    cr_assert_eq(count, 1, "%d guards for two writers", count);
    cr_assert_eq(wct_stores_left(top), 2);
    for (int i = 0; i < 2; i++)
        cr_assert(cached(&r[i]), "writer %d's records are on disk already: "
                  "nothing for the guard to do", i);

    end_writer(&r[0], SIGKILL);
    double t0 = now_ms();
    while (wct_stores_left(top) != 1 && now_ms() - t0 < 15000)
        usleep(5000);
    cr_assert_eq(wct_stores_left(top), 1, "writer 0's store not replayed");
    check_files(&r[0], "writer 0, replayed by the shared guard");

    kill(g, SIGKILL);
    for (int i = 0; i < 400 && find_guard(top) == g; i++)
        usleep(5000);
    start_writer(&r[2]);
    cr_assert(read_acks(&r[2], r[2].n + 1), "writer 2 ended early");
    pid_t g2 = 0;
    /* Writer 1's flusher may start it as well (guard.c invariant (6)):
     * a second one starting at once leaves when it sees the first. */
    for (int i = 0; i < 600 && (!(g2 = find_guards(top, &count)) ||
                                count != 1); i++)
        usleep(5000);
    cr_assert(g2 > 0 && g2 != g, "no new guard after the first was killed");
    cr_assert_eq(count, 1);
    cr_assert(cached(&r[2]), "writer 2's records are on disk already");

    end_writer(&r[1], SIGKILL);
    t0 = now_ms();
    while (wct_stores_left(top) != 1 && now_ms() - t0 < 15000)
        usleep(5000);
    cr_assert_eq(wct_stores_left(top), 1, "writer 1's store not replayed "
                 "by the new guard");
    check_files(&r[1], "writer 1, replayed by a later guard");
    end_writer(&r[2], SIGKILL);
    wait_guard(top);
    check_files(&r[2], "writer 2");
    t0 = now_ms();
    while (find_guard(top) && now_ms() - t0 < 15000)
        usleep(10000);
    cr_assert_eq(find_guard(top), 0, "the guard stayed with no owner left");
}

/* A file changed after the crash is left alone; the data goes beside it.
 * The writer is killed while it sleeps after record 200 (no deadline
 * flush due either): a death in the middle of a write-back leaves the
 * file's slot busy, and then a replay can compare only the file's
 * identity, not its size and ctime (format.h (5)), so it would write in
 * place, as it must after an ordinary crash in that window. */
Test(kill, file_changed_after_crash, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    char *dir = wct_scratch("kill");
    uint64_t seed = (uint64_t)time(NULL);
    struct run r = {.dir = dir, .seed = seed, .how = "pause", .n = 200,
                    .sig = SIGKILL, .kill_after = 200, .no_guard = 1,
                    .flush_ms = "600000"};
    run_writer(&r);
    char a[4300];
    snprintf(a, sizeof a, "%s/a", dir);
    size_t before;
    char *was = wct_slurp(a, &before);
    cr_assert_not_null(was);
    int fd = open(a, O_WRONLY | O_APPEND);
    cr_assert_eq(write(fd, "CHANGED", 7), 7);
    close(fd);
    struct wct_result res;
    const char *rec[] = {WCACHE_BIN, "recover", dir, NULL};
    struct wct_spec s = {.argv = rec, .timeout_s = 60};
    cr_assert_eq(wct_run(&s, &res), 0);
    cr_assert(wct_ok(&res), "%s%s", res.out, res.err);
    cr_assert(strstr(res.err, "changed after the crash"), "said: %s",
              res.err);
    wct_result_free(&res);
    size_t now;
    char *is = wct_slurp(a, &now);
    cr_assert_eq(now, before + 7, "the changed file was written to");
    cr_assert_eq(memcmp(is, was, before), 0);
    char aside[4400];
    snprintf(aside, sizeof aside, "%s.wcache-recovered.%d", a, (int)r.pid);
    size_t alen;
    unsigned char *g = (unsigned char *)wct_slurp(aside, &alen);
    cr_assert_not_null(g, "no %s", aside);
    /* Every byte there is zero (not held) or the stream's; the
     * acknowledged bytes the file lacked are all there. */
    static unsigned char rb[4096];
    size_t off = 0, acked_len = 0;
    for (long k = 0; off < alen; k++) {
        size_t n = wct_rec_len(seed, (uint64_t)k);
        wct_rec_fill(seed, (uint64_t)k, rb);
        for (size_t i = 0; i < n && off + i < alen; i++) {
            unsigned char c = g[off + i];
            cr_assert(c == 0 || c == rb[i], "garbage at %zu", off + i);
            if (off + i >= before && k < r.acked)
                cr_assert_eq(c, rb[i], "acknowledged byte %zu missing",
                             off + i);
        }
        if (k < r.acked)
            acked_len = off + n;
        off += n;
    }
    cr_assert_geq(alen, acked_len);
    free(g);
    free(was);
    free(is);
    cr_assert_eq(wct_stores_left(dir), 0);
}

/* prog_rename HOW (c[0], N 20) in a new directory, from its start to the
 * guard's replay after the kill: DIR/<c[1]> holds all 4,000 bytes, each
 * record whole and in place, and no recovery file is beside DIR/<c[2]>,
 * the name the file was opened by. */
static void renamed_replayed(const char *const c[3])
{
    const char *now = c[1], *was = c[2];
    char *dir = wct_scratch("kill");
    struct run run = {.dir = dir, .seed = 1, .how = c[0], .n = 20,
                      .sig = SIGKILL, .kill_after = 1,
                      .prog = WCT_PROG("prog_rename"), .flush_ms = "600000"};
    struct run *r = &run;
    run_writer(r);
    cr_assert_eq(r->acked, 1, "%s: the writer did not finish", r->how);
    wait_guard(r->dir);
    char path[4300], aside[4400];
    snprintf(path, sizeof path, "%s/%s", r->dir, now);
    size_t len = 0;
    char *got = wct_slurp(path, &len);
    cr_assert(got && len == 4000, "%s: %s has %zu bytes", r->how, path, len);
    for (size_t off = 0; off < len; off += 100)
        cr_assert(got[off] == 'a' + (int)(off / 100 % 26) &&
                  got[off + 99] == '\n', "%s: record at %zu", r->how, off);
    free(got);
    snprintf(aside, sizeof aside, "%s/%s.wcache-recovered.%d", r->dir, was,
             (int)r->pid);
    cr_assert_eq(access(aside, F_OK), -1, "%s: %s made", r->how, aside);
    free(dir);
}

/* The program renames the file it writes (or the directory above it),
 * writes on, and is killed: the replay looked for the file under the
 * name it had when it was cached, took the renamed one for another's
 * change and put the bytes beside the old name (or, under a renamed
 * directory, could put them nowhere: kept, `wcache recover` failing).
 * Now the slot takes the new name at the rename (wc_cache_renamed). */
Test(kill, replay_after_the_program_renamed_its_file, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    static const char *const cases[][3] = {{"file", "B", "A"},
                                           {"dir", "final/f", "stage/f"}};
    for (int h = 0; h < 2; h++)
        renamed_replayed(cases[h]);
}

/* The name the program opened goes while another link keeps the file
 * (linked first, or linked into another directory, then unlinked), and
 * the program writes on and is killed: the slot was noted as gone by the
 * name's " (deleted)", and the replay dropped every cached byte, or put
 * those written after the unlink in a recovery file beside the old name
 * (probe X). Now such a file passes through for good at the unlink,
 * written back first (shim/meta.c renamed). */
Test(kill, replay_after_the_opened_name_went_but_a_link_stays, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    static const char *const cases[][3] = {{"linked", "sub/L", "A"},
                                           {"relink", "sub/L", "A"}};
    for (int h = 0; h < 2; h++)
        renamed_replayed(cases[h]);
}

/* Is there a file in dir whose name starts with prefix? */
static int has_prefix(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int found = 0;
    while (d && (e = readdir(d)))
        found |= !strncmp(e->d_name, prefix, strlen(prefix));
    if (d)
        closedir(d);
    return found;
}

/* The program's names stop being the guard's, or its file loses its
 * name, or has one too long for a slot, and it is killed. A file whose
 * name the slot could not hold was replayed at a cut name, nowhere
 * (cache/file.c: not cached now); a file cached in a chroot without
 * /proc had no name in its slot, which made the whole backing file
 * unreplayable: A, cached before the chroot, lost its bytes too;
 * in a chroot with /proc, B's bytes went to /B.wcache-recovered.<pid> in
 * the real root (shim/proc.c invariant (12)); an unlinked file's bytes
 * came back beside its old name, where the kernel frees them (format.h
 * (10)). */
Test(kill, replay_after_chroot_or_unlink, .init = setup,
     .fini = kill_writers_and_clean, .timeout = 120)
{
    if (geteuid() != 0)
        cr_skip_test("chroot needs root");
    static const char *const hows[] = {"chroot", "chrootproc", "unlink",
                                       "longname"};
    for (int h = 0; h < 4; h++) {
        char *dir = wct_scratch("kill");
        struct run r = {.dir = dir, .seed = 1, .how = hows[h], .n = 20,
                        .sig = SIGKILL, .kill_after = 1,
                        .prog = WCT_PROG("prog_rename"),
                        .flush_ms = "600000"};
        char rootside[64];
        run_writer(&r);
        cr_assert_eq(r.acked, 1, "%s: the writer did not finish", hows[h]);
        wait_guard(dir);
        char path[4300], deep[1100] = "";
        /* A name from inside the chroot, replayed in the real root. */
        snprintf(rootside, sizeof rootside, "B.wcache-recovered.%d",
                 (int)r.pid);
        snprintf(path, sizeof path, "/%s", rootside);
        int stray = access(path, F_OK) == 0;
        unlink(path);
        for (int i = 0; h == 3 && i < 5; i++) {
            size_t l = strlen(deep);
            deep[l++] = '/';
            memset(deep + l, 'a' + i, 200);
            deep[l + 200] = 0;
        }
        for (int f = 0; f < 2 - (h == 3); f++) {
            snprintf(path, sizeof path, "%s%s/%s", dir, deep, f ? "B" : "A");
            size_t len = 0;
            char *got = wct_slurp(path, &len);
            if (h == 2) {
                cr_assert_null(got, "unlink: %s is back", path);
                break;
            }
            cr_assert(got && len == (f ? 2000u : 4000u),
                      "%s: %s has %zu bytes", hows[h], path, len);
            for (size_t off = 0; off < len; off += 100)
                cr_assert(got[off] == 'a' + (int)(off / 100 % 26) &&
                          got[off + 99] == '\n', "%s: %s: record at %zu",
                          hows[h], path, off);
            free(got);
        }
        cr_assert(!has_prefix(dir, "A.wcache-recovered") &&
                  !has_prefix(dir, "B.wcache-recovered"),
                  "%s: bytes set aside in %s", hows[h], dir);
        cr_assert(!stray, "%s: /%s made in the real root", hows[h],
                  rootside);
        free(dir);      /* /proc was mounted in the writer's namespace */
    }
}

/* A write to an existing control file (never creating one). */
static int cg_write(const char *dir, const char *file, const char *val)
{
    char p[1400];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, val, strlen(val));
    close(fd);
    return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* A new memory cgroup limited to `mib` MiB, swap included, under our own
 * (v2, or v1's memory hierarchy): its directory in out, or -1 with a
 * reason. */
static int make_memcg(char *out, size_t cap, const char **why, int mib)
{
    char bytes[32], v2[32];
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)mib << 20);
    snprintf(v2, sizeof v2, "%dM", mib);
    char self[700] = "", line[400];
    FILE *f = fopen("/proc/self/cgroup", "r");
    int v1 = 0;
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "0::", 3) && !self[0])
            snprintf(self, sizeof self, "/sys/fs/cgroup%s", line + 3);
        char *m = strstr(line, ":memory:");
        if (m) {
            snprintf(self, sizeof self, "/sys/fs/cgroup/memory%s", m + 8);
            v1 = 1;
        }
    }
    if (f)
        fclose(f);
    *why = "no cgroup found in /proc/self/cgroup";
    if (!self[0])
        return -1;
    snprintf(out, cap, "%s/wct-oom-%d", self, (int)getpid());
    if (mkdir(out, 0755) != 0) {
        *why = strerror(errno);
        return -1;
    }
    int r = v1 ? cg_write(out, "memory.limit_in_bytes", bytes)
               : cg_write(out, "memory.max", v2);
    if (r != 0) {
        *why = "no memory controller there";
        rmdir(out);
        return -1;
    }
    if (!v1)
        cg_write(out, "memory.swap.max", "0");
    else
        cg_write(out, "memory.memsw.limit_in_bytes", bytes);
    return 0;
}

/* An OOM kill in a memory cgroup. */
Test(kill, oom_in_memory_cgroup, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 120)
{
    char cg[800];
    const char *why;
    if (make_memcg(cg, sizeof cg, &why, 96) != 0) {
        wct_scratch_cleanup();
        cr_skip_test("cannot create a memory cgroup (%s): OOM kill not "
                     "tested", why);
    }
    char *dir = wct_scratch("kill");
    uint64_t seed = (uint64_t)time(NULL);
    struct run r = {.dir = dir, .seed = seed, .how = "oom", .n = 300,
                    .cgroup = cg};
    run_writer(&r);
    wait_guard(dir);
    for (int i = 0; i < 500 && rmdir(cg) != 0; i++)
        usleep(10000);
    cr_assert(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGKILL,
              "status %#x (99: the limit did not hold)", r.status);
    check_files(&r, "oom");
}

/* A 16 MiB memory cgroup (its directory in cg) and an empty store
 * directory on tmpfs (/dev/shm, the default's file system) for the
 * memory cgroup tests; returns their scratch directory. Skips where
 * /dev/shm is not a tmpfs or no cgroup can be made. */
static char *small_memcg(char *cg, size_t cgcap, char *store, size_t scap)
{
    struct statfs sf;
    if (statfs("/dev/shm", &sf) != 0 || sf.f_type != TMPFS_MAGIC) {
        wct_scratch_cleanup();
        cr_skip_test("/dev/shm is not a tmpfs");
    }
    const char *why;
    if (make_memcg(cg, cgcap, &why, 16) != 0) {
        wct_scratch_cleanup();
        cr_skip_test("cannot create a memory cgroup (%s)", why);
    }
    snprintf(store, scap, "/dev/shm/wct-memcg-%d", (int)getpid());
    wct_rmtree(store);
    cr_assert(mkdir(store, 0700) == 0);
    return wct_scratch("memcg");
}

/* small_memcg's cgroup and store directory gone (the cgroup once its
 * last process has left it). */
static void small_memcg_done(const char *cg, const char *store)
{
    for (int i = 0; i < 500 && rmdir(cg) != 0; i++)
        usleep(10000);
    wct_rmtree(store);
}

/* Run argv (found in PATH) in cgroup cg, under the shim with its store in
 * `store` when `shim`, its standard output on /dev/null, and with `err`
 * its standard error there and the shim's log at info; its wait status
 * (exit 98: it could not join the cgroup, 97: no exec). */
static int in_memcg(const char *cg, const char *store, int shim,
                    const char *err, const char *const *argv)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (cg_write(cg, "cgroup.procs", "0") != 0)
            _exit(98);
        if (shim) {
            setenv("LD_PRELOAD", WCT_BUILD_DIR "/libwcache.so", 1);
            setenv("WCACHE_DIR", store, 1);
        }
        if (err) {
            setenv("WCACHE_LOG", "info", 1);
            int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (e < 0 || dup2(e, 2) < 0)
                _exit(98);
        }
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(97);
    }
    int st;
    cr_assert(waitpid(pid, &st, 0) == pid);
    return st;
}

/* A program that writes 40 MB to 40 files in turn, 200 bytes a write, in
 * a 16 MiB memory cgroup, the store on tmpfs (/dev/shm, the default):
 * with the kernel alone its page cache is reclaimed and it finishes; the
 * shim's cache, which nothing reclaims, must fit the room the cgroup has
 * (shim/memcg.c; probe M: OOM-killed with a 64 MiB cache). The shim's log
 * says it found the limit, asked as the store grew, and fitted the dirty
 * limit to an eighth of the room at most (memcg.c (4)). */
Test(kill, small_memory_cgroup_finishes, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 120)
{
    wct_require_shim();
    char cg[800], store[64];
    char *dir = small_memcg(cg, sizeof cg, store, sizeof store);
    static const char prog[] =
        "my $d = shift; my @f;"
        "for my $i (0..39) { open($f[$i], '>', \"$d/f$i\") or die }"
        "my $l = ('x' x 199) . \"\\n\";"
        "for my $k (1..5000) { for my $i (0..39) {"
        "  syswrite($f[$i], $l) == 200 or die \"write: $!\" } }"
        "close($_) or die for @f;";
    for (int shim = 0; shim < 2; shim++) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dir, shim ? "shim" : "kernel");
        cr_assert(mkdir(sub, 0700) == 0);
        char err[4300];
        snprintf(err, sizeof err, "%s.log", sub);
        int st = in_memcg(cg, store, shim, shim ? err : NULL,
                          (const char *[]){"perl", "-e", prog, sub, NULL});
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "%s: status %#x (signal %d: 9 is the OOM killer)",
                  shim ? "shim" : "kernel", st,
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        for (int i = 0; i < 40; i++) {
            char p[4300];
            snprintf(p, sizeof p, "%s/f%d", sub, i);
            struct stat s;
            cr_expect(stat(p, &s) == 0 && s.st_size == 1000000,
                      "%s: f%d has %lld bytes, not 1000000",
                      shim ? "shim" : "kernel", i,
                      (long long)(stat(p, &s) == 0 ? s.st_size : -1));
        }
        if (!shim)
            continue;
        char *log = wct_slurp(err, NULL);
        const char *m = log ? strstr(log, "memory cgroup: ") : NULL;
        unsigned long long left = 0, dirty = 0;
        cr_expect(m && sscanf(m, "memory cgroup: %llu KiB left, the store "
                              "keeps to a quarter of it, write-back from "
                              "%llu KiB dirty", &left, &dirty) == 2,
                  "no limit found (the log: %s)", log ? log : "none");
        /* No room at all is an answer too (the kernel's run before left
         * dirty pages): the store's least, 256 KiB, half of it dirty. */
        cr_expect(left <= 16384 && dirty >= 256 / 2 && dirty <= 16384 / 8,
                  "%llu KiB left, write-back from %llu KiB dirty in a 16 "
                  "MiB cgroup", left, dirty);
        free(log);
    }
    small_memcg_done(cg, store);
}

/* Under a memory limit the flusher asks the cgroup for its room at each
 * tick, reading its files: it read them in the program's descriptor
 * table, where dash's redirections met the numbers it held for a few
 * microseconds (a dup2 onto one, a close of it, a fork copying it): "Bad
 * file descriptor", "I/O error", "Device or resource busy", lines lost,
 * in 4 of 4 runs of this script (ticks every millisecond). It reads them
 * in a table of its own now (shim/flusher.c (8)). */
Test(kill, memory_cgroup_looks_leave_the_programs_descriptors_alone,
     .init = setup, .fini = wct_scratch_cleanup, .timeout = 120)
{
    wct_require_shim();
    char cg[800], store[64];
    char *dir = small_memcg(cg, sizeof cg, store, sizeof store);
    static const char script[] =
        "cd \"$1\" || exit 9\n"
        "for i in $(seq 1500); do\n"
        "  echo \"line $i\" > f$((i % 7))\n"
        "  exec 3>g; echo \"x $i\" >&3; echo \"y $i\" >&3; exec 3>&-\n"
        "  cat f$((i % 7)) >> all\n"
        "  echo \"z $(echo $i)\" >> all\n"
        "  cat g >> all\n"
        "done\n";
    char sh[4200];
    snprintf(sh, sizeof sh, "%s/s.sh", dir);
    cr_assert_eq(wct_spit(sh, script, sizeof script - 1), 0);
    setenv("WCACHE_FLUSH_MS", "4", 1);  /* a tick every millisecond */
    setenv("WCACHE_MIN_WRITES", "0", 1);
    setenv("WCACHE_SETUP_US", "0", 1);
    char *all[2] = {NULL, NULL};
    for (int shim = 0; shim < 2; shim++) {
        char sub[4200], p[4300];
        snprintf(sub, sizeof sub, "%s/%s", dir, shim ? "shim" : "kernel");
        cr_assert(mkdir(sub, 0700) == 0);
        int st = in_memcg(cg, store, shim, NULL,
                          (const char *[]){"dash", sh, sub, NULL});
        cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "%s: status %#x", shim ? "shim" : "kernel", st);
        snprintf(p, sizeof p, "%s/all", sub);
        all[shim] = wct_slurp(p, NULL);
        cr_assert(all[shim], "%s: no output", shim ? "shim" : "kernel");
    }
    unsetenv("WCACHE_FLUSH_MS");
    unsetenv("WCACHE_MIN_WRITES");
    unsetenv("WCACHE_SETUP_US");
    cr_expect(strcmp(all[0], all[1]) == 0,
              "the script's output under the shim differs from the "
              "kernel's (%zu bytes against %zu)", strlen(all[1]),
              strlen(all[0]));
    free(all[0]);
    free(all[1]);
    small_memcg_done(cg, store);
}

/* Does DIR/m<k> hold what prog_manywriters' child k writes (MIB MiB)? */
static int manywriters_file_ok(const char *dir, int k, long mib)
{
    char p[4300], want[4096];
    snprintf(p, sizeof p, "%s/m%d", dir, k);
    size_t len;
    char *f = wct_slurp(p, &len);
    int ok = f && len == (size_t)mib << 20;
    for (long i = 0; ok && i < mib * 256; i++) {
        memset(want, 'a' + (int)(i % 26), sizeof want);
        snprintf(want, 32, "%d-%ld", k, i);
        ok = memcmp(f + i * 4096, want, sizeof want) == 0;
    }
    free(f);
    return ok;
}

/* Sixteen processes making their caches at once in one 16 MiB memory
 * cgroup, each writing 10 MiB in 4 KiB writes: with the kernel alone all
 * finish; each cache was sized to a quarter of the room it saw, the same
 * room for all, and together they took more than the cgroup holds (probe
 * O: 4 to 10 of them OOM-killed in every run). The store now asks for
 * the room as it grows, counting what the others took (cache/store.h
 * (3), shim/memcg.c). Three rounds, kernel and shim alternating. */
Test(kill, many_writers_in_a_small_memory_cgroup, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 300)
{
    wct_require_prog(WCT_PROG("prog_manywriters"));
    char cg[800], store[64];
    char *dir = small_memcg(cg, sizeof cg, store, sizeof store);
    const int n = 16, mib = 10;
    int compared = 0, kernel_ok = 0;
    for (int round = 0; round < 6; round++) {
        int shim = round % 2;
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/r%d", dir, round);
        cr_assert(mkdir(sub, 0700) == 0);
        int st = in_memcg(cg, store, shim, NULL,
                          (const char *[]){WCT_PROG("prog_manywriters"), sub,
                                           "16", "10", NULL});
        int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        for (int k = 0; ok && k < n; k++)
            ok = manywriters_file_ok(sub, k, mib);
        wct_rmtree(sub);
        if (!shim) {
            /* The kernel alone lost a writer: the machine is too busy
             * writing back (check-long under load) to hold them; the
             * shim's round after it proves nothing either way. */
            kernel_ok = ok;
            if (!ok)
                cr_log_warn("round %d (kernel): status %#x, a writer "
                            "OOM-killed or its file short: this pair is "
                            "not compared", round, st);
            continue;
        }
        if (!kernel_ok)
            continue;
        compared++;
        cr_expect(ok, "round %d (shim): status %#x (exit 1: a writer was "
                  "OOM-killed), or a file is not what its writer wrote, "
                  "where the kernel's round before it kept every one",
                  round, st);
    }
    cr_expect(compared > 0, "the kernel alone lost writers in every round");
    small_memcg_done(cg, store);
}

/* ---- corrupt and hostile backing files ------------------------------- */

#include "../cache/format.h"

/* Does path hold a prefix of stream seed (or nothing)? */
static int is_prefix(const char *path, uint64_t seed)
{
    size_t len;
    unsigned char *f = (unsigned char *)wct_slurp(path, &len);
    if (!f)
        return errno == ENOENT;
    static unsigned char rec[4096];
    size_t off = 0;
    int ok = 1;
    for (uint64_t k = 0; off < len && ok; k++) {
        size_t n = wct_rec_len(seed, k);
        wct_rec_fill(seed, k, rec);
        size_t m = len - off < n ? len - off : n;
        ok = memcmp(f + off, rec, m) == 0;
        off += n;
    }
    free(f);
    return ok;
}

struct image {
    char *buf;
    size_t len;
    char name[300];         /* cache.<pid>.<nonce> */
    struct wc_header h;
};

/* recover (the ASan build) on `img` placed in dir2's store directory.
 * Returns its exit status; fails the test on a sanitizer report. */
static int recover_image(const char *dir2, const struct image *img,
                         const char *buf, size_t len, uid_t owner,
                         char **err_out)
{
    char sd[4300], p[4700];
    wct_store_dir(dir2, sd, sizeof sd);
    mkdir(sd, 0700);
    snprintf(p, sizeof p, "%s/%s", sd, img->name);
    unlink(p);
    cr_assert_eq(wct_spit(p, buf, len), 0);
    chmod(p, 0600);
    if (owner != getuid())
        cr_assert_eq(chown(p, owner, (gid_t)-1), 0);
    const char *argv[] = {WCACHE_ASAN, "recover", dir2, NULL};
    const char *env[] = {"ASAN_OPTIONS=exitcode=99:detect_leaks=0",
                         "UBSAN_OPTIONS=halt_on_error=1:exitcode=98", NULL};
    struct wct_spec s = {.argv = argv, .env = env, .timeout_s = 120};
    struct wct_result r;
    cr_assert_eq(wct_run(&s, &r), 0);
    cr_assert_not(r.timed_out, "recover hung");
    cr_assert(WIFEXITED(r.status), "recover died: %s\n%s",
              wct_status_str(&r), r.err);
    int st = WEXITSTATUS(r.status);
    cr_assert(st != 99 && st != 98 && !strstr(r.err, "Sanitizer") &&
              !strstr(r.err, "runtime error"), "recover crashed:\n%s", r.err);
    if (err_out)
        *err_out = strdup(r.err);
    wct_result_free(&r);
    unlink(p);
    return st;
}

/* A dirty record of file a (or b: a stream's pages are written back as
 * they complete, and the kill may come just after a's were) in the image
 * buf, and its slot; NULL if none. */
static struct wc_brec *dirty_record(char *buf, const struct wc_header *h,
                                    const char *a, const char *b,
                                    struct wc_fslot **slot)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t k = 0; k < h->nblocks; k++) {
            struct wc_brec *x = (struct wc_brec *)(buf + h->off_brecs +
                                                   k * WC_BREC_SIZE);
            if (!x->file || !x->nr)
                continue;
            struct wc_fslot *s = (struct wc_fslot *)(
                buf + h->off_files + (x->file - 1) * WC_FSLOT_SIZE);
            if (!strcmp(s->path, pass ? b : a)) {
                *slot = s;
                return x;
            }
        }
    return NULL;
}

Test(recover, corrupt_and_hostile_files, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 600)
{
    if (access(WCACHE_ASAN, X_OK) != 0)
        cr_assert_fail("%s missing: run make", WCACHE_ASAN);
    char *dir = wct_scratch("recover");
    char *dir2 = wct_scratch("recover2");
    uint64_t seed = (uint64_t)time(NULL);
    /* No deadline write-back: on a loaded machine the 150 records can take
     * longer than it, and the template must still hold dirty records. */
    struct run r = {.dir = dir, .seed = seed, .how = "run", .sig = SIGKILL,
                    .kill_after = 150, .no_guard = 1, .size = "256K",
                    .flush_ms = "600000"};
    char a[4300], b[4300], other[4300];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(other, sizeof other, "%s/other", dir);
    char sd[4300];
    wct_store_dir(dir, sd, sizeof sd);
    struct image img = {0};
    struct wc_fslot *slot = NULL;
    /* The backing file left behind: the template. It must hold a dirty
     * record, which the kill may just miss (everything written back by
     * pressure a moment before): then the writer runs again. */
    for (int tries = 0; tries < 5; tries++) {
        run_writer(&r);
        DIR *dh = opendir(sd);
        cr_assert_not_null(dh);
        struct dirent *e;
        img.name[0] = 0;
        while ((e = readdir(dh)))
            if (!strncmp(e->d_name, "cache.", 6))
                snprintf(img.name, sizeof img.name, "%s", e->d_name);
        closedir(dh);
        cr_assert(img.name[0], "no backing file left by the killed writer");
        char tp[4700];
        snprintf(tp, sizeof tp, "%s/%s", sd, img.name);
        free(img.buf);
        img.buf = wct_slurp(tp, &img.len);
        cr_assert_not_null(img.buf);
        cr_assert_geq(img.len, sizeof img.h);
        memcpy(&img.h, img.buf, sizeof img.h);
        unlink(tp);             /* the tests below use copies */
        if (dirty_record(img.buf, &img.h, a, b, &slot))
            break;
    }
    cr_assert_eq(wct_spit(other, "precious", 8), 0);
    size_t la0, lb0;
    char *a0 = wct_slurp(a, &la0), *b0 = wct_slurp(b, &lb0);
    cr_assert(a0 && b0);
    char *buf = malloc(img.len);
    cr_assert_not_null(buf);

#define UNCHANGED(what)                                                    \
    do {                                                                   \
        size_t l_;                                                         \
        char *x_ = wct_slurp(a, &l_);                                      \
        cr_assert(x_ && l_ == la0 && !memcmp(x_, a0, la0),                 \
                  "%s: a was written", what);                              \
        free(x_);                                                          \
        x_ = wct_slurp(b, &l_);                                            \
        cr_assert(x_ && l_ == lb0 && !memcmp(x_, b0, lb0),                 \
                  "%s: b was written", what);                              \
        free(x_);                                                          \
    } while (0)
#define SANE(what)                                                         \
    do {                                                                   \
        cr_assert(is_prefix(a, seed), "%s: a holds garbage", what);         \
        cr_assert(is_prefix(b, seed + 1), "%s: b holds garbage", what);     \
        size_t l_;                                                         \
        char *x_ = wct_slurp(other, &l_);                                  \
        cr_assert(x_ && l_ == 8 && !memcmp(x_, "precious", 8),             \
                  "%s: another file was written", what);                   \
        free(x_);                                                          \
        char g_[4400];                                                     \
        snprintf(g_, sizeof g_, "%s.wcache-recovered.%lld", a,             \
                 (long long)img.h.pid);                                    \
        unlink(g_);                                                        \
        snprintf(g_, sizeof g_, "%s.wcache-recovered.%lld", b,             \
                 (long long)img.h.pid);                                    \
        unlink(g_);                                                        \
    } while (0)

    /* Truncated: every length that cuts a table. */
    const size_t cuts[] = {0, 7, sizeof img.h - 1, img.h.off_files + 100,
                           img.h.off_brecs + 100, img.h.off_data + 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", cuts[i]);
        cr_assert_eq(recover_image(dir2, &img, img.buf, cuts[i], getuid(),
                                   NULL), 1, "%s: not reported", what);
        UNCHANGED(what);
    }
    /* A bit flipped in each byte of the checked header. */
    for (size_t off = 0; off < offsetof(struct wc_header, sum) + 8; off++) {
        char what[64];
        snprintf(what, sizeof what, "header byte %zu flipped", off);
        memcpy(buf, img.buf, img.len);
        buf[off] ^= (char)(1 << (off % 8));
        cr_assert_eq(recover_image(dir2, &img, buf, img.len, getuid(), NULL),
                     1, "%s: not reported", what);
        UNCHANGED(what);
    }
    memcpy(buf, img.buf, img.len);
    struct wc_brec *rec = dirty_record(buf, &img.h, a, b, &slot);
    cr_assert(rec, "no dirty record of a or b in the backing file");
    size_t roff = (size_t)((char *)rec - buf), soff = (size_t)((char *)slot - buf);
    struct { const char *what; size_t off; uint64_t val; int width; } bad[] = {
        {"record file out of range", roff + offsetof(struct wc_brec, file),
         60000, 4},
        {"record index out of range", roff + offsetof(struct wc_brec, index),
         (uint64_t)1 << 50, 8},
        {"record with too many ranges", roff + offsetof(struct wc_brec, nr),
         200, 2},
        {"range past the page", roff + offsetof(struct wc_brec, hi), 5000, 2},
        /* Its data was dropped and the backing file removed, "replayed"
         * (probe AA). */
        {"slot in no state of the format",
         soff + offsetof(struct wc_fslot, state), 0xfe, 4},
        {"slot path altered", soff + offsetof(struct wc_fslot, path) + 1, 'X',
         1},
        {"slot path length out of range",
         soff + offsetof(struct wc_fslot, path_len), 100000, 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memcpy(buf, img.buf, img.len);
        memcpy(buf + bad[i].off, &bad[i].val, (size_t)bad[i].width);
        char *err = NULL;
        int st = recover_image(dir2, &img, buf, img.len, getuid(), &err);
        cr_assert_eq(st, 1, "%s: not reported (%s)", bad[i].what, err);
        free(err);
        SANE(bad[i].what);
        if (i < 5)
            UNCHANGED(bad[i].what);
    }
    /* A path pointing elsewhere (checksum made right, as a hostile file
     * would): the other file is left alone. In the slot's own directory,
     * the file with the recorded inode is found as one another process
     * renamed (cache/replay.c (4b)) and the data goes there; in another
     * directory, the data goes beside the path. */
    char elsewhere[4400];
    snprintf(elsewhere, sizeof elsewhere, "%s/sub/other", dir2);
    for (int far = 0; far < 2; far++) {
        const char *to = far ? elsewhere : other;
        if (far) {
            char sub[4400];
            snprintf(sub, sizeof sub, "%s/sub", dir2);
            cr_assert_eq(mkdir(sub, 0700), 0);
            int fo = open(elsewhere, O_WRONLY | O_CREAT | O_EXCL, 0600);
            cr_assert(fo >= 0 && write(fo, "precious", 8) == 8);
            close(fo);
        }
        memcpy(buf, img.buf, img.len);
        slot = (struct wc_fslot *)(buf + soff);
        cr_assert_lt(strlen(to), sizeof slot->path);
        memset(slot->path, 0, sizeof slot->path);
        memcpy(slot->path, to, strlen(to));
        slot->path_len = (uint32_t)strlen(to);
        slot->id_sum = wc_fmt_slot_sum(slot);
        char *err = NULL;
        recover_image(dir2, &img, buf, img.len, getuid(), &err);
        cr_assert(strstr(err, far ? "another file has its name"
                                  : "since: replayed there"),
                  "said: %s", err);
        free(err);
        char g[4400];
        snprintf(g, sizeof g, "%s.wcache-recovered.%lld", to,
                 (long long)img.h.pid);
        cr_assert_eq(access(g, F_OK), far ? 0 : -1, "%s %s", g,
                     far ? "not made" : "made");
        unlink(g);
        if (far) {
            size_t l_;
            char *x_ = wct_slurp(elsewhere, &l_);
            cr_assert(x_ && l_ == 8 && !memcmp(x_, "precious", 8),
                      "another file was written");
            free(x_);
        }
        SANE("path pointing elsewhere");
    }
    char *err;
    /* Another user's file: refused, left in place, nothing written. */
    free(a0);
    free(b0);
    a0 = wct_slurp(a, &la0);
    b0 = wct_slurp(b, &lb0);
    cr_assert(a0 && b0);
    err = NULL;
    cr_assert_eq(recover_image(dir2, &img, img.buf, img.len, 65534, &err), 1);
    cr_assert(strstr(err, "not by you"), "said: %s", err);
    free(err);
    UNCHANGED("another user's file");
    /* Random bit flips anywhere in the tables: never a crash, never
     * garbage. */
    uint64_t rs = seed | 1;
    size_t tables = (size_t)img.h.off_data;
    for (int t = 0; t < 30; t++) {
        memcpy(buf, img.buf, img.len);
        for (int k = 0; k < 8; k++) {
            size_t off = (size_t)(wct_rec_rand(&rs) % tables);
            buf[off] ^= (char)(1 << (wct_rec_rand(&rs) % 8));
        }
        recover_image(dir2, &img, buf, img.len, getuid(), NULL);
        /* A flip in a mutable field (a range, a size) looks like a valid
         * state: only crashes and writes outside the targets count. */
        size_t l_;
        char *x_ = wct_slurp(other, &l_);
        cr_assert(x_ && l_ == 8 && !memcmp(x_, "precious", 8));
        free(x_);
        char g_[4400];
        snprintf(g_, sizeof g_, "%s.wcache-recovered.%lld", a,
                 (long long)img.h.pid);
        unlink(g_);
        snprintf(g_, sizeof g_, "%s.wcache-recovered.%lld", b,
                 (long long)img.h.pid);
        unlink(g_);
    }
    free(buf);
    free(a0);
    free(b0);
    free(img.buf);
}

/* ---- no backing file left behind ------------------------------------- */

static void leave(const char *how, int want_lines)
{
    wct_require_prog(WCT_PROG("prog_leave"));
    char *dir = wct_scratch("leave");
    char dv[4300];
    snprintf(dv, sizeof dv, "WCACHE_DIR=%s", dir);
    const char *env[] = {dv, NULL};
    const char *argv[] = {WCT_PROG("prog_leave"), dir, how, NULL};
    struct wct_spec s = {.argv = argv, .env = env, .shim = 1,
                         .timeout_s = 60};
    struct wct_result r;
    cr_assert_eq(wct_run(&s, &r), 0);
    cr_assert(wct_ok(&r), "%s: %s %s", how, wct_status_str(&r), r.err);
    if (!strcmp(r.out, "skip\n")) {
        wct_result_free(&r);
        wct_scratch_cleanup();
        cr_skip_test("%s needs privileges this test does not have", how);
    }
    wct_result_free(&r);
    wait_guard(dir);
    char p[4300];
    snprintf(p, sizeof p, "%s/out", dir);
    size_t len;
    char *f = wct_slurp(p, &len);
    cr_assert_not_null(f);
    cr_assert_eq(len, (size_t)want_lines * 10, "%s: %zu bytes", how, len);
    free(f);
}

Test(leftover, after_chroot, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 60) { leave("chroot", 200); }
Test(leftover, after_setuid, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 60) { leave("setuid", 200); }
Test(leftover, after_exec, .init = setup, .fini = wct_scratch_cleanup,
     .timeout = 60) { leave("exec", 100); }

/* The program never sees its guard: wait(-1) finds no child, no SIGCHLD
 * arrives; and under a PR_SET_CHILD_SUBREAPER parent, which inherits the
 * guard when the program dies, the guard still replays and exits. */
Test(leftover, guard_invisible_under_a_subreaper, .init = setup,
     .fini = wct_scratch_cleanup, .timeout = 60)
{
    wct_require_prog(WCT_PROG("prog_leave"));
    char *dir = wct_scratch("leave");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t sub = fork();
    cr_assert(sub >= 0);
    if (sub == 0) {
        /* The subreaper: runs the program, reaps everything that comes
         * to it, reports the program's status and output. */
        close(p[0]);
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        char dv[4300];
        snprintf(dv, sizeof dv, "WCACHE_DIR=%s", dir);
        int out[2];
        if (pipe(out) != 0)
            _exit(10);
        pid_t prog = fork();
        if (prog == 0) {
            dup2(out[1], 1);
            close(out[0]);
            setenv("LD_PRELOAD", WCT_SHIM_SO, 1);
            setenv("WCACHE_MIN_WRITES", "0", 1);
            putenv(dv);
            execl(WCT_PROG("prog_leave"), "prog_leave", dir, "wait",
                  (char *)NULL);
            _exit(127);
        }
        close(out[1]);
        char buf[256] = {0};
        ssize_t n = read(out[0], buf, sizeof buf - 1);
        (void)n;
        int others = 0;
        pid_t w;
        while ((w = wait(NULL)) > 0 || errno == EINTR)
            if (w > 0 && w != prog)
                others++;
        dprintf(p[1], "%s|%d\n", buf, others);
        _exit(0);
    }
    close(p[1]);
    char res[512] = {0};
    size_t got = 0;
    ssize_t k;
    while ((k = read(p[0], res + got, sizeof res - 1 - got)) > 0)
        got += (size_t)k;
    close(p[0]);
    int st;
    cr_assert_eq(waitpid(sub, &st, 0), sub);
    cr_assert(strstr(res, "wait: -1 No child processes; SIGCHLD 0;"),
              "the program saw its guard: %s", res);
    cr_assert(strstr(res, "|1"), "the subreaper did not reap exactly one "
              "guard: %s", res);
    wait_guard(dir);
    char path[4300];
    snprintf(path, sizeof path, "%s/out", dir);
    size_t len;
    char *f = wct_slurp(path, &len);
    cr_assert(f && len == 1000, "%zu bytes", len);
    free(f);
}

/* ---- a guard that cannot work, or cannot write the file ------------------- */

/* Backing files in `store` of root's and of nobody's (wcache-65534). */
static int privs_stores_left(const char *store)
{
    int n = 0;
    const char *sub[] = {"wcache-0", "wcache-65534"};
    for (int i = 0; i < 2; i++) {
        char d[4600];
        snprintf(d, sizeof d, "%s/%s", store, sub[i]);
        DIR *dh = opendir(d);
        if (!dh)
            continue;
        struct dirent *e;
        while ((e = readdir(dh)))
            n += strncmp(e->d_name, "cache.", 6) == 0;
        closedir(dh);
    }
    return n;
}

/* Does process pid live (a zombie does not)? */
static int lives(pid_t pid)
{
    char p[64], st[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, st, sizeof st - 1);
    close(fd);
    st[n > 0 ? n : 0] = 0;
    const char *paren = strrchr(st, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* prog_privs guardgone left root: its guard, root's, is killed alone
 * (any other mode says nothing). */
struct privs_ctx {
    const char *store;
    int shim;
};

static void privs_line(void *ctx, const char *line, int reply_fd)
{
    const struct privs_ctx *pc = ctx;
    const char *store = pc->store;
    if (strcmp(line, "dropped"))
        return;
    pid_t g = find_guard(store);
    for (int i = 0; i < 400 && pc->shim && g <= 0; i++) {
        usleep(5000);           /* its exec may not be done */
        g = find_guard(store);
    }
    cr_expect(g > 0 || !pc->shim, "no guard watched the program");
    if (g > 0)
        kill(g, SIGTERM);
    /* That one, not every guard: the program's flusher tries to start
     * another every 250 ms, which leaves at once (it cannot open root's
     * directory), and a look at that moment saw it (a loaded run). */
    for (int i = 0; i < 400 && g > 0 && lives(g); i++)
        usleep(5000);
    cr_expect(g <= 0 || !lives(g), "the guard did not go");
    cr_assert(write(reply_fd, "g", 1) == 1);
}

/* prog_privs MODE in a directory of its own under `base`, with or without
 * the shim; what its log holds once no backing file waits (or after 10
 * s). NULL when the set-up is not possible here (not root). */
static char *privs_run(const char *base, const char *mode, int shim)
{
    char dir[4300], w[4400], store[4400], denv[4500], log[4500];
    snprintf(dir, sizeof dir, "%s/%s-%d", base, mode, shim);
    snprintf(w, sizeof w, "%s/w", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(log, sizeof log, "%s/log", w);
    /* Reachable by nobody; w writable by nobody except where the log
     * must be root's alone; the store as /dev/shm is. */
    cr_assert(mkdir(dir, 0755) == 0 && chmod(dir, 0755) == 0 &&
              mkdir(w, 0755) == 0 && mkdir(store, 0755) == 0);
    cr_assert(chmod(w, strcmp(mode, "privdrop") ? 0777 : 0755) == 0 &&
              chmod(store, 01777) == 0);
    snprintf(denv, sizeof denv, "WCACHE_DIR=%s", store);
    /* The default policy: the cache is made at the file's 9th write,
     * after the process left root; guardgone's at the open, before. */
    int early = !strcmp(mode, "guardgone");
    const char *env[] = {denv, "WCACHE_FLUSH_MS=600000",
                         early ? "WCACHE_MIN_WRITES=0" : "WCACHE_MIN_WRITES=",
                         early ? "WCACHE_SETUP_US=0" : "WCACHE_SETUP_US=",
                         NULL};
    const char *argv[] = {WCT_PROG("prog_privs"), mode, dir, NULL};
    struct privs_ctx pc = {store, shim};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                            .timeout_s = 60, .on_line = privs_line,
                            .ctx = &pc};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run prog_privs");
    int skip = WIFEXITED(res.status) && WEXITSTATUS(res.status) == 2;
    cr_assert(skip || (WIFSIGNALED(res.status) &&
                       WTERMSIG(res.status) == SIGKILL),
              "prog_privs %s (%s): %s\n%s", mode, shim ? "shim" : "kernel",
              wct_status_str(&res), res.err);
    wct_result_free(&res);
    if (skip)
        return NULL;
    double start = now_ms();
    while (privs_stores_left(store) > 0 && now_ms() - start < 10000)
        usleep(10000);
    size_t len;
    char *got = wct_slurp(log, &len);
    cr_assert(got, "no log left by prog_privs %s", mode);
    return got;
}

/* guard.c invariant (7), cache/file.c: the program's log after SIGKILL
 * holds what the kernel's does, every line, although no guard could
 * replay it (nullexec, noclone: the process stopped caching) or could
 * open it (privdrop, readonly: the file was never cached). */
static void privs_same(const char *mode)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_privs"));
    char *base = wct_scratch("privs");
    cr_assert(chmod(base, 0755) == 0);
    char *want = privs_run(base, mode, 0);
    if (!want) {
        const char *ci = getenv("CI");
        cr_assert(!(ci && !strcmp(ci, "true")), "prog_privs %s: no set-up "
                  "in CI", mode);
        cr_skip_test("needs root and mount namespaces");
    }
    cr_assert_eq(strlen(want), (3010 + !strcmp(mode, "guardgone")) * 11,
                 "the kernel's log: %zu bytes", strlen(want));
    char *got = privs_run(base, mode, 1);
    cr_expect(strcmp(want, got) == 0, "%s: the log holds %zu bytes under "
              "the shim, %zu without", mode, strlen(got), strlen(want));
    free(want);
    free(got);
    free(base);
}

#define PRIVS_TEST(name, mode)                                             \
    Test(kill, name, .fini = wct_scratch_cleanup, .timeout = 120)          \
    {                                                                      \
        privs_same(mode);                                                  \
    }
PRIVS_TEST(a_guard_that_cannot_exec, "nullexec")
PRIVS_TEST(no_thread_nor_guard_can_be_made, "noclone")
PRIVS_TEST(a_file_opened_before_leaving_root, "privdrop")
PRIVS_TEST(a_file_created_read_only, "readonly")
/* guard.c invariant (7): WC_GUARD_MISSES checks found no guard. */
PRIVS_TEST(no_guard_can_replace_the_one_killed, "guardgone")
