/*
 * test_shim_threads.c - threads and signals under the shim (issue 3, point
 * 4): writers in several threads on one file and on separate files
 * (tests/prog_threads.c), and a 10 kHz timer signal whose handler writes to
 * the file the main loop writes (tests/prog_sigstorm.c). Every program is
 * run without the shim too; both runs must satisfy the same checks and,
 * where the result is deterministic, leave identical files.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

#define REC 64

static char *scratch;

static void setup(void)
{
    scratch = wct_scratch("threads");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(threads, .init = setup, .fini = teardown, .timeout = 120);

/* The record prog_threads writes for thread t, sequence s. */
static void record(char *buf, int t, int s)
{
    int n = snprintf(buf, REC + 1, "T%02d S%07d ", t, s);
    for (int i = n; i < REC - 1; i++)
        buf[i] = (char)('a' + (t + s + i) % 26);
    buf[REC - 1] = '\n';
}

/*
 * A file of records from `threads` threads, `recs` each, in any
 * interleaving: every record whole, each exactly once, each thread's in
 * its program order. `prefix`: each thread may have stopped early (the
 * process ended while they wrote): its records so far, without a gap.
 * Returns "ok" or what is wrong (static buffer).
 */
static const char *check_interleaved(const char *path, int threads, int recs,
                                     int prefix)
{
    static char msg[256];
    size_t len;
    char *data = wct_slurp(path, &len);
    if (!data)
        return "file missing";
    int next[64] = {0};
    const char *res = "ok";
    if (prefix ? len % REC != 0 : len != (size_t)threads * recs * REC) {
        snprintf(msg, sizeof msg, "size %zu, expected %zu", len,
                 prefix ? len / REC * REC : (size_t)threads * recs * REC);
        res = msg;
    }
    for (size_t off = 0; off + REC <= len && res == (const char *)"ok";
         off += REC) {
        int t, s;
        char want[REC + 1], rec[REC + 1];
        memcpy(rec, data + off, REC);     /* sscanf would strlen the file */
        rec[REC] = 0;
        if (sscanf(rec, "T%d S%d", &t, &s) != 2 || t < 0 ||
            t >= threads || s < 0 || s >= recs) {
            snprintf(msg, sizeof msg, "garbage at offset %zu: %.20s", off,
                     rec);
            res = msg;
            break;
        }
        record(want, t, s);
        if (memcmp(want, data + off, REC) != 0) {
            snprintf(msg, sizeof msg, "torn record at offset %zu", off);
            res = msg;
        } else if (s != next[t]) {
            snprintf(msg, sizeof msg, "thread %d: record %d at offset %zu, "
                     "expected %d (lost, doubled or reordered)", t, s, off,
                     next[t]);
            res = msg;
        }
        next[t] = s + 1;
    }
    free(data);
    return res;
}

/* The library of the shim's run: NULL, the normal build; else a test
 * build's (stress_threads). */
static const char *shim_so;
/* What the stress build's runs said at exit (cache/blk.c): summed. */
static long stress_claims, stress_waits;

