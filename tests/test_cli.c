/*
 * test_cli.c - the `wcache` command's conventions (shim/cli.c), as a user
 * of env, nice, timeout or stdbuf expects them: exit 125 for wcache's own
 * errors, 126 and 127 for a program that cannot be run or found, the
 * program's status otherwise; each option's variable; --stats FILE and
 * --stats=FILE relative to where wcache started; one summary for the whole run, also when nothing
 * was cached or the program closed its stderr; -V; a statically linked
 * program named as such at --log info.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <sys/procfs.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib_shim.h"

#define WCACHE WCT_BUILD_DIR "/wcache"

static char *scratch;

static void setup(void)
{
    scratch = wct_scratch("cli");
}

static void teardown(void)
{
    wct_rmtree(scratch);
    free(scratch);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

/* Run wcache with `args` (a NULL-terminated list after argv[0]) in the
 * scratch directory. */
static void run(struct wct_result *res, const char *const *args)
{
    const char *argv[32] = {WCACHE};
    int n = 1;
    while (args[n - 1] && n < 31) {
        argv[n] = args[n - 1];
        n++;
    }
    argv[n] = NULL;
    struct wct_spec spec = {.argv = argv, .cwd = scratch, .timeout_s = 30};
    cr_assert(wct_run(&spec, res) == 0, "cannot run %s", WCACHE);
}

static int exit_code(const struct wct_result *r)
{
    return !r->timed_out && WIFEXITED(r->status) ? WEXITSTATUS(r->status)
                                                   : -1;
}

Test(cli, bad_option_values_are_wcaches_error)
{
    const char *cases[][4] = {
        {"--size", "1X", "true", NULL}, {"--log", "verbose", "true", NULL},
        {"--dirty", "1G", "true", NULL}, {"--flush-ms", "0", "true", NULL},
        {"--dir", "relative", "true", NULL},
        {"--background-ns", "-1", "true", NULL},
        {"--bogus-option", "true", NULL, NULL},
        /* Named as typed, not as the variable; an empty value is no
         * silent default; the upper bound said (probe AA). */
        {"--min-writes", "abc", "true", NULL},
        {"--setup-us", "abc", "true", NULL},
        {"--size", "", "true", NULL},
        {"--bypass", "1T", "true", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wct_result r;
        run(&r, cases[i]);
        cr_expect(exit_code(&r) == 125, "%s %s: exit %s, expected 125",
                  cases[i][0], cases[i][1] ? cases[i][1] : "",
                  wct_status_str(&r));
        cr_expect(strncmp(r.err, "wcache: ", 8) == 0 ||
                  strstr(r.err, "Try 'wcache --help'"),
                  "%s: message \"%s\"", cases[i][0], r.err);
        cr_expect(strncmp(r.err, "wcache: WCACHE_", 15) != 0,
                  "%s: message \"%s\"", cases[i][0], r.err);
        if (!strcmp(cases[i][0], "--bypass"))
            cr_expect(strstr(r.err, "2147479552"), "%s", r.err);
        cr_expect(r.out_len == 0, "the program ran: %s", r.out);
        wct_result_free(&r);
    }
}

/* A bad value in the environment, not an option, keeps the library's
 * rule: the program runs pass-through (README), WCACHE_SIZE included (it
 * stopped the run with exit 125 and a message naming --size, an option
 * nobody gave); the command says so in one line for the whole run. */
Test(cli, bad_environment_values_run_the_program)
{
    static const char *const vars[] = {"WCACHE_SIZE=abc", "WCACHE_SIZE=100K",
                                       "WCACHE_DIRTY=abc", "WCACHE_LOG=bogus"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        /* Said once for the run, not by each of its processes (probe AA:
         * 102 lines for 100 commands). */
        const char *argv[] = {WCACHE, "--", "sh", "-c",
                              "/bin/true; /bin/true; echo ran", NULL};
        const char *env[] = {vars[i], NULL};
        struct wct_spec spec = {.argv = argv, .env = env, .cwd = scratch,
                                .timeout_s = 30};
        struct wct_result r;
        cr_assert(wct_run(&spec, &r) == 0, "cannot run %s", WCACHE);
        cr_expect(exit_code(&r) == 0 && !strcmp(r.out, "ran\n"),
                  "%s: exit %s, output \"%s\"", vars[i], wct_status_str(&r),
                  r.out);
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(vars[i], "="),
                 vars[i]);
        int said = 0;
        for (const char *p = r.err; (p = strstr(p, name)); p++)
            said++;
        cr_expect(said == 1 && !strstr(r.err, "--size"),
                  "%s: message \"%s\"", vars[i], r.err);
        wct_result_free(&r);
    }
    /* The same value given as an option is wcache's own error. */
    struct wct_result r;
    const char *args[] = {"--size", "abc", "true", NULL};
    run(&r, args);
    cr_expect(exit_code(&r) == 125, "--size abc: exit %s", wct_status_str(&r));
    wct_result_free(&r);
}

