/*
 * test_shim_errors.c - errors at the right moment (CONTRACT.md section 4;
 * engine side in cache/errors.c), and write-back without the calls a
 * seccomp filter refuses (issue 6 item 8).
 *
 *   tmpfs_*     a 1 MiB tmpfs filled by tests/prog_fill, dd and cp with
 *               and without the shim: same output, same short write, same
 *               messages, same bytes; the 100 MB attempt ends at once,
 *               with a handful of write-back calls (no loop); and by
 *               small files passed to the kernel while a log is cached.
 *   fuse_full   the same on tests/fuse_failfs with a 1 MiB limit: a full
 *               disk that answers EIO, statfs telling the truth.
 *   fuse_eio    fuse_failfs failing every write once a control file
 *               exists (an error only write-back can meet): the program
 *               gets EIO from the kernel soon after, without a loop of
 *               failing write-backs; the bytes before are on disk; close
 *               reports the loss.
 *   fuse_eio_reopen_after_failed_close, fuse_eio_retry_after_another_process,
 *   fuse_eio_append_after_failed_fsync, tmpfs_failed_write_back_retried_in_place
 *               what follows a close or fsync that reported a write-back
 *               error: the program's next open sees the bytes kept for a
 *               retry, an append lands after them, a retry never writes
 *               over another process's file, and does write over a file
 *               only its own failed attempt changed.
 *   rlimit_*    RLIMIT_FSIZE: EFBIG and SIGXFSZ from the kernel;
 *               RLIMIT_AS: the program's malloc gets what it gets without
 *               the shim (the store fitted to the limit, or no cache).
 *   errseq_*    ENOSPC after another process filled the disk: fsync
 *               reports it once, a close after a successful fsync is 0.
 *   seccomp_*   pwrite64, pwritev, pwritev2 and fallocate refused with
 *               EPERM: nothing lost, fsync and close as without the shim;
 *               calls the guard needs refused by a filter it inherits:
 *               SIGKILL loses nothing either.
 *
 * Every mount lives in a private mount namespace of the test process,
 * and is unmounted by .fini; the FUSE server dies with the test
 * (PR_SET_PDEATHSIG) and is stopped by .fini.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

static char *scratch;
static char mnt[4200], src[4200], ctl[4200], shmdir[4200], stats[4200];
static int mounted;
static pid_t server = -1;

static void setup(void)
{
    scratch = wct_scratch("errors");
    snprintf(mnt, sizeof mnt, "%s/mnt", scratch);
    snprintf(src, sizeof src, "%s/src", scratch);
    snprintf(ctl, sizeof ctl, "%s/ctl", scratch);
    snprintf(shmdir, sizeof shmdir, "%s/shm", scratch);
    snprintf(stats, sizeof stats, "%s/stats", scratch);
    cr_assert_eq(mkdir(mnt, 0755), 0);
    cr_assert_eq(mkdir(src, 0755), 0);
    /* The backing files of runs whose data could not be written stay
     * here, and go with the scratch directory. */
    cr_assert_eq(mkdir(shmdir, 0700), 0);
}

static char loopdev[64];   /* attached with losetup by the test, or "" */

static void teardown(void)
{
    if (server > 0) {
        kill(server, SIGTERM);
        for (int i = 0; i < 100; i++) {
            if (waitpid(server, NULL, WNOHANG) == server) {
                server = -1;
                break;
            }
            usleep(50000);
        }
        if (server > 0) {
            kill(server, SIGKILL);
            waitpid(server, NULL, 0);
        }
        server = -1;
    }
    if (mounted) {
        umount2(mnt, MNT_DETACH);
        mounted = 0;
    }
    if (loopdev[0]) {
        /* A test that attached an image by hand and stopped before it
         * detached it (the kernel detaches a busy one at its last close). */
        char cmd[128];
        snprintf(cmd, sizeof cmd, "losetup -d %s 2>/dev/null", loopdev);
        if (system(cmd) != 0)
            cr_log_warn("losetup -d %s failed", loopdev);
        loopdev[0] = 0;
    }
    wct_scratch_cleanup();
    free(scratch);
}

/* Skip (after cleaning up) where the test cannot mount; under CI fail. */
static void cannot(const char *what)
{
    const char *ci = getenv("CI");
    cr_assert(!(ci && !strcmp(ci, "true")), "%s: %s", what, strerror(errno));
    int e = errno;
    teardown();
    cr_skip_test("%s: %s (needs root and mount namespaces)", what,
                 strerror(e));
}

static void private_ns(void)
{
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        cannot("private mount namespace");
}

static void mount_tmpfs(const char *size)
{
    private_ns();
    char opts[64];
    snprintf(opts, sizeof opts, "size=%s,mode=0755", size);
    if (mount("tmpfs", mnt, "tmpfs", 0, opts) != 0)
        cannot("mount tmpfs");
    mounted = 1;
}

/* fuse_failfs over src on mnt: `limit` bytes (0: none), failing every
 * write while `ctl` exists. */
static void mount_failfs(unsigned long long limit)
{
    wct_require_prog(WCT_PROG("fuse_failfs"));
    if (access("/dev/fuse", R_OK | W_OK) != 0)
        cannot("/dev/fuse");
    private_ns();
    char lim[32];
    snprintf(lim, sizeof lim, "%llu", limit);
    struct stat before;
    cr_assert_eq(stat(mnt, &before), 0);
    pid_t parent = getpid();
    server = fork();
    cr_assert(server >= 0);
    if (server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        int nul = open("/dev/null", O_RDWR);
        dup2(nul, 0);
        dup2(nul, 1);
        execl(WCT_PROG("fuse_failfs"), "fuse_failfs", src, mnt, lim, ctl,
              (char *)NULL);
        _exit(127);
    }
    mounted = 1;
    for (int i = 0; i < 200; i++) {
        struct stat st;
        if (stat(mnt, &st) == 0 && st.st_dev != before.st_dev)
            return;
        if (waitpid(server, NULL, WNOHANG) == server) {
            server = -1;
            errno = EIO;
            cannot("fuse_failfs exited");
        }
        usleep(50000);
    }
    errno = ETIMEDOUT;
    cannot("fuse_failfs did not mount");
}

struct run {
    struct wct_result r;
    char *file;                 /* the target's bytes after the run */
    size_t len;
    unsigned long long wb_calls, through, errors;
};

/* The numbers of the WCACHE_STATS file (left at 0 when absent). */
static void read_stats(struct run *out)
{
    size_t n;
    char *s = wct_slurp(stats, &n);
    if (!s)
        return;
    const char *p = strstr(s, "issued (");
    if (p)
        sscanf(p, "issued (%llu write-back, %llu written through)",
               &out->wb_calls, &out->through);
    p = strstr(s, "write-back errors ");
    if (p)
        sscanf(p, "write-back errors %llu", &out->errors);
    free(s);
    unlink(stats);
}

/* Run argv once, with or without the shim; then read `target` and remove
 * it (and the control file). */
static void run_once(const char *const *argv, int shim, const char *target,
                     const char *const *env_extra, struct run *out)
{
    char e_stats[4300], e_dir[4300];
    snprintf(e_stats, sizeof e_stats, "WCACHE_STATS=%s", stats);
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    const char *env[8] = {e_stats, e_dir};
    int k = 2;
    for (int i = 0; env_extra && env_extra[i] && k < 7; i++)
        env[k++] = env_extra[i];
    env[k] = NULL;
    memset(out, 0, sizeof *out);
    unlink(stats);
    struct wct_spec s = {.argv = argv, .shim = shim, .env = env,
                         .timeout_s = 120};
    cr_assert_eq(wct_run(&s, &out->r), 0, "%s: %s", argv[0], strerror(errno));
    cr_assert(!out->r.timed_out, "%s (shim=%d) timed out", argv[0], shim);
    out->file = wct_slurp(target, &out->len);
    if (!out->file) {
        out->file = strdup("");
        out->len = 0;
    }
    read_stats(out);
    unlink(target);
    unlink(ctl);
}

static void run_free(struct run *r)
{
    wct_result_free(&r->r);
    free(r->file);
}

/* The lines of `err` without the ones that hold timings (dd's
 * "... copied, 0.01 s, 80 MB/s"). Malloc'd. */
static char *untimed(const char *err)
{
    char *out = calloc(1, strlen(err) + 1);
    const char *p = err;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (!memmem(p, n, " copied, ", 9))
            strncat(out, p, n);
        p += n;
    }
    return out;
}

/* The shim's run s ends in a few times the kernel's time (k), with a
 * bounded number of write-back calls. */
static void bounded(const char *what, const struct run *k,
                    const struct run *s, unsigned long long max_calls)
{
    cr_assert(s->r.seconds <= 20 * k->r.seconds + 2.0,
              "%s: %.2f s with the shim, %.2f s without", what, s->r.seconds,
              k->r.seconds);
    cr_assert(s->wb_calls <= max_calls,
              "%s: %llu write-back calls (%llu written through): a loop?",
              what, s->wb_calls, s->through);
}

/* The kernel's run and the shim's agree on everything the program and
 * another process can see; the shim's run ends in a few times the
 * kernel's time, with a bounded number of write-back calls. */
static void same(const char *what, struct run *k, struct run *s,
                 unsigned long long max_calls)
{
    cr_assert_eq(s->r.status, k->r.status, "%s: status %s (shim) vs %s",
                 what, wct_status_str(&s->r), wct_status_str(&k->r));
    cr_assert_str_eq(s->r.out, k->r.out, "%s: output differs:\n%s", what,
                     wct_first_diff(k->r.out, s->r.out));
    char *ke = untimed(k->r.err), *se = untimed(s->r.err);
    cr_assert_str_eq(se, ke, "%s: messages differ:\n%s", what,
                     wct_first_diff(ke, se));
    free(ke);
    free(se);
    cr_assert_eq(s->len, k->len, "%s: size %zu (shim) vs %zu", what, s->len,
                 k->len);
    cr_assert(memcmp(s->file, k->file, k->len) == 0, "%s: bytes differ",
              what);
    bounded(what, k, s, max_calls);
}

static void differential(const char *what, const char *const *argv,
                         const char *target, const char *const *env,
                         unsigned long long max_calls)
{
    struct run k, s;
    run_once(argv, 0, target, env, &k);
    run_once(argv, 1, target, env, &s);
    same(what, &k, &s, max_calls);
    cr_assert_eq(s.errors, 0, "%s: %llu write-back errors", what, s.errors);
    run_free(&k);
    run_free(&s);
}

/* prog_fill in each mode, 100 MB onto the mount. */
static void fill_modes(void)
{
    static const char *const modes[][2] = {
        {"write", "4096"}, {"write", "1000"}, {"append", "333"},
        {"pwrite", "5000"}, {"writev", "4096"},
    };
    char f[4300];
    snprintf(f, sizeof f, "%s/f", mnt);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        const char *argv[] = {WCT_PROG("prog_fill"), f, modes[i][0],
                              modes[i][1], "104857600", NULL};
        char what[64];
        snprintf(what, sizeof what, "prog_fill %s %s", modes[i][0],
                 modes[i][1]);
        differential(what, argv, f, NULL, 200);
    }
    /* A writer that ignores ENOSPC and tries all 100 MB. */
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "1000",
                          "104857600", "keep-going", NULL};
    differential("prog_fill keep-going", argv, f, NULL, 200);
}

static void dd_sizes(void)
{
    wct_require_tool("dd", "coreutils");
    char of[4300];
    snprintf(of, sizeof of, "of=%s/f", mnt);
    const char *bs[][2] = {{"bs=4k", "count=25600"}, {"bs=1000", "count=104858"}};
    for (int i = 0; i < 2; i++) {
        const char *argv[] = {"dd", "if=/dev/zero", of, bs[i][0], bs[i][1],
                              NULL};
        differential(bs[i][0], argv, of + 3, NULL, 200);
    }
}

static void cp_big(void)
{
    wct_require_tool("cp", "coreutils");
    char in[4300], out[4300];
    snprintf(in, sizeof in, "%s/big", scratch);
    snprintf(out, sizeof out, "%s/copy", mnt);
    size_t n = 3 << 20;
    char *b = malloc(n);
    wct_fill(b, n, 7);
    cr_assert_eq(wct_spit(in, b, n), 0);
    free(b);
    const char *argv[] = {"cp", in, out, NULL};
    differential("cp", argv, out, NULL, 200);
}