static void run_threads(const char *mode, int threads, int recs,
                        const char *const *env)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_threads"));
    char nt[16], nr[16];
    snprintf(nt, sizeof nt, "%d", threads);
    snprintf(nr, sizeof nr, "%d", recs);
    char *listing[2], *out[2];
    const char *verdict[2];
    static int round;               /* a test may run a mode again */
    round++;
    for (int shim = 0; shim < 2; shim++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s-%d-%d", scratch, mode, round, shim);
        cr_assert(mkdir(dir, 0755) == 0);
        const char *argv[] = {WCT_PROG("prog_threads"), mode, dir, nt, nr,
                              NULL};
        const char *envs[16] = {NULL};
        char pre[4200];
        int ne = 0;
        if (shim && shim_so) {
            snprintf(pre, sizeof pre, "LD_PRELOAD=%s", shim_so);
            envs[ne++] = pre;
        }
        for (int i = 0; env && env[i] && ne < 15; i++)
            envs[ne++] = env[i];
        struct wct_spec spec = {.argv = argv, .env = envs,
                                .shim = shim && !shim_so, .timeout_s = 90};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_expect(wct_ok(&res), "%s %s: %s\n%s%s", mode, shim ? "with shim"
                  : "without shim", wct_status_str(&res), res.out, res.err);
        out[shim] = strdup(res.out);
        const char *said = shim && shim_so ? strstr(res.err,
                                                    "wcache-blk-stress:")
                                           : NULL;
        long c, rv, w;
        if (said && sscanf(said, "wcache-blk-stress: claims %ld revokes %ld "
                           "waits %ld", &c, &rv, &w) == 3) {
            stress_claims += c;
            stress_waits += w;
        }
        wct_result_free(&res);
        char path[4200];
        snprintf(path, sizeof path, "%s/out", dir);
        verdict[shim] = "ok";
        if (strcmp(mode, "append") == 0 || strcmp(mode, "shared") == 0 ||
            strcmp(mode, "dup") == 0 || strcmp(mode, "late") == 0 ||
            strcmp(mode, "stdout") == 0 || strcmp(mode, "cell") == 0 ||
            strcmp(mode, "uring") == 0 || strcmp(mode, "ownappend") == 0) {
            verdict[shim] = strdup(check_interleaved(path, threads, recs, 0));
            /* Interleaving differs from run to run: drop the file. */
            unlink(path);
        } else if (strcmp(mode, "exitwhile") == 0 ||
                   strcmp(mode, "exitopen") == 0 ||
                   strcmp(mode, "forkwhile") == 0) {
            /* forkwhile runs to the end: every record there */
            verdict[shim] = strdup(check_interleaved(
                path, threads, recs, strcmp(mode, "forkwhile") != 0));
            unlink(path);
        }
        listing[shim] = wct_tree_listing(dir, 0);
    }
    cr_assert_str_eq(verdict[0], "ok", "%s without the shim: %s (test bug?)",
                     mode, verdict[0]);
    cr_expect_str_eq(verdict[1], "ok", "%s with the shim: %s", mode,
                     verdict[1]);
    cr_expect_str_eq(out[0], out[1], "%s: output differs", mode);
    char *d = wct_first_diff(listing[0], listing[1]);
    cr_expect(*d == 0, "%s: files differ: %s", mode, d);
    free(d);
    for (int i = 0; i < 2; i++) {
        free(listing[i]);
        free(out[i]);
    }
}

Test(threads, append_one_file) { run_threads("append", 8, 20000, NULL); }
Test(threads, shared_offset_one_file) { run_threads("shared", 8, 20000, NULL); }
Test(threads, dup_descriptors_one_file) { run_threads("dup", 8, 10000, NULL); }
/* Through a guarded descriptor 1 while one thread fences it with stdio
 * calls and guards it again (shim/stdio.c invariant (2)). */
Test(threads, stdout_guard_and_fences) { run_threads("stdout", 8, 10000, NULL); }
/* The same through a descriptor 1 whose offset is in a cell (shared.c
 * invariant (6)): a parent that holds it and waits, as dash does, and
 * eight threads of the exec'd child, one of them settling it with fputs
 * and fflush while the others reserve in it. */
Test(threads, cell_reserves_and_settles) { run_threads("cell", 8, 10000, NULL); }
/* One thread first (no description lock taken), then eight. */
Test(threads, threads_made_after_writes) { run_threads("late", 8, 20000, NULL); }
/* The program's only thread writes without the file's lock while the
 * flusher intrudes every millisecond (cache_int.h, the one writer). */
Test(threads, one_writer_against_the_flusher)
{
    const char *env[] = {"WCACHE_FLUSH_MS=1", NULL};
    run_threads("late", 1, 300000, env);
}
/* One description and one file per round passed from thread to thread
 * in bursts: under the shim each is claimed by a thread and revoked by the
 * next, often while its owner is inside (wcache/blk.h); then the same
 * with the flusher intruding on the owners every millisecond. */
Test(threads, biased_locks_handed_over)
{
    run_threads("handover", 4, 20000, NULL);
}
Test(threads, biased_locks_against_the_flusher)
{
    const char *env[] = {"WCACHE_FLUSH_MS=1", NULL};
    run_threads("handover", 3, 10000, env);
}
/* The stress build (the Makefile, include/wcache/blk.h WC_BLK_STRESS),
 * which make test builds. */
#define STRESS_SO WCT_BUILD_DIR "/stress/libwcache.so"
static void require_stress(void)
{
    struct stat st;
    cr_assert(stat(STRESS_SO, &st) == 0, "%s missing: run make test",
              STRESS_SO);
}

/* The thread modes again with the biased locks' stress build (the
 * Makefile, include/wcache/blk.h WC_BLK_STRESS): descriptions and files
 * claimed at every second write through their mutex and revoked at the
 * next other thread's, while owners yield inside their sections, so that
 * revokers wait for them (the claims are counted: the run must have
 * claimed). */