Test(cli, program_not_found_or_not_runnable)
{
    struct wct_result r;
    run(&r, (const char *[]){"--", "no-such-program-here", NULL});
    cr_expect(exit_code(&r) == 127, "not found: %s", wct_status_str(&r));
    cr_expect(strstr(r.err, "wcache: no-such-program-here:"), "%s", r.err);
    wct_result_free(&r);
    char plain[4200];
    snprintf(plain, sizeof plain, "%s/not-executable", scratch);
    cr_assert(wct_spit(plain, "x\n", 2) == 0);
    run(&r, (const char *[]){plain, NULL});
    cr_expect(exit_code(&r) == 126, "not runnable: %s", wct_status_str(&r));
    wct_result_free(&r);
    run(&r, (const char *[]){"--stats", "--", "no-such-program-here", NULL});
    cr_expect(exit_code(&r) == 127, "--stats, not found: %s",
              wct_status_str(&r));
    wct_result_free(&r);
    run(&r, (const char *[]){NULL});
    cr_expect(exit_code(&r) == 125, "no program: %s", wct_status_str(&r));
    wct_result_free(&r);
}

Test(cli, the_programs_status_and_signal)
{
    struct wct_result r;
    for (int stats = 0; stats < 2; stats++) {
        const char *opt = stats ? "--stats" : "--inherited";
        run(&r, (const char *[]){opt, "--", "sh", "-c", "exit 3", NULL});
        cr_expect(exit_code(&r) == 3, "exit 3: %s", wct_status_str(&r));
        wct_result_free(&r);
        run(&r, (const char *[]){opt, "--", "sh", "-c", "kill -USR1 $$",
                                 NULL});
        cr_expect(!r.timed_out && WIFSIGNALED(r.status) &&
                  WTERMSIG(r.status) == SIGUSR1,
                  "killed by SIGUSR1 (stats %d): %s", stats,
                  wct_status_str(&r));
        wct_result_free(&r);
    }
}

/* The process name in a core file's NT_PRPSINFO note; "" if none. */
static void core_name(const char *path, char *out, size_t cap)
{
    size_t len;
    char *c = wct_slurp(path, &len);
    out[0] = 0;
    if (!c || len < sizeof(Elf64_Ehdr))
        goto done;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)c;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *ph = (const Elf64_Phdr *)(c + eh->e_phoff +
                                                    i * eh->e_phentsize);
        if ((const char *)(ph + 1) > c + len || ph->p_type != PT_NOTE)
            continue;
        for (size_t at = ph->p_offset;
             at + sizeof(Elf64_Nhdr) <= ph->p_offset + ph->p_filesz &&
             at + sizeof(Elf64_Nhdr) <= len;) {
            const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(c + at);
            size_t desc = at + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_PRPSINFO &&
                desc + sizeof(prpsinfo_t) <= len) {
                const prpsinfo_t *ps = (const prpsinfo_t *)(c + desc);
                snprintf(out, cap, "%.*s", (int)sizeof ps->pr_fname,
                         ps->pr_fname);
                goto done;
            }
            at = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
done:
    free(c);
}

/* With --stats, wcache stays the parent and dies of the program's signal
 * again: without a core dump of its own, which the kernel wrote over the
 * program's (probe AA: a core_pattern of `core`, Debian's default). */
