/*
 * cli.c - the `wcache` command: run a program with the shim preloaded, in
 * the style of eatmydata, stdbuf and env.
 *
 *   wcache [options] [--] prog args...
 *   wcache ls [DIR] | wcache recover [--dry-run] [DIR]   (cli_recover.c)
 *
 * Invariants:
 *   (1) Options become the WCACHE_* environment variables. Their values are
 *       checked here, by the library's own rules (config.c), before
 *       anything runs: a bad value is wcache's error (exit 125), where the
 *       library alone would only say so and pass through. Values already
 *       in the environment keep the library's rule (the program runs
 *       without the cache), said once here for the whole run, not once by
 *       each of its processes (the run gets WCACHE_DISABLE=1).
 *   (2) libwcache.so is looked up next to this binary, then in
 *       ../lib/wcache/ beside it (an installed or relocated tree), then in
 *       WCACHE_LIBDIR (set at build time); LD_PRELOAD gets it prepended.
 *       Not found, or found at a path LD_PRELOAD cannot carry (a space,
 *       a colon): exit 125.
 *   (3) Exit status, as coreutils wrappers: the program's own (with
 *       --stats, the signal it died of is raised again here, with no core
 *       dump of wcache's: the program's is the one left); 125 for
 *       wcache's errors; 126 for a program that cannot be run; 127 for one
 *       that cannot be found.
 *   (4) Without --stats wcache execs the program (nothing stays between
 *       it and the shell). With --stats it forks, waits, and prints one
 *       summary for the whole process tree (cli_stats.c), also when the
 *       program closed its stderr or cached nothing; a relative FILE is
 *       taken from the directory wcache was started in.
 *   (5) Messages start with "wcache: ".
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

#ifndef WCACHE_LIBDIR
#define WCACHE_LIBDIR "/usr/local/lib/wcache"
#endif
#define WCACHE_VERSION "0.2.0"

int wc_cli_recover(int argc, char **argv);
void wc_cli_replay_dead(void);

static void usage(FILE *out)
{
    fputs(
"usage: wcache [options] [--] program [args...]\n"
"       wcache ls [DIR]                  backing files: owner, bytes held\n"
"       wcache recover [--dry-run] [DIR] write back those of dead processes\n"
"Run program with its small writes to regular files cached in memory and\n"
"written back later (close, fsync, locks, fork/exec, exit, or after\n"
"--flush-ms at the latest).\n"
"\n"
"  --size N        cache capacity (K/M/G suffixes)          WCACHE_SIZE\n"
"  --dirty N       dirty bytes that start write-back        WCACHE_DIRTY\n"
"  --flush-ms N    longest time data stays only in memory   WCACHE_FLUSH_MS\n"
"  --bypass N      writes at least this large skip the cache WCACHE_BYPASS\n"
"  --min-writes N  a file's writes through the kernel before WCACHE_MIN_WRITES\n"
"                  it is cached (8; 0: from its open)\n"
"  --setup-us N    what a process's writes must cost before WCACHE_SETUP_US\n"
"                  it makes its cache (500 us; 0: at once)\n"
"  --background-ns N  a stream's write-back goes to the     WCACHE_BACKGROUND_NS\n"
"                  flusher thread once it costs this a page\n"
"                  (4000 ns; 0: always)\n"
"  --dir D         where the backing file lives             WCACHE_DIR\n"
"  --include P     only cache paths matching these ':'-separated\n"
"                  fnmatch patterns                         WCACHE_INCLUDE\n"
"  --exclude P     never cache paths matching these         WCACHE_EXCLUDE\n"
"  --inherited     cache writable files inherited at start-up (default)\n"
"  --no-inherited  pass inherited files through             WCACHE_INHERITED\n"
"  --no-guard      start no crash guard: after a SIGKILL,   WCACHE_GUARD\n"
"                  `wcache recover` writes the data back\n"
"  --guard         start one (default)\n"
"  --stats [FILE]  one summary for the whole run at the end, on stderr or\n"
"                  in FILE (--stats=FILE, or --stats FILE -- program)\n"
"  --stats-per-process  also each process's own lines      WCACHE_STATS\n"
"  --log LEVEL     error, warn, info or debug               WCACHE_LOG\n"
"  --disable       pass everything through                  WCACHE_DISABLE\n"
"  -h, --help      this text\n"
"  -V, --version   print the version\n"
"\n"
"Exit status: the program's; 125 for wcache's own errors, 126 when the\n"
"program cannot be run, 127 when it cannot be found. See wcache(1).\n",
        out);
}

/* ---- options ------------------------------------------------------------ */