Test(threads, biased_locks_stress_build)
{
    require_stress();
    shim_so = STRESS_SO;
    const char *flush[] = {"WCACHE_FLUSH_MS=1", NULL};
    run_threads("handover", 4, 10000, NULL);
    run_threads("handover", 3, 5000, flush);
    run_threads("shared", 8, 10000, NULL);
    run_threads("dup", 4, 10000, NULL);
    run_threads("append", 4, 10000, NULL);
    run_threads("separate", 4, 10000, flush);
    run_threads("late", 4, 10000, NULL);
    run_threads("stdout", 4, 10000, NULL);
    run_threads("ownappend", 4, 10000, NULL);
    run_threads("ownappend", 3, 10000, flush);
    const char *dflt[] = {"WCACHE_MIN_WRITES=", "WCACHE_SETUP_US=", NULL};
    run_threads("adoptrace", 4, 2400, dflt);
    shim_so = NULL;
    cr_expect(stress_claims > 1000 && stress_waits > 10,
              "the stress build claimed %ld times and waited for an owner "
              "inside %ld times: the runs did not exercise the bias",
              stress_claims, stress_waits);
}
Test(threads, pwrite_disjoint_ranges) { run_threads("pwrite", 8, 20000, NULL); }

/* Batches the flusher wrote in the background, from the shim's raw
 * statistics (WCACHE_STATS_RAW: one line per process image, appended to
 * a file that exists, as the wcache command makes it first). */
static long background_batches(const char *raw)
{
    size_t len;
    char *t = wct_slurp(raw, &len);
    long sum = 0;
    for (char *p = t; p && (p = strstr(p, "wb_background=")); p++)
        sum += atol(p + 14);
    free(t);
    return sum;
}

/* Every stream's write-back to the flusher thread (cache/async.c;
 * WCACHE_BACKGROUND_NS=0, which a fast local file system would never
 * choose): files written by one thread each, interleaved records of
 * eight threads to one file (the pages a batch holds are rewritten by
 * none, but read and settled by all), one thread then eight, appends
 * through one O_APPEND description, and the flusher also ticking every
 * millisecond. The batches must have run. */
