/*
 * prog_static.c - a statically linked program (built with -static), which
 * LD_PRELOAD cannot reach: `wcache --log info` must say so.
 *
 *   prog_static        writes "static"
 *   prog_static env    writes whether WCACHE_OWN_FDS reached it (the
 *                      shim must hand nothing over to a program it does
 *                      not run in: shim/proc.c invariant (6))
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "env")) {
        const char *m = getenv("WCACHE_OWN_FDS") ? "own var seen\n"
                                                  : "own var gone\n";
        return write(1, m, strlen(m)) == (ssize_t)strlen(m) ? 0 : 1;
    }
    return write(1, "static\n", 7) == 7 ? 0 : 1;
}
