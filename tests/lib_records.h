/*
 * lib_records.h - the record stream of the kill loops (prog_killwriter.c
 * writes it, test_shim_kill.c checks it). Header-only: the stand-alone
 * program includes it too.
 *
 * Record k of stream `seed` is 16 to 3015 bytes: an 8-byte header (the
 * record number and its length), then pseudo-random bytes, the last 8 of
 * which are an FNV checksum of everything before them. A file holding the
 * stream is checked byte for byte against a regeneration: no garbage, no
 * zero runs, nothing missing.
 */
#ifndef WCT_LIB_RECORDS_H
#define WCT_LIB_RECORDS_H

#include <stdint.h>
#include <string.h>

static inline uint64_t wct_rec_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Length of record k (k >= 0) of stream seed. */
static inline size_t wct_rec_len(uint64_t seed, uint64_t k)
{
    uint64_t s = (seed * 0x9E3779B97F4A7C15ull) ^ (k + 1) * 0xD1B54A32D192ED03ull;
    if (!s)
        s = 1;
    wct_rec_rand(&s);
    return 16 + (size_t)(wct_rec_rand(&s) % 3000);
}

/* Fill buf (wct_rec_len bytes) with record k. */
static inline void wct_rec_fill(uint64_t seed, uint64_t k, unsigned char *buf)
{
    size_t n = wct_rec_len(seed, k);
    uint64_t s = (seed + 7) * 0xff51afd7ed558ccdull ^ (k + 3);
    if (!s)
        s = 1;
    uint32_t hdr[2] = {(uint32_t)k, (uint32_t)n};
    memcpy(buf, hdr, 8);
    for (size_t i = 8; i < n - 8; i++)
        buf[i] = (unsigned char)(wct_rec_rand(&s) >> 24);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n - 8; i++) {
        h ^= buf[i];
        h *= 0x100000001b3ull;
    }
    memcpy(buf + n - 8, &h, 8);
}

#endif
