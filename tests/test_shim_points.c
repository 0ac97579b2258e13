/*
 * test_shim_points.c - one test per consistency point and per rule of
 * CONTRACT.md sections 1-3.
 *
 * Each test runs a scenario of tests/prog_points.c once without and once
 * with the shim. At every consistency point the program stops and this
 * process (never under the shim: "another process") reads the file; the
 * kernel run's view is the expected one. The program's own output, its
 * exit status and the files left behind must match too.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib_shim.h"

static char *scratch;
/* The scenario program: prog_points, or prog_points_tls (the same with a
 * large static TLS block). */
static const char *g_prog = "prog_points";

static const char *prog_path(void)
{
    static char buf[4200];
    snprintf(buf, sizeof buf, "%s/tests/%s", WCT_BUILD_DIR, g_prog);
    return buf;
}

static void setup(void)
{
    scratch = wct_scratch("points");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(points, .init = setup, .fini = teardown, .timeout = 60);

/* ---- the harness -------------------------------------------------------- */

struct session {
    char *log;            /* transcript */
    size_t len;
    char *peeks;          /* PEEK records: not compared, see cached_peek */
    const char *ref;      /* the kernel run's transcript, for WAIT */
    int waits;            /* WAIT requests seen so far */
};

static void append(char **s, size_t *len, const char *text)
{
    size_t n = strlen(text);
    *s = realloc(*s, *len + n + 1);
    memcpy(*s + *len, text, n + 1);
    *len += n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What another process sees in `path`: size and hash, lines sorted first
 * when `sorted`. */
static void snapshot(const char *path, int sorted, char *out, size_t n)
{
    size_t len;
    char *data = wct_slurp(path, &len);
    if (!data) {
        snprintf(out, n, "absent errno=%d", errno);
        return;
    }
    uint64_t h;
    if (sorted) {
        size_t cnt = 0;
        for (size_t i = 0; i < len; i++)
            cnt += data[i] == '\n';
        char **lines = calloc(cnt + 1, sizeof *lines);
        size_t k = 0;
        for (char *s = strtok(data, "\n"); s && k <= cnt; s = strtok(NULL,
                                                                     "\n"))
            lines[k++] = s;
        qsort(lines, k, sizeof *lines, cmp_str);
        h = 0;
        for (size_t i = 0; i < k; i++)
            h = h * 31 + wct_hash(lines[i], strlen(lines[i]));
        free(lines);
    } else {
        h = wct_hash(data, len);
    }
    snprintf(out, n, "size=%zu hash=%016llx", len, (unsigned long long)h);
    free(data);
}

/* The k-th (0-based) line of `text` that starts with `prefix`. */
static const char *nth_line(const char *text, const char *prefix, int k)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p && *p; ) {
        if (strncmp(p, prefix, pl) == 0 && k-- == 0)
            return p;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Split "VERB label words... path [ms]" into label and path (and ms when
 * `with_ms`): the path is the last token (before ms); the label may have
 * spaces. Returns 0 on a malformed line.
 */
static int parse_req(const char *line, int with_ms, char *label,
                     size_t lsize, char *path, size_t psize, int *ms)
{
    const char *sp = strchr(line, ' ');
    if (!sp)
        return 0;
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s", sp + 1);
    char *last = strrchr(tmp, ' ');
    if (!last)
        return 0;
    if (with_ms) {
        *ms = atoi(last + 1);
        *last = 0;
        last = strrchr(tmp, ' ');
        if (!last)
            return 0;
    }
    *last = 0;
    if (strlen(last + 1) >= psize || strlen(tmp) >= lsize)
        return 0;
    memcpy(path, last + 1, strlen(last + 1) + 1);
    memcpy(label, tmp, strlen(tmp) + 1);
    return 1;
}

static void on_line(void *ctx, const char *line, int reply_fd)
{
    struct session *s = ctx;
    char label[256], path[4096], snap[128], rec[4800];
    int ms = 0;
    if (strncmp(line, "OUT ", 4) == 0) {
        snprintf(rec, sizeof rec, "%s\n", line);
        append(&s->log, &s->len, rec);
        return;
    }
    int check = strncmp(line, "CHECK ", 6) == 0;
    int sorted = strncmp(line, "SORTED ", 7) == 0;
    int peek = strncmp(line, "PEEK ", 5) == 0;
    int wait = strncmp(line, "WAIT ", 5) == 0;
    if ((check || sorted || peek || wait) &&
        !parse_req(line, wait, label, sizeof label, path, sizeof path, &ms)) {
        snprintf(rec, sizeof rec, "malformed: %s\n", line);
        append(&s->log, &s->len, rec);
    } else
    if (check || sorted) {
        snapshot(path, sorted, snap, sizeof snap);
        snprintf(rec, sizeof rec, "%s %s: %s\n", check ? "CHECK" : "SORTED",
                 label, snap);
        append(&s->log, &s->len, rec);
    } else if (peek) {
        snapshot(path, 0, snap, sizeof snap);
        size_t plen = s->peeks ? strlen(s->peeks) : 0;
        snprintf(rec, sizeof rec, "%s %s\n", label, snap);
        append(&s->peeks, &plen, rec);
    } else if (wait) {
        /* The kernel run records what it sees; the shim run may take up
         * to `ms` to show the same. */
        char want[128] = "";
        const char *r = s->ref ? nth_line(s->ref, "WAIT ", s->waits) : NULL;
        if (r) {
            const char *colon = strstr(r, ": ");
            const char *nl = strchr(r, '\n');
            if (colon && nl && colon < nl)
                snprintf(want, sizeof want, "%.*s", (int)(nl - colon - 2),
                         colon + 2);
        }
        s->waits++;
        double start = now_ms();
        do {
            snapshot(path, 0, snap, sizeof snap);
            if (!r || strcmp(snap, want) == 0)
                break;
            usleep(5000);
        } while (now_ms() - start < ms);
        snprintf(rec, sizeof rec, "WAIT %s: %s\n", label, snap);
        append(&s->log, &s->len, rec);
    } else {
        char text[1024];
        long off;
        if (sscanf(line, "POKE %4095s %ld %1023s", path, &off, text) == 3) {
            int fd = open(path, O_WRONLY);
            ssize_t n = pwrite(fd, text, strlen(text), off);
            close(fd);
            snprintf(rec, sizeof rec, "POKE %ld %zd\n", off, n);
        } else {
            snprintf(rec, sizeof rec, "?? %s\n", line);
        }
        append(&s->log, &s->len, rec);
    }
    if (write(reply_fd, "g", 1) != 1)
        append(&s->log, &s->len, "reply failed\n");
}

struct outcome {
    char *log;            /* transcript + status + stderr + files */
    char *peeks;
    char *dir;
};

/* Run one scenario once; `shell` wraps it in the inherited-stdout shell. */
static struct outcome run_once(int shim, const char *scenario,
                               const char *arg, const char *const *env,
                               const char *ref, int shell)
{
    struct outcome o = {0};
    cr_assert(asprintf(&o.dir, "%s/%s-%s%s", scratch, shim ? "shim" : "ref",
                       scenario, arg ? arg : "") > 0);
    cr_assert(mkdir(o.dir, 0755) == 0, "mkdir %s", o.dir);
    const char *argv[] = {prog_path(), scenario, o.dir, arg,
                          NULL};
    const char *shargv[] = {
        "/bin/sh", "-c",
        "exec 3>&1; { \"$0\" \"$2\" \"$1\"; echo after-prog-exit; } "
        "> \"$1/out\"; echo appended >> \"$1/out\"",
        prog_path(), o.dir, scenario, NULL};
    const char *envv[16] = {0};
    int k = 0;
    for (; env && env[k] && k < 14; k++)
        envv[k] = env[k];
    if (shell)
        envv[k++] = "WCT_CTL_FD=3";
    struct session s = {.ref = ref};
    append(&s.log, &s.len, "");
    struct wct_spec spec = {.argv = shell ? shargv : argv, .env = envv,
                            .shim = shim, .timeout_s = 40,
                            .on_line = on_line, .ctx = &s};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run prog_points");
    char *tail = NULL;
    cr_assert(asprintf(&tail, "--- %s\n--- stdout/stderr noise\n%s", 
                       wct_status_str(&res), res.err) > 0);
    append(&s.log, &s.len, tail);
    free(tail);
    wct_result_free(&res);
    o.log = s.log;
    o.peeks = s.peeks;
    return o;
}

static void outcome_free(struct outcome *o)
{
    free(o->log);
    free(o->peeks);
    wct_rmtree(o->dir);
    free(o->dir);
}

/*
 * The test proper: kernel run, shim run, compare transcripts and the files
 * left behind. `settle_ms`: how long the files may take to become right
 * after the program died (the crash guard replays a killed process).
 */
static void differential_full(const char *scenario, const char *arg,
                              const char *const *env, int settle_ms,
                              int shell)
{
    wct_require_shim();
    wct_require_prog(prog_path());
    struct outcome ref = run_once(0, scenario, arg, env, NULL, shell);
    /* Both runs failing alike would compare equal: a scenario the
     * program does not know (a stale build) is the test's failure. */
    cr_assert(!strstr(ref.log, "unknown scenario"),
              "prog_points does not know scenario %s:\n%s", scenario,
              ref.log);
    struct outcome got = run_once(1, scenario, arg, env, ref.log, shell);
    char *d = wct_first_diff(ref.log, got.log);
    cr_expect(*d == 0, "%s %s: the program saw something else under the "
              "shim:\n%s\n--- kernel transcript:\n%s--- shim transcript:\n%s",
              scenario, arg ? arg : "", d, ref.log, got.log);
    free(d);

    char *want = wct_tree_listing(ref.dir, 0);
    double start = now_ms();
    char *have;
    for (;;) {
        have = wct_tree_listing(got.dir, 0);
        if (strcmp(want, have) == 0 || now_ms() - start >= settle_ms)
            break;
        free(have);
        usleep(20000);
    }
    d = wct_first_diff(want, have);
    cr_expect(*d == 0, "%s %s: files left behind differ%s:\n%s\n--- kernel:\n"
              "%s--- shim:\n%s", scenario, arg ? arg : "",
              settle_ms ? " (after waiting for the crash guard)" : "", d,
              want, have);
    free(d);
    free(want);
    free(have);
    outcome_free(&ref);
    outcome_free(&got);
}

static void differential(const char *scenario, const char *arg,
                         const char *const *env)
{
    differential_full(scenario, arg, env, 0, 0);
}

/* ---- section 2: what the program sees ----------------------------------- */

Test(points, o_append_pwrite_appends) { differential("append_pwrite", NULL, NULL); }
Test(points, dup_descriptors_share_offsets) { differential("dup_offset", NULL, NULL); }
Test(points, second_open_and_stat_see_cached_data) { differential("second_open", NULL, NULL); }
Test(points, truncate_in_program_order) { differential("truncate", NULL, NULL); }
Test(points, scattered_writes_then_a_sequence) { differential("scatter", NULL, NULL); }

/* With the default WCACHE_MIN_WRITES (every other test here caches from
 * the open: lib_shim.c), where descriptions change state mid-scenario. */
static const char *const default_min[] = {"WCACHE_MIN_WRITES=", NULL};

/* A scenario both ways: cached from the open, then with the default. */
static void differential_default_too(const char *scenario)
{
    differential(scenario, NULL, NULL);
    differential(scenario, NULL, default_min);
}
/* Every call of the scenario is the process's first of its function.
 * With the default policy the process makes no cache, and the shim
 * resolves each of them at that call, through its slot's trampoline
 * (shim/real.c (1)); cached from the open, every slot was resolved when
 * the cache was made (1b). */
/* No signal stack of the shim's before the program writes (altstack.c
 * invariant (3)): sigaltstack says none, as without the shim. */
Test(points, no_signal_stack_before_caching) { differential("sigstack", NULL, NULL); }

/* An SA_ONSTACK handler of a program that set no stack: as much room as
 * on the thread's own stack, and sigaltstack says none, after the writes
 * were cached (probe AC F6: SIGSEGV on the shim's 256 KiB stack). */
Test(points, onstack_handler_without_a_stack_of_its_own) { differential("onstack", NULL, NULL); }

Test(points, first_calls_pass_every_argument_and_errno)
{
    differential_default_too("first_calls");
}
Test(points, default_policy_every_description_follows)
{
    differential("watch_states", NULL, default_min);
}
Test(points, default_policy_second_open) { differential("second_open", NULL, default_min); }
Test(points, default_policy_dup_offsets) { differential("dup_offset", NULL, default_min); }
Test(points, default_policy_fork_shared) { differential("fork_shared", NULL, default_min); }
/* With the defaults (a cache made once the writes paid for it): forked
 * children writing a few lines each through the log they share make no
 * cache (shim/fdtab.c (6b)), and the log is the kernel's. */
static const char *const defaults[] = {"WCACHE_MIN_WRITES=",
                                       "WCACHE_SETUP_US=", NULL};
Test(points, default_policy_fork_children_log)
{
    differential("fork_children_log", NULL, defaults);
}
/* ... nor does one slow write of a process, 3 ms (fdtab.c (6b)). */
Test(points, default_policy_one_slow_write_makes_no_cache)
{
    differential("slow_rent", NULL, defaults);
}
Test(points, default_policy_stdout_dup2) { differential("dup2_stdout", NULL, default_min); }
Test(points, default_policy_many_files) { differential("many_files", NULL, default_min); }
Test(points, default_policy_exit) { differential("exit", "_exit", default_min); }
Test(points, default_policy_no_thread_while_nothing_is_cached)
{
    differential("no_thread", NULL, default_min);
}

/* sigaction's old actions and what each signal then runs, as the kernel
 * answers them: with the shim standing in for the death signals (a file
 * cached) and before (shim/signals.c stood_sigaction). */
Test(points, sigaction_answers_with_a_cache) { differential("sigactions", "cached", NULL); }
Test(points, sigaction_answers_without_a_cache) { differential("sigactions", "none", NULL); }

/* dlerror()'s pending message through the shim's first stdio call and a
 * fork, and a library whose constructor forks from another thread while
 * dlopen holds the loader's lock (shim/real.c next_sym; probe AG F1, F2:
 * freed memory printed; a deadlock, the run killed at its timeout). */
Test(points, dlerror_and_the_loaders_lock_are_the_programs)
{
    differential("dlopen_fork", "none", NULL);
}
Test(points, dlerror_and_the_loaders_lock_are_the_programs_cached)
{
    differential("dlopen_fork", "cached", NULL);
}

/* Handlers set behind the shim run while the program is in sigaction:
 * they ask it for actions, or leave by a jump (shim/signals.c
 * stood_sigaction blocks every signal while it changes its records). */
Test(points, raw_handlers_inside_sigaction) { differential("raw_handler", NULL, NULL); }

/* ---- section 3: consistency points --------------------------------------- */

Test(points, fork_shared_descriptor_loses_nothing) { differential("fork_shared", NULL, NULL); }
Test(points, fork_child_sees_parent_data) { differential("fork_sequence", NULL, NULL); }
Test(points, posix_spawn_system_popen_vfork_see_data) { differential("spawn", NULL, NULL); }
Test(points, exec_sees_data_and_offset) { differential("exec", NULL, NULL); }
Test(points, close_range_flushes) { differential("close_range", NULL, NULL); }
Test(points, closefrom_flushes) { differential("closefrom", NULL, NULL); }
Test(points, mmap_after_writes_sees_data) { differential("mmap_after", NULL, NULL); }
Test(points, fcntl_lock_release_flushes) { differential("lock", "fcntl", NULL); }
Test(points, ofd_lock_release_flushes) { differential("lock", "ofd", NULL); }
Test(points, flock_release_flushes) { differential("lock", "flock", NULL); }
Test(points, lockf_release_flushes) { differential("lock", "lockf", NULL); }
Test(points, disjoint_halves_of_a_page_survive_poke) { differential("halves_poke", NULL, NULL); }
Test(points, disjoint_halves_two_processes) { differential("halves_fork", NULL, NULL); }
Test(points, fopen_sees_cached_data) { differential("fopen", NULL, NULL); }
Test(points, unlinked_file_reads) { differential("unlinked", NULL, NULL); }
Test(points, fsync_family_makes_data_visible) { differential("fsync", NULL, NULL); }
Test(points, times_set_through_the_descriptor) { differential("times", NULL, NULL); }
Test(points, directory_renamed_into_place) { differential("dir_rename", NULL, NULL); }
Test(points, copy_file_range_sees_data) { differential("passthrough", "sendfile", NULL); }

Test(points, deadline_flush_while_idle)
{
    const char *env[] = {"WCACHE_FLUSH_MS=100", NULL};
    differential("deadline", NULL, env);
}

/* The flusher thread is made with a small stack, which a program's large
 * static TLS would not fit in (shim/flusher.c invariant (2)). */
Test(points, deadline_flush_with_a_large_static_tls)
{
    const char *env[] = {"WCACHE_FLUSH_MS=100", NULL};
    g_prog = "prog_points_tls";
    differential("deadline", NULL, env);
}

Test(points, deadline_flush_when_a_handler_made_the_cache)
{
    const char *env[] = {"WCACHE_FLUSH_MS=100", "WCACHE_MIN_WRITES=", NULL};
    differential("deadline_handler", NULL, env);
}
Test(points, deadline_flush_with_a_handled_signal_kept_blocked)
{
    const char *env[] = {"WCACHE_FLUSH_MS=100", NULL};
    differential("deadline_blocked", NULL, env);
}
/* A handler left by longjmp, its signal left blocked, then writes deeper
 * in the stack (probe AB F1: no flusher, nothing written back until the
 * exit). */
Test(points, deadline_flush_after_a_handler_left_by_longjmp)
{
    const char *env[] = {"WCACHE_FLUSH_MS=100", NULL};
    differential("deadline_jumped", NULL, env);
}
Test(points, no_thread_made_inside_a_handler)
{
    const char *env[] = {"WCACHE_FLUSH_MS=100", "WCACHE_MIN_WRITES=", NULL};
    differential("handler_thread", NULL, env);
    differential("handler_thread", "onstack", env);
    differential("handler_thread", "raw", env);
    differential("handler_thread", "unblock", env);
    differential("handler_thread", "sysv", env);
}

/* Every way to end a process keeps the data. */
Test(points, exit_return_from_main) { differential("exit", "return", NULL); }
Test(points, exit_exit) { differential("exit", "exit", NULL); }
Test(points, exit__exit_without_destructors) { differential("exit", "_exit", NULL); }
Test(points, exit__Exit) { differential("exit", "_Exit", NULL); }
Test(points, exit_quick_exit) { differential("exit", "quick_exit", NULL); }
Test(points, exit_from_a_thread) { differential("exit", "thread_exit", NULL); }
/*
 * Deaths the shim may not see: the crash guard replays the backing file
 * within a few seconds (CONTRACT.md section 4). The backing store goes to
 * the scratch directory so that what a dead process leaves is removed.
 */
static void death(const char *how)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "WCACHE_DIR=%s", scratch);
    const char *env[] = {dir, NULL};
    differential_full("exit", how, env, 10000, 0);
}

