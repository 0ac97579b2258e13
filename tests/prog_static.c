/*
 * prog_static.c - a statically linked program (built with -static), which
 * LD_PRELOAD cannot reach: `wcache --log info` must say so.
 */
#include <unistd.h>

int main(void)
{
    return write(1, "static\n", 7) == 7 ? 0 : 1;
}
