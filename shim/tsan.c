/*
 * tsan.c - the ThreadSanitizer build only (Makefile, build/tsan): the
 * sanitizer's symbolizer reads its files before the shim starts. Nothing
 * in any other build.
 *
 * Why. The runtime symbolizes every report, suppressed ones included (a
 * suppression names functions). The first time, its symbolizer
 * (libbacktrace, inside libtsan) opens, maps and closes the program's
 * file and every library's: with open, mmap and close, which are the
 * shim's (LD_PRELOAD comes first). It does so inside ReportRace, holding
 * the runtime's thread-registry mutex and ignoring synchronisation (its
 * atomics order nothing). The shim's open then runs instrumented fd-table
 * code under g_reg_lock, whose accesses look racy (the lock's atomics were
 * ignored), and the nested report waits for the registry mutex its own
 * thread holds: that thread never returns and keeps g_reg_lock, every
 * other thread stops behind one of the two, and a signal waits in the
 * runtime's queue for a thread that never comes back (SIGTERM seems
 * ignored). tests/prog_fdstress hit it in about one run in three.
 *
 * Invariant:
 *   (1) Before wc_init (a constructor of higher priority: wc_state is
 *       still WC_ST_INIT, every wrapper passes straight through, one
 *       thread) one symbolization makes the symbolizer open and map its
 *       files; later reports find everything in memory, and call the shim
 *       only for anonymous mmaps, which pass straight through.
 */
#include "shim.h"

#ifdef __SANITIZE_THREAD__
#include <sanitizer/common_interface_defs.h>

__attribute__((constructor(101))) static void wc_tsan_symbolizer_ready(void)
{
    char where[256];
    int e = errno;
    /* Any formatting but addresses alone asks for the symbolizer. */
    __sanitizer_symbolize_pc((void *)(uintptr_t)wc_tsan_symbolizer_ready,
                             "%F %L", where, sizeof where);
    errno = e;
}
#endif