Test(points, exit_raw_exit_group, .timeout = 60) { death("exit_group"); }
/* An exec that failed, then SIGKILL: the writes after it reach the file
 * through the guard too (the exec had removed the backing file's name). */
Test(points, exec_failed_then_sigkill, .timeout = 60)
{
    death("exec_failed_sigkill");
}
/*
 * A catchable signal (SIGTERM) is caught by the shim, which flushes and
 * dies of it. SIGKILL cannot be caught: the crash guard replays it
 * (shim/guard.c).
 */
Test(points, exit_killed_by_sigterm, .timeout = 60) { death("sigterm"); }
Test(points, exit_killed_by_sigkill, .timeout = 60) { death("sigkill"); }
Test(points, exit_abort, .timeout = 60) { death("abort"); }

/* ---- section 1: what passes through ------------------------------------ */

Test(points, inherited_stdout_passes_through_with_wcache_inherited_0)
{
    const char *env[] = {"WCACHE_INHERITED=0", NULL};
    differential_full("inherited", NULL, env, 0, 1);
}
/* By default (and with WCACHE_INHERITED=1) the inherited stdout is cached:
 * no check while running, but at exit the data and the shared offset must
 * be right for the shell that continues writing to the same open file
 * description. */
Test(points, inherited_stdout_cached_by_default)
{
    differential_full("inherited_quiet", NULL, NULL, 0, 1);
}
Test(points, inherited_stdout_cached_with_wcache_inherited)
{
    const char *env[] = {"WCACHE_INHERITED=1", NULL};
    differential_full("inherited_quiet", NULL, env, 0, 1);
}

