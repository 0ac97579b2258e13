/*
 * test_shim_coherence.c - routes to a file other than the libc write
 * family (issue 6, items 2-4): raw syscall() forms of every data, offset,
 * size, descriptor and process call, MAP_PRIVATE mappings, errno on
 * success, and descriptors sent to another process over a socket.
 *
 * Each test runs a scenario of tests/prog_coherence.c once without and
 * once with the shim. The program prints every call's return value and
 * errno (errno is set to a sentinel before each call, so a success that
 * touches errno shows), offsets, sizes and hashes of the bytes it reads;
 * at each consistency point it stops and this process (never under the
 * shim: "another process") reads the file. The transcripts, the exit
 * status and the files left behind must be identical.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib_shim.h"

static char *scratch;

static void setup(void)
{
    scratch = wct_scratch("coherence");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(coherence, .init = setup, .fini = teardown, .timeout = 120);

struct session {
    char *log;
    size_t len;
};

static void append(struct session *s, const char *text)
{
    size_t n = strlen(text);
    s->log = realloc(s->log, s->len + n + 1);
    memcpy(s->log + s->len, text, n + 1);
    s->len += n;
}

/* OUT lines are recorded; CHECK lines are answered with what this
 * process reads in the file. */
static void on_line(void *ctx, const char *line, int reply_fd)
{
    struct session *s = ctx;
    char rec[8192];
    if (strncmp(line, "CHECK ", 6) == 0) {
        const char *sp = strrchr(line, ' ');
        size_t len;
        char *data = wct_slurp(sp + 1, &len);
        snprintf(rec, sizeof rec, "CHECK %.*s: ", (int)(sp - line - 6),
                 line + 6);
        append(s, rec);
        if (data)
            snprintf(rec, sizeof rec, "size=%zu hash=%016llx\n", len,
                     (unsigned long long)wct_hash(data, len));
        else
            snprintf(rec, sizeof rec, "absent\n");
        free(data);
        append(s, rec);
        if (write(reply_fd, "g", 1) != 1)
            append(s, "reply failed\n");
        return;
    }
    snprintf(rec, sizeof rec, "%s\n", line);
    append(s, rec);
}

/* Run `scenario` once; returns transcript + status + stderr + the files
 * left in its directory. */