Test(threads, background_write_back, .timeout = 600)
{
    char raw[4200], rawenv[4300];
    snprintf(raw, sizeof raw, "%s/raw", scratch);
    snprintf(rawenv, sizeof rawenv, "WCACHE_STATS_RAW=%s", raw);
    int rfd = open(raw, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(rfd, 0, "%s: %s", raw, strerror(errno));
    close(rfd);
    const char *env[] = {"WCACHE_BACKGROUND_NS=0", rawenv, NULL};
    const char *tick[] = {"WCACHE_BACKGROUND_NS=0", "WCACHE_FLUSH_MS=1",
                          rawenv, NULL};
    run_threads("separate", 8, 20000, env);
    run_threads("pwrite", 8, 20000, env);
    run_threads("late", 8, 20000, env);
    run_threads("late", 1, 100000, tick);
    run_threads("append", 4, 20000, env);
    run_threads("separate", 4, 20000, tick);
    long n = background_batches(raw);
    cr_assert_gt(n, 10, "only %ld batches were written in the background",
                 n);
}
/* exit() while threads append through descriptions of their own: the
 * shim's exit work makes them pass through one at a time while the others
 * still cache (io.c kernel_rw_locked, cache/file.c wc_file_kernel_begin). */
Test(threads, exit_while_threads_append)
{
    for (int i = 0; i < 15; i++)
        run_threads("exitwhile", 8, 40000, NULL);
}
/* Threads that open the file again and again while the shim's exit work
 * passes over the descriptions: one opened behind the pass is THROUGH
 * (fdtab.c attached_mode, wc_fd_opened_known), never CACHED (its appends
 * were lost) nor untracked (its kernel writes moved the end under the
 * runs of descriptions still cached: 16 of 20 runs had records elsewhere
 * than their lseek said). */
Test(threads, exit_while_threads_open)
{
    for (int i = 0; i < 10; i++)
        run_threads("exitopen", 8, 40000, NULL);
}

/* Every thread opens the file and appends at once, 200 rounds of 8 and
 * of 3 (the default WCACHE_MIN_WRITES): the file comes into the cache at
 * one description's 9th write
 * while the others still write their first records to the kernel; each
 * record must lie where its lseek said (fdtab.c attach_watchers' two
 * passes, registry.c invariant (5): attached one by one, 121 of 200
 * rounds had one elsewhere). */
Test(threads, file_comes_into_the_cache_while_others_write)
{
    const char *dflt[] = {"WCACHE_MIN_WRITES=", "WCACHE_SETUP_US=", NULL};
    run_threads("adoptrace", 8, 4800, dflt);
    run_threads("adoptrace", 3, 4800, dflt);
    run_threads("adoptrace", 8, 2400, NULL);    /* cached from the opens */
}
/* The same rounds with pwrites, each read back through one of 64 more
 * descriptions of the file, still WATCH when it comes into the cache:
 * calls on those go to the kernel without their lock, so no description
 * may cache a byte before every one is attached (attach_watchers' third
 * pass; probe W: unmarked one by one, 10 to 107 of 200 rounds missed a
 * record). */
Test(threads, read_back_while_the_file_comes_into_the_cache)
{
    const char *dflt[] = {"WCACHE_MIN_WRITES=", "WCACHE_SETUP_US=", NULL};
    run_threads("adoptread", 4, 4800, dflt);
}
/* A thread reads the file through a WATCH description of its own, in
 * order or after lseeks (calls that move the kernel's offset without the
 * description's lock), while another brings the file into the cache:
 * the attach read the offset before such a call moved it, and the next
 * read returned the same bytes again (probe Y: 9 to 12 of 300 rounds).
 * Now the attach sets the mode first and the call looks again after
 * (shim.h wc_watch_moved). 300 rounds. */
Test(threads, read_on_while_the_file_comes_into_the_cache)
{
    const char *dflt[] = {"WCACHE_MIN_WRITES=", "WCACHE_SETUP_US=", NULL};
    run_threads("adoptseek", 2, 30000, dflt);
}

/* fork from a thread while the others append through descriptions of
 * their own: fork's prepare makes them pass through one at a time, and
 * one not turned yet must not cache an append placed by a size the
 * kernel's appends through a turned one have moved (shim/fdtab.c
 * wc_file_for_good marks the file for good only after all have turned;
 * until then io.c's kernel writes hold the engine's file). Every record
 * at the end lseek gave. */
Test(threads, fork_while_threads_append)
{
    for (int i = 0; i < 4; i++)
        run_threads("forkwhile", 3, 20000, NULL);
}

/* exec while other threads write: every write that returned before it is
 * in the file (the exec ends them; shim/proc.c invariant (3)). */
Test(threads, exec_while_threads_write)
{
    for (int i = 0; i < 5; i++)
        run_threads("execwhile", 2, 1000000, NULL);
}

/* A writer's close makes its bytes visible to other processes while
 * other threads open and close the file (cache/file.c wc_file_publish). */
Test(threads, close_publishes_while_others_open)
{
    run_threads("publish", 2, 100000, NULL);
}

/* A descriptor closed (close, close_range, closefrom) while two threads
 * write 1-byte records to it: every write that returned is in the file.
 * The shim took the description out of its table before the kernel's
 * close, and a write in between went to the kernel's descriptor at its
 * stale offset, under the bytes written back (fdtab.c invariant (1b)). */
Test(threads, close_while_threads_write)
{
    run_threads("closerace", 2, 60, NULL);
    const char *now[] = {"WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0", NULL};
    run_threads("closerace", 2, 60, now);
}

/* The process stops caching (an io_uring is made) while eight threads
 * write one file through one description. */
Test(threads, caching_stops_while_threads_write)
{
    run_threads("uring", 8, 20000, NULL);
}
Test(threads, separate_files) { run_threads("separate", 8, 20000, NULL); }

/* fork() while other threads are inside the shim: no child may hang on a
 * lock a writer thread held at the fork, and no byte may be lost. */
Test(threads, fork_while_threads_write) { run_threads("forkstorm", 4, 20000, NULL); }

Test(threads, append_small_cache)
{
    const char *env[] = {"WCACHE_SIZE=1M", NULL};
    run_threads("append", 8, 20000, env);
}

Test(threads, pwrite_small_cache)
{
    const char *env[] = {"WCACHE_SIZE=1M", NULL};
    run_threads("pwrite", 8, 20000, env);
}

/* ---- signal storm ----------------------------------------------------- */

/*
 * The file prog_sigstorm leaves: 64-byte records R<seq> and 32-byte markers
 * M<seq>, whole, each kind in order, as many as the program counted.
 */
/* `slack`: the file may hold up to this many more records than counted
 * (a handler that exits can interrupt the loop between a write's return
 * and the count). */
static const char *check_storm_slack(const char *path, long records,
                                     long markers, long slack)
{
    static char msg[256];
    size_t len;
    char *d = wct_slurp(path, &len);
    if (!d)
        return "file missing";
    long nr = 0, nm = 0;
    size_t off = 0;
    const char *res = "ok";
    while (off < len) {
        size_t sz = d[off] == 'R' ? 64 : d[off] == 'M' ? 32 : 0;
        char want[64];
        if (sz) {
            memset(want, d[off] == 'R' ? '.' : '-', sz);
            want[0] = d[off];
            char digits[32];
            snprintf(digits, sizeof digits, "%09ld",
                     (d[off] == 'R' ? nr : nm) % 1000000000);
            memcpy(want + 1, digits, 9);
            want[10] = d[off] == 'R' ? '.' : '-';
            want[sz - 1] = '\n';
        }
        if (!sz || off + sz > len || memcmp(d + off, want, sz) != 0) {
            snprintf(msg, sizeof msg, "at offset %zu (after %ld records, %ld "
                     "markers): expected %c%09ld, found %.12s", off, nr, nm,
                     sz == 32 ? 'M' : 'R', sz == 32 ? nm : nr, d + off);
            res = msg;
            break;
        }
        if (sz == 64)
            nr++;
        else
            nm++;
        off += sz;
    }
    if (res == (const char *)"ok" &&
        (nr < records || nr > records + slack || nm != markers)) {
        snprintf(msg, sizeof msg, "file holds %ld records and %ld markers; "
                 "the program wrote %ld and %ld", nr, nm, records, markers);
        res = msg;
    }
    free(d);
    return res;
}

static const char *check_storm(const char *path, long records, long markers)
{
    return check_storm_slack(path, records, markers, 0);
}

static void storm(const char *mode, const char *const *env)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_sigstorm"));
    long markers[2] = {0, 0};
    for (int shim = 0; shim < 2; shim++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/storm-%s-%d", scratch, mode, shim);
        /* At most 2 s or a million records (64 MB), whichever ends first:
         * under the shim a record costs little, so the cap decides. */
        const char *argv[] = {WCT_PROG("prog_sigstorm"), path, mode, "2",
                              "1000000", NULL};
        struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                                .timeout_s = 45};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        const char *who = shim ? "with the shim" : "without the shim";
        cr_assert(!res.timed_out, "%s %s: hung (killed after 45 s)", mode,
                  who);
        cr_assert(wct_ok(&res), "%s %s: %s\n%s%s", mode, who,
                  wct_status_str(&res), res.out, res.err);
        long records = -1, errors = -1;
        cr_assert(sscanf(res.out, "records %ld markers %ld errors %ld",
                         &records, &markers[shim], &errors) == 3,
                  "unexpected output: %s", res.out);
        const char *v = check_storm(path, records, markers[shim]);
        cr_assert_str_eq(v, "ok", "%s %s: %s", mode, who, v);
        cr_log_info("storm %s %s: %ld records, %ld markers", mode, who,
                    records, markers[shim]);
        wct_result_free(&res);
        unlink(path);
    }
    cr_expect(markers[0] > 0 && markers[1] > 0, "the timer never fired");
}