Test(points, o_sync_open_flushes_and_passes_through) { differential("passthrough", "osync", NULL); }
Test(points, o_direct_open_flushes_and_passes_through) { differential("passthrough", "odirect", NULL); }
Test(points, fdopen_flushes_and_passes_through) { differential("passthrough", "fdopen", NULL); }
Test(points, bypass_write_keeps_program_order) { differential("passthrough", "bypass", NULL); }
Test(points, proc_files_pass_through) { differential("passthrough", "proc", NULL); }

Test(points, wcache_disable_passes_through)
{
    const char *env[] = {"WCACHE_DISABLE=1", NULL};
    differential("passthrough", "env", env);
}

Test(points, wcache_exclude_passes_through)
{
    const char *env[] = {"WCACHE_EXCLUDE=*/p", NULL};
    differential("passthrough", "env", env);
}

Test(points, wcache_include_rejects_others)
{
    const char *env[] = {"WCACHE_INCLUDE=/nonexistent/*", NULL};
    differential("passthrough", "env", env);
}

/* ---- programs that do unusual things -------------------------------------- */

Test(points, close_all_descriptors_at_startup) { differential("close_all", NULL, NULL); }
Test(points, closefrom_3_midway) { differential("closefrom_midway", NULL, NULL); }
Test(points, rename_while_cached) { differential("rename", NULL, NULL); }
Test(points, two_processes_append_to_one_log) { differential("two_appenders", NULL, NULL); }
Test(points, vfork_child_failing_exec) { differential("vfork_fail", NULL, NULL); }
/* proc.c invariant (7): the child runs in the parent's memory. */
Test(points, raw_open_of_stderr_shares_it_with_stdio)
{
    differential_default_too("raw_open_std");
}
Test(points, vfork_child_makes_a_description_inheritable)
{
    differential_default_too("vfork_inherit");
}
Test(points, vfork_child_changes_only_its_own)
{
    differential_default_too("vfork_child");
}
Test(points, o_tmpfile_then_linkat) { differential("tmpfile", NULL, NULL); }
Test(points, offsets_past_4_gib) { differential("big_offset", NULL, NULL); }
Test(points, fifo_and_devices_pass_through) { differential("passthrough", "fifo", NULL); }
Test(points, more_files_than_the_file_table) { differential("many_files", NULL, NULL); }
Test(points, rlimit_fsize_efbig_and_sigxfsz) { differential("fsize", NULL, NULL); }
Test(points, a_sealable_memfd_is_not_cached) { differential("memfd", NULL, NULL); }
Test(points, ioctl_sees_the_written_back_file) { differential("ioctl", NULL, NULL); }
/* Asynchronous I/O reads and writes a file without the calls the shim
 * serves (shim/aio.c): glibc's threads, the kernel's queues. */