/* Values given as options, checked together once all are read. */
static struct {
    const char *name;
    const char *value;
} g_opt[16];
static int g_nopt;

static void set(const char *var, const char *val)
{
    if (setenv(var, val, 1) != 0) {
        fprintf(stderr, "wcache: cannot set %s: %s\n", var, strerror(errno));
        exit(WC_EXIT_OWN);
    }
}

static const char *option_of(const char *var);

static void set_opt(const char *var, const char *val)
{
    if (!*val) {
        /* An empty value would read as the default, silently. */
        fprintf(stderr, "wcache: %s needs a value\n", option_of(var));
        exit(WC_EXIT_OWN);
    }
    for (int i = 0; i < g_nopt; i++)
        if (!strcmp(g_opt[i].name, var)) {
            g_opt[i].value = val;
            set(var, val);
            return;
        }
    if (g_nopt < (int)(sizeof g_opt / sizeof g_opt[0])) {
        g_opt[g_nopt].name = var;
        g_opt[g_nopt++].value = val;
    }
    set(var, val);
}

/* The value an option gave `name`; NULL if none did. */
static const char *opt_value(const char *name)
{
    for (int i = 0; i < g_nopt; i++)
        if (!strcmp(g_opt[i].name, name))
            return g_opt[i].value;
    return NULL;
}

static int is_opt(const char *name)
{
    return opt_value(name) != NULL;
}

/* The config loader's view: option values only (WCACHE_SIZE also from
 * the environment, which --dirty is checked against, unless it is bad:
 * g_env_size_bad). */
static int g_env_size_bad;

static const char *opt_get(const char *name)
{
    const char *v = opt_value(name);
    if (v || strcmp(name, "WCACHE_SIZE") || g_env_size_bad)
        return v;
    return getenv(name);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *option_of(const char *var)
{
    static const char *const map[][2] = {
        {"WCACHE_SIZE", "--size"}, {"WCACHE_DIRTY", "--dirty"},
        {"WCACHE_FLUSH_MS", "--flush-ms"}, {"WCACHE_BYPASS", "--bypass"},
        {"WCACHE_DIR", "--dir"}, {"WCACHE_INCLUDE", "--include"},
        {"WCACHE_EXCLUDE", "--exclude"}, {"WCACHE_LOG", "--log"},
        {"WCACHE_BACKGROUND_NS", "--background-ns"},
        {"WCACHE_MIN_WRITES", "--min-writes"},
        {"WCACHE_SETUP_US", "--setup-us"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i][0], var))
            return map[i][1];
    return var;
}

static int bad_option(const char *var, const char *val, const char *accepted)
{
    if (!is_opt(var)) {
        /* A bad WCACHE_SIZE in the environment, not an option: the
         * library says so in one line and runs the program pass-through,
         * as for every other variable (README); the options are checked
         * again without it. */
        g_env_size_bad = 1;
        return 0;
    }
    fprintf(stderr, "wcache: %s '%s' is not valid (accepted: %s)\n",
            option_of(var), val, accepted);
    exit(WC_EXIT_OWN);
}

/* A bad value of a variable already in the environment (invariant (1)):
 * said once here, and the run made without the cache (WCACHE_DISABLE=1),
 * so that its processes do not each say it again (probe AA: 102 lines for
 * 100 commands). */
static int g_env_bad;

static const char *env_get(const char *name)
{
    const char *v = opt_value(name);
    return v ? v : getenv(name);
}

static int bad_env(const char *var, const char *val, const char *accepted)
{
    fprintf(stderr, "wcache: %s='%s' is not valid (accepted: %s): the "
            "program runs without the cache\n", var, val, accepted);
    g_env_bad = 1;
    return 0;
}

