/*
 * hidden.h - the visibility of the library's own data, and where some of
 * its code lies.
 *
 * The objects are built with -fvisibility=hidden, which hides what they
 * define but not what they declare: an `extern` variable the compiler must
 * take for one some other shared object may define, reached through the
 * GOT (a load the linker relaxes to a `lea`, one instruction more at every
 * access; a cached 1-byte write reads nine such words: write()'s three,
 * the shim's fast path's five, the engine's one). Declared WC_LOCAL, it is
 * addressed directly. Only for data this library defines (a hidden
 * declaration of libc's would not link).
 */
#ifndef WCACHE_HIDDEN_H
#define WCACHE_HIDDEN_H

#define WC_LOCAL __attribute__((visibility("hidden")))

/* WC_HOT: a function of the paths a short-lived process takes besides its
 * start and exit: a fork child's write through its parent's log, a
 * process that opens, writes or reads a few files and closes them (tar,
 * `echo > f`, cat). Each 64 KiB window of the library's code such a
 * process touches is a page fault (the kernel maps the neighbouring pages
 * with it: fault-around), 15 us here and 13-46 us on VMs whose paging the
 * hypervisor does; these functions (about 27 KiB) lay in five windows.
 * In .text.hot, which the linker puts right after .text.unlikely, where
 * the start-up, exit and fork code is (shim.h WC_ONCE), they take one or
 * two. (Found with callgrind --zero-before=main over such processes; a
 * function left out costs a fault at most.) */
#define WC_HOT __attribute__((section(".text.hot.wc")))

#endif /* WCACHE_HIDDEN_H */