Test(points, posix_aio_sees_and_keeps_the_bytes)
{
    differential_default_too("posix_aio");
}
Test(points, linux_aio_sees_and_keeps_the_bytes)
{
    differential("linux_aio", "lib", NULL);
    differential("linux_aio", "raw", NULL);
}
/* A program that confines its system calls (proc.c invariant (8)). */
Test(points, a_seccomp_filter_kills_no_write_back)
{
    differential("seccomp", "prctl", NULL);
    differential("seccomp", "syscall", NULL);
    differential("seccomp", "tsync", NULL);
}
Test(points, io_uring_sees_and_keeps_the_bytes)
{
    differential("io_uring", "lib", NULL);
    differential("io_uring", "raw", NULL);
}
/* A ring the program did not make: another process's, taken with
 * pidfd_getfd, mapped and driven with syscall(SYS_io_uring_enter)
 * (shim/aio.c invariant (2): seen at the mapping of its entries, and at
 * the call). Before, its read missed the cached bytes and its write was
 * written over at write-back (probe P). */
/* Processes that agree through a shared mapping of a file they lock, as
 * SQLite's WAL readers and writers do (meta.c invariant (5b)). */
Test(points, a_locked_shared_mapping_publishes_the_bytes)
{
    differential_default_too("shm_channel");
}
Test(points, a_foreign_io_uring_sees_and_keeps_the_bytes)
{
    differential("io_uring", "foreign", NULL);
}
Test(points, a_file_written_and_closed_while_read_can_be_run)
{
    differential_default_too("exec_written");
}
Test(points, rename_and_link_publish_the_bytes)
{
    differential_default_too("publish");
}
Test(points, another_process_changes_the_size)
{
    differential_default_too("other_process");
}
Test(points, rlimit_fsize_lowered_below_cached_data)
{
    differential("fsize_lower", NULL, NULL);
    differential("fsize_lower", "ignore", NULL);
}
Test(points, rlimit_fsize_lowered_through_syscall)
{
    differential("fsize_raw", NULL, NULL);
    differential("fsize_raw", "setrlimit", NULL);
}
Test(points, faulting_user_memory) { differential("faults", NULL, NULL); }
Test(points, a_pending_cancellation_acts_at_a_cached_write)
{
    differential("cancel", "write", NULL);
    differential("cancel", "read", NULL);
    differential("cancel", "write", default_min);
}
/* A write whose source page is missing in a userfaultfd region: its
 * handler thread syncs, forks, reads or fstats the file before it serves
 * the fault, as the kernel lets it while the write waits; and a writer
 * whose fault is never served while the process exits. The shim held the
 * description's and the file's locks across the copy: each of these hung
 * (CONTRACT 5.2; shim/io.c fault_in). */