Test(cli, the_programs_core_dump_is_the_one_left)
{
    struct rlimit old, all = {RLIM_INFINITY, RLIM_INFINITY};
    getrlimit(RLIMIT_CORE, &old);
    if (setrlimit(RLIMIT_CORE, &all) != 0) {
        all.rlim_cur = all.rlim_max = old.rlim_max;
        setrlimit(RLIMIT_CORE, &all);
    }
    struct wct_result r;
    run(&r, (const char *[]){"--stats", "--", "sh", "-c", "kill -SEGV $$",
                             NULL});
    setrlimit(RLIMIT_CORE, &old);
    cr_assert(!r.timed_out && WIFSIGNALED(r.status) &&
              WTERMSIG(r.status) == SIGSEGV, "%s", wct_status_str(&r));
    cr_expect(!WCOREDUMP(r.status), "wcache dumped core itself");
    wct_result_free(&r);
    char pattern[256] = "", core[4200], name[32];
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    if (f && fgets(pattern, sizeof pattern, f))
        pattern[strcspn(pattern, "\n")] = 0;
    if (f)
        fclose(f);
    snprintf(core, sizeof core, "%s/core", scratch);
    if (strcmp(pattern, "core") != 0 || all.rlim_cur == 0)
        return;                 /* the dump goes elsewhere, or none */
    core_name(core, name, sizeof name);
    cr_expect_str_eq(name, "sh", "the core left is not the program's");
    unlink(core);
}

/* A tree whose path holds a space or a colon: LD_PRELOAD cannot carry
 * the library's path, and every process ran uncached, printing the
 * loader's errors, wcache exiting 0 (probe AA). Now wcache's error. */
Test(cli, library_path_that_ld_preload_cannot_carry)
{
    const char *dirs[] = {"sp ace", "co:lon"};
    for (int i = 0; i < 2; i++) {
        char d[4200], sh[9000];
        snprintf(d, sizeof d, "%s/%s", scratch, dirs[i]);
        snprintf(sh, sizeof sh, "mkdir '%s' && cp %s %s/libwcache.so '%s'/",
                 d, WCACHE, WCT_BUILD_DIR, d);
        cr_assert_eq(system(sh), 0, "%s", sh);
        char exe[4300];
        snprintf(exe, sizeof exe, "%s/wcache", d);
        const char *argv[] = {exe, "--", "true", NULL};
        struct wct_spec spec = {.argv = argv, .cwd = scratch,
                                .timeout_s = 30};
        struct wct_result r;
        cr_assert(wct_run(&spec, &r) == 0);
        cr_expect(exit_code(&r) == 125 && strstr(r.err, "LD_PRELOAD"),
                  "%s: %s\n%s", dirs[i], wct_status_str(&r), r.err);
        wct_result_free(&r);
    }
}

/* Run the shell script `sh` (it names stats.txt for --stats) in the
 * scratch directory with `env` added; the statistics it wrote (malloc'd). */
static char *stats_of(const char *sh, const char *const *env)
{
    struct wct_result r;
    cr_assert_eq(wct_sh(0, scratch, env, 60, &r, sh), 0);
    cr_assert(wct_ok(&r), "%s\n%s", wct_status_str(&r), r.err);
    wct_result_free(&r);
    char path[4200];
    snprintf(path, sizeof path, "%s/stats.txt", scratch);
    char *s = wct_slurp(path, NULL);
    cr_assert_not_null(s);
    return s;
}

/* Writes through a description the shell keeps (`prog > out` run by a
 * shell that waits) are cached, each with an lseek reserving its offset:
 * those calls are issued, not avoided (probe AA: "19985 avoided" where
 * strace counted one lseek a write). */
Test(cli, stats_count_offset_reservations)
{
    char sh[9000];
    snprintf(sh, sizeof sh, "%s --stats=stats.txt -- sh -c 'i=0; "
             "while [ $i -lt 300 ]; do echo line $i; i=$((i + 1)); done' "
             "> out", WCACHE);
    const char *env[] = {"WCACHE_SETUP_US=0", "WCACHE_MIN_WRITES=0", NULL};
    char *s = stats_of(sh, env);
    unsigned long long w = 0, issued = 0, wb = 0, th = 0, rsv = 0, av = 0;
    const char *p = strstr(s, "\nwcache: ");
    cr_assert(p && sscanf(p, "\nwcache: %llu writes absorbed", &w) == 1,
              "%s", s);
    p = strstr(s, "system calls: ");
    cr_assert(p && sscanf(p, "system calls: %llu issued (%llu write-back, "
                             "%llu written through, %llu offset "
                             "reservations), %llu avoided",
                          &issued, &wb, &th, &rsv, &av) == 5, "%s", s);
    cr_expect(rsv > 0 && issued == wb + th + rsv &&
              av == (w > wb + rsv ? w - wb - rsv : 0), "%s", s);
    free(s);
}