/* tests/prog_sigjump.c PATH ARG, without the shim, then with it at its
 * defaults and with caching from the first write: each run must exit 0
 * and print `want` (the program checks the file itself). */
static void sigjump(const char *arg, const char *want)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_sigjump"));
    const char *now[] = {"WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0", NULL};
    static const char *const how[] = {"without the shim", "with the shim",
                                      "with the shim, caching at once"};
    for (int run = 0; run < 3; run++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/jump-%s-%d", scratch, arg, run);
        const char *argv[] = {WCT_PROG("prog_sigjump"), path, arg, NULL};
        struct wct_spec spec = {.argv = argv, .env = run == 2 ? now : NULL,
                                .shim = run > 0, .timeout_s = 90};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_expect(wct_ok(&res) && strstr(res.out, want), "%s %s: %s\n%s%s",
                  arg, how[run], wct_status_str(&res), res.out, res.err);
        wct_result_free(&res);
        unlink(path);
    }
}

/* A SIGALRM handler that leaves by siglongjmp, every 37 us, around the
 * writes of the main loop (tests/prog_sigjump.c checks the file). Under
 * the shim a jump out of a write left the thread "inside" for good: every
 * later write was queued, then refused with EINTR, the locks of the
 * abandoned call held, and most of the file lost (shim/signals.c
 * invariant (5): the handler now runs once the thread has left). */
Test(threads, signal_handler_jumps_out_of_a_write)
{
    sigjump("200000", "errors 0");
}

/* Two signals held while the thread was inside the shim (in fsync), the
 * first one's handler jumping away: the second waited in the shim's
 * queue for the thread's next call, where the kernel runs its handler at
 * once (shim/queue.c wc_shim_leave_slow sends every held signal again
 * before the first handler runs). */
Test(threads, signals_held_past_a_jump)
{
    sigjump("held", "missed 0");
}

/* A signal that lands after the shim's last look at the signals it holds
 * (the stress build sends SIGUSR2 there, queue.c wc_shim_leave_slow),
 * while the held SIGUSR1's handler jumps away: it waited in the thread's
 * queue for its next call into the shim, which a thread spinning on a
 * flag never makes. Every signal is blocked from that look on now. */