Test(points, a_source_page_that_faults_slowly)
{
    static const char *const whats[] = {"sync", "fork", "pread", "fstat",
                                        "never"};
    for (size_t i = 0; i < sizeof whats / sizeof *whats; i++)
        differential("uffd", whats[i], NULL);
}

/* The action sigaction and signal report while the shim holds the
 * program's handler (shim/signals.c invariant (5)): the shim reported
 * the struct as the program passed it (no SA_RESTORER, SIGKILL in the
 * mask), cleared flags and mask at an SA_RESETHAND delivery, and went on
 * reporting its record after glibc's siginterrupt, bsd_signal, sigset
 * and sysv_signal had changed the action behind it (signal() then
 * returned the old handler, which a program restores). */
Test(points, sigaction_reports_the_kernels_action)
{
    differential("sigreport", NULL, NULL);
}

/* A cancellation pending at a call that writes back: glibc acted on it in
 * a call the engine made with the description's and the file's locks
 * held, and every later call of the process on the file waited for ever
 * (shim/cancel.c invariant (3)). sync and syncfs are no cancellation
 * points: the thread goes on to its write. */
Test(points, a_pending_cancellation_leaves_no_lock_held)
{
    static const char *const hows[] = {"fsync", "fdatasync", "lockf",
                                       "setlkw", "sync", "syncfs"};
    for (size_t i = 0; i < sizeof hows / sizeof *hows; i++)
        differential("cancel", hows[i], NULL);
}
/* The program's SIGSEGV handler, called by the shim's (cache/ucopy.c
 * invariant (4)), runs with the mask the kernel gives it. */