/* An exec that fails (each directory of PATH before the program's) goes
 * on in the same image: the counts it published were counted again at
 * every try (probe AA: 5 writes reported as 30). */
Test(cli, stats_after_failed_execs)
{
    char sh[9000];
    snprintf(sh, sizeof sh, "%s --stats=stats.txt -- sh -c 'for i in 1 2 3 "
             "4 5; do echo $i; done > g; PATH=/n1:/n2:/n3:/n4:/n5:$PATH; "
             "exec sh -c true'", WCACHE);
    char *s = stats_of(sh, NULL);
    unsigned long long nc = 0;
    const char *q = strstr(s, " writes passed through uncached");
    cr_assert(q, "%s", s);
    while (q > s && q[-1] != ' ' && q[-1] != '\n')
        q--;
    cr_assert(sscanf(q, "%llu", &nc) == 1, "%s", s);
    cr_expect_eq(nc, 5, "%s", s);
    free(s);
}

/* `ls` lists and removes nothing: for an empty backing file it said
 * "removed", the file still there (probe AA); `recover` removes it. */
Test(cli, ls_removes_nothing)
{
    char d[4300], f[4400];
    snprintf(d, sizeof d, "%s/wcache-%u", scratch, (unsigned)getuid());
    cr_assert_eq(mkdir(d, 0700), 0);
    snprintf(f, sizeof f, "%s/cache.99999.1234abcd", d);
    cr_assert_eq(wct_spit(f, "", 0), 0);
    chmod(f, 0600);
    struct wct_result r;
    run(&r, (const char *[]){"ls", scratch, NULL});
    cr_expect(access(f, F_OK) == 0, "ls removed it");
    cr_expect(!strstr(r.err, "removed") && !strstr(r.out, "removed"),
              "ls says: %s%s", r.out, r.err);
    wct_result_free(&r);
    run(&r, (const char *[]){"recover", scratch, NULL});
    cr_expect(access(f, F_OK) != 0, "recover kept it: %s", r.err);
    wct_result_free(&r);
}

/* ls and recover follow the command's conventions: a usage error is
 * wcache's own (125, not 2), --help is no error (probe AA). */
Test(cli, ls_and_recover_usage)
{
    struct wct_result r;
    run(&r, (const char *[]){"ls", "--bogus", NULL});
    cr_expect(exit_code(&r) == 125 && strstr(r.err, "usage: wcache ls"),
              "ls --bogus: %s %s", wct_status_str(&r), r.err);
    wct_result_free(&r);
    run(&r, (const char *[]){"recover", "--help", NULL});
    cr_expect(exit_code(&r) == 0 && strstr(r.out, "usage: wcache ls"),
              "recover --help: %s %s", wct_status_str(&r), r.out);
    wct_result_free(&r);
}

/* A directory named that holds no store is empty, as one given through
 * WCACHE_DIR is (probe AA F11: exit 1 one way, 0 the other); a name that
 * is no directory is an error, said. */
Test(cli, ls_and_recover_of_an_empty_directory)
{
    struct wct_result r;
    for (int rec = 0; rec < 2; rec++) {
        const char *cmd = rec ? "recover" : "ls";
        run(&r, (const char *[]){cmd, scratch, NULL});
        cr_expect(exit_code(&r) == 0, "%s of an empty directory: %s %s", cmd,
                  wct_status_str(&r), r.err);
        wct_result_free(&r);
        char missing[4200];
        snprintf(missing, sizeof missing, "%s/missing", scratch);
        run(&r, (const char *[]){cmd, missing, NULL});
        cr_expect(exit_code(&r) == 1 && strstr(r.err, "No such file"),
                  "%s of a missing directory: %s %s", cmd,
                  wct_status_str(&r), r.err);
        wct_result_free(&r);
    }
}

Test(cli, version_and_help)
{
    struct wct_result r;
    run(&r, (const char *[]){"-V", NULL});
    cr_expect(exit_code(&r) == 0 && !strncmp(r.out, "wcache ", 7), "-V: %s",
              r.out);
    wct_result_free(&r);
    run(&r, (const char *[]){"--version", NULL});
    cr_expect(exit_code(&r) == 0 && !strncmp(r.out, "wcache ", 7),
              "--version: %s", r.out);
    wct_result_free(&r);
    run(&r, (const char *[]){"--help", NULL});
    cr_expect(exit_code(&r) == 0 && strstr(r.out, "usage: wcache"), "%s",
              r.out);
    wct_result_free(&r);
}

