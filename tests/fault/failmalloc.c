/* failmalloc.c - an LD_PRELOAD shim that makes one allocation fail, for the
 * fault-injection tests (tests/test_faults.c).
 *
 * Only allocations made directly by the program's own code count (the
 * caller's return address lies in the main executable): the libraries it
 * links (libc's stdio, OpenBLAS, oneDNN, OpenMP) allocate at start-up in
 * orders that differ between machines, and their own failures are theirs
 * to report. MUON_FAIL_AT=k makes the k-th counted call return NULL (1
 * based; 0 or unset: none). With MUON_FAIL_REPORT=path the number of
 * counted calls is written to path at exit, so a test knows how many k
 * there are. */
#define _GNU_SOURCE
#include <execinfo.h>
#include <link.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);

static long fail_at = -1; /* -1: not read yet */
static long counted;
static uintptr_t exe_lo, exe_hi; /* the main program's loaded segments */
static uintptr_t exe_base;        /* its load address, for MUON_FAIL_TRACE */

static int first_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    exe_base = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (!exe_lo || lo < exe_lo)
            exe_lo = lo;
        if (hi > exe_hi)
            exe_hi = hi;
    }
    return 1; /* the first object listed is the program itself */
}

/* 1 when this call is the one to fail */
static int should_fail(void *caller)
{
    if (__atomic_load_n(&fail_at, __ATOMIC_ACQUIRE) < 0) {
        dl_iterate_phdr(first_object, NULL);
        const char *s = getenv("MUON_FAIL_AT");
        __atomic_store_n(&fail_at, s ? strtol(s, NULL, 10) : 0, __ATOMIC_RELEASE);
    }
    uintptr_t a = (uintptr_t)caller;
    if (a < exe_lo || a >= exe_hi)
        return 0;
    long k = __atomic_add_fetch(&counted, 1, __ATOMIC_RELAXED);
    if (k == fail_at && getenv("MUON_FAIL_TRACE")) {
        void *frames[12];
        int nf = backtrace(frames, 12);
        for (int i = 1; i < nf; i++) {
            uintptr_t f = (uintptr_t)frames[i];
            if (f < exe_lo || f >= exe_hi)
                continue;
            char buf[64];
            int len = snprintf(buf, sizeof buf, "failmalloc: call %ld from +0x%lx\n", k,
                               (unsigned long)(f - exe_base - 1));
            if (len > 0 && write(2, buf, (size_t)len) < 0)
                return 1;
        }
    }
    return k == fail_at;
}

void *malloc(size_t n)
{
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (should_fail(__builtin_return_address(0)))
        return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    if (should_fail(__builtin_return_address(0))) {
        errno = ENOMEM;
        return NULL;
    }
    return __libc_memalign(align, n);
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("MUON_FAIL_REPORT");
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%ld\n", counted);
    if (len > 0 && write(fd, buf, (size_t)len) < 0)
        len = 0;
    close(fd);
}
