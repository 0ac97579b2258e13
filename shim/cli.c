/*
 * cli.c - the `wcache` command: run a program with the shim preloaded, in
 * the style of eatmydata and stdbuf.
 *
 *   wcache [options] -- prog args...
 *   wcache ls [DIR] | wcache recover [--dry-run] [DIR]   (cli_recover.c)
 *
 * Invariants:
 *   (1) Options become the WCACHE_* environment variables (the shim
 *       validates them: one place decides what a valid value is);
 *       LD_PRELOAD gets libwcache.so prepended.
 *   (2) libwcache.so is looked up next to this binary (readlink
 *       /proc/self/exe), then in WCACHE_LIBDIR (set at build time).
 *   (3) The exit status is prog's (we exec it); a program that cannot be
 *       found is 127, one that cannot be run 126, as in a shell; a usage
 *       error is 2.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef WCACHE_LIBDIR
#define WCACHE_LIBDIR "/usr/local/lib"
#endif
#define WCACHE_VERSION "0.1.0"

int wc_cli_recover(int argc, char **argv);

static void usage(FILE *out)
{
    fputs(
"usage: wcache [options] -- program [args...]\n"
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
"  --dir D         where the backing file lives             WCACHE_DIR\n"
"  --include P     only cache paths matching these ':'-separated\n"
"                  fnmatch patterns                         WCACHE_INCLUDE\n"
"  --exclude P     never cache paths matching these         WCACHE_EXCLUDE\n"
"  --inherited     also cache writable files inherited at start-up\n"
"                                                           WCACHE_INHERITED\n"
"  --stats[=FILE]  print statistics at exit (to stderr or FILE)\n"
"                                                           WCACHE_STATS\n"
"  --log LEVEL     error, warn, info or debug               WCACHE_LOG\n"
"  --disable       pass everything through                  WCACHE_DISABLE\n"
"  --help          this text\n"
"  --version       print the version\n"
"\n"
"The exit status is the program's (127: not found, 126: not runnable).\n",
        out);
}

static void set(const char *var, const char *val)
{
    if (setenv(var, val, 1) != 0) {
        fprintf(stderr, "wcache: cannot set %s: %s\n", var, strerror(errno));
        exit(2);
    }
}

/* Where libwcache.so is: beside this binary, else WCACHE_LIBDIR. */
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

int main(int argc, char **argv)
{
    enum { O_SIZE = 256, O_DIRTY, O_FLUSH, O_BYPASS, O_DIR, O_STATS,
           O_INCLUDE, O_EXCLUDE, O_LOG, O_DISABLE, O_INHERITED, O_HELP,
           O_VERSION };
    static const struct option opts[] = {
        {"size", required_argument, 0, O_SIZE},
        {"dirty", required_argument, 0, O_DIRTY},
        {"flush-ms", required_argument, 0, O_FLUSH},
        {"bypass", required_argument, 0, O_BYPASS},
        {"dir", required_argument, 0, O_DIR},
        {"stats", optional_argument, 0, O_STATS},
        {"include", required_argument, 0, O_INCLUDE},
        {"exclude", required_argument, 0, O_EXCLUDE},
        {"log", required_argument, 0, O_LOG},
        {"disable", no_argument, 0, O_DISABLE},
        {"inherited", no_argument, 0, O_INHERITED},
        {"help", no_argument, 0, O_HELP},
        {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0},
    };
    if (argc > 1 && (!strcmp(argv[1], "ls") || !strcmp(argv[1], "recover") ||
                     !strcmp(argv[1], "__guard")))
        return wc_cli_recover(argc - 1, argv + 1);  /* cli_recover.c */
    /* '+': stop at the first non-option, so `wcache prog -x` works too. */
    int c;
    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case O_SIZE: set("WCACHE_SIZE", optarg); break;
        case O_DIRTY: set("WCACHE_DIRTY", optarg); break;
        case O_FLUSH: set("WCACHE_FLUSH_MS", optarg); break;
        case O_BYPASS: set("WCACHE_BYPASS", optarg); break;
        case O_DIR: set("WCACHE_DIR", optarg); break;
        case O_STATS: set("WCACHE_STATS", optarg ? optarg : "1"); break;
        case O_INCLUDE: set("WCACHE_INCLUDE", optarg); break;
        case O_EXCLUDE: set("WCACHE_EXCLUDE", optarg); break;
        case O_LOG: set("WCACHE_LOG", optarg); break;
        case O_DISABLE: set("WCACHE_DISABLE", "1"); break;
        case O_INHERITED: set("WCACHE_INHERITED", "1"); break;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        case O_VERSION: printf("wcache " WCACHE_VERSION "\n"); return 0;
        default:
            fprintf(stderr, "Try 'wcache --help'.\n");
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "wcache: no program given\n"
                "usage: wcache [options] -- program [args...]\n"
                "Try 'wcache --help'.\n");
        return 2;
    }
    char lib[PATH_MAX + 32];
    if (find_lib(lib, sizeof lib) != 0) {
        fprintf(stderr, "wcache: libwcache.so not found beside %s or in %s; "
                "running %s without the cache\n", argv[0], WCACHE_LIBDIR,
                argv[optind]);
    } else {
        const char *old = getenv("LD_PRELOAD");
        if (old && *old) {
            size_t n = strlen(lib) + 1 + strlen(old) + 1;
            char *both = malloc(n);
            if (!both) {
                fprintf(stderr, "wcache: out of memory\n");
                return 2;
            }
            snprintf(both, n, "%s:%s", lib, old);
            set("LD_PRELOAD", both);
            free(both);
        } else {
            set("LD_PRELOAD", lib);
        }
    }
    execvp(argv[optind], argv + optind);
    int e = errno;
    fprintf(stderr, "wcache: %s: %s\n", argv[optind], strerror(e));
    return e == ENOENT || e == ENOTDIR ? 127 : 126;
}