Test(errors, tmpfs_writer, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_tmpfs("1M");
    fill_modes();
}

/* A log kept open and cached, then small files, each written in one
 * write that the shim passes to the kernel (a file's first writes), until
 * the file system is full: the files that fail and the log's bytes must
 * be the kernel's. The small files' writes take their room from the budget
 * that keeps room for the log's cached bytes (cache/errors.c (6)): without
 * it they filled the disk, and the log's write-back at its close failed
 * (4,096 of its 142,890 bytes on disk). The script forks nothing between
 * the log's writes and its close (a fork is a consistency point). */
static const char log_then_small[] =
    "M=$0; rm -f \"$M\"/s*\n"
    "data=$(i=0; while [ $i -lt 100 ]; do printf 'small file line %03d\\n' $i;"
    " i=$((i+1)); done)\n"
    "exec 3>\"$M/log\"\n"
    "i=0; while [ $i -lt 3000 ]; do\n"
    "  echo \"log line $i of the cached log file, kept open\" >&3\n"
    "  i=$((i+1)); done\n"
    "j=0; fails=0\n"
    "while [ $j -lt 400 ] && [ $fails -lt 3 ]; do\n"
    "  printf '%s\\n' \"$data\" > \"$M/s$j\" 2>/dev/null ||"
    " { echo \"small file $j failed\"; fails=$((fails+1)); }\n"
    "  j=$((j+1)); done\n"
    "exec 3>&-\n"
    "echo log closed; rm -f \"$M\"/s*\n";

Test(errors, tmpfs_small_files_after_a_cached_log, .init = setup,
     .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_tool("dash", "dash");
    mount_tmpfs("1M");
    char log[4300];
    snprintf(log, sizeof log, "%s/log", mnt);
    const char *argv[] = {"dash", "-c", log_then_small, mnt, NULL};
    static const char *const env[] = {"WCACHE_MIN_WRITES=", NULL};
    differential("a cached log, then small files", argv, log, env, 200);
}

/* ftruncate of a file whose cached bytes could not be written back (the
 * server fails every write after the first): the kernel's answer (0) and
 * size, where the shim answered the write-back's EIO and left the size
 * (it flushed below a growing size first, and gave up when that failed).
 * fsync and close still report the lost bytes. */
Test(errors, fuse_eio_truncate, .init = setup, .fini = teardown,
     .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_failfs(0);
    char f[4300], c[4400];
    snprintf(f, sizeof f, "%s/t", mnt);
    snprintf(c, sizeof c, "ctl=%s@1", ctl);
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "1000", "10000",
                          c, "truncs=5000,20000", NULL};
    struct run k, s;
    run_once(argv, 0, f, NULL, &k);
    run_once(argv, 1, f, NULL, &s);
    cr_assert(wct_ok(&k.r) && wct_ok(&s.r), "%s / %s", k.r.err, s.r.err);
    for (int i = 0; i < 2; i++) {
        const char *out = i ? s.r.out : k.r.out;
        cr_assert(strstr(out, "ftruncate 5000 -> 0 ok\n") &&
                  strstr(out, "ftruncate 20000 -> 0 ok\n"),
                  "%s:\n%s", i ? "shim" : "kernel", out);
    }
    cr_assert(strstr(s.r.out, "close -> -1 Input/output error\n"), "%s",
              s.r.out);
    cr_assert_eq(s.len, k.len, "size %zu (shim) vs %zu", s.len, k.len);
    cr_assert_eq(k.len, 20000);
    run_free(&k);
    run_free(&s);
}

/* prog_failclose's records (40, or 400 in mode enospc) that its output
 * does not say failed, each at the offset the program wrote it (a failed
 * write does not move the offset), into buf (FC_MAX bytes); returns their
 * bytes. */
#define FC_MAX 40100
static size_t failclose_expected(const char *out, char *buf)
{
    size_t n = 0;
    int nrec = strstr(out, "records 400\n") ? 400 : 40;
    for (int i = 0; i < nrec; i++) {
        char key[32];
        snprintf(key, sizeof key, "write %d -> ", i + 1);
        if (strstr(out, key))
            continue;
        memset(buf + n, 'a' + i % 26, 100);
        buf[n + 99] = '\n';
        n += 100;
    }
    return n;
}

/* The file r read is every record whose write returned success, in
 * order, then `tail`; returns its length. */
static size_t file_is_records(const struct run *r, const char *tail,
                              int shim)
{
    static char want[FC_MAX];
    size_t n = failclose_expected(r->r.out, want), t = strlen(tail);
    memcpy(want + n, tail, t);
    n += t;
    cr_assert(r->len == n && !memcmp(r->file, want, n),
              "shim=%d: %zu bytes, %zu expected, ending \"%.20s\"\n%s%s",
              shim, r->len, n, r->len > 20 ? r->file + r->len - 20 : r->file,
              r->r.out, r->r.err);
    return n;
}

/* Run prog_failclose MODE on `dir` (the failfs mount, or a tmpfs), with
 * the shim or not, its opens watched as by default (the harness's
 * WCACHE_MIN_WRITES=0 caches at open, which hid the first problem) but in
 * mode enospc; f gets the file's path. The file is read into r and
 * removed. */
static void failclose_run(const char *dir, const char *mode, int shim,
                          char *f, size_t fsz, struct run *r)
{
    char c[4400];
    snprintf(f, fsz, "%s/g", dir);
    snprintf(c, sizeof c, "%s/filler", dir);
    int tmpfs = !strcmp(mode, "enospc") || !strncmp(mode, "xattr", 5);
    const char *argv[] = {WCT_PROG("prog_failclose"), f, tmpfs ? c : ctl,
                          mode, NULL};
    /* enospc: every record cached, none on the disk before the failed
     * write-back (a partial one notes the disk anyway). */
    const char *env[] = {tmpfs ? "WCACHE_MIN_WRITES=0"
                               : "WCACHE_MIN_WRITES=8",
                         NULL};
    run_once(argv, shim, f, env, r);
    cr_assert(wct_ok(&r->r), "%s, shim=%d: %s", mode, shim, r->r.err);
    cr_assert(strstr(r->r.out, "done\n"), "%s", r->r.out);
}

/* The recovery file the shim's message names, read and removed (NULL when
 * the message is not there). */
static char *aside_take(const char *f, const char *err, size_t *len)
{
    char aside[4400];
    snprintf(aside, sizeof aside, "%s.wcache-recovered.", f);
    const char *m = strstr(err, aside);
    if (!m)
        return NULL;
    size_t k = strlen(aside);
    while (m[k] && m[k] != '\n' && k < sizeof aside - 1) {
        aside[k] = m[k];
        k++;
    }
    aside[k] = 0;
    cr_assert(strstr(err, "changed after its write-back failed"), "%s", err);
    char *a = wct_slurp(aside, len);
    cr_assert(a, "%s: %s", aside, strerror(errno));
    cr_assert_eq(unlink(aside), 0);
    return a;
}

/* Every record whose write returned success is in `file` or in `aside`
 * (each at its offset; NULL: none), and nothing else is; with `file`
 * NULL (another process rewrote it, as it may the records that reached
 * it), the aside holds records and nothing else. */
static void records_kept(const char *out, const char *file, size_t flen,
                         const char *aside, size_t alen)
{
    static char want[FC_MAX];
    static const char zero[100];
    size_t n = failclose_expected(out, want), found = 0;
    for (size_t off = 0; off < n; off += 100) {
        int in_f = file && off + 100 <= flen &&
                   !memcmp(file + off, want + off, 100);
        int in_a = aside && off + 100 <= alen &&
                   !memcmp(aside + off, want + off, 100);
        found += in_a;
        cr_assert(in_f || in_a || !file, "record at %zu lost\n%s", off, out);
        cr_assert(!aside || off + 100 > alen || in_a ||
                  !memcmp(aside + off, zero, 100), "aside: junk at %zu", off);
    }
    cr_assert(flen <= n && (!aside || alen <= n), "%zu + %zu bytes, %zu "
              "written", flen, alen, n);
    cr_assert(file || found, "nothing aside");
}

/* After a close that reported a write-back error, the program opens the
 * file again and appends a line. That open was watched (its identity not
 * in the registry, which had dropped the file at the close), its append
 * went to the kernel at the end the disk had, and the retry of the cached
 * records at exit wrote over it: "appended" lost, 4,000 bytes of records
 * left. Now the file stays known while the engine keeps its bytes
 * (registry.c invariant (1)): the append lands after them, where fstat
 * said the end was. In both runs, the file is every record whose write
 * returned success, in order, then the line. */
Test(errors, fuse_eio_reopen_after_failed_close, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_failfs(0);
    char f[4300];
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        failclose_run(mnt, "reopen", shim, f, sizeof f, &r);
        size_t n = file_is_records(&r, "appended\n", shim);
        long size = -1;
        const char *sp = strstr(r.r.out, "size ");
        cr_assert(sp && sscanf(sp, "size %ld", &size) == 1, "%s", r.r.out);
        cr_assert_eq(size, (long)n, "shim=%d: fstat %ld, %zu expected\n%s",
                     shim, size, n, r.r.out);
        run_free(&r);
    }
}

/* After a close that reported a write-back error, another process
 * changes the file; then the program reaches a consistency point
 * (sync), where the shim retries the bytes it kept. It wrote them over
 * the other's (29 bytes, then zeros, then old records: the other's file
 * destroyed). Now (errors.c invariant (8)) they go beside the file, at
 * their offsets, with a message, and the file is the other's, renamed
 * or rewritten. The same when the program opens the file again after
 * the other's rewrite: it read the old records and appended after them
 * (the retry at its close wrote them over the other's). */
Test(errors, fuse_eio_retry_after_another_process, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_failfs(0);
    char f[4300];
    static const char other[] = "rewritten by another process\n";
    static const char other_app[] = "rewritten by another process\n"
                                    "appended\n";
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        size_t alen = 0;
        failclose_run(mnt, "other", shim, f, sizeof f, &r);
        cr_assert(r.len == sizeof other - 1 && !memcmp(r.file, other, r.len),
                  "shim=%d: the other process's file is %zu bytes: "
                  "\"%.40s\"\n%s%s", shim, r.len, r.file, r.r.out, r.r.err);
        char *a = aside_take(f, r.r.err, &alen);
        /* Records 9 to 40 were cached (the harness: WCACHE_SETUP_US=0). */
        cr_assert(!shim || strstr(r.r.out, "close -> -1 Input/output "
                                  "error\n"), "%s", r.r.out);
        cr_assert(!shim == !a, "shim=%d: %s", shim, r.r.err);
        if (a)
            records_kept(r.r.out, NULL, 0, a, alen);
        free(a);
        run_free(&r);

        /* The other renames it and changes its mode (its ctime moves):
         * the bytes go aside too, none lost. */
        failclose_run(mnt, "other-mv", shim, f, sizeof f, &r);
        char moved[4400];
        snprintf(moved, sizeof moved, "%s.renamed", f);
        size_t mlen = 0;
        char *m = wct_slurp(moved, &mlen);
        cr_assert(m, "%s: %s", moved, strerror(errno));
        a = aside_take(f, r.r.err, &alen);
        cr_assert(!shim == !a, "shim=%d: %s", shim, r.r.err);
        records_kept(r.r.out, m, mlen, a, alen);
        free(m);
        free(a);
        cr_assert_eq(unlink(moved), 0);
        run_free(&r);

        /* While the server fails, the recovery file cannot be made: the
         * bytes stay, said once (not at every deadline, each making and
         * removing a file on the server), and go aside once it works. */
        failclose_run(mnt, "other-failing", shim, f, sizeof f, &r);
        cr_assert_eq(r.len, 0, "shim=%d: \"%.40s\"", shim, r.file);
        const char *said = strstr(r.r.err, "stay cached");
        cr_assert(!shim == !said && (!said || !strstr(said + 1, "stay "
                  "cached")), "shim=%d: %s", shim, r.r.err);
        a = aside_take(f, r.r.err, &alen);
        cr_assert(!shim == !a, "shim=%d: %s", shim, r.r.err);
        if (a)
            records_kept(r.r.out, NULL, 0, a, alen);
        free(a);
        run_free(&r);

        /* The other rewrites it while the server works, then it fails
         * again: the bytes cannot go aside yet, and the program's failed
         * append through a new descriptor noted the other's file as the
         * engine's own: the next retry wrote the old records over it. */
        failclose_run(mnt, "late-clobber", shim, f, sizeof f, &r);
        cr_assert(r.len == sizeof other - 1 && !memcmp(r.file, other, r.len),
                  "shim=%d: the other process's file is %zu bytes: "
                  "\"%.40s\"\n%s%s", shim, r.len, r.file, r.r.out, r.r.err);
        cr_assert(strstr(r.r.out, "append -> -1 Input/output error\n"),
                  "shim=%d: %s", shim, r.r.out);
        a = aside_take(f, r.r.err, &alen);
        cr_assert(!shim == !a, "shim=%d: %s", shim, r.r.err);
        if (a)
            records_kept(r.r.out, NULL, 0, a, alen);
        free(a);
        run_free(&r);

        failclose_run(mnt, "other-reopen", shim, f, sizeof f, &r);
        cr_assert(strstr(r.r.out, "read 29: rewritten by another process\n"),
                  "shim=%d: %s", shim, r.r.out);
        cr_assert(strstr(r.r.out, "size 38\n"), "shim=%d: %s", shim, r.r.out);
        cr_assert(r.len == sizeof other_app - 1 &&
                  !memcmp(r.file, other_app, r.len), "shim=%d: \"%.60s\"",
                  shim, r.file);
        a = aside_take(f, r.r.err, &alen);
        cr_assert(!shim == !a, "shim=%d: %s", shim, r.r.err);
        if (a)
            records_kept(r.r.out, NULL, 0, a, alen);
        free(a);
        run_free(&r);
    }
}

