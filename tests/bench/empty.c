/*
 * empty.c - a shared library with nothing in it, for `make bench`: the
 * start-up of /bin/true with it preloaded is what any LD_PRELOAD library
 * costs (the loader opening, mapping and relocating one more object),
 * the floor under the shim's own start-up row.
 */
int wc_bench_empty(void);
int wc_bench_empty(void)
{
    return 0;
}