Test(points, a_fault_handler_of_the_programs_has_its_mask)
{
    differential("segv_mask", NULL, NULL);
}

/* A library preloaded after the shim whose functions call others the
 * shim exports too (tests/so_below.c: mmap through syscall(SYS_mmap), as
 * tcmalloc's; fsync asking fcntl first, as eatmydata's; fstat through
 * __fxstat, as fakeroot's): the program sees what it sees with that
 * library alone. Before: every mmap overflowed the stack (SIGSEGV); the
 * engine's own fcntl and fstat on its descriptors came back to the shim,
 * which hid them (EBADF): fsync of a cached file failed, and fstat after
 * another process's write gave the cache's old size. */
Test(points, a_library_below_the_shim_that_calls_its_exports)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("so_below.so"));
    const char *const env_k[] = {"LD_PRELOAD=" WCT_PROG("so_below.so"),
                                 NULL};
    const char *const env_s[] = {
        "LD_PRELOAD=" WCT_SHIM_SO ":" WCT_PROG("so_below.so"), NULL};
    static const char *const scenarios[] = {"mmap_after", "fsync",
                                            "other_stat"};
    for (size_t i = 0; i < sizeof scenarios / sizeof *scenarios; i++) {
        struct outcome k = run_once(0, scenarios[i], NULL, env_k, NULL, 0);
        struct outcome s = run_once(1, scenarios[i], NULL, env_s, k.log, 0);
        char *d = wct_first_diff(k.log, s.log);
        cr_expect(*d == 0, "%s: the program saw something else:\n%s\n"
                  "--- shim:\n%s", scenarios[i], d, s.log);
        free(d);
        outcome_free(&k);
        outcome_free(&s);
    }
}

