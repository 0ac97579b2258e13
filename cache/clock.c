/*
 * clock.c - the monotonic clock of include/wcache/clock.h: the vDSO's
 * __vdso_clock_gettime, looked up in the vDSO's dynamic symbol table
 * (the image the kernel maps into every process, named by the auxiliary
 * vector's AT_SYSINFO_EHDR), else the raw system call.
 *
 * Invariant: wc_clock_gettime is always callable: first clock_first,
 * which finds the function and stores it (any thread, any number of
 * times: each finds the same one), then that function. Nothing here
 * writes errno or calls anything but getauxval and the string compare,
 * so the first call may come from a signal handler.
 */
#include <elf.h>
#include <stddef.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

#include "wcache/clock.h"
#include "wcache/raw.h"

typedef int (*clock_fn)(clockid_t, struct timespec *);

WC_HOT
static int clock_raw(clockid_t id, struct timespec *ts)
{
    long r = wc_raw_syscall(SYS_clock_gettime, id, (long)ts, 0, 0, 0, 0);
    return r < 0 ? -1 : 0;
}

/* `name`'s address in the vDSO, or NULL (no vDSO, not an ELF image of
 * this machine's class, no such function). */
static void *vdso_find(const char *name)
{
    const char *base = (const char *)getauxval(AT_SYSINFO_EHDR);
    if (!base)
        return NULL;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64)
        return NULL;
    /* Where the image's addresses start: the first PT_LOAD segment's
     * address is its offset in the image. */
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
    const Elf64_Dyn *dyn = NULL;
    const char *load = NULL;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type == PT_LOAD && !load)
            load = base + ph[i].p_offset - ph[i].p_vaddr;
        else if (ph[i].p_type == PT_DYNAMIC)
            dyn = (const Elf64_Dyn *)(base + ph[i].p_offset);
    }
    if (!load || !dyn)
        return NULL;
    const Elf64_Sym *sym = NULL;
    const char *str = NULL;
    const Elf64_Word *hash = NULL;      /* DT_HASH: its nchain = symbols */
    for (; dyn->d_tag != DT_NULL; dyn++) {
        if (dyn->d_tag == DT_SYMTAB)
            sym = (const Elf64_Sym *)(load + dyn->d_un.d_ptr);
        else if (dyn->d_tag == DT_STRTAB)
            str = load + dyn->d_un.d_ptr;
        else if (dyn->d_tag == DT_HASH)
            hash = (const Elf64_Word *)(load + dyn->d_un.d_ptr);
    }
    if (!sym || !str || !hash)
        return NULL;
    for (Elf64_Word i = 0; i < hash[1]; i++)
        if (ELF64_ST_TYPE(sym[i].st_info) == STT_FUNC &&
            sym[i].st_shndx != SHN_UNDEF && sym[i].st_name &&
            strcmp(str + sym[i].st_name, name) == 0)
            return (void *)(load + sym[i].st_value);
    return NULL;
}

WC_HOT
static int clock_first(clockid_t id, struct timespec *ts)
{
    void *f = vdso_find("__vdso_clock_gettime");
    clock_fn fn = f ? (clock_fn)f : clock_raw;
    __atomic_store_n(&wc_clock_gettime, fn, __ATOMIC_RELAXED);
    return fn(id, ts);
}

int (*wc_clock_gettime)(clockid_t, struct timespec *) = clock_first;