/* Does out hold the whole line `line`? */
static int has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; (p = strstr(p, line)); p++)
        if ((p == out || p[-1] == '\n') && (p[n] == '\n' || !p[n]))
            return 1;
    return 0;
}

/* Each option sets the variable the help names, which the program's
 * environment then shows (and the library reads there, as without the
 * command); the switches both ways. */
Test(cli, options_set_their_variables)
{
    static const char *const want[] = {
        "WCACHE_SIZE=3M",        "WCACHE_DIRTY=1M",
        "WCACHE_FLUSH_MS=250",   "WCACHE_BYPASS=64K",
        "WCACHE_MIN_WRITES=3",   "WCACHE_SETUP_US=7",
        "WCACHE_BACKGROUND_NS=9", "WCACHE_INCLUDE=*.log",
        "WCACHE_EXCLUDE=*.tmp",  "WCACHE_INHERITED=0",
        "WCACHE_GUARD=0",        "WCACHE_LOG=error",
        "WCACHE_DISABLE=1",
    };
    struct wct_result r;
    run(&r, (const char *[]){"--size", "3M", "--dirty", "1M", "--flush-ms",
                             "250", "--bypass", "64K", "--min-writes", "3",
                             "--setup-us", "7", "--background-ns", "9",
                             "--include", "*.log", "--exclude", "*.tmp",
                             "--no-inherited", "--no-guard", "--log",
                             "error", "--disable", "--", "/usr/bin/env",
                             NULL});
    cr_assert(exit_code(&r) == 0, "exit %d: %s", exit_code(&r), r.err);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(has_line(r.out, want[i]), "%s not set:\n%s", want[i],
                  r.out);
    wct_result_free(&r);
    run(&r, (const char *[]){"--no-inherited", "--inherited", "--no-guard",
                             "--guard", "--", "/usr/bin/env", NULL});
    cr_expect(exit_code(&r) == 0 && has_line(r.out, "WCACHE_INHERITED=1") &&
                  has_line(r.out, "WCACHE_GUARD=1"),
              "the later switch wins: %s", r.out);
    wct_result_free(&r);
}

/* One summary for the whole tree: processes, writes, passed through. */
Test(cli, stats_summary_for_the_whole_run)
{
    struct wct_result r;
    run(&r, (const char *[]){"--stats", "--min-writes=0", "--", "dash", "-c",
             "for i in $(seq 300); do echo $i; done > f; "
             "(echo a > g; echo b >> g); echo x | cat > /dev/null", NULL});
    cr_assert(exit_code(&r) == 0, "%s: %s", wct_status_str(&r), r.err);
    cr_expect(strstr(r.err, "wcache: ") && strstr(r.err, " processes, "),
              "no process count:\n%s", r.err);
    cr_expect(strstr(r.err, "wcache: 301 writes absorbed") ||
              strstr(r.err, "wcache: 302 writes absorbed"),
              "writes absorbed:\n%s", r.err);
    cr_expect(strstr(r.err, "not a regular file"), "reasons:\n%s", r.err);
    /* One summary, not a line per process. */
    const char *first = strstr(r.err, "writes absorbed");
    cr_expect(first && !strstr(first + 1, "writes absorbed"),
              "more than one summary:\n%s", r.err);
    wct_result_free(&r);
}

/* --background-ns 0: a stream's batches are written by the flusher
 * thread (cache/async.c), which the summary counts; the file is whole.
 * A flusher that gets no CPU writes nothing (the writer does it then, by
 * design): on a machine busy with two other builds (make check-long
 * beside CI) one run in several had no batch in the background, so the
 * run is made up to three times. */
Test(cli, background_write_back_in_the_summary)
{
    struct wct_result r;
    for (int tries = 0; tries < 3; tries++) {
        if (tries)
            wct_result_free(&r);
        run(&r, (const char *[]){"--stats", "--background-ns", "0", "--",
                 "dash", "-c",
                 "perl -e '$|=1; print \"line $_\\n\" for 1..200000' > f; "
                 "md5sum < f; seq -f 'line %g' 200000 | md5sum", NULL});
        cr_assert(exit_code(&r) == 0, "%s: %s", wct_status_str(&r), r.err);
        if (strstr(r.err, "batches written by the flusher thread"))
            break;
    }
    cr_expect(strstr(r.err, "batches written by the flusher thread"),
              "no batch in the background:\n%s", r.err);
    cr_expect(strlen(r.out) == 2 * 36 && !strncmp(r.out, r.out + 36, 32),
              "the file differs from seq's output:\n%s", r.out);
    wct_result_free(&r);
}

