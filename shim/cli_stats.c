/*
 * cli_stats.c - the summary that `wcache --stats` prints for a whole
 * process tree: every process image under the shim appends one record to
 * a private file (WCACHE_STATS_RAW, stats_report.c), and the command adds them up
 * when the program has finished.
 *
 * A record is one line: "key=value" pairs separated by spaces, then
 * "|reason=count" for writes that passed through uncached. Keys are summed
 * in the order first seen; `pid` counts distinct processes (an exec'd
 * image writes a record per image).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAXKEYS 96

struct tally {
    int n;
    char key[MAXKEYS][96];
    unsigned long long val[MAXKEYS];
    int npids;
    int pids[4096];
};

static void add(struct tally *t, const char *key, size_t klen,
                unsigned long long v)
{
    if (klen >= sizeof t->key[0])
        return;
    for (int i = 0; i < t->n; i++)
        if (strlen(t->key[i]) == klen && !memcmp(t->key[i], key, klen)) {
            t->val[i] += v;
            return;
        }
    if (t->n == MAXKEYS)
        return;
    memcpy(t->key[t->n], key, klen);
    t->key[t->n][klen] = 0;
    t->val[t->n++] = v;
}

static unsigned long long get(const struct tally *t, const char *key)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->key[i], key))
            return t->val[i];
    return 0;
}

static void add_pid(struct tally *t, int pid)
{
    for (int i = 0; i < t->npids; i++)
        if (t->pids[i] == pid)
            return;
    if (t->npids < (int)(sizeof t->pids / sizeof t->pids[0]))
        t->pids[t->npids++] = pid;
}

static void parse_line(struct tally *t, char *line)
{
    char *bar = strchr(line, '|');
    char *pairs_end = bar ? bar : line + strlen(line);
    for (char *p = line; p < pairs_end;) {
        char *sp = memchr(p, ' ', (size_t)(pairs_end - p));
        char *end = sp ? sp : pairs_end;
        char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq) {
            unsigned long long v = strtoull(eq + 1, NULL, 10);
            if (eq - p == 3 && !memcmp(p, "pid", 3))
                add_pid(t, (int)v);
            else
                add(t, p, (size_t)(eq - p), v);
        }
        p = end + 1;
    }
    /* "|reason text=count": the text may hold spaces. */
    for (char *p = bar; p && *p == '|';) {
        char *next = strchr(p + 1, '|');
        char *end = next ? next : p + strlen(p);
        char *eq = NULL;
        for (char *q = end - 1; q > p; q--)
            if (*q == '=') {
                eq = q;
                break;
            }
        if (eq) {
            char key[100] = "nc:";
            size_t kl = (size_t)(eq - p - 1);
            if (kl > sizeof key - 4)
                kl = sizeof key - 4;
            memcpy(key + 3, p + 1, kl);
            add(t, key, kl + 3, strtoull(eq + 1, NULL, 10));
        }
        p = next;
    }
}

static const char *human(unsigned long long b, char *buf, size_t cap)
{
    if (b < 10240)
        snprintf(buf, cap, "%llu bytes", b);
    else if (b < 10ull << 20)
        snprintf(buf, cap, "%.1f KiB", b / 1024.0);
    else if (b < 10ull << 30)
        snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
    else
        snprintf(buf, cap, "%.1f GiB", b / 1073741824.0);
    return buf;
}

int wc_cli_summary(const char *records, FILE *out)
{
    FILE *in = fopen(records, "r");
    struct tally *t = calloc(1, sizeof *t);
    if (!t) {
        if (in)
            fclose(in);
        return -1;
    }
    char line[4096];
    while (in && fgets(line, sizeof line, in)) {
        line[strcspn(line, "\n")] = 0;
        parse_line(t, line);
    }
    if (in)
        fclose(in);
    unsigned long long writes = get(t, "writes"), wb = get(t, "wb_calls");
    unsigned long long through = get(t, "through");
    unsigned long long rsv = get(t, "reserve");
    unsigned long long nc = 0;
    for (int i = 0; i < t->n; i++)
        if (!strncmp(t->key[i], "nc:", 3))
            nc += t->val[i];
    char b1[32], b2[32];
    fprintf(out, "wcache: %d process%s, %llu file%s cached\n", t->npids,
            t->npids == 1 ? "" : "es", get(t, "files"),
            get(t, "files") == 1 ? "" : "s");
    fprintf(out, "wcache: %llu writes absorbed (%s); system calls: %llu "
            "issued (%llu write-back, %llu written through, %llu offset "
            "reservations), %llu avoided; %s written back\n", writes,
            human(get(t, "bytes"), b1, sizeof b1), wb + through + rsv, wb,
            through, rsv, writes > wb + rsv ? writes - wb - rsv : 0,
            human(get(t, "wb_bytes"), b2, sizeof b2));
    const char *sep = "wcache: flushes: ";
    int any = 0;
    for (int i = 0; i < t->n; i++)
        if (!strncmp(t->key[i], "flush_", 6) && t->val[i]) {
            fprintf(out, "%s%s %llu", sep, t->key[i] + 6, t->val[i]);
            sep = ", ";
            any = 1;
        }
    if (any)
        fputc('\n', out);
    if (get(t, "wb_background"))
        fprintf(out, "wcache: %llu write-back batches written by the "
                "flusher thread while the program went on\n",
                get(t, "wb_background"));
    if (get(t, "errors") || get(t, "faults") || get(t, "store_full"))
        fprintf(out, "wcache: write-back errors %llu, faults retried %llu, "
                "writes sent through with the store full %llu\n",
                get(t, "errors"), get(t, "faults"), get(t, "store_full"));
    fprintf(out, "wcache: %llu writes passed through uncached", nc);
    sep = ": ";
    for (int i = 0; i < t->n; i++)
        if (!strncmp(t->key[i], "nc:", 3) && t->val[i]) {
            fprintf(out, "%s%s %llu", sep, t->key[i] + 3, t->val[i]);
            sep = ", ";
        }
    fputc('\n', out);
    if (!writes && !nc)
        fprintf(out, "wcache: no write()-family call of the program's "
                "reached a file%s\n",
                t->npids ? " (the writes stdio makes from its own buffers "
                           "are not seen)"
                         : " under the shim (was it statically linked, or "
                           "the cache disabled?)");
    free(t);
    return 0;
}