Test(threads, signal_after_the_last_look_past_a_jump)
{
    wct_require_prog(WCT_PROG("prog_sigjump"));
    require_stress();
    char path[4096], pre[4200];
    snprintf(path, sizeof path, "%s/jump-late", scratch);
    snprintf(pre, sizeof pre, "LD_PRELOAD=%s", STRESS_SO);
    const char *argv[] = {WCT_PROG("prog_sigjump"), path, "late", NULL};
    const char *env[] = {pre, "WCACHE_STRESS_SIGNAL=10",
                         "WCACHE_STRESS_LEAVE_SIGNAL=12",
                         "WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0", NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .timeout_s = 30};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_expect(wct_ok(&res) && strstr(res.out, "late jumped 1 missed 0"),
              "%s\n%s%s", wct_status_str(&res), res.out, res.err);
    wct_result_free(&res);
    unlink(path);
}

Test(threads, signal_storm_same_descriptor) { storm("plain", NULL); }
Test(threads, signal_storm_append) { storm("append", NULL); }
Test(threads, signal_storm_dup) { storm("dup", NULL); }
/* The storm while the flusher writes the stream's batches (cache/async.c):
 * handlers that write interrupt writers that post, settle and reap. */
Test(threads, signal_storm_background_write_back)
{
    const char *env[] = {"WCACHE_BACKGROUND_NS=0", NULL};
    storm("plain", env);
    storm("dup", env);
}

/*
 * The 1000th signal's handler calls _exit(0), most likely while the main
 * loop is inside the shim. Before exiting, the handler prints how many
 * writes had returned; all of them must be in the file, whole and in
 * order, as with the kernel. Where the signal lands is luck, so the shim
 * run is repeated.
 */
static void handler_ends(const char *mode, int runs, const char *so)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_sigstorm"));
    for (int run = 0; run < runs; run++) {
        int shim = run > 0;
        char path[4096];
        snprintf(path, sizeof path, "%s/storm-%s-%d", scratch, mode, run);
        const char *argv[] = {WCT_PROG("prog_sigstorm"), path, mode, "10",
                              "1000000", NULL};
        char pre[4200];
        snprintf(pre, sizeof pre, "LD_PRELOAD=%s", so ? so : "");
        const char *env[] = {pre, "WCACHE_STRESS_SIGNAL=14", NULL};
        struct wct_spec spec = {.argv = argv, .shim = shim && !so,
                                .env = shim && so ? env : NULL,
                                .timeout_s = 45};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        const char *who = !shim ? "without the shim"
                          : so  ? "with the stress build" : "with the shim";
        cr_assert(!res.timed_out, "%s: hung (killed after 45 s)", who);
        long records = -1, markers = -1;
        cr_assert(sscanf(res.out, "exit records %ld markers %ld", &records,
                         &markers) == 2, "%s: unexpected output: %s%s", who,
                  res.out, res.err);
        if (strncmp(mode, "kill", 4) == 0)
            cr_assert(WIFSIGNALED(res.status) &&
                      WTERMSIG(res.status) == SIGKILL,
                      "%s: %s, not SIGKILL", who, wct_status_str(&res));
        const char *v = check_storm_slack(path, records, markers, 1);
        cr_assert_str_eq(v, "ok", "%s (run %d): %s\n%s", who, run, v,
                         res.err);
        wct_result_free(&res);
        unlink(path);
    }
}

Test(threads, signal_handler_exits_inside_the_shim, .timeout = 1800)
{
    /* A handler's _exit in the window between the engine's write and the
     * shim's offset update, or during an early write-back inside the
     * write, showed about once in 800 runs (a queued marker on top of the
     * interrupted record): `make check-long` runs it 400 times. */
    handler_ends("exit", wct_shim_long() ? 401 : 9, NULL);
}

/* The same with the stress build, which signals the writer at its writes'
 * commit points (include/wcache/blk.h wc_blk_stress_commit), where most
 * of the 1000 signals then land: a handler's _exit there found the size
 * taken back (cache/cache.c wc_cache_unlock_all) under a write the shim
 * counted done (it moved the offset past it), and the marker the handler
 * had queued, written after it, was lost (a probe without the stress
 * build saw a hole of one record instead, 3 times in 460 runs). */
Test(threads, signal_handler_exits_at_a_writes_commit, .timeout = 600)
{
    require_stress();
    handler_ends("exit", wct_shim_long() ? 101 : 9, STRESS_SO);
    /* The handler writes a marker, then _exits: with the size taken back,
     * one run in about 70 lost that marker (200 runs: about 2.5 s). */
    handler_ends("exitw", wct_shim_long() ? 1001 : 201, STRESS_SO);
}

/* The handler writes (queued when it interrupted the shim), then kills
 * the process with raise(SIGKILL): the marker was lost in about a
 * quarter of the runs (the crash guard replays the store, which a queued
 * write has not reached); SIGKILL to itself is now an exit first
 * (shim/signals.c invariant (4)). */