/* A library preloaded after the shim that wraps the calls the shim may
 * make bare (fakeroot's stat family, a tracer's write) still gets every
 * one of them (shim/kcall.h (K4)): the scenario's calls with one thread,
 * counted by tests/so_next.c. */
Test(points, a_library_preloaded_after_the_shim_sees_every_call)
{
    wct_require_prog(WCT_PROG("so_next.so"));
    char out[4200], env_out[4300];
    snprintf(out, sizeof out, "%s/so_next.counts", scratch);
    snprintf(env_out, sizeof env_out, "SO_NEXT_OUT=%s", out);
    const char *const env[] = {
        "LD_PRELOAD=" WCT_SHIM_SO ":" WCT_PROG("so_next.so"), env_out, NULL};
    struct outcome o = run_once(1, "kcalls", "one-thread", env, NULL, 0);
    char *counts = wct_slurp(out, NULL);
    cr_assert(counts, "no counts from so_next.so:\n%s", o.log);
    static const char *const names[] = {
        "write", "pwrite", "read", "pread", "openat", "close", "fstat",
        "stat", "lstat", "fstatat", "lseek", "fcntl"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        long n = -1;
        char name[32];
        long c;
        int used;
        for (const char *l = counts;
             sscanf(l, "%31s %ld\n%n", name, &c, &used) == 2; l += used)
            if (!strcmp(name, names[i]))
                n = c;
        cr_expect(n > 0, "%s reached the library after the shim %ld times:"
                  "\n%s", names[i], n, counts);
    }
    free(counts);
    outcome_free(&o);
}

Test(points, bare_pass_through_calls_answer_as_libc)
{
    differential_default_too("kcalls");
}
Test(points, sendfile_and_splice_see_data) { differential("sendfile_pipe", NULL, NULL); }
Test(points, writable_mapping_and_second_descriptor) { differential("mmap_write", NULL, NULL); }
Test(points, stdout_dup2_to_a_cached_file) { differential("dup2_stdout", NULL, NULL); }

/* Section 7: a bad value is one line on stderr, then pass-through. The
 * stderr line is the one difference expected, so it is checked here and
 * the rest compared. */
static void bad_env(const char *setting, const char *var, const char *val)
{
    wct_require_shim();
    const char *env[] = {setting, NULL};
    struct outcome ref = run_once(0, "bad_env", NULL, env, NULL, 0);
    struct outcome got = run_once(1, "bad_env", NULL, env, ref.log, 0);
    const char *noise = strstr(got.log, "--- stdout/stderr noise\n");
    cr_assert(noise, "no stderr section");
    noise += strlen("--- stdout/stderr noise\n");
    cr_expect(strstr(noise, var) && strstr(noise, val),
              "stderr should name the variable and the value: %s", noise);
    const char *nl = strchr(noise, '\n');
    cr_expect(nl && nl[1] == 0, "stderr should be one line: %s", noise);
    /* Everything before the stderr section must match the kernel run. */
    size_t head = (size_t)(noise - got.log);
    cr_expect(strncmp(ref.log, got.log, head) == 0,
              "the program saw a difference:\n%s\n---\n%s", ref.log,
              got.log);
    outcome_free(&ref);
    outcome_free(&got);
}

Test(points, bad_environment_value_passes_through)
{
    bad_env("WCACHE_SIZE=banana", "WCACHE_SIZE", "banana");
    bad_env("WCACHE_MIN_WRITES=-1", "WCACHE_MIN_WRITES", "-1");
    bad_env("WCACHE_MIN_WRITES=1000001", "WCACHE_MIN_WRITES", "1000001");
    bad_env("WCACHE_MIN_WRITES=8x", "WCACHE_MIN_WRITES", "8x");
    bad_env("WCACHE_SETUP_US=-5", "WCACHE_SETUP_US", "-5");
    bad_env("WCACHE_SETUP_US=10000001", "WCACHE_SETUP_US", "10000001");
    /* Not a file named "true" in each process's directory at its exit. */
    bad_env("WCACHE_STATS=true", "WCACHE_STATS", "true");
    bad_env("WCACHE_STATS=stats.txt", "WCACHE_STATS", "stats.txt");
}

/* ---- the shim really caches: the one intended difference ---------------- */

/*
 * Without this, every test above would pass against a shim that writes
 * everything straight through. Before any consistency point, another
 * process sees less under the shim than under the kernel.
 */
Test(points, writes_are_cached_until_a_consistency_point)
{
    wct_require_shim();
    const char *env[] = {"WCACHE_FLUSH_MS=20000", NULL};
    struct outcome ref = run_once(0, "peek", NULL, env, NULL, 0);
    struct outcome got = run_once(1, "peek", NULL, env, ref.log, 0);
    cr_assert(ref.peeks && got.peeks, "no PEEK records:\n%s\n%s", ref.log,
              got.log);
    cr_expect(strcmp(ref.peeks, got.peeks) != 0, "another process saw "
              "every write at once: the shim does not cache (peeks: %s)",
              got.peeks);
    char *d = wct_first_diff(ref.log, got.log);
    cr_expect(*d == 0, "%s", d);
    free(d);
    outcome_free(&ref);
    outcome_free(&got);
}