/* An O_APPEND writer's fsync reports a write-back error; the server
 * works again and the program appends one more line through the same
 * descriptor. That append went to the disk's end, took the size the
 * program sees back to the disk's (offset 9 where the kernel has 3,009),
 * and the retry cut the cached run there: the acknowledged records lost,
 * a later fsync and close reporting success. Now the run lands first
 * (errors.c invariant (2)), then the line. */
Test(errors, fuse_eio_append_after_failed_fsync, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_failfs(0);
    char f[4300];
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        failclose_run(mnt, "append-fsync", shim, f, sizeof f, &r);
        cr_assert(!shim || strstr(r.r.out, "fsync -> -1 Input/output "
                                  "error\n"), "%s", r.r.out);
        /* (The shim's close may report the fsync's error once more:
         * CONTRACT section 4.) */
        size_t n = file_is_records(&r, "appended\n", shim);
        char line[64];
        snprintf(line, sizeof line, "size %zu\noffset %zu\n", n, n);
        cr_assert(strstr(r.r.out, line), "shim=%d: %zu expected\n%s", shim,
                  n, r.r.out);
        run_free(&r);
    }
}

/* The program itself changes the file whose close reported the error,
 * while the server still fails: a chmod (its ctime moves) was taken for
 * another process's change, and the bytes went aside, the file left
 * without them; an O_TRUNC open put aside the bytes the program had just
 * discarded, with a message blaming another process. Now the program's
 * own changes are noted (shim/meta.c own_change; an O_TRUNC open drops
 * the bytes): in place, and nothing aside. */
Test(errors, fuse_eio_own_changes_after_failed_close, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_failfs(0);
    char f[4300];
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        failclose_run(mnt, "self-chmod", shim, f, sizeof f, &r);
        cr_assert(!shim || strstr(r.r.out, "close -> -1 Input/output "
                                  "error\n"), "%s", r.r.out);
        cr_assert(!strstr(r.r.err, "changed after"), "shim=%d: %s", shim,
                  r.r.err);
        file_is_records(&r, "", shim);
        run_free(&r);

        failclose_run(mnt, "self-trunc", shim, f, sizeof f, &r);
        cr_assert(!strstr(r.r.err, "changed after"), "shim=%d: %s", shim,
                  r.r.err);
        cr_assert_eq(r.len, 0, "shim=%d", shim);
        run_free(&r);

        /* Unlinked by the program: its ctime moved, and the bytes were
         * put in a recovery file, a name the kernel never had. */
        failclose_run(mnt, "self-unlink", shim, f, sizeof f, &r);
        cr_assert(!strstr(r.r.err, "changed after"), "shim=%d: %s", shim,
                  r.r.err);
        DIR *dh = opendir(mnt);
        cr_assert_not_null(dh);
        for (struct dirent *de; (de = readdir(dh));)
            cr_assert(!strstr(de->d_name, ".wcache-recovered."), "%s made",
                      de->d_name);
        closedir(dh);
        run_free(&r);
    }
}

/* A write-back that fails with ENOSPC on ext4 or tmpfs still moves the
 * file's mtime and ctime (the kernel updates them before the copy). The
 * shim took its own failed attempt for another process's change: once
 * the disk had room again, its retry put every byte in a recovery file
 * and left the file empty. Now the disk note is taken after a failed
 * attempt too (flush.c issue()): the retry writes the file in place. */
Test(errors, tmpfs_failed_write_back_retried_in_place, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_tmpfs("1M");
    char f[4300];
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        failclose_run(mnt, "enospc", shim, f, sizeof f, &r);
        cr_assert(!shim || strstr(r.r.out, "close -> -1 No space left on "
                                  "device\n"), "%s", r.r.out);
        cr_assert(!strstr(r.r.err, "wcache-recovered"), "%s", r.r.err);
        cr_assert_eq(file_is_records(&r, "", shim), 40000);
        run_free(&r);
    }
}

/* The same, the program holding the file (its fsync failed) and setting
 * an extended attribute of it before the disk has room again: its own
 * change (its ctime moved) was taken for another's, and the bytes went
 * aside, the file left empty, fsync and close failing (shim/meta.c
 * own_change). In place now, and the close answers 0; through
 * syscall(SYS_fsetxattr) too (shim/syscall.c). */
Test(errors, tmpfs_own_xattr_after_failed_fsync, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_tmpfs("1M");
    char f[4300];
    for (int k = 0; k < 4; k++) {
        int shim = k & 1;
        struct run r;
        failclose_run(mnt, k < 2 ? "xattr" : "xattr-raw", shim, f, sizeof f,
                      &r);
        cr_assert(!strstr(r.r.out, "fsetxattr ->"), "%s", r.r.out);
        /* (The second fsync may report the failure of the write-back
         * made before the fsetxattr, as a new one: errseq.) */
        cr_assert(!shim || strstr(r.r.out, "fsync -> -1 No space left on "
                                  "device\n"), "%s", r.r.out);
        cr_assert(!strstr(r.r.out, "close ->"), "%s", r.r.out);
        cr_assert(!strstr(r.r.err, "wcache-recovered"), "%s", r.r.err);
        cr_assert_eq(file_is_records(&r, "", shim), 40000);
        run_free(&r);
    }
}

/* Records of `tag` whole in the file (a line "X<k>:...") */
static long tagged(const char *data, size_t len, char t)
{
    long n = 0;
    for (size_t i = 0; i < len; i++)
        if ((i == 0 || data[i - 1] == '\n') && data[i] == t &&
            i + 1 < len && data[i + 1] >= '0' && data[i + 1] <= '9')
            n++;
    return n;
}

/* Two processes under the shim append 41-byte records to one file on a
 * 1 MiB tmpfs until it is full. Each caches what its own room budget
 * allows (it cannot see the other's cached bytes), so one's write-back
 * fails with ENOSPC, which its fsync and close report. Its retry wrote its
 * appended records at the offsets it had cached them at, over the records
 * the other had appended meanwhile: the other, told that every write, its
 * fsync and its close succeeded, lost them (a probe: 147 of 25,428 left).
 * Now the run is retried at the end of the file (cache/errors.c (2)): a
 * writer told of no error has every record it was told it wrote. The
 * writer that failed exits with its run unwritten, and its guard replays
 * it: at its offsets, until the run went at the end there too (replay.c
 * (8)): in about one run in four, 12,588 of the other's records were
 * overwritten (errors::tmpfs_appended_run_replayed_at_the_end makes it
 * happen every time). */
Test(errors, tmpfs_two_appenders, .init = setup, .fini = teardown,
     .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_tmpfs("1M");
    char e_dir[4300], script[13000];
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    const char *env[] = {e_dir, NULL};
    snprintf(script, sizeof script,
             "rm -f '%s/app'; "
             "'%s' '%s/app' append 41 2000000 tag=A > '%s/A.out' & "
             "'%s' '%s/app' append 41 2000000 tag=B > '%s/B.out' & wait",
             mnt, WCT_PROG("prog_fill"), mnt, scratch,
             WCT_PROG("prog_fill"), mnt, scratch);
    int clean = 0;
    for (int round = 0; round < 6; round++) {
        struct wct_result res;
        cr_assert(wct_sh(1, NULL, env, 120, &res, script) == 0);
        cr_assert(!res.timed_out, "round %d: hung", round);
        wct_result_free(&res);
        char path[4300];
        snprintf(path, sizeof path, "%s/app", mnt);
        size_t len;
        char *data = wct_slurp(path, &len);
        cr_assert(data, "round %d: no file", round);
        for (char t = 'A'; t <= 'B'; t++) {
            snprintf(path, sizeof path, "%s/%c.out", scratch, t);
            size_t olen;
            char *out = wct_slurp(path, &olen);
            cr_assert(out, "round %d: no output of %c", round, t);
            const char *f = strstr(out, "full ");
            long full = f ? atol(f + 5) : -1;
            int told_ok = strstr(out, "fsync -> 0") && strstr(out,
                                                               "close -> 0");
            long have = tagged(data, len, t);
            if (told_ok) {
                clean++;
                cr_expect(have >= full, "round %d: writer %c was told of no "
                          "error, wrote %ld records, and %ld are in the "
                          "file:\n%s", round, t, full, have, out);
            }
            free(out);
        }
        free(data);
    }
    cr_expect(clean > 0, "no writer was told of no error: the test saw "
              "nothing");
}

/* Room taken by the program's own calls that are not writes: 500 KB
 * cached in 1,000-byte records on a 2 MB tmpfs, then fallocate,
 * posix_fallocate or sendfile of 1.8 MB into another file (copy_file_range
 * and splice take their room the same way). The kernel answers ENOSPC (or a short copy) there and keeps the
 * records; before shim/meta.c (7) the call took the records' room and
 * their write-back failed at fsync and close (f 294,912 bytes of
 * 500,000). */
Test(errors, tmpfs_room_taken_by_calls, .init = setup, .fini = teardown,
     .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_tmpfs("2M");
    char f[4300];
    snprintf(f, sizeof f, "%s/f", mnt);
    static const char *const how[] = {"fallocate", "posix_fallocate",
                                      "sendfile"};
    for (size_t i = 0; i < sizeof how / sizeof *how; i++) {
        char opt[64];
        snprintf(opt, sizeof opt, "take=%s:1800000@500", how[i]);
        const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "1000",
                              "600000", opt, NULL};
        differential(how[i], argv, f, NULL, 200);
    }
}

Test(errors, tmpfs_dd, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    mount_tmpfs("1M");
    dd_sizes();
}

Test(errors, tmpfs_cp, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    mount_tmpfs("1M");
    cp_big();
}

Test(errors, fuse_full, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_failfs(1 << 20);
    fill_modes();
    dd_sizes();
    cp_big();
}

/* Every write fails once the control file exists; statfs says there is
 * room, so only write-back meets the error. After it, the file passes
 * through: the next write gets EIO from the kernel, at once. */