Test(threads, signal_handler_kills_the_process_inside_the_shim,
     .timeout = 1800)
{
    handler_ends("kill", wct_shim_long() ? 101 : 13, NULL);
    handler_ends("killraw", wct_shim_long() ? 51 : 7, NULL);
}

Test(threads, signal_storm_small_cache)
{
    const char *env[] = {"WCACHE_SIZE=1M", "WCACHE_FLUSH_MS=5", NULL};
    storm("plain", env);
}

/* A real-time program (tests/prog_sched.c, pinned to one CPU, SCHED_FIFO)
 * and its own flusher: run without and with the shim, `env` added; both
 * must print `want` (the program skips, exit 77, where it may not become
 * real-time: then so does the test). */
static void realtime(const char *mode, const char *const *env,
                     const char *want)
{
    wct_require_prog(WCT_PROG("prog_sched"));
    for (int shim = 0; shim < 2; shim++) {
        const char *argv[] = {WCT_PROG("prog_sched"), mode, scratch, NULL};
        struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                                .timeout_s = 20};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        const char *who = shim ? "with the shim" : "without the shim";
        if (!res.timed_out && WIFEXITED(res.status) &&
            WEXITSTATUS(res.status) == 77) {
            cr_assert(!shim, "skipped with the shim only: %s", res.out);
            wct_result_free(&res);
            wct_scratch_cleanup();
            cr_skip_test("%s", res.out);
        }
        cr_assert(!res.timed_out, "%s %s: hung (killed after 20 s)", mode,
                  who);
        cr_assert(wct_ok(&res), "%s %s: %s\n%s%s", mode, who,
                  wct_status_str(&res), res.out, res.err);
        cr_assert_str_eq(res.out, want, "%s %s", mode, who);
        wct_result_free(&res);
    }
}

/* The program computes without a system call on its one CPU after its
 * writes: its flusher, which inherited its policy and CPU, never ran, nor
 * did its crash guard's intermediate, which the flusher reaps (probe Z:
 * nothing on disk within 3 s; the kernel has it at once). Now both run
 * SCHED_OTHER on any CPU (shim/flusher.c invariant (6), shim/guard.c
 * (10)). */
Test(threads, realtime_program_computing_on_one_cpu)
{
    realtime("spin", NULL, "visible\n");
}

/* The program lowers itself below the priority its flusher inherited and
 * goes on writing: the flusher's deadline pass met it inside its write
 * and waited by yielding, which at a higher priority never let it run
 * (probe Z: hung, 3 of 3 with a deadline every 5 ms). */
Test(threads, realtime_program_lowering_its_priority)
{
    const char *env[] = {"WCACHE_FLUSH_MS=20", NULL};
    realtime("lower", env, "done same\n");
}

/* A library that fakes the program's clock, preloaded before or after the
 * shim, with the clock frozen: the shim's deadline flush still comes
 * within WCACHE_FLUSH_MS of the real time while the program sleeps. It
 * went with the fake clock (probe Z: frozen, nothing reached the disk
 * while the program slept; slowed five times, five times later); the
 * shim's clock is now the vDSO's own (include/wcache/clock.h). */
#define FAKETIME_SO "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
Test(threads, deadline_with_the_programs_clock_faked)
{
    wct_require_prog(WCT_PROG("prog_sched"));
    cr_assert(access(FAKETIME_SO, R_OK) == 0,
              "%s missing: apt-get install faketime (tests/deps.sh)",
              FAKETIME_SO);
    const char *preload[] = {"LD_PRELOAD=" FAKETIME_SO,
                             "LD_PRELOAD=" FAKETIME_SO " " WCT_SHIM_SO,
                             "LD_PRELOAD=" WCT_SHIM_SO " " FAKETIME_SO};
    for (int i = 0; i < 3; i++) {
        const char *env[] = {preload[i], "FAKETIME=2020-01-01 00:00:00",
                             NULL};
        const char *argv[] = {WCT_PROG("prog_sched"), "idle", scratch,
                              NULL};
        struct wct_spec spec = {.argv = argv, .env = env, .timeout_s = 20};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_assert(wct_ok(&res), "%s: %s\n%s%s", preload[i],
                  wct_status_str(&res), res.out, res.err);
        cr_assert_str_eq(res.out, "visible\n", "%s", preload[i]);
        wct_result_free(&res);
    }
}

/* Two threads of different real-time priorities on one CPU open, append
 * to and close one file over and over: the high one waited for the low
 * one's claim on the file (shim/registry.c) by yielding alone, which
 * never let the low one run (probe Z: hung, 3 of 3). */
Test(threads, realtime_threads_claiming_one_file)
{
    realtime("claims", NULL, "done same\n");
}