/* ---- the library and the program ---------------------------------------- */

/* Where libwcache.so is; 0, or -1 when nowhere. */
static int find_lib(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(out, cap, "%s/libwcache.so", exe);
            if (access(out, R_OK) == 0)
                return 0;
            snprintf(out, cap, "%s/../lib/wcache/libwcache.so", exe);
            if (access(out, R_OK) == 0)
                return 0;
        }
    }
    snprintf(out, cap, "%s/libwcache.so", WCACHE_LIBDIR);
    return access(out, R_OK) == 0 ? 0 : -1;
}

/* The file execvp would run for `prog`, or NULL. */
static const char *which(const char *prog, char *buf, size_t cap)
{
    if (strchr(prog, '/'))
        return prog;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, cap, "%.*s%s%s", (int)n, p, n ? "/" : "", prog);
        if (access(buf, X_OK) == 0)
            return buf;
        p += n;
        if (*p == ':')
            p++;
    }
    return NULL;
}

/* Is `path` an ELF executable without a program interpreter (statically
 * linked: LD_PRELOAD cannot reach it)? */
static int elf_is_static(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    Elf64_Ehdr eh;
    int is_static = 0;
    if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh &&
        !memcmp(eh.e_ident, ELFMAG, SELFMAG) &&
        eh.e_ident[EI_CLASS] == ELFCLASS64 && eh.e_phentsize ==
        sizeof(Elf64_Phdr) && eh.e_phnum < 256) {
        is_static = 1;
        for (int i = 0; i < eh.e_phnum; i++) {
            Elf64_Phdr ph;
            if (pread(fd, &ph, sizeof ph,
                      (off_t)(eh.e_phoff + (Elf64_Off)i * sizeof ph)) !=
                (ssize_t)sizeof ph || ph.p_type == PT_INTERP) {
                is_static = 0;
                break;
            }
        }
    }
    close(fd);
    return is_static;
}

static int log_info(void)
{
    const char *v = getenv("WCACHE_LOG");
    return v && (!strcmp(v, "info") || !strcmp(v, "debug"));
}

/* ---- --stats: run, wait, sum up ----------------------------------------- */

static pid_t g_child;

static void forward(int sig)
{
    if (g_child > 0)
        kill(g_child, sig);
}

/* End as the program ended: its status, or its signal, without a core
 * dump of our own: the kernel would write it over the program's (a
 * core_pattern of `core`), or add a second report blaming wcache (probe
 * AA). */
static int end_like(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    int sig = WTERMSIG(status);
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    return 128 + sig;
}