Test(errors, fuse_eio, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_failfs(0);
    char f[4300], c[4400];
    snprintf(f, sizeof f, "%s/f", mnt);
    snprintf(c, sizeof c, "ctl=%s@100", ctl);
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "4000",
                          "102400000", "sync-at=100", c, "syncfs", NULL};
    struct run k, s;
    run_once(argv, 0, f, NULL, &k);
    run_once(argv, 1, f, NULL, &s);
    /* syncfs reports the bytes its file system could not take (it
     * returned 0 while they were cached and unwritten). */
    cr_assert(strstr(s.r.out, "syncfs -> -1 Input/output error\n"), "%s",
              s.r.out);
    cr_assert(wct_ok(&k.r) && wct_ok(&s.r), "%s / %s", k.r.err, s.r.err);
    /* The kernel: EIO for record 101. The shim: EIO for a later record
     * (those before it were cached when the server failed), then the
     * loss reported by fsync and close. */
    cr_assert(strstr(k.r.out, "write 101 -> -1 Input/output error\n"),
              "%s", k.r.out);
    cr_assert(strstr(s.r.out, " -> -1 Input/output error\nfull "), "%s",
              s.r.out);
    cr_assert(strstr(s.r.out, "fsync -> -1 Input/output error\n"), "%s",
              s.r.out);
    cr_assert(strstr(s.r.out, "close -> -1 Input/output error\n"), "%s",
              s.r.out);
    cr_assert(!strstr(s.r.out, ", errno "), "errno changed by a write that "
              "succeeded:\n%s", s.r.out);
    /* What was synced is there, nothing else. */
    cr_assert_eq(s.len, k.len, "size %zu (shim) vs %zu", s.len, k.len);
    cr_assert_eq(k.len, 100 * 4000);
    cr_assert(memcmp(s.file, k.file, k.len) == 0, "bytes differ");
    /* No loop: a few failed write-backs (pressure, fsync, close, exit),
     * not one per write. */
    cr_assert(s.wb_calls + s.through <= 40 && s.errors <= 10,
              "%llu write-back calls, %llu through, %llu errors",
              s.wb_calls, s.through, s.errors);
    cr_assert(s.r.seconds <= 20 * k.r.seconds + 5.0, "%.2f s vs %.2f s",
              s.r.seconds, k.r.seconds);
    run_free(&k);
    run_free(&s);

    /* A writer that ignores the errors and writes all 100 MB: each write
     * is answered by the kernel; the cached data is not retried per
     * write (no write-back calls but a few). */
    const char *argv2[] = {WCT_PROG("prog_fill"), f, "write", "4000",
                           "102400000", "sync-at=100", c, "keep-going", NULL};
    run_once(argv2, 0, f, NULL, &k);
    run_once(argv2, 1, f, NULL, &s);
    cr_assert(wct_ok(&k.r) && wct_ok(&s.r), "%s / %s", k.r.err, s.r.err);
    cr_assert(strstr(k.r.out, "full 100\nfailed 25500\n"), "%s", k.r.out);
    cr_assert(strstr(s.r.out, "close -> -1 Input/output error\n"), "%s",
              s.r.out);
    /* The kernel's bytes, then at most the records the shim acknowledged
     * (cached before the server failed) if a later retry got them there:
     * never a record the program was told had failed. */
    /* The 100 records the kernel took before the server failed (the
     * kernel's own run sometimes leaves more: FUSE's page cache gets some
     * of the failed records to the server when it retries). */
    size_t synced = 100 * 4000;
    cr_assert(k.len >= synced && s.len >= synced &&
              !memcmp(s.file, k.file, synced),
              "bytes differ: %zu vs %zu", s.len, k.len);
    long acked = 0;
    const char *fp = strstr(s.r.out, "full ");
    cr_assert(fp && sscanf(fp, "full %ld", &acked) == 1, "%s", s.r.out);
    cr_assert(s.len <= (size_t)acked * 4000, "%zu bytes but only %ld "
              "records acknowledged", s.len, acked);
    /* The deadline flusher may retry once per wake (every 250 ms with
     * WCACHE_FLUSH_MS at 1 s): a loaded machine that makes the run last
     * longer sees that many more; a loop would be one per write
     * (25,500). */
    unsigned long long per_s = 4 * ((unsigned long long)s.r.seconds + 1);
    cr_assert(s.wb_calls <= 40 + per_s && s.errors <= 10 + per_s,
              "%llu write-back calls, %llu errors in %.1f s: a loop",
              s.wb_calls, s.errors, s.r.seconds);
    cr_assert(s.r.seconds <= 20 * k.r.seconds + 5.0, "%.2f s vs %.2f s",
              s.r.seconds, k.r.seconds);
    run_free(&k);
    run_free(&s);

    /* The same with O_APPEND: an append behind the failed appended run
     * retries it (errors.c (2)), but not at every line: 25,375 failing
     * write-backs for 25,500 lines before the spacing. */
    const char *argv3[] = {WCT_PROG("prog_fill"), f, "append", "4000",
                           "102400000", "sync-at=100", c, "keep-going", NULL};
    run_once(argv3, 0, f, NULL, &k);
    run_once(argv3, 1, f, NULL, &s);
    cr_assert(wct_ok(&k.r) && wct_ok(&s.r), "%s / %s", k.r.err, s.r.err);
    cr_assert(strstr(s.r.out, "close -> -1 Input/output error\n"), "%s",
              s.r.out);
    cr_assert(k.len >= synced && s.len >= synced &&
              !memcmp(s.file, k.file, synced),
              "bytes differ: %zu vs %zu", s.len, k.len);
    per_s = 16 * ((unsigned long long)s.r.seconds + 1);
    cr_assert(s.wb_calls <= 40 + per_s && s.errors <= 10 + per_s,
              "%llu write-back calls, %llu errors in %.1f s: a loop",
              s.wb_calls, s.errors, s.r.seconds);
    run_free(&k);
    run_free(&s);
}

/* RLIMIT_FSIZE: the write that crosses it is short, the next one gets
 * EFBIG (SIGXFSZ ignored) or dies of SIGXFSZ (default action). */
Test(errors, rlimit_fsize, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    char f[4300];
    snprintf(f, sizeof f, "%s/f", src);
    const char *opts[] = {"xfsz-ignore", NULL};
    /* A small cache: the limit must stay above the backing file, or the
     * shim declines to cache at all (store.c). */
    const char *env[] = {"WCACHE_SIZE=1M", NULL};
    for (int i = 0; i < 2; i++) {
        for (int m = 0; m < 3; m++) {
            const char *mode = m == 0 ? "write" : m == 1 ? "append" : "writev";
            const char *argv[] = {WCT_PROG("prog_fill"), f, mode, "1000",
                                  "10000000", "fsize=3000000", opts[i],
                                  NULL};
            char what[64];
            snprintf(what, sizeof what, "fsize %s %s", mode,
                     opts[i] ? opts[i] : "SIGXFSZ");
            differential(what, argv, f, env, 200);
        }
    }
    wct_require_tool("dd", "coreutils");
    char script[4400];
    snprintf(script, sizeof script,
             "ulimit -f 3000 && exec dd if=/dev/zero of=%s bs=1000 "
             "count=5000", f);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    differential("dd under ulimit -f", argv, f, env, 200);
}

/* Probe R F4: RLIMIT_AS counts the store's mapping (cache/store.h (4)).
 * A program under a 128 MiB limit (set by itself, or before it starts as
 * `ulimit -v` does) writes 2000 lines, then mallocs and touches 80 MiB:
 * the malloc succeeds as without the shim (before: ENOMEM, 3 of 3), and
 * the lines were cached (the store fitted to a quarter of the headroom).
 * A limit 1 MiB above the process's size: no cache, and nothing on
 * stderr (before: "cannot create the cache" at warn). A limit lowered to
 * the process's size under a cache already made: every later write,
 * fsync and close as without the shim. */
Test(errors, rlimit_as, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    char f[4300];
    snprintf(f, sizeof f, "%s/f", src);
    static const char *const cases[][3] = {
        {"as=134217728", "malloc=83886080", "cached"},
        {"as-exec=134217728", "malloc=83886080", "cached"},
        {"as=+1048576", NULL, "none"},
        {"as-late=+0", NULL, "cached"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "12",
                              "24000", cases[i][0], cases[i][1], NULL};
        struct run k, s;
        run_once(argv, 0, f, NULL, &k);
        run_once(argv, 1, f, NULL, &s);
        same(cases[i][0], &k, &s, 200);
        if (!strcmp(cases[i][2], "cached"))
            cr_assert(s.wb_calls > 0, "%s: nothing was cached",
                      cases[i][0]);
        else
            cr_assert(s.wb_calls == 0 && s.through == 0,
                      "%s: a cache was made", cases[i][0]);
        run_free(&k);
        run_free(&s);
    }
}

/* The shim's default policy (the library's own WCACHE_MIN_WRITES and
 * WCACHE_SETUP_US), where the harness caches from the first write. */
#define POSITIONAL_CALLS "pwrite64,pwritev,pwritev2,fallocate"

static const char *const default_policy[] = {"WCACHE_MIN_WRITES=",
                                             "WCACHE_SETUP_US=", NULL};

/* A file system made by `mkfs` (its command without the image) on an
 * image of `mib` MiB in the scratch directory, loop-mounted on mnt in a
 * private mount namespace (unmounted by teardown). */