/* A daemon that handles SIGTERM and keeps it blocked gets its flusher
 * (points::deadline_flush_with_a_handled_signal_kept_blocked), also under
 * an inherited seccomp filter that refuses process_vm_readv, with which
 * the shim reads its stack to see whether it runs in a handler: "cannot
 * read" had kept the flusher waiting for good (probe AB); the copy whose
 * faults the shim catches reads it then. */
Test(threads, deadline_with_a_handled_signal_blocked_under_a_filter)
{
    realtime("blocked", NULL, "visible\n");
    realtime("nopvr", NULL, "visible\n");
}

/* Every write made with a timer's signal blocked (so that its handler
 * never sees half a record), from a function whose buffer reaches below
 * where the handler ran while the program slept: the kernel's frames of
 * those deliveries stay in that memory, and the search for a live one
 * found them at every write, so the flusher never started (probe AB; the
 * defaults, which make the cache at a later write). Now a signal handled
 * through the shim's stand-in is asked of the stand-in alone. */
Test(threads, deadline_when_every_write_blocks_a_timer_signal)
{
    const char *env[] = {"WCACHE_MIN_WRITES=", "WCACHE_SETUP_US=", NULL};
    realtime("critsec", env, "visible\n");
}

/* A timer's handler that unblocks its own signal and writes a new file,
 * while threads are made and joined: a handler that wrote from inside the
 * shim in a thread that was ending took its signal queue, which the
 * thread's key destructor had unmapped (probe AB: SIGSEGV in about one
 * run in four; 5 runs here). */
/* The cache made by a thread: the descriptor table does not grow then
 * (it grew at the first pthread_create, while the process had one
 * thread: shim/ownfd.c invariant (6)). Growing a table that threads
 * share waits for an RCU grace period: 14-24 ms once per such program
 * here, two threads writing 6 MB took 47 ms where two processes took 13.
 * (The program does not become real-time: realtime() only runs it.) */
Test(threads, cache_made_by_a_thread_grows_no_table)
{
    realtime("fdsize", NULL, "fdsize kept\n");
}

/* The same in the fork child of a process that had a thread: the child
 * has one thread again (probe AD F5: it kept the parent's "threads
 * exist", so its first thread did not grow the table early, and its
 * cache's first descriptor waited for a grace period). */
Test(threads, fork_child_of_a_threaded_parent_grows_no_table)
{
    realtime("forkfdsize", NULL, "fdsize kept\n");
}

/* The same where a thread was made before the shim's constructor ran: by
 * the constructor of a library the program is linked with, as OpenBLAS
 * starts its pool (probe AD F5: the shim's pthread_create prepared
 * nothing before it was on; the first cached write then waited for two
 * RCU grace periods, 2,000 small writes 0.07x). */
Test(threads, thread_of_a_library_constructor_grows_no_table)
{
    wct_require_prog(WCT_PROG("prog_ctorthread"));
    for (int shim = 0; shim < 2; shim++) {
        const char *argv[] = {WCT_PROG("prog_ctorthread"), scratch, NULL};
        struct wct_spec spec = {.argv = argv, .shim = shim,
                                .timeout_s = 20};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        const char *who = shim ? "with the shim" : "without the shim";
        cr_assert(wct_ok(&res), "%s: %s\n%s%s", who, wct_status_str(&res),
                  res.out, res.err);
        cr_assert_str_eq(res.out, "fdsize kept\n", "%s", who);
        wct_result_free(&res);
    }
}

/* A POSIX lock held through descriptor 0 survives the program's first
 * pthread_create (probe AC F3: the shim grew the descriptor table with a
 * duplicate of descriptor 0, whose close dropped the lock). */
Test(threads, first_thread_keeps_the_programs_locks)
{
    realtime("lockfd0", NULL, "lock held\n");
}

/* Threads glibc makes itself, which do not go through the shim's
 * pthread_create: a SIGEV_THREAD timer's and C11's thrd_create (probe AD
 * F1: the one-thread fast paths stayed on, the two threads wrote without
 * locks: lost and torn records, SIGSEGV, a hang). */
Test(threads, thread_of_a_sigev_thread_timer, .timeout = 120)
{
    for (int i = 0; i < 3; i++)
        realtime("timerthread", NULL, "records whole\n");
}
Test(threads, c11_thread, .timeout = 120)
{
    for (int i = 0; i < 3; i++)
        realtime("c11thread", NULL, "records whole\n");
}
Test(threads, thread_of_an_aio_completion, .timeout = 120)
{
    for (int i = 0; i < 3; i++)
        realtime("aiothread", NULL, "records whole\n");
}

Test(threads, handler_writes_while_threads_end)
{
    for (int i = 0; i < 5; i++)
        realtime("exitsig", NULL, "done\n");
}
