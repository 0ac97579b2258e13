/*
 * replay.h - reading a dead process's backing file back into its files
 * (the guard, `wcache recover`, `wcache ls`). Layered under the engine: it
 * reads the format of format.h with the calls of wc_sys, and trusts
 * nothing in the file.
 */
#ifndef WCACHE_REPLAY_H
#define WCACHE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

enum {
    WC_RP_LIST = 1,     /* only say what the file holds (wcache ls) */
    WC_RP_DRY = 2,      /* say what a replay would do, write nothing */
    WC_RP_QUIET = 8,    /* no message when there is nothing to do */
};

struct wc_rp_result {
    int64_t pid;        /* the owner, from the header (0: unreadable) */
    int alive;          /* the owner holds the lock: nothing written
                           (a listing still reads and counts) */
    uint64_t bytes;     /* dirty bytes held */
    uint32_t files;     /* files they belong to */
    uint32_t failed;    /* files (or parts) that could not be replayed */
    uint32_t aside;     /* files whose data went to a recovery file */
    int removed;        /* the backing file was removed */
};

/*
 * Replay (or, with WC_RP_LIST / WC_RP_DRY, describe) the backing file at
 * `path`, writing one line per event to `log_fd` (-1: none). Rules
 * (CONTRACT.md section 4): a file owned by someone else is refused; every
 * field is validated; only dirty ranges are written, clipped at the size
 * the program saw; a target is written in place only when it is still the
 * file the shim last saw (dev, ino, size, ctime), else the data goes to
 * <path>.wcache-recovered.<pid> beside it. After a complete replay the
 * backing file is removed; otherwise it is kept and out->failed says why.
 * Returns 0 (see *out), or -errno when the file was refused or unreadable
 * (a message was logged).
 */
int wc_replay(const char *path, int flags, int log_fd,
              struct wc_rp_result *out /* OUT */);
/* The same on an open descriptor of the file (closed on return); `path`
 * is its name, removed when the replay is complete and it still names the
 * same file (the guard, which opened it before it had a name). */
int wc_replay_fd(int fd, const char *path, int flags, int log_fd,
                 struct wc_rp_result *out /* OUT */);

/* Open the log of store directory dir (dir/guard.log, appended to, made
 * 0600), its path in log[cap]: a descriptor, or -1. */
int wc_replay_log_open(const char *dir, char *log, size_t cap);

/* A backing file whose owner is gone, its lock held by fd (closed on
 * return): replayed as wc_replay_fd does, or, when that cannot empty it,
 * renamed <path>.kept (shim/cli_recover.c (G6)) with a line in log_fd.
 * Returns 0 when replayed, 1 when kept under the new name, 2 when left
 * under its own (the rename failed, or the file is another user's: the
 * caller remembers it). */
int wc_replay_dead(int fd, const char *path, int log_fd,
                   struct wc_rp_result *out /* OUT */);

/* One sweep of store directory dir, as a program starting there makes it
 * (shim/cli_recover.c (G5)): every backing file of mount namespace ns
 * (0: any; WC_RP_NS_ASK: the caller's, asked only when a file needs it)
 * whose owner is gone (its lock free: invariant (2)) is replayed with
 * wc_replay_dead, logging to dir/guard.log; one whose lock is held (its
 * owner alive, or a guard replaying it) is passed by. Returns the number
 * of files replayed or kept. */
#define WC_RP_NS_ASK UINT64_MAX
int wc_replay_sweep(const char *dir, uint64_t ns);

/* The mount namespace a backing file was made in (format.h (11)), from
 * its header; 0 when unknown or unreadable. */
uint64_t wc_replay_ns(int fd);

/* May a process of mount namespace `mine` replay a backing file of
 * namespace `theirs` found in store directory dir (format.h (11))? The
 * same namespace (or either unknown): yes. Another: only when no guard
 * of that namespace watches dir (its lock, wc_fmt_guard_lock, is free):
 * a namespace whose every process was killed, its guard with them,
 * leaves no one else to replay it. */
int wc_replay_may_ns(const char *dir, uint64_t mine, uint64_t theirs);

/* Create the file beside `path` that bytes which may not go into it are
 * saved to: <path>.wcache-recovered.<pid>, or the first of <pid>.1 ..
 * <pid>.99 not taken (O_EXCL, O_NOFOLLOW, mode 0600); its name in
 * name[len]. Returns the descriptor, or -1 with errno. */
int wc_aside_open(const char *path, int64_t pid, char *name, size_t len);

#endif /* WCACHE_REPLAY_H */
