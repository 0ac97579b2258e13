/*
 * str.h - building short strings (paths, /proc names) without stdio.
 *
 * The engine and the shim name things once per cache or per file: the
 * backing file, /proc/self/fd/N. snprintf would do, but in a program that
 * never formatted anything it faults in glibc's printf machinery (three
 * pages of text, 25-45 us each on a VM) on the path of the first cached
 * write. These append to a buffer and say when it is too short.
 */
#ifndef WCACHE_STR_H
#define WCACHE_STR_H

#include <stddef.h>
#include <string.h>

struct wc_str {
    char *buf;
    size_t cap;         /* bytes in buf, the final NUL included */
    size_t len;         /* bytes written so far, without the NUL */
    int over;           /* something did not fit: buf holds a prefix */
};

static inline struct wc_str wc_str_init(char *buf, size_t cap)
{
    struct wc_str s = {buf, cap, 0, cap == 0};
    if (cap)
        buf[0] = 0;
    return s;
}

/* Inlined always: an out-of-line copy sat on a page of its own that only
 * the start-up's store directory lookup touched (a fault at each start). */
__attribute__((always_inline))
static inline void wc_str_add(struct wc_str *s, const char *t)
{
    size_t n = strlen(t);
    if (s->over || n >= s->cap - s->len) {
        s->over = 1;
        return;
    }
    memcpy(s->buf + s->len, t, n + 1);
    s->len += n;
}

/* v in decimal, or in lowercase hex zero-padded to `width` digits when
 * hex is set. */
__attribute__((always_inline))
static inline void wc_str_num(struct wc_str *s, unsigned long long v, int hex,
                              int width)
{
    char d[24], *p = d + sizeof d;
    *--p = 0;
    do {
        unsigned digit = (unsigned)(hex ? v & 15 : v % 10);
        *--p = (char)(digit < 10 ? '0' + digit : 'a' + digit - 10);
        v = hex ? v >> 4 : v / 10;
        width--;
    } while (v || width > 0);
    wc_str_add(s, p);
}

/* "/proc/self/fd/<fd>" into buf (64 bytes are always enough). */
static inline const char *wc_str_procfd(char *buf, size_t cap, int fd)
{
    struct wc_str s = wc_str_init(buf, cap);
    wc_str_add(&s, "/proc/self/fd/");
    wc_str_num(&s, (unsigned long long)(unsigned)fd, 0, 0);
    return buf;
}

#endif /* WCACHE_STR_H */