static int run_with_stats(char **argv, const char *stats_file)
{
    char records[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    snprintf(records, sizeof records, "%s/wcache-stats.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    int rfd = mkstemp(records);
    if (rfd < 0) {
        fprintf(stderr, "wcache: cannot create a statistics file in %s: "
                "%s\n", tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return WC_EXIT_OWN;
    }
    close(rfd);
    set("WCACHE_STATS_RAW", records);
    /* The exec's errno comes back through a close-on-exec pipe. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "wcache: pipe: %s\n", strerror(errno));
        unlink(records);
        return WC_EXIT_OWN;
    }
    g_child = fork();
    if (g_child < 0) {
        fprintf(stderr, "wcache: fork: %s\n", strerror(errno));
        unlink(records);
        return WC_EXIT_OWN;
    }
    if (g_child == 0) {
        close(p[0]);
        execvp(argv[0], argv);
        int e = errno;
        if (write(p[1], &e, sizeof e) < 0)
            _exit(WC_EXIT_CANNOT_RUN);
        _exit(WC_EXIT_CANNOT_RUN);
    }
    close(p[1]);
    /* As system(3): the terminal's signals go to the whole group; the
     * others are passed on to the program. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int fwd[] = {SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof fwd / sizeof fwd[0]; i++)
        signal(fwd[i], forward);
    int e = 0;
    ssize_t got;
    while ((got = read(p[0], &e, sizeof e)) < 0 && errno == EINTR)
        ;
    close(p[0]);
    int status = 0;
    while (waitpid(g_child, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof e) {
        fprintf(stderr, "wcache: %s: %s\n", argv[0], strerror(e));
        unlink(records);
        return e == ENOENT || e == ENOTDIR ? WC_EXIT_NOT_FOUND
                                           : WC_EXIT_CANNOT_RUN;
    }
    FILE *out = stderr;
    if (stats_file && !(out = fopen(stats_file, "a"))) {
        fprintf(stderr, "wcache: cannot write %s: %s\n", stats_file,
                strerror(errno));
        out = stderr;
    }
    wc_cli_summary(records, out);
    if (out != stderr)
        fclose(out);
    else
        fflush(stderr);
    unlink(records);
    return end_like(status);
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    enum { O_SIZE = 256, O_DIRTY, O_FLUSH, O_BYPASS, O_DIR, O_STATS,
           O_STATS_PER, O_INCLUDE, O_EXCLUDE, O_LOG, O_DISABLE, O_INHERITED,
           O_NO_INHERITED, O_MIN_WRITES, O_SETUP_US, O_BACKGROUND_NS,
           O_GUARD, O_NO_GUARD };
    static const struct option opts[] = {
        {"size", required_argument, 0, O_SIZE},
        {"dirty", required_argument, 0, O_DIRTY},
        {"flush-ms", required_argument, 0, O_FLUSH},
        {"bypass", required_argument, 0, O_BYPASS},
        {"min-writes", required_argument, 0, O_MIN_WRITES},
        {"setup-us", required_argument, 0, O_SETUP_US},
        {"background-ns", required_argument, 0, O_BACKGROUND_NS},
        {"dir", required_argument, 0, O_DIR},
        {"stats", optional_argument, 0, O_STATS},
        {"stats-per-process", no_argument, 0, O_STATS_PER},
        {"include", required_argument, 0, O_INCLUDE},
        {"exclude", required_argument, 0, O_EXCLUDE},
        {"log", required_argument, 0, O_LOG},
        {"disable", no_argument, 0, O_DISABLE},
        {"inherited", no_argument, 0, O_INHERITED},
        {"no-inherited", no_argument, 0, O_NO_INHERITED},
        {"guard", no_argument, 0, O_GUARD},
        {"no-guard", no_argument, 0, O_NO_GUARD},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0},
    };
    if (argc > 1 && (!strcmp(argv[1], "ls") || !strcmp(argv[1], "recover") ||
                     !strcmp(argv[1], "__guard")))
        return wc_cli_recover(argc - 1, argv + 1);  /* cli_recover.c */
    int stats = 0, per_process = 0;
    char stats_file[PATH_MAX] = "";
    const char *stats_arg = NULL;
    /* '+': stop at the first non-option, so `wcache prog -x` works too. */
    int c;
    while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
        switch (c) {
        case O_SIZE: set_opt("WCACHE_SIZE", optarg); break;
        case O_DIRTY: set_opt("WCACHE_DIRTY", optarg); break;
        case O_FLUSH: set_opt("WCACHE_FLUSH_MS", optarg); break;
        case O_BYPASS: set_opt("WCACHE_BYPASS", optarg); break;
        case O_MIN_WRITES: set_opt("WCACHE_MIN_WRITES", optarg); break;
        case O_SETUP_US: set_opt("WCACHE_SETUP_US", optarg); break;
        case O_BACKGROUND_NS:
            set_opt("WCACHE_BACKGROUND_NS", optarg);
            break;
        case O_DIR: set_opt("WCACHE_DIR", optarg); break;
        case O_INCLUDE: set_opt("WCACHE_INCLUDE", optarg); break;
        case O_EXCLUDE: set_opt("WCACHE_EXCLUDE", optarg); break;
        case O_LOG: set_opt("WCACHE_LOG", optarg); break;
        case O_DISABLE: set("WCACHE_DISABLE", "1"); break;
        case O_INHERITED: set("WCACHE_INHERITED", "1"); break;
        case O_NO_INHERITED: set("WCACHE_INHERITED", "0"); break;
        case O_GUARD: set("WCACHE_GUARD", "1"); break;
        case O_NO_GUARD: set("WCACHE_GUARD", "0"); break;
        case O_STATS_PER: per_process = 1; break;
        case O_STATS:
            stats = 1;
            stats_arg = optarg;
            /* `--stats FILE -- prog`: FILE when a "--" follows it. */
            if (!optarg && optind < argc && strcmp(argv[optind], "--") &&
                argv[optind][0] != '-')
                for (int i = optind + 1; i < argc; i++)
                    if (!strcmp(argv[i], "--")) {
                        stats_arg = argv[optind++];
                        break;
                    }
            break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("wcache " WCACHE_VERSION "\n"); return 0;
        default:
            fprintf(stderr, "Try 'wcache --help'.\n");
            return WC_EXIT_OWN;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "wcache: no program given\n"
                "Try 'wcache --help'.\n");
        return WC_EXIT_OWN;
    }
    struct wc_shim_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int on = wc_config_load(&cfg, opt_get, is_dir, bad_option);
    if (g_env_size_bad) {
        memset(&cfg, 0, sizeof cfg);
        on = wc_config_load(&cfg, opt_get, is_dir, bad_option);
    }
    if (on) {
        struct wc_shim_config all;
        memset(&all, 0, sizeof all);
        on = wc_config_load(&all, env_get, is_dir, bad_env);
        if (g_env_bad)
            set("WCACHE_DISABLE", "1");
    }
    /* What programs killed with their guard left goes to the files
     * before this one writes there (cli_recover.c (G5); the options are
     * in the environment by now). */
    if (on)
        wc_cli_replay_dead();
    if (stats_arg && *stats_arg) {
        /* Relative to where wcache was started, not to where each
         * process happens to be at its exit. */
        char cwd[PATH_MAX];
        int n = stats_arg[0] == '/' || !getcwd(cwd, sizeof cwd)
                    ? snprintf(stats_file, sizeof stats_file, "%s",
                               stats_arg)
                    : snprintf(stats_file, sizeof stats_file, "%s/%s", cwd,
                               stats_arg);
        if (n < 0 || (size_t)n >= sizeof stats_file) {
            fprintf(stderr, "wcache: --stats: path too long\n");
            return WC_EXIT_OWN;
        }
    }
    if (per_process) {
        stats = 1;
        set("WCACHE_STATS", stats_file[0] ? stats_file : "1");
    }
    char lib[PATH_MAX + 32];
    if (find_lib(lib, sizeof lib) != 0) {
        fprintf(stderr, "wcache: libwcache.so not found beside this "
                "program nor in %s\n", WCACHE_LIBDIR);
        return WC_EXIT_OWN;
    }
    if (strpbrk(lib, " \t\n:")) {
        /* ld.so splits LD_PRELOAD at spaces and colons: every process
         * would print its errors and run without the cache (probe AA). */
        fprintf(stderr, "wcache: %s: LD_PRELOAD cannot hold a path with a "
                "space or a colon; install wcache under another path\n", lib);
        return WC_EXIT_OWN;
    }
    const char *old = getenv("LD_PRELOAD");
    if (old && *old) {
        size_t n = strlen(lib) + 1 + strlen(old) + 1;
        char *both = malloc(n);
        if (!both) {
            fprintf(stderr, "wcache: out of memory\n");
            return WC_EXIT_OWN;
        }
        snprintf(both, n, "%s:%s", lib, old);
        set("LD_PRELOAD", both);
        free(both);
    } else {
        set("LD_PRELOAD", lib);
    }
    char found[PATH_MAX];
    const char *exe = which(argv[optind], found, sizeof found);
    if (exe && log_info() && elf_is_static(exe))
        fprintf(stderr, "wcache: %s is statically linked: LD_PRELOAD "
                "cannot reach it, so it runs without the cache\n", exe);
    if (stats)
        return run_with_stats(argv + optind, stats_file[0] ? stats_file
                                                           : NULL);
    execvp(argv[optind], argv + optind);
    int e = errno;
    fprintf(stderr, "wcache: %s: %s\n", argv[optind], strerror(e));
    return e == ENOENT || e == ENOTDIR ? WC_EXIT_NOT_FOUND
                                       : WC_EXIT_CANNOT_RUN;
}
