/*
 * asan_defaults.c - AddressSanitizer's defaults for the engine's suites
 * built with it (Makefile, ASAN_TESTS): SIGSEGV and SIGBUS stay the
 * engine's, whose non-faulting copy turns a fault in a user buffer into
 * a short count (cache/ucopy.c); the suites read and write next to
 * PROT_NONE pages on purpose. Leaks are not the question here (each test
 * is its own process, and buffers live until it ends).
 */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "handle_segv=0:handle_sigbus=0:detect_leaks=0";
}