Test(cli, stats_when_nothing_cached_and_stderr_closed)
{
    struct wct_result r;
    run(&r, (const char *[]){"--stats", "--", "sh", "-c",
                             "exec 2>&-; echo hi | cat > /dev/null", NULL});
    cr_expect(exit_code(&r) == 0, "%s", wct_status_str(&r));
    cr_expect(strstr(r.err, "0 writes absorbed") &&
              strstr(r.err, "not a regular file"),
              "the summary must explain a run that cached nothing:\n%s",
              r.err);
    wct_result_free(&r);
}

/* A descendant that outlives the program: its record comes after the
 * summary, which it cannot join, and must not make the records file again
 * (probe AA F13: one left in TMPDIR per such run). */
Test(cli, stats_and_a_descendant_that_outlives_the_program)
{
    char tmp[4200], env_tmp[4300], done[4200];
    snprintf(tmp, sizeof tmp, "%s/tmp", scratch);
    snprintf(done, sizeof done, "%s/done", scratch);
    cr_assert_eq(mkdir(tmp, 0700), 0);
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmp);
    char sh[9000];
    snprintf(sh, sizeof sh, "%s --stats -- sh -c '(sleep 0.3; i=0; "
             "while [ $i -lt 50 ]; do echo $i; i=$((i + 1)); done > %s/late; "
             "touch %s) > /dev/null 2>&1 &'", WCACHE, scratch, done);
    const char *env[] = {env_tmp, "WCACHE_MIN_WRITES=0", NULL};
    struct wct_result r;
    cr_assert_eq(wct_sh(0, scratch, env, 60, &r, sh), 0);
    cr_expect(wct_ok(&r), "%s\n%s", wct_status_str(&r), r.err);
    cr_expect(strstr(r.err, "wcache: "), "no summary:\n%s", r.err);
    wct_result_free(&r);
    for (int i = 0; i < 500 && access(done, F_OK) != 0; i++)
        usleep(10000);
    cr_assert_eq(access(done, F_OK), 0, "the descendant did not finish");
    usleep(100000);             /* its exit, after the touch */
    DIR *d = opendir(tmp);
    cr_assert_not_null(d);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            left++;
            cr_expect(0, "left in TMPDIR: %s", e->d_name);
        }
    closedir(d);
    cr_expect_eq(left, 0);
    char late[4200];
    snprintf(late, sizeof late, "%s/late", scratch);
    size_t len = 0;
    char *t = wct_slurp(late, &len);
    cr_expect(t && len == 140, "the descendant's file: %zu bytes", len);
    free(t);
    unlink(late);
    unlink(done);
    rmdir(tmp);
}

/* Writes of 8 KiB or more are never cached: the summary says so, not
 * that they were a file's first writes (probe AD F7). */
Test(cli, stats_name_large_writes)
{
    char of[4300];
    snprintf(of, sizeof of, "of=%s/big", scratch);
    struct wct_result r;
    run(&r, (const char *[]){"--stats", "--", "dd", "if=/dev/zero", of,
                             "bs=65536", "count=20", "status=none", NULL});
    cr_expect(exit_code(&r) == 0, "%s", wct_status_str(&r));
    cr_expect(strstr(r.err, "writes of 8 KiB or more (one system call "
                            "either way) 20") &&
              !strstr(r.err, "first writes"),
              "the summary must name the large writes:\n%s", r.err);
    wct_result_free(&r);
    char big[4200];
    snprintf(big, sizeof big, "%s/big", scratch);
    unlink(big);
}

/* A cache that cannot be made (a regular file where the store directory
 * would be): the summary says so, not that the writes were the files'
 * first ones (probe AA F10: "a file's first writes (WCACHE_MIN_WRITES)
 * 100"). */