static char *run_once(int shim, const char *scenario, const char *const *env)
{
    char *dir;
    cr_assert(asprintf(&dir, "%s/%s-%s", scratch, shim ? "shim" : "ref",
                       scenario) > 0);
    cr_assert(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    const char *argv[] = {WCT_PROG("prog_coherence"), scenario, dir, NULL};
    struct session s = {0};
    append(&s, "");
    struct wct_spec spec = {.argv = argv, .env = env, .shim = shim,
                            .timeout_s = 60, .on_line = on_line, .ctx = &s};
    struct wct_result res;
    cr_assert(wct_run(&spec, &res) == 0, "cannot run prog_coherence");
    char *tree = wct_tree_listing(dir, 0);
    char *all;
    cr_assert(asprintf(&all, "%s--- %s\n--- stderr\n%s--- files\n%s", s.log,
                       wct_status_str(&res), res.err, tree) > 0);
    free(tree);
    free(s.log);
    wct_result_free(&res);
    wct_rmtree(dir);
    free(dir);
    return all;
}

static void differential(const char *scenario, const char *const *env)
{
    wct_require_shim();
    wct_require_prog(WCT_PROG("prog_coherence"));
    char *ref = run_once(0, scenario, env);
    char *got = run_once(1, scenario, env);
    char *d = wct_first_diff(ref, got);
    cr_expect(*d == 0, "%s: differs under the shim:\n%s\n--- kernel:\n%s"
              "--- shim:\n%s", scenario, d, ref, got);
    cr_expect(strstr(ref, "OUT end") || strstr(scenario, "exit"),
              "%s: the kernel run did not finish:\n%s", scenario, ref);
    free(d);
    free(ref);
    free(got);
}

/* The tests' default environment, then every file cached from its first
 * write, with no cost of the cache to pay first. */
static void differential_fast_too(const char *scenario)
{
    differential(scenario, NULL);
    const char *env[] = {"WCACHE_MIN_WRITES=0", "WCACHE_SETUP_US=0", NULL};
    differential(scenario, env);
}

/* Item 2: raw syscall() of every data, offset and size call. */
Test(coherence, raw_data_calls)
{
    differential("raw_data", NULL);
}

Test(coherence, raw_data_calls_small_bypass)
{
    const char *env[] = {"WCACHE_BYPASS=1K", NULL};
    differential("raw_data", env);
}

Test(coherence, raw_descriptor_calls)
{
    differential("raw_fd", NULL);
}

Test(coherence, raw_fork_and_clone)
{
    differential("raw_fork", NULL);
}

Test(coherence, raw_exit_group)
{
    differential("raw_exit_group", NULL);
}

Test(coherence, raw_exit_of_the_only_thread)
{
    differential("raw_exit", NULL);
}

Test(coherence, raw_exit_of_every_thread)
{
    differential("raw_exit_thread", NULL);
}

/* The shim's flusher thread must not keep alive a process whose main
 * thread left by pthread_exit. */
Test(coherence, pthread_exit_from_main)
{
    differential("pthread_exit", NULL);
}

/* Item 3: MAP_PRIVATE. */
Test(coherence, private_mapping)
{
    differential("private", NULL);
}

/* Item 4: errno on success, short writes from faulting memory. */
Test(coherence, errno_kept_on_success)
{
    differential("errno", NULL);
}

/* pwritev2 and preadv2 with each flag bit alone: the kernel's answer to
 * each. Bit 30 was the shim's own mark (io.c's v2 call), cleared before
 * the kernel's call: a pwritev2 with it wrote where the kernel answers
 * EOPNOTSUPP and writes nothing. */
Test(coherence, rwf_flags_one_bit_at_a_time)
{
    differential_fast_too("rwf");
}

Test(coherence, errno_kept_on_success_small_bypass)
{
    const char *env[] = {"WCACHE_BYPASS=1K", NULL};
    differential("errno", env);
}

/* A descriptor sent over a socket (SCM_RIGHTS) is shared with the
 * receiver from that call: before it, the receiver's writes at the
 * kernel's offset landed where the sender's cached bytes were written
 * back later, and were lost (shim/shared.c invariant (7)). One received
 * by a process that caches the same file itself is taken in (8): before,
 * its write was overwritten by that process's older cached bytes. */
Test(coherence, descriptors_sent_over_a_socket)
{
    differential("passfd", NULL);
}

/* The same when the files come into the cache after the send (their
 * first writes go to the kernel, WCACHE_MIN_WRITES). */
Test(coherence, descriptors_sent_before_they_are_cached)
{
    const char *env[] = {"WCACHE_MIN_WRITES=8", NULL};
    differential("passfd", env);
}

/* A description whose offset is reserved with lseek (shared with stdio
 * on descriptor 2): a count past user space is EFAULT, as the kernel
 * checks it before clamping (the shim clamped first and copied the
 * memory after the buffer into the file); at the file system's largest
 * offset the kernel's short count and EFBIG (the reservation's lseek
 * failed with EINVAL, which the write returned). */
Test(coherence, reserved_offset_counts_and_limits)
{
    differential("reserve", NULL);
}

/* open_by_handle_at is an open: its O_TRUNC drops the cached bytes (they
 * came back at write-back before glibc's wrapper was interposed). */
Test(coherence, open_by_handle_truncates)
{
    differential("handle", NULL);
}

/* A signal to another process is a consistency point (signals.c
 * invariant (6)): the receiver sees every byte written before it, by
 * each call that sends one (a PostgreSQL standby read zeros where its
 * WAL receiver had written, before it signalled: probe T). */
Test(coherence, a_signal_to_another_process_comes_after_the_writes)
{
    differential_fast_too("signal");
}

/* A write a signal handler makes through a read-only description while
 * its thread is inside the shim is EBADF, as the kernel's (it was queued,
 * answered as written, and lost). */
Test(coherence, handler_write_through_a_read_only_description)
{
    differential("sigro", NULL);
}

/* `prog 3>f 5>>f` from a shell without the shim: fd 5, an inherited
 * O_APPEND description, is left untracked; its append went to the
 * kernel's end of file, inside the bytes fd 3 had cached, whose
 * write-back then wrote over it. Now the file passes through for good
 * at the first write through fd 5 (shim/shared.c, wc_fd_adopt). */
Test(coherence, inherited_append_and_plain_descriptors_of_one_file)
{
    differential("inhapp", NULL);
    const char *env[] = {"WCACHE_MIN_WRITES=8", "WCACHE_SETUP_US=500",
                         NULL};
    differential("inhapp", env);
    const char *off[] = {"WCACHE_INHERITED=0", NULL};
    differential("inhapp", off);
}

/* The program caches a file through a descriptor of its own and writes
 * through inherited ones of it too: cached (the default), and left to the
 * kernel (WCACHE_INHERITED=0: their writes went to the kernel before the
 * cached bytes, whose write-back then wrote over them; now the file
 * passes through for good at the first such write: shim/stats.c (1c)). */
Test(coherence, inherited_descriptors_of_a_file_the_program_caches)
{
    differential("inhown", NULL);
    const char *off[] = {"WCACHE_INHERITED=0", NULL};
    differential("inhown", off);
}

/* glibc's clone() was not interposed: a child made as a fork wrote into
 * the parent's store at the kernel's offset (the parent's cached bytes
 * not yet there) and lost what it cached itself at its bare exit; a
 * CLONE_VM | CLONE_VFORK child cached into the parent's records. Now the
 * first is a fork and the second a vfork (shim/proc.c invariant (9)). */
Test(coherence, glibc_clone_as_fork_and_as_vfork)
{
    differential("clone", NULL);
}

/* A child that shares the descriptor table and not the memory (glibc's
 * clone, the raw call) or the memory and not the table: the process stops
 * caching first (the raw child's exit closed the shim's own descriptors
 * in the shared table: 1.5 MB lost). */
Test(coherence, clone_sharing_the_table_or_the_memory_alone)
{
    differential("clone_files", NULL);
    differential("clone_files_raw", NULL);
    differential("clone_vm", NULL);
}

/* A thread that takes a descriptor table of its own and closes a
 * descriptor there: the shim dropped it for the whole process (its
 * cached lines lost). shim/proc.c invariant (10). */
Test(coherence, thread_with_a_table_of_its_own)
{
    differential("unshare_thread", NULL);
    differential("unshare_range", NULL);
    differential("unshare_raw", NULL);
}

/* The only thread takes a table of its own while the flusher runs: the
 * flusher starts again in the new table (flusher.c invariant (5)). */
Test(coherence, only_thread_with_a_table_of_its_own)
{
    differential("unshare_solo", NULL);
    const char *env[] = {"WCACHE_FLUSH_MS=20", NULL};
    differential("unshare_solo", env);
}

/* Namespaces of its own after caching: the kernel refuses setns into a
 * mount namespace and unshare of a user namespace to a process with a
 * second thread (EINVAL where it gives 0: the flusher was one), and a
 * file made in the new mount namespace is the program's view of names,
 * not the crash guard's (shim/proc.c invariants (11), (12)). */
Test(coherence, namespaces_of_its_own)
{
    if (geteuid() != 0)
        cr_skip_test("namespaces need root here");
    differential("namespaces", NULL);
    differential("namespaces_raw", NULL);
}

/* Caching stops for good (a failed exec, a seccomp filter): the engine's
 * write-back descriptor of a script the program wrote stayed open when
 * the program closed its own, and the script's exec failed with ETXTBSY;
 * the descriptor of a file the program holds a POSIX lock on stays (its
 * close would drop the lock). cache/wbfd.c invariant (2). */
Test(coherence, caching_stops_then_a_written_script_runs)
{
    differential("execoff", NULL);
    differential("execoff_seccomp", NULL);
}

/* A file with no name left keeps its other holders: its cached bytes were
 * dropped at the last close that the shim saw (cache/file.c wc_file_put),
 * and a reader opened before the unlink, a memfd's duplicate, or a parent
 * reading its child's temporary file found none or part of them. */
Test(coherence, raw_attribute_calls)
{
    differential("raw_attr", NULL);
}

Test(coherence, size_changed_by_another_after_fsync)
{
    differential_fast_too("changed_after_fsync");
}

/* O_APPEND runs after another process appended or truncated
 * (cache/write.c invariants A1, A2): offsets, lost bytes, zeros. */
Test(coherence, appends_after_another_changed_the_file)
{
    differential_fast_too("appended_by_another");
}

/* O_APPEND set by another holder of a shared description, with the
 * offset moved (shim/shared.c invariant (2)). */
Test(coherence, append_flag_set_by_another_holder)
{
    differential_fast_too("setfl_by_child");
}

Test(coherence, files_with_no_name_left)
{
    differential_fast_too("unlinked");
}

/* A description the shim passes through (O_SYNC, O_DIRECT, a stdio stream,
 * F_SETFL O_DIRECT) made while the file's first writes are watched: the
 * file was cached later anyway, and that description's write was
 * overwritten at write-back, its reads stale, an unaligned O_DIRECT write
 * answered 1 (the kernel: EINVAL). Now the file passes through for good
 * (shim/fdtab.c wc_fd_opened_known, open.c). */
Test(coherence, pass_through_descriptions_during_first_writes)
{
    /* The users' default: a file's first 8 writes are watched (the tests'
     * is to cache from the first: lib_shim.c). */
    const char *first[] = {"WCACHE_MIN_WRITES=8", "WCACHE_SETUP_US=0", NULL};
    differential("bypassopen", first);
    const char *dflt[] = {"WCACHE_MIN_WRITES=8", NULL};
    differential("bypassopen", dflt);
    differential("bypassopen", NULL);
}

/* The loader opens and maps a library with calls of its own: one the
 * program has just written with write() and not closed loaded short ("file
 * too short") before dlopen and dlmopen wrote everything back first
 * (shim/open.c invariant (5)); a name is still searched from the
 * program's call site. */
Test(coherence, dlopen_of_a_library_just_written)
{
    wct_require_prog(WCT_PROG("so_answer.so"));
    differential("dlopen", NULL);
    const char *env[] = {"WCACHE_MIN_WRITES=8", NULL};
    differential("dlopen", env);
}

/* Descriptors the shim never saw opened (mkstemp's, memfd_create's, a dup
 * of one before its first write, inherited `3<>g 4>&3 5<g`) read the
 * kernel's file, which lacked the bytes cached through a sibling (pread 0
 * of 33,000 bytes; lseek(-10, SEEK_END) EINVAL). Now libc's opens are
 * tracked (shim/open.c (6)) and an inherited one is taken in at its first
 * read (shim/stats.c (1d)). */
Test(coherence, descriptors_opened_by_libc_or_inherited_read_first)
{
    differential("untracked", NULL);
    const char *env[] = {"WCACHE_MIN_WRITES=8", NULL};
    differential("untracked", env);
}