static void mount_image(const char *mkfs, int mib)
{
    static int images;          /* a new one each time: a loop device
                                   being detached may still write the last */
    char img[4300], cmd[9000];
    snprintf(img, sizeof img, "%s/fs%d.img", scratch, images++);
    int fd = open(img, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(fd >= 0 && ftruncate(fd, (off_t)mib << 20) == 0);
    close(fd);
    snprintf(cmd, sizeof cmd, "%s %s >/dev/null 2>&1", mkfs, img);
    cr_assert_eq(system(cmd), 0, "%s failed", mkfs);
    private_ns();
    snprintf(cmd, sizeof cmd, "mount -o loop %s %s 2>/dev/null", img, mnt);
    if (system(cmd) != 0)
        cannot("mount -o loop");
    mounted = 1;
}

/* What a test of program `prog` on such a file system needs first: the
 * shim, the program, and the mkfs command (its first word, from Debian
 * package `pkg`); then the file system, mounted. */
static void on_image(const char *prog, const char *mkfs, const char *pkg,
                     int mib)
{
    char tool[64];
    snprintf(tool, sizeof tool, "%.*s", (int)strcspn(mkfs, " "), mkfs);
    wct_require_shim();
    wct_require_prog(prog);
    wct_require_tool(tool, pkg);
    mount_image(mkfs, mib);
}

/* A signal handler that calls _exit while the program is inside the
 * shim: the exit path cannot write back in this process (the locks held
 * may guard structures caught mid-update) and makes a copy of it with a
 * raw fork that does (shim/proc.c flush_in_child). A fork child gets none
 * of the store by default (cache/store.h (5)): the copy must be given it
 * (wc_cache_inherit), or it faults at its first page and the cached lines
 * are lost. Made certain with a frozen file system: the handler is set
 * behind the shim and the signal comes while the fsync of a file on an
 * ext2 image waits for the thaw; the lines of another file, written to
 * nothing yet, must all be there after the exit. The crash guard, which
 * would replay them, is off: this is the exit path's own write-back. */
Test(errors, an_exit_from_a_handler_inside_the_shim_writes_back,
     .init = setup, .fini = teardown, .timeout = 120)
{
    on_image(WCT_PROG("prog_frozen"), "mkfs.ext2 -q -F", "e2fsprogs", 16);
    char a[4300];
    snprintf(a, sizeof a, "%s/a", scratch);
    const char *argv[] = {WCT_PROG("prog_frozen"), a, mnt, NULL};
    /* Its store in the scratch directory: where the write-back fails
     * (as it did without wc_cache_inherit), it is left behind, and in
     * the user's directory every later start-up's sweep met it. */
    char e_dir[4300];
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    const char *env[] = {"WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0",
                         "WCACHE_GUARD=0", e_dir, NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = 1,
                            .timeout_s = 60};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_assert(wct_ok(&res), "%s\n%s%s", wct_status_str(&res), res.out,
              res.err);
    wct_result_free(&res);
    size_t len;
    char *got = wct_slurp(a, &len);
    cr_assert(got, "no %s", a);
    char *want = malloc(2000 * 20), *w = want;
    for (int i = 0; i < 2000; i++)
        w += sprintf(w, "a line %d\n", i);
    cr_assert(len == (size_t)(w - want) && !memcmp(got, want, len),
              "%s holds %zu bytes of %zu", a, len, (size_t)(w - want));
    free(want);
    free(got);
}

/* Writes across the largest size a file may have on its file system: an
 * ext2 file system with 1 KiB blocks (16 GiB, where ext4's extents allow
 * 16 TiB) on a loop device. The kernel answers the write that crosses it
 * with a short count, the next ones with EFBIG; the shim took them all
 * into the cache (its own limit was 1 TiB and RLIMIT_FSIZE), fstat showed
 * a size past the limit and the error came at fsync and close (probe P).
 * The engine asks the limit of a file that grows past 64 MiB (lseek:
 * cache/errors.c wc_file_max_size) and sends what reaches past it to the
 * kernel. Compared line by line with the kernel's run. */
Test(errors, file_system_size_limit, .init = setup, .fini = teardown,
     .timeout = 300)
{
    on_image(WCT_PROG("prog_maxsize"), "mkfs.ext2 -q -b 1024 -F",
             "e2fsprogs", 64);
    char f[4300], none[4300];
    snprintf(f, sizeof f, "%s/f", mnt);
    /* run_once reads its target whole: not this 16 GiB sparse file (the
     * program prints a hash of its end), a name that never exists. */
    snprintf(none, sizeof none, "%s/none", mnt);
    const char *argv[] = {WCT_PROG("prog_maxsize"), f, NULL};
    struct run k, s;
    run_once(argv, 0, none, NULL, &k);
    unlink(f);
    cr_assert(strstr(k.r.out, "EFBIG") || strstr(k.r.out, "too large"),
              "the kernel's run did not meet the limit:\n%s", k.r.out);
    for (int def = 0; def < 2; def++) {
        /* Cached from the first write, and with the defaults. */
        run_once(argv, 1, none, def ? default_policy : NULL, &s);
        unlink(f);
        cr_assert_eq(s.r.status, k.r.status, "status %s (shim) vs %s",
                     wct_status_str(&s.r), wct_status_str(&k.r));
        cr_assert_str_eq(s.r.out, k.r.out, "%s: output differs:\n%s",
                         def ? "defaults" : "cached at once",
                         wct_first_diff(k.r.out, s.r.out));
        run_free(&s);
    }
    run_free(&k);
}

/* A program that snapshots its own btrfs subvolume (as backup tools do):
 * the kernel's snapshot holds every byte written before it; under the
 * shim it held none of the cached ones, for good (probe Q). The snapshot
 * request is a consistency point for every file (shim/ioctl.c (4)). */
Test(errors, btrfs_snapshot_holds_the_cached_bytes, .init = setup,
     .fini = teardown, .timeout = 300)
{
    on_image(WCT_PROG("prog_snapshot"), "mkfs.btrfs -q -f", "btrfs-progs",
             300);
    char none[4300];
    snprintf(none, sizeof none, "%s/none", mnt);
    const char *ak[] = {WCT_PROG("prog_snapshot"), mnt, "k", NULL};
    struct run k, s;
    run_once(ak, 0, none, NULL, &k);
    cr_assert(wct_ok(&k.r) && strstr(k.r.out, ": 240000 bytes"),
              "the kernel's run: %s%s", k.r.out, k.r.err);
    for (int def = 0; def < 2; def++) {
        const char *as[] = {WCT_PROG("prog_snapshot"), mnt,
                            def ? "d" : "s", NULL};
        run_once(as, 1, none, def ? default_policy : NULL, &s);
        cr_assert_str_eq(s.r.out, k.r.out, "%s: %s",
                         def ? "defaults" : "cached at once", s.r.err);
        cr_assert_eq(s.r.status, k.r.status);
        run_free(&s);
    }
    run_free(&k);
}

/* prog_fill's record k of `rec` bytes (prog_fill.c record(), no tag). */
static void fill_record(char *buf, size_t rec, long k)
{
    for (size_t i = 0; i < rec; i++)
        buf[i] = (char)('a' + (k + (long)i) % 26);
    char head[24];
    int h = snprintf(head, sizeof head, "%ld:", k);
    memcpy(buf, head, (size_t)h < rec ? (size_t)h : rec);
    if (rec)
        buf[rec - 1] = '\n';
}

/* out with every number that follows "write ", "full " or "size " made
 * "#", and those numbers in nums[0..2] (-1 where absent). Malloc'd. */
static char *fill_shape(const char *out, long long nums[3])
{
    static const char *const keys[] = {"write ", "full ", "size "};
    char *shape = calloc(1, strlen(out) + 1);
    nums[0] = nums[1] = nums[2] = -1;
    size_t n = 0;
    for (const char *p = out; *p;) {
        int hit = -1;
        for (int k = 0; k < 3; k++)
            if ((p == out || p[-1] == '\n') &&
                !strncmp(p, keys[k], strlen(keys[k])))
                hit = k;
        if (hit < 0) {
            shape[n++] = *p++;
            continue;
        }
        size_t kl = strlen(keys[hit]);
        memcpy(shape + n, p, kl);
        n += kl;
        p += kl;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (nums[hit] < 0)
            nums[hit] = v;
        shape[n++] = '#';
        p = end;
    }
    return shape;
}

/* Remove from a shape the lines "write # -> N short" (N > 0). */
static void drop_short_writes(char *shape)
{
    char *w = shape;
    for (char *p = shape; *p;) {
        char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p + 1) : strlen(p);
        int shortw = !strncmp(p, "write # -> ", 11) && p[11] != '-' &&
                     memmem(p, n, " short", 6);
        if (!shortw) {
            memmove(w, p, n);
            w += n;
        }
        p += n;
    }
    *w = 0;
}

/* A full btrfs, the kernel's run k against the shim's run s. Where the
 * disk ends moves from run to run on btrfs: the transaction commits come
 * when they come, and a machine under load moved the kernel's own ENOSPC
 * by 164 records of 124,700 between two runs (the test failed 3 runs in
 * 4 so, the shim as close to each kernel run as the kernel runs to each
 * other; once 1,241 apart, in make test). So the record that gets ENOSPC
 * may differ by 2%, and a short write before it may come or not;
 * everything
 * else is the kernel's, and no acknowledged byte is lost: the fsync and
 * close succeed (the same lines), the file holds exactly the records the
 * shim's run reported written, byte for byte, and no write-back failed. */
static void same_full_btrfs(const char *what, struct run *k, struct run *s,
                            size_t rec, unsigned long long max_calls)
{
    cr_assert_eq(s->r.status, k->r.status, "%s: status %s (shim) vs %s",
                 what, wct_status_str(&s->r), wct_status_str(&k->r));
    long long kn[3], sn[3];
    char *ks = fill_shape(k->r.out, kn), *ss = fill_shape(s->r.out, sn);
    /* A short write before the ENOSPC one comes or not as the disk's
     * last block falls: not part of the shape. */
    drop_short_writes(ks);
    drop_short_writes(ss);
    cr_assert_str_eq(ss, ks, "%s: output differs:\n%s\nkernel's run:\n%s\n"
                     "the shim's run:\n%s", what, wct_first_diff(ks, ss),
                     k->r.out, s->r.out);
    free(ks);
    free(ss);
    long long lo = kn[0] - kn[0] / 50, hi = kn[0] + kn[0] / 50;
    cr_assert(kn[0] > 0 && sn[0] >= lo && sn[0] <= hi,
              "%s: ENOSPC at write %lld under the shim, %lld without "
              "(more than 2%% apart)", what, sn[0], kn[0]);
    cr_assert_eq((long long)s->len, sn[2], "%s: file of %zu bytes, the "
                 "program's stat said %lld", what, s->len, sn[2]);
    char *want = malloc(rec);
    cr_assert_not_null(want);
    for (size_t off = 0; off < s->len; off += rec) {
        fill_record(want, rec, (long)(off / rec) + 1);
        size_t n = s->len - off < rec ? s->len - off : rec;
        cr_assert(memcmp(s->file + off, want, n) == 0,
                  "%s: record %zu differs from what was written", what,
                  off / rec + 1);
    }
    free(want);
    cr_assert_eq(s->errors, 0, "%s: %llu write-back errors", what,
                 s->errors);
    bounded(what, k, s, max_calls);
}

/* A full btrfs: its f_bavail moves at the transaction commit, not at the
 * write, and the cache took 120-330 KB past the disk (probe Q): their
 * write-back failed with ENOSPC at fsync and close. The bytes sent since
 * it last moved are left out of it (cache/errors.c (4c)): the write that
 * fills the disk gets ENOSPC, as with the kernel alone. Line by line
 * against the kernel (same_full_btrfs: where btrfs ends moves a little
 * from run to run), cached at once and with the defaults; a sync between
 * runs gives the unlinked file's room back. */
Test(errors, btrfs_full, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    wct_require_tool("mkfs.btrfs", "btrfs-progs");
    char f[4300];
    snprintf(f, sizeof f, "%s/f", mnt);
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "1000",
                          "300000000", NULL};
    struct run k, s;
    /* Each run on a new file system: one filled and emptied before holds
     * a little less (a run after two such got ENOSPC 12 writes early,
     * with or without the shim). */
    mount_image("mkfs.btrfs -q -f", 200);
    run_once(argv, 0, f, NULL, &k);
    cr_assert(strstr(k.r.out, "No space") || strstr(k.r.out, "28"),
              "the kernel's run did not fill the disk:\n%s", k.r.out);
    for (int def = 0; def < 2; def++) {
        cr_assert_eq(umount2(mnt, 0), 0, "umount %s: %s", mnt,
                     strerror(errno));
        mounted = 0;
        mount_image("mkfs.btrfs -q -f", 200);
        run_once(argv, 1, f, def ? default_policy : NULL, &s);
        same_full_btrfs(def ? "btrfs full, defaults" : "btrfs full", &k,
                        &s, 1000, 2000);
        run_free(&s);
    }
    run_free(&k);
}

/* errseq. The test fills the disk while the program has cached records,
 * and frees it again between the program's calls. */
struct seq {
    const char *fill;       /* the filler file (tmpfs) */
    int pressure;           /* the error meets a write-back under pressure;
                               the disk is freed before fsync1 */
    int fuse;               /* fuse_failfs: fail from "records" to "rewrite"
                               with the control file instead */
};

static void fill_disk(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    char b[4096] = {0};
    while (write(fd, b, sizeof b) > 0)
        ;
    close(fd);
}

static void on_seq(void *ctx, const char *line, int reply_fd)
{
    struct seq *q = ctx;
    if (q->fuse) {
        if (!strcmp(line, "ASK records"))
            close(open(ctl, O_WRONLY | O_CREAT, 0644));
        else if (!strcmp(line, "ASK rewrite"))
            unlink(ctl);
    } else if (!strcmp(line, "ASK records")) {
        fill_disk(q->fill);
    } else if (!strcmp(line, "ASK fsync1")) {
        if (q->pressure)
            unlink(q->fill);
    } else if (!strcmp(line, "ASK fsync2")) {
        unlink(q->fill);
    }
    if (!strncmp(line, "ASK ", 4) && write(reply_fd, "g", 1) != 1)
        cr_log_error("reply failed");
}

static void errseq(int pressure, int fuse, int nrec, const char *expect)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    if (fuse)
        mount_failfs(0);
    else
        mount_tmpfs("1M");
    char f[4300], fill[4300];
    snprintf(f, sizeof f, "%s/f", mnt);
    snprintf(fill, sizeof fill, "%s/filler", mnt);
    struct seq q = {.fill = fill, .pressure = pressure, .fuse = fuse};
    char e_dir[4300];
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    /* No deadline write-back: the moments are the program's. With `pressure`,
     * a dirty limit of 8 pages: record 9 starts a write-back. Records of
     * 4000 bytes: whole pages to a file with nothing cached would go
     * straight to the kernel (write.c, WC_DIRECT_MIN). */
    const char *env[] = {e_dir, "WCACHE_FLUSH_MS=600000",
                         "WCACHE_MIN_WRITES=0",   /* record 1 cached too */
                         pressure ? "WCACHE_DIRTY=32K" : NULL, NULL};
    /* The world changes after record 1: records 2 to 10 are cached on the
     * room the first write saw (statfs is not asked per write), whether
     * or not record 1 was written back before. */
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "4000", "40000",
                          "ask=1", "errseq", NULL};
    struct wct_spec s = {.argv = argv, .shim = 1, .env = env,
                         .timeout_s = 60, .on_line = on_seq, .ctx = &q};
    struct wct_result r;
    cr_assert_eq(wct_run(&s, &r), 0);
    cr_assert(wct_ok(&r), "%s: %s", wct_status_str(&r), r.err);
    cr_assert_str_eq(r.out, expect);
    size_t n;
    char *got = wct_slurp(f, &n);
    cr_assert(got && n == (size_t)nrec * 4000, "size %zu", n);
    /* Every record there, in its last version. */
    char *want = malloc(n);
    for (int k = 1; k <= nrec; k++) {
        char *b = want + (k - 1) * 4000;
        for (int i = 0; i < 4000; i++)
            b[i] = (char)('a' + (k + i) % 26);
        int h = snprintf(b, 24, "%d:", k);
        b[h] = (char)('a' + (k + h) % 26);
        b[3999] = '\n';
    }
    if (strstr(expect, "rewrite -> 9 "))
        memcpy(want, "REWRITTEN", 9);
    cr_assert(memcmp(got, want, n) == 0, "the file's bytes are not the "
              "program's last: starts with %.12s", got);
    free(want);
    free(got);
    wct_result_free(&r);
}