Test(cli, stats_when_no_cache_can_be_made)
{
    char file[4200], out[4200];
    snprintf(file, sizeof file, "%s/wcache-%u", scratch, (unsigned)getuid());
    snprintf(out, sizeof out, "%s/out", scratch);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fclose(f);
    char sh[9000];
    snprintf(sh, sizeof sh, "i=0; while [ $i -lt 100 ]; do echo line $i; "
             "i=$((i + 1)); done > %s", out);
    struct wct_result r;
    run(&r, (const char *[]){"--dir", scratch, "--setup-us", "0", "--stats",
                             "--", "sh", "-c", sh, NULL});
    cr_expect(exit_code(&r) == 0, "%s", wct_status_str(&r));
    /* All but the first file's first writes (WCACHE_MIN_WRITES). */
    const char *p = strstr(r.err, "no cache (could not be created) ");
    unsigned n = 0;
    cr_expect(p && sscanf(p, "no cache (could not be created) %u", &n) == 1
                  && n >= 50,
              "the summary must say the cache could not be made:\n%s",
              r.err);
    wct_result_free(&r);
    unlink(out);
    unlink(file);
}

/* --stats FILE and --stats=FILE: relative to where wcache started, even
 * when the program changes directory. */
Test(cli, stats_file_relative_to_the_start)
{
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/sub", scratch);
    cr_assert(mkdir(sub, 0755) == 0);
    const char *forms[][3] = {{"--stats", "s1.txt", NULL},
                              {"--stats=s2.txt", NULL, NULL}};
    for (int i = 0; i < 2; i++) {
        struct wct_result r;
        const char *args[12];
        int n = 0;
        for (int k = 0; forms[i][k]; k++)
            args[n++] = forms[i][k];
        args[n++] = "--min-writes=0";
        args[n++] = "--";
        args[n++] = "sh";
        args[n++] = "-c";
        args[n++] = "cd sub && for i in 1 2 3; do echo $i; done > f";
        args[n] = NULL;
        run(&r, args);
        cr_expect(exit_code(&r) == 0, "%s: %s", wct_status_str(&r), r.err);
        char path[4300];
        snprintf(path, sizeof path, "%s/s%d.txt", scratch, i + 1);
        size_t len;
        char *s = wct_slurp(path, &len);
        cr_expect(s && strstr(s, "3 writes absorbed"),
                  "form %d: no summary in %s: %s", i, path, s ? s : "");
        free(s);
        snprintf(path, sizeof path, "%s/sub/s%d.txt", scratch, i + 1);
        cr_expect(access(path, F_OK) != 0, "summary written in sub/");
        wct_result_free(&r);
    }
}

Test(cli, static_binary_named_at_log_info)
{
    wct_require_prog(WCT_PROG("prog_static"));
    struct wct_result r;
    run(&r, (const char *[]){"--log", "info", "--", WCT_PROG("prog_static"),
                             NULL});
    cr_expect(exit_code(&r) == 0 && !strcmp(r.out, "static\n"), "%s",
              wct_status_str(&r));
    cr_expect(strstr(r.err, "statically linked"), "no message: %s", r.err);
    wct_result_free(&r);
    run(&r, (const char *[]){"--", WCT_PROG("prog_static"), NULL});
    cr_expect(r.err_len == 0, "message at the default level: %s", r.err);
    wct_result_free(&r);
}

/* WCACHE_LOG=debug says, for each descriptor, whether it is cached and
 * why not. */
Test(cli, debug_log_says_why_for_each_descriptor)
{
    struct wct_result r;
    run(&r, (const char *[]){"--log", "debug", "--min-writes", "0", "--",
             "dash", "-c",
             "echo a > f; echo b >> f; exec 3>/dev/null; echo c > g", NULL});
    cr_expect(exit_code(&r) == 0, "%s", wct_status_str(&r));
    cr_expect(strstr(r.err, "(f, opened): cached"), "open of f:\n%s", r.err);
    cr_expect(strstr(r.err, "(/dev/null, opened): not cached: not a regular "
                     "file"), "/dev/null:\n%s", r.err);
    /* dash's `> f` and `>> f` (a dup2 onto 1 while glibc's stdout holds
     * nothing): cached with an offset of their own (stdio.c (2)). */
    cr_expect(strstr(r.err, "duplicated): cached, its offset its own until "
                     "stdio writes there"),
              "dup2 onto stdout:\n%s", r.err);
    int guarded = 0;
    for (const char *p = r.err; (p = strstr(p, "its offset its own")); p++)
        guarded++;
    cr_expect(guarded == 3, "> f, >> f, > g: %d guarded:\n%s", guarded,
              r.err);
    wct_result_free(&r);
}
