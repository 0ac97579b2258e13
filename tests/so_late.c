/*
 * so_late.c - a library whose destructor writes a line to descriptor 1,
 * preloaded after the shim by test_shim_shared.c so that it runs after
 * the shim's exit work (libraries are finalised in the reverse order of
 * their initialisation): a write the shim sees only once it is off.
 */
#include <unistd.h>

__attribute__((destructor)) static void so_late_write(void)
{
    if (write(1, "written after the shim's exit work\n", 35) != 35)
        _exit(111);
}