/* fsync meets the error itself: it says so; the next fsync writes
 * everything and returns 0, and so does close. */
Test(errors, errseq_fsync, .init = setup, .fini = teardown, .timeout = 120)
{
    errseq(0, 0, 10, "ASK records\nfull 10\n"
              "ASK fsync1\nfsync1 -> -1 No space left on device\n"
              "ASK rewrite\nrewrite -> -1 No space left on device\n"
              "ASK fsync2\nfsync2 -> 0 ok\n"
              "ASK fsync3\nfsync3 -> 0 ok\n"
              "close -> 0 ok\nsize 40000\n");
}

/* A write-back under pressure meets it in the background: the file
 * passes through, so the next write gets ENOSPC from the kernel at once;
 * the disk is freed; the next fsync reports the error once, although its
 * own retry wrote everything; then 0. */
Test(errors, errseq_background, .init = setup, .fini = teardown,
     .timeout = 120)
{
    errseq(1, 0, 9, "ASK records\nwrite 10 -> -1 No space left on device\n"
              "full 9\n"
              "ASK fsync1\nfsync1 -> -1 No space left on device\n"
              "ASK rewrite\nrewrite -> 9 ok\n"
              "ASK fsync2\nfsync2 -> 0 ok\n"
              "ASK fsync3\nfsync3 -> 0 ok\n"
              "close -> 0 ok\nsize 36000\n");
}

/* A FUSE server fails writes for a while: fsync meets EIO; a write made
 * meanwhile passes through (the server takes it again), and the retry of
 * the older cached bytes at the next fsync does not undo it. */
Test(errors, errseq_fuse, .init = setup, .fini = teardown, .timeout = 120)
{
    errseq(0, 1, 10, "ASK records\nfull 10\n"
                 "ASK fsync1\nfsync1 -> -1 Input/output error\n"
                 "ASK rewrite\nrewrite -> 9 ok\n"
                 "ASK fsync2\nfsync2 -> 0 ok\n"
                 "ASK fsync3\nfsync3 -> 0 ok\n"
                 "close -> 0 ok\nsize 40000\n");
}

/* A file the kernel writes synchronously whatever the open asked: on a
 * file system mounted `sync` (MS_SYNCHRONOUS), or marked `chattr +S`
 * (FS_SYNC_FL). There each write is durable when it returns, which a
 * cached one is not (a power failure loses it): such a file passes
 * through, as an O_SYNC descriptor does (shim/fdtab.c invariant (3b)).
 * Another process sees the records written so far at once, as without
 * the shim, cached at once and with the defaults; the same writes to a
 * file the kernel writes as usual are cached (so the check can fail). */
/* What another process sees of `what` at prog_fill's "ASK records"
 * (`measure`: -1 when it cannot tell); every ASK answered. */
struct peek {
    const char *what;
    long long (*measure)(const char *what);
    long long value;    /* at "ASK records", -1 none */
};

static void on_peek(void *ctx, const char *line, int reply_fd)
{
    struct peek *p = ctx;
    if (!strcmp(line, "ASK records"))
        p->value = p->measure(p->what);
    if (!strncmp(line, "ASK ", 4) && write(reply_fd, "g", 1) != 1)
        cr_log_error("reply failed");
}

static long long file_size(const char *file)
{
    struct stat st;
    return stat(file, &st) == 0 ? (long long)st.st_size : -1;
}

/* prog_fill writes 3000 records of 100 bytes to f under the shim, and
 * says "ASK records" after the 2000th (with the defaults, a process
 * makes its cache once its writes cost more than making it): the size
 * another process sees then. */
static long long size_seen_at_2000(const char *f, int defaults)
{
    char e_dir[4300];
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    const char *env[] = {e_dir, "WCACHE_FLUSH_MS=600000",
                         defaults ? "WCACHE_MIN_WRITES=" : "WCACHE_MIN_WRITES=0",
                         defaults ? "WCACHE_SETUP_US=" : NULL, NULL};
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "100", "300000",
                          "ask=2000", NULL};
    struct peek pk = {.what = f, .measure = file_size, .value = -1};
    struct wct_spec sp = {.argv = argv, .shim = 1, .env = env,
                          .timeout_s = 60, .on_line = on_peek, .ctx = &pk};
    struct wct_result r;
    cr_assert_eq(wct_run(&sp, &r), 0);
    cr_assert(wct_ok(&r) && strstr(r.out, "full 3000\n"), "%s: %s\n%s%s",
              f, wct_status_str(&r), r.out, r.err);
    wct_result_free(&r);
    size_t n;
    char *got = wct_slurp(f, &n);
    cr_assert(got && n == 300000, "%s: %zu bytes at the end", f, n);
    free(got);
    return pk.value;
}

Test(errors, sync_mount_and_chattr_s_pass_through, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    wct_require_tool("mkfs.ext4", "e2fsprogs");
    char f[4300], plain[4300];
    snprintf(f, sizeof f, "%s/f", mnt);
    snprintf(plain, sizeof plain, "%s/plain", mnt);
    private_ns();
    if (mount("tmpfs", mnt, "tmpfs", MS_SYNCHRONOUS, "size=4M,mode=0755"))
        cannot("mount tmpfs -o sync");
    mounted = 1;
    for (int def = 0; def < 2; def++)
        cr_expect_eq(size_seen_at_2000(f, def), 200000, "mounted sync%s: "
                     "another process saw less than the 2000 records "
                     "written", def ? ", defaults" : "");
    cr_assert_eq(umount2(mnt, 0), 0, "umount: %s", strerror(errno));
    mounted = 0;
    /* ext4, and btrfs, whose files have a device of major 0 (probe AC
     * F1: the flag was asked on block devices' major numbers only). */
    static const char *const mkfs[] = {"mkfs.ext4 -q -F", "mkfs.btrfs -q -f"};
    for (int k = 0; k < 2; k++) {
        if (k == 1) {
            cr_assert_eq(umount2(mnt, 0), 0, "umount: %s", strerror(errno));
            mounted = 0;
            if (system("command -v mkfs.btrfs > /dev/null") != 0)
                break;
        }
        mount_image(mkfs[k], k ? 200 : 16);
        int fd = open(f, O_WRONLY | O_CREAT, 0644);
        int attr = 0;
        cr_assert(fd >= 0 && ioctl(fd, FS_IOC_GETFLAGS, &attr) == 0,
                  "FS_IOC_GETFLAGS: %s", strerror(errno));
        attr |= FS_SYNC_FL;
        cr_assert_eq(ioctl(fd, FS_IOC_SETFLAGS, &attr), 0, "chattr +S: %s",
                     strerror(errno));
        close(fd);
        for (int def = 0; def < 2; def++) {
            cr_expect_eq(size_seen_at_2000(f, def), 200000, "%s, chattr "
                         "+S%s: another process saw less than the 2000 "
                         "records written", mkfs[k], def ? ", defaults" : "");
            cr_expect_lt(size_seen_at_2000(plain, def), 200000, "%s, a "
                         "plain file%s: not cached", mkfs[k],
                         def ? ", defaults" : "");
        }
    }
}

/* A store on a disk file system (WCACHE_DIR on ext4; the README sends it
 * to $TMPDIR or /tmp where /dev/shm is missing): each first touch of its
 * shared mapping read the read-ahead window of the sparse file into the
 * page cache (2.5 MiB on this machine's disk: the cache's whole cost
 * fivefold, probe AD F2). The store asks for no read-around
 * (MADV_RANDOM, cache/store.c): after 40 records of 100 bytes, the
 * store file has the few pages written in the page cache, not the
 * loop device's 128 KiB window around each (32 pages). Counted with
 * mincore from another process. */
/* The store's pages in the page cache, -1 when no store is found. */
static long long store_pages_cached(const char *dir)
{
    char sub[4400];
    snprintf(sub, sizeof sub, "%s/wcache-%u", dir, (unsigned)getuid());
    DIR *d = opendir(sub);
    long long n = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[4700];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", sub, e->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
            st.st_size < (1 << 20)) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        size_t len = (size_t)st.st_size, pg = (size_t)sysconf(_SC_PAGESIZE);
        void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
        unsigned char *v = malloc(len / pg + 1);
        if (m != MAP_FAILED && v && mincore(m, len, v) == 0) {
            n = 0;
            for (size_t i = 0; i < len / pg; i++)
                n += v[i] & 1;
        }
        free(v);
        if (m != MAP_FAILED)
            munmap(m, len);
        close(fd);
    }
    if (d)
        closedir(d);
    return n;
}

Test(errors, store_on_a_disk_reads_nothing_around, .init = setup,
     .fini = teardown, .timeout = 120)
{
    on_image(WCT_PROG("prog_fill"), "mkfs.ext4 -q -F", "e2fsprogs", 128);
    char dir[4300], f[4300], e_dir[4400];
    snprintf(dir, sizeof dir, "%s/store", mnt);
    snprintf(f, sizeof f, "%s/out", scratch);
    cr_assert_eq(mkdir(dir, 0700), 0);
    /* Nothing of an earlier file in the cache: a new file system. */
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", dir);
    const char *env[] = {e_dir, "WCACHE_FLUSH_MS=600000", "WCACHE_SIZE=64M",
                         NULL};
    const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "100", "4000",
                          "ask=40", NULL};
    struct peek rs = {.what = dir, .measure = store_pages_cached,
                      .value = -1};
    struct wct_spec sp = {.argv = argv, .shim = 1, .env = env,
                          .timeout_s = 60, .on_line = on_peek, .ctx = &rs};
    struct wct_result r;
    cr_assert_eq(wct_run(&sp, &r), 0);
    cr_assert(wct_ok(&r) && strstr(r.out, "full 40\n"), "%s\n%s%s",
              wct_status_str(&r), r.out, r.err);
    wct_result_free(&r);
    cr_assert_geq(rs.value, 1, "no store found in %s", dir);
    cr_assert_leq(rs.value, 16, "the store has %lld pages in the page cache "
                  "after 4,000 bytes cached: read around its faults",
                  rs.value);
}

/* A program that ran in a mount leaves nothing of the shim's in it: the
 * crash guard it starts (a new one for a new store directory) had the
 * program's working directory until its own chdir, a few ms after its
 * exec, and an umount right after the program ended failed with EBUSY
 * (errors::exfat_... in CI). The guard goes to / before its exec now
 * (shim/guard.c guard_exec). Three rounds, each with a new store
 * directory, so that each starts a guard. */
Test(errors, a_mount_the_program_ran_in_unmounts_at_once, .init = setup,
     .fini = teardown, .timeout = 60)
{
    wct_require_shim();
    private_ns();
    for (int round = 0; round < 3; round++) {
        if (mount("tmpfs", mnt, "tmpfs", 0, "size=4M,mode=0755"))
            cannot("mount tmpfs");
        mounted = 1;
        char dir[4300], e_dir[4400];
        snprintf(dir, sizeof dir, "%s/store%d", scratch, round);
        cr_assert_eq(mkdir(dir, 0700), 0);
        snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", dir);
        const char *env[] = {e_dir, NULL};
        const char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 20 ]; do "
                              "echo $i; i=$((i + 1)); done > f", NULL};
        struct wct_spec sp = {.argv = argv, .shim = 1, .env = env,
                              .cwd = mnt, .timeout_s = 30};
        struct wct_result r;
        cr_assert_eq(wct_run(&sp, &r), 0);
        cr_assert(wct_ok(&r), "%s: %s", wct_status_str(&r), r.err);
        wct_result_free(&r);
        cr_assert_eq(umount2(mnt, 0), 0, "round %d: umount right after the "
                     "program: %s", round, strerror(errno));
        mounted = 0;
    }
}

