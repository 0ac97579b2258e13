/*
 * seekio.h - positional reads and writes that still work where a seccomp
 * filter refuses the positional calls (pread64, pwrite64: a service
 * manager's SystemCallFilter=, a sandbox, installed before the program
 * started and inherited by the guard, which replays under it too).
 *
 * Invariants:
 *   (1) Only a refusal (EPERM, ENOSYS: wc_refused) takes the fallback;
 *       any other error is the call's own answer and is returned as is.
 *   (2) The fallback is lseek + read or write, the calls every program
 *       makes itself: it moves the offset of fd's open file description,
 *       so fd must be a description the caller opened for itself, never
 *       one the program shares (the engine opens its own: errors.c
 *       seek_fd; replay.c opens every descriptor it writes or reads).
 *   (3) One positional call is tried per call of these helpers unless the
 *       caller keeps a `refused` flag (store.c: one per store), which,
 *       once set, skips it from then on.
 * The engine's write-back (pwritev, pwritev2) has its own fallback on top
 * of wc_seek_write: errors.c, state THROUGH.
 */
#ifndef WCACHE_SEEKIO_H
#define WCACHE_SEEKIO_H

#include <sys/types.h>

/* Is err (positive errno) the answer of a call that is refused rather
 * than failed (EPERM, ENOSYS)? */
int wc_refused(int err);

/* lseek(fd, off) then write(fd, buf, n): pwrite's answer without pwrite
 * (fd: a description of the caller's own, (2)). Returns bytes written or
 * -1 with errno. */
ssize_t wc_seek_write(int fd, const void *buf, size_t n, off_t off);

/* pwrite(fd, buf, n, off); where it is refused (1), wc_seek_write.
 * refused: NULL, or the caller's flag (3), set at the first refusal.
 * Returns as pwrite does. */
ssize_t wc_pwrite_own(int fd, const void *buf, size_t n, off_t off,
                      int *refused);

/* pread(fd, buf, n, off); where it is refused (1), lseek then read.
 * Returns as pread does. */
ssize_t wc_pread_own(int fd, void *buf, size_t n, off_t off, int *refused);

#endif /* WCACHE_SEEKIO_H */