/* ---- what a fork child looks up (shim/real.c (1c)) ---------------------- */

/* A fork child calls the real functions its parent has looked up: it
 * looks up none itself (each lookup in a child is lost with it: a
 * shell's `$(echo ...)` paid a dlsym and about ten page faults of libc's
 * and ld.so's tables in every child, for its _exit, its exec, its printf).
 * WCACHE_LOG=debug names each lookup with the pid that made it; bash's
 * subshells, command substitutions and failed exec are children that
 * never exec a new image, so every pid but bash's own (the first to look
 * anything up, at its start) is a fork child. */
Test(points, fork_children_look_nothing_up)
{
    wct_require_tool("bash", "bash");
    const char *env[] = {"WCACHE_LOG=debug", NULL};
    const char *argv[] = {
        "bash", "-c",
        "( : ); ( exec 3>/dev/null; exit 3 ); (exec /nonexistent) 2>/dev/null;"
        " x=$(echo a); y=$(printf '%s' b); ( echo c >/dev/null ); true",
        NULL};
    struct wct_spec spec = {.argv = argv, .env = env, .shim = 1,
                            .timeout_s = 30};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_assert(wct_ok(&res), "%s\n%s", wct_status_str(&res), res.err);
    long parent = 0;
    int in_parent = 0, in_children = 0;
    char first[512] = "";
    for (char *line = strtok(res.err, "\n"); line;
         line = strtok(NULL, "\n")) {
        if (strncmp(line, "wcache[", 7) || !strstr(line, "real function "))
            continue;
        long pid = atol(line + 7);
        if (!parent)
            parent = pid;
        if (pid == parent) {
            in_parent += strstr(line, "real function _exit ") != NULL;
        } else if (!in_children++) {
            snprintf(first, sizeof first, "%s", line);
        }
    }
    wct_result_free(&res);
    cr_assert(in_children == 0, "%d lookups in fork children, the first:\n%s",
              in_children, first);
    /* The parent made them, before its first fork. */
    cr_assert(in_parent > 0, "bash itself looked up no _exit: is "
              "WCACHE_LOG=debug read at all?");
}

/* What the program's sigaction costs under the shim: one rt_sigaction,
 * as the kernel's (shim/signals.c stood_sigaction: the old action read by
 * the call that sets the new one; a query made it two at each of bash's
 * twenty-odd calls a command). Counted with strace from outside, the
 * sigactions scenario's 80-odd calls with a file cached: the shim's own
 * calls (its stand-ins, installed when the cache is made) are a fixed
 * number. */
static void count_sig_calls(int shim, long *sa, long *mask)
{
    char dir[4300], out[4400];
    snprintf(dir, sizeof dir, "%s/count%d", scratch, shim);
    snprintf(out, sizeof out, "%s/strace%d", scratch, shim);
    cr_assert(mkdir(dir, 0755) == 0);
    const char *argv[] = {"strace", "-f", "-qq", "-c", "-e",
                          "trace=rt_sigaction,rt_sigprocmask", "-o", out,
                          "env", shim ? "LD_PRELOAD=" WCT_SHIM_SO : "X=1",
                          prog_path(), "sigactions", dir, "cached", NULL};
    struct wct_spec spec = {.argv = argv, .timeout_s = 40};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0);
    cr_assert(wct_ok(&res), "%s\n%s", wct_status_str(&res), res.err);
    wct_result_free(&res);
    char *text = wct_slurp(out, NULL);
    cr_assert(text);
    *sa = *mask = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        long calls = 0;
        char name[64] = "";
        /* "% time seconds usecs/call calls [errors] syscall" */
        double t, secs;
        long per;
        if (sscanf(line, "%lf %lf %ld %ld", &t, &secs, &per, &calls) != 4)
            continue;
        char *last = strrchr(line, ' ');
        snprintf(name, sizeof name, "%s", last ? last + 1 : "");
        if (!strcmp(name, "rt_sigaction"))
            *sa = calls;
        else if (!strcmp(name, "rt_sigprocmask"))
            *mask = calls;
    }
    free(text);
}

Test(points, sigaction_is_one_rt_sigaction)
{
    wct_require_shim();
    wct_require_prog(prog_path());
    wct_require_tool("strace", "strace");
    long ksa, kmask, ssa, smask;
    count_sig_calls(0, &ksa, &kmask);
    count_sig_calls(1, &ssa, &smask);
    cr_assert(ksa >= 60, "the scenario made %ld sigaction calls", ksa);
    /* The library before: 184 rt_sigaction against the kernel's 79; now
     * 127, the rest the shim's own (its stand-ins). The two
     * rt_sigprocmask around each call stay (166): every signal is blocked
     * while the records change (raw_handlers_inside_sigaction). */
    (void)smask;
    (void)kmask;
    cr_assert(ssa - ksa <= 70, "rt_sigaction: %ld under the shim, %ld "
              "without", ssa, ksa);
}