/* exFAT has no holes: a write past the end makes the file system fill
 * the gap, and the kernel answers ENOSPC where it cannot. The shim took
 * such a write into the cache (its room check counted the write's bytes
 * only), and fsync and close failed with ENOSPC after it (probe AC F5):
 * the gap's room is taken too now (cache/errors.c (4d)). exFAT through
 * its FUSE driver (this kernel may have no exFAT of its own), on a 20 MiB
 * image; a 100-byte write at 30 MB. */
Test(errors, exfat_write_past_the_end_needs_room_for_the_gap, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_tool("mkfs.exfat", "exfatprogs");
    wct_require_tool("mount.exfat-fuse", "exfat-fuse");
    if (access("/dev/fuse", R_OK | W_OK) != 0)
        cannot("/dev/fuse");
    const char *prog =
        "open(F, '+>', 'f') or die; print 'write ', syswrite(F, 'x' x 100),"
        " qq(\n); sysseek(F, 30000000, 0); my $r = syswrite(F, 'y' x 100);"
        " print defined $r ? qq(pwrite $r\n) : qq(pwrite: $!\n);"
        " print close(F) ? qq(close ok\n) : qq(close: $!\n); print -s 'f',"
        " qq(\n)";
    const char *argv[] = {"perl", "-e", prog, NULL};
    char e_dir[4300], img[4300], cmd[9000], *dev = loopdev;
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    const char *env[] = {e_dir, "WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0",
                         NULL};
    char *out[2];
    for (int shim = 0; shim < 2; shim++) {
        snprintf(img, sizeof img, "%s/exfat%d.img", scratch, shim);
        snprintf(cmd, sizeof cmd, "truncate -s 20M %s && mkfs.exfat %s "
                 ">/dev/null 2>&1", img, img);
        cr_assert_eq(system(cmd), 0, "mkfs.exfat failed");
        snprintf(cmd, sizeof cmd, "losetup -f --show %s", img);
        FILE *p = popen(cmd, "r");
        cr_assert(p && fgets(dev, sizeof loopdev, p), "losetup failed");
        pclose(p);
        dev[strcspn(dev, "\n")] = 0;
        if (!mounted)
            private_ns();
        snprintf(cmd, sizeof cmd, "mount.exfat-fuse %s %s >/dev/null 2>&1",
                 dev, mnt);
        if (system(cmd) != 0) {
            snprintf(cmd, sizeof cmd, "losetup -d %s", dev);
            cr_assert_eq(system(cmd), 0);
            dev[0] = 0;
            cannot("mount.exfat-fuse");
        }
        mounted = 1;
        struct wct_spec sp = {.argv = argv, .shim = shim, .env = env,
                              .cwd = mnt, .timeout_s = 60};
        struct wct_result r;
        cr_assert_eq(wct_run(&sp, &r), 0);
        out[shim] = strdup(r.out);
        cr_assert(WIFEXITED(r.status), "%s", wct_status_str(&r));
        wct_result_free(&r);
        /* FUSE: the server may still be settling the last release. */
        int um = -1;
        for (int i = 0; i < 100 && (um = umount2(mnt, 0)) != 0 &&
                        errno == EBUSY; i++)
            usleep(20000);
        cr_assert_eq(um, 0, "umount: %s", strerror(errno));
        mounted = 0;
        snprintf(cmd, sizeof cmd, "losetup -d %s", dev);
        cr_assert_eq(system(cmd), 0);
        dev[0] = 0;
    }
    cr_assert(strstr(out[0], "pwrite: No space left on device"),
              "the kernel took the write: %s", out[0]);
    cr_assert_str_eq(out[1], out[0], "under the shim:\n%s\nwithout:\n%s",
                     out[1], out[0]);
    free(out[0]);
    free(out[1]);
}

/* A run of appended bytes replayed after a death goes at the end of the
 * file, where the kernel puts an O_APPEND write, not at the offsets the
 * program believed were the end (format.h (9), replay.c (8)). Another
 * process appends 8 KiB while the writer's ten records are cached. In
 * "failed" the disk is then filled, the writer's fsync fails with ENOSPC
 * (the engine notes the file as it left it), the disk is freed and the
 * writer dies: the guard wrote the records over the first 410 bytes of
 * the other's (errors::tmpfs_two_appenders lost 12,588 acknowledged
 * records that way, in about one run in four). In "plain" the writer dies
 * with no failure: the records went to a recovery file, a file of 410
 * bytes with a hole, not into the log. "recover" is "plain" with no
 * guard: `wcache recover --dry-run` says what it would do, then `wcache
 * recover` does it. */
struct appdie {
    const char *file, *fill;
    int failed;
};

static void on_appdie(void *ctx, const char *line, int reply_fd)
{
    struct appdie *a = ctx;
    if (!strcmp(line, "ASK records")) {
        char b[8192];
        memset(b, 'O', sizeof b);
        int fd = open(a->file, O_WRONLY | O_APPEND);
        if (fd < 0 || write(fd, b, sizeof b) != (ssize_t)sizeof b)
            cr_log_error("the other's append failed");
        close(fd);
        if (a->failed)
            fill_disk(a->fill);
    } else if (!strncmp(line, "ASK die ", 8)) {
        if (a->failed)
            unlink(a->fill);
        kill((pid_t)atoi(line + 8), SIGKILL);   /* from outside */
        return;
    }
    if (!strncmp(line, "ASK ", 4) && write(reply_fd, "g", 1) != 1)
        cr_log_error("reply failed");
}

Test(errors, tmpfs_appended_run_replayed_at_the_end, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    mount_tmpfs("1M");
    char f[4300], fill[4300], e_dir[4300];
    snprintf(f, sizeof f, "%s/log", mnt);
    snprintf(fill, sizeof fill, "%s/filler", mnt);
    snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", shmdir);
    char want[8192 + 410];
    memset(want, 'O', 8192);
    for (int k = 1; k <= 10; k++) {
        char *b = want + 8192 + (k - 1) * 41;
        for (int i = 0; i < 41; i++)
            b[i] = (char)('a' + (k + i) % 26);
        int h = snprintf(b, 8, "P%d:", k);
        b[h] = (char)('a' + (k + h) % 26);      /* snprintf's NUL */
        b[40] = '\n';
    }
    for (int v = 0; v < 3; v++) {
        int failed = v == 1, by_hand = v == 2;
        const char *what = failed ? "failed" : by_hand ? "recover" : "plain";
        const char *env[] = {e_dir, "WCACHE_FLUSH_MS=600000",
                             "WCACHE_MIN_WRITES=0",
                             by_hand ? "WCACHE_GUARD=0" : NULL, NULL};
        char cmd[8800];
        snprintf(cmd, sizeof cmd, "rm -f '%s'/*", mnt);
        cr_assert_eq(system(cmd), 0);
        struct appdie a = {.file = f, .fill = fill, .failed = failed};
        const char *argv[] = {WCT_PROG("prog_fill"), f, "append", "41", "410",
                              "tag=P", "ask=5",
                              failed ? "sync-at=10" : "die=10",
                              failed ? "die=10" : NULL, NULL};
        struct wct_spec s = {.argv = argv, .shim = 1, .env = env,
                             .timeout_s = 60, .on_line = on_appdie,
                             .ctx = &a};
        struct wct_result r;
        cr_assert_eq(wct_run(&s, &r), 0);
        cr_assert(!r.timed_out && WIFSIGNALED(r.status) &&
                  WTERMSIG(r.status) == SIGKILL, "%s: %s\n%s%s", what,
                  wct_status_str(&r), r.out, r.err);
        if (failed)
            cr_assert(strstr(r.out, "fsync at 10 -> -1 No space left on "
                                    "device\n"), "%s: %s", what, r.out);
        for (int dry = 1; by_hand && dry >= 0; dry--) {
            const char *rargv[] = {WCT_BUILD_DIR "/wcache", "recover",
                                   dry ? "--dry-run" : shmdir,
                                   dry ? shmdir : NULL, NULL};
            struct wct_spec rs = {.argv = rargv, .timeout_s = 60};
            struct wct_result rr;
            cr_assert_eq(wct_run(&rs, &rr), 0);
            cr_assert(wct_ok(&rr), "recover: %s\n%s%s",
                      wct_status_str(&rr), rr.out, rr.err);
            cr_expect(strstr(rr.err, dry ? "would write 410 bytes, 410 of "
                                           "them appended at its end"
                                         : "410 bytes of process"),
                      "recover%s said:\n%s%s", dry ? " --dry-run" : "",
                      rr.out, rr.err);
            wct_result_free(&rr);
        }
        for (int i = 0; i < 3000 && wct_stores_left(shmdir); i++)
            usleep(5000);
        cr_assert_eq(wct_stores_left(shmdir), 0, "%s: the guard did not "
                     "replay the backing file in 15 s", what);
        size_t n;
        char *got = wct_slurp(f, &n);
        cr_assert(got, "%s: no log", what);
        size_t o = 0;
        while (o < n && o < 8192 && got[o] == 'O')
            o++;
        cr_expect(n == sizeof want && memcmp(got, want, n) == 0,
                  "%s: the log is %zu bytes (%zu of the other's 8,192 "
                  "first), not the other's 8,192 then the writer's 410: "
                  "starts %.12s\n%s", what, n, o, got, r.err);
        free(got);
        DIR *d = opendir(mnt);
        struct dirent *e;
        while (d && (e = readdir(d)))
            cr_expect(!strstr(e->d_name, ".wcache-recovered"),
                      "%s: a recovery file: %s\n%s", what, e->d_name, r.err);
        if (d)
            closedir(d);
        wct_result_free(&r);
    }
}

/* Issue 6 item 8: a seccomp filter refuses pwrite64, pwritev, pwritev2
 * and fallocate with EPERM, from the start (installed before the shim
 * starts, as a service manager does: the program execs itself under it)
 * or after the first half of the records (installed by the program: the
 * shim stops caching there, proc.c invariant (8)). Nothing is lost; fsync
 * and close return what they return without the shim. */
Test(errors, seccomp, .init = setup, .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    char f[4300];
    snprintf(f, sizeof f, "%s/f", src);
    static const char *const modes[][2] = {
        {"write", "37"}, {"append", "37"}, {"writev", "100"},
        {"pwrite", "37"},
    };
    const char *when[] = {"seccomp", "seccomp-late"};
    for (int w = 0; w < 2; w++)
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            const char *argv[] = {WCT_PROG("prog_fill"), f, modes[i][0],
                                  modes[i][1], "370000", when[w], NULL};
            struct run k, s;
            run_once(argv, 0, f, NULL, &k);
            run_once(argv, 1, f, NULL, &s);
            char what[64];
            snprintf(what, sizeof what, "%s %s", when[w], modes[i][0]);
            cr_assert_eq(s.r.status, k.r.status, "%s: %s vs %s", what,
                         wct_status_str(&s.r), wct_status_str(&k.r));
            cr_assert_str_eq(s.r.out, k.r.out, "%s: output differs:\n%s",
                             what, wct_first_diff(k.r.out, s.r.out));
            cr_assert(s.len == k.len && !memcmp(s.file, k.file, k.len),
                      "%s: bytes differ (%zu vs %zu)", what, s.len, k.len);
            /* A filter there from the start: the backing file is still
             * reserved (lseek+write, store.c) and the writes cached;
             * the program's own pwrite is the kernel's, refused
             * (shim/io.c invariant (7): it succeeded, cached). */
            if (w == 0 && strcmp(modes[i][0], "pwrite"))
                cr_assert(s.wb_calls > 0, "%s: nothing was cached", what);
            run_free(&k);
            run_free(&s);
        }
    /* pwrite itself is refused once the program installs the filter,
     * after record 50: the kernel says EPERM at once, and so does it
     * under the shim, which wrote everything back and stopped before the
     * filter (proc.c invariant (8)). Every pwrite acknowledged is in the
     * file. */
    const char *argv[] = {WCT_PROG("prog_fill"), f, "pwrite", "5000",
                          "500000", "seccomp-late", "sync-at=60", NULL};
    struct run s;
    run_once(argv, 1, f, NULL, &s);
    cr_assert(wct_ok(&s.r), "%s", s.r.err);
    long full = -1;
    const char *p = strstr(s.r.out, "full ");
    cr_assert(p && sscanf(p, "full %ld", &full) == 1, "%s", s.r.out);
    cr_assert(full == 50, "%s", s.r.out);
    cr_assert(strstr(s.r.out, "-> -1 Operation not permitted\n"), "%s",
              s.r.out);
    cr_assert(strstr(s.r.out, "fsync -> 0 ok\nclose -> 0 ok\n"), "%s",
              s.r.out);
    cr_assert_eq(s.len, (size_t)full * 5000, "%s", s.r.out);
    for (long k = 1; k <= full; k++) {
        char head[24];
        int h = snprintf(head, sizeof head, "%ld:", k);
        cr_assert(!memcmp(s.file + (k - 1) * 5000, head, (size_t)h),
                  "record %ld lost", k);
    }
    run_free(&s);
}

/* Probe X F3: a filter the program installs with its own system call
 * instruction (the shim does not see it) refuses the positional writes
 * after half the records: the write-back meets the refusal and passes
 * the file through (cache/errors.c); then the program writes lines to
 * its stderr, a file its shell shares, which the shell writes after. A
 * description cached from then on starts passing through, and the shared
 * one's write was given back its reservation but never made: the lines
 * lost, the shell's written over them at 0. Now it is the kernel's.
 * Both files and the output as without the shim. */
Test(errors, seccomp_by_the_program_itself, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    char f[4300], e[4300], script[9000];
    snprintf(f, sizeof f, "%s/f", src);
    snprintf(e, sizeof e, "%s/e", src);
    snprintf(script, sizeof script,
             "{ '%s' '%s' write 37 74000 seccomp-raw-late notes=3; "
             "echo tail >&2; } 2>'%s'", WCT_PROG("prog_fill"), f, e);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    char *file[2], *err[2], *out[2];
    size_t flen[2], elen[2];
    for (int shim = 0; shim < 2; shim++) {
        struct wct_spec sp = {.argv = argv, .shim = shim, .timeout_s = 60};
        struct wct_result r;
        cr_assert_eq(wct_run(&sp, &r), 0);
        cr_assert(wct_ok(&r), "shim=%d: %s\n%s%s", shim, wct_status_str(&r),
                  r.out, r.err);
        out[shim] = strdup(r.out);
        wct_result_free(&r);
        file[shim] = wct_slurp(f, &flen[shim]);
        err[shim] = wct_slurp(e, &elen[shim]);
        cr_assert(file[shim] && err[shim], "shim=%d: a file is missing",
                  shim);
        unlink(f);
        unlink(e);
    }
    cr_assert_str_eq(out[1], out[0], "output differs:\n%s",
                     wct_first_diff(out[0], out[1]));
    cr_assert(elen[1] == elen[0] && !memcmp(err[1], err[0], elen[0]),
              "stderr file: %.*s, not %.*s", (int)elen[1], err[1],
              (int)elen[0], err[0]);
    cr_assert(flen[1] == flen[0] && !memcmp(file[1], file[0], flen[0]),
              "file: %zu bytes, not %zu", flen[1], flen[0]);
    for (int shim = 0; shim < 2; shim++) {
        free(file[shim]);
        free(err[shim]);
        free(out[shim]);
    }
}

/* Probe R F3: a filter there from the start binds the crash guard too,
 * the program's descendant (shim/guard.c (8), cache/replay.c (10)). The
 * writer (write(), 2000 records) is killed with SIGKILL: the file holds
 * every record, as without the shim, no backing file is left, and the
 * program's stderr is the kernel's (empty). Refused pwrite64 (the
 * replay's write) or fsync: the replay writes with lseek+write and leaves
 * the bytes to the page cache; refused calls a guard cannot do without
 * (flock, clone, close_range, getdents64, unlink): no cache at all;
 * refused chdir: the guard stays where it started. Before: the pwrite64
 * and flock runs lost the acknowledged bytes (12 of 12 runs), the
 * pwrite64 one leaving a .kept file. */
static void on_die(void *ctx, const char *line, int reply_fd)
{
    (void)ctx;
    (void)reply_fd;
    if (!strncmp(line, "ASK die ", 8))
        kill((pid_t)atoi(line + 8), SIGKILL);
}

Test(errors, seccomp_inherited_then_sigkill, .init = setup,
     .fini = teardown, .timeout = 300)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_fill"));
    char f[4300], e_dir[4500];
    snprintf(f, sizeof f, "%s/f", src);
    static const char *const filters[] = {
        "pwrite64", "pwrite64:ENOSYS", POSITIONAL_CALLS, "fsync,fdatasync",
        "flock", "flock:ENOSYS", "clone", "close_range:ENOSYS",
        "getdents64", "unlink", "chdir",
    };
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        /* A store directory per filter: a guard started under one filter
         * (lingering a second after its last owner) does not watch the
         * next one's. */
        char store[4400];
        snprintf(store, sizeof store, "%s/%zu", shmdir, i);
        cr_assert_eq(mkdir(store, 0700), 0);
        snprintf(e_dir, sizeof e_dir, "WCACHE_DIR=%s", store);
        char opt[128];
        snprintf(opt, sizeof opt, "seccomp=%s", filters[i]);
        const char *argv[] = {WCT_PROG("prog_fill"), f, "write", "37",
                              "74000", opt, "die=2000", NULL};
        const char *env[] = {e_dir, "WCACHE_MIN_WRITES=0", NULL};
        struct wct_result r[2];
        char *file[2];
        size_t len[2];
        for (int shim = 0; shim < 2; shim++) {
            struct wct_spec sp = {.argv = argv, .shim = shim, .env = env,
                                  .timeout_s = 60, .on_line = on_die};
            cr_assert_eq(wct_run(&sp, &r[shim]), 0);
            cr_assert(!r[shim].timed_out && WIFSIGNALED(r[shim].status) &&
                      WTERMSIG(r[shim].status) == SIGKILL,
                      "%s (shim=%d): %s\n%s%s", filters[i], shim,
                      wct_status_str(&r[shim]), r[shim].out, r[shim].err);
            for (int k = 0; k < 3000 && wct_stores_left(store); k++)
                usleep(5000);
            cr_assert_eq(wct_stores_left(store), 0, "%s: a backing file "
                         "is left after 15 s (the guard did not replay "
                         "it)", filters[i]);
            file[shim] = wct_slurp(f, &len[shim]);
            cr_assert_not_null(file[shim], "%s: no file", filters[i]);
            unlink(f);
        }
        cr_assert_eq(len[1], len[0], "%s: %zu bytes after the SIGKILL, "
                     "%zu without the shim\n%s", filters[i], len[1], len[0],
                     r[1].err);
        cr_assert(!memcmp(file[1], file[0], len[0]), "%s: bytes differ",
                  filters[i]);
        cr_assert_str_eq(r[1].err, r[0].err, "%s: messages differ:\n%s",
                         filters[i], wct_first_diff(r[0].err, r[1].err));
        for (int shim = 0; shim < 2; shim++) {
            free(file[shim]);
            wct_result_free(&r[shim]);
        }
    }
}

/* The program holds a file whose fsync reported a write-back error; it
 * opens the file again O_SYNC (a description that passes through, whose
 * open's write-back fails too), the server recovers, and it writes a line
 * there at offset 1000, in a record still cached. The close of the first
 * descriptor retried the cached records in place, over the line the
 * O_SYNC write had returned success for (and over the records the kernel
 * had). Now a change around the
 * cache after the failure keeps the cached bytes from being written over
 * it (cache/errors.c (8)): the line stays, the records go beside the
 * file, and the close reports the error. */
Test(errors, fuse_eio_osync_write_after_failed_fsync, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_failfs(0);
    static const char line[] = "written through O_SYNC\n";
    char f[4300];
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        failclose_run(mnt, "osync", shim, f, sizeof f, &r);
        cr_assert(!strstr(r.r.out, "O_SYNC pwrite ->"), "shim=%d: %s", shim,
                  r.r.out);
        cr_assert(r.len >= 1000 + sizeof line - 1 &&
                      !memcmp(r.file + 1000, line, sizeof line - 1),
                  "shim=%d: the O_SYNC write was written over: \"%.30s\"\n%s",
                  shim, r.len > 1000 ? r.file + 1000 : "", r.r.out);
        if (shim) {
            cr_assert(strstr(r.r.out, "fsync -> -1 Input/output error\n") &&
                          strstr(r.r.out, "\nclose -> -1 Input/output "
                                          "error\n"), "%s", r.r.out);
            size_t alen;
            char *aside = aside_take(f, r.r.err, &alen);
            cr_assert(aside, "no recovery file named: %s", r.r.err);
            records_kept(r.r.out, NULL, 0, aside, alen);
            free(aside);
        }
        run_free(&r);
    }
}

/* sync_file_range with its waits reports a write-back error, as the
 * kernel's file_fdatawait_range does (the file's errseq, as fdatasync):
 * under the shim it returned 0 while the cached records' write-back
 * failed, the error left for fsync and close. The fsync after the server
 * recovered writes them (it reports nothing more: the error was seen);
 * the file is every record whose write returned success, in both runs. */
Test(errors, fuse_eio_sync_file_range_reports, .init = setup,
     .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_failclose"));
    mount_failfs(0);
    char f[4300];
    for (int shim = 0; shim < 2; shim++) {
        struct run r;
        failclose_run(mnt, "sfr", shim, f, sizeof f, &r);
        cr_assert(!shim || strstr(r.r.out, "sync_file_range -> -1 "
                                  "Input/output error\n"), "%s", r.r.out);
        cr_assert(strstr(r.r.out, "sync_file_range -1 -> -1 Invalid "
                                  "argument\n"), "shim=%d: %s", shim,
                  r.r.out);
        cr_assert(!strstr(r.r.out, "fsync ->") &&
                      !strstr(r.r.out, "close ->"), "shim=%d: %s", shim,
                  r.r.out);
        file_is_records(&r, "", shim);
        run_free(&r);
    }
}

/* shim/ownfd.c invariant (7): a vfork child that execs opens a window of
 * its own to read the ELF header of the program it execs (proc.c
 * exe_of), in the parent's memory. Killed inside it (its read waits on
 * fuse_failfs while ctl.slow exists), it must leave no window shut behind
 * it: the parent's next open would wait on it for good. The kernel alone
 * runs the same program first, the reference. */
Test(errors, a_vfork_child_killed_in_its_exec_look_stops_nothing,
     .init = setup, .fini = teardown, .timeout = 120)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_vforkwindow"));
    mount_failfs(0);
    char slow[4400], f[4300];
    snprintf(slow, sizeof slow, "%s.slow", ctl);
    snprintf(f, sizeof f, "%s/f", scratch);
    for (int shim = 0; shim < 2; shim++) {
        /* The program to exec, a copy of its own for each run, put in the
         * backing directory: no page of it is in the mount's cache, so
         * the header's read reaches the server. */
        char exe_src[4300], exe[4300], cmd[9000];
        snprintf(exe_src, sizeof exe_src, "%s/true%d", src, shim);
        snprintf(exe, sizeof exe, "%s/true%d", mnt, shim);
        snprintf(cmd, sizeof cmd, "cp /bin/true '%s'", exe_src);
        cr_assert_eq(system(cmd), 0);
        const char *argv[] = {WCT_PROG("prog_vforkwindow"), f, exe, slow,
                              NULL};
        struct wct_spec spec = {.argv = argv, .shim = shim,
                                .timeout_s = 30};
        struct wct_result res;
        cr_assert(wct_run(&spec, &res) == 0);
        cr_assert(wct_ok(&res), "%s: %s\n%s", shim ? "shim" : "kernel",
                  wct_status_str(&res), res.err);
        cr_assert_str_eq(res.out, "ok\n");
        wct_result_free(&res);
        unlink(slow);
        unlink(f);
    }
}
