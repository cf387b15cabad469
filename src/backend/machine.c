/* The machine description (machine.h), computed on first use under
 * pthread_once. oneDNN fixes its ISA at its first query, so reading it
 * here also honours ONEDNN_MAX_CPU_ISA as the libraries will. */
#include "backend/machine.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static muon__machine mach;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* An instruction set counts only when the OS saves its registers too. */
static void read_cpuid(muon__machine *m)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) /* OSXSAVE */
        return;
    unsigned long long x = xcr0();
    int ymm = (x & 0x6) == 0x6, zmm = ymm && (x & 0xe0) == 0xe0;
    int tiles = (x & 0x60000) == 0x60000;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;
    unsigned max7 = a;
    m->avx2 = ymm && (b & (1u << 5));
    m->avx512 = zmm && (b & (1u << 16));
    m->amx = tiles && (d & (1u << 22)) && (d & (1u << 24)); /* AMX-BF16, AMX-TILE */
    if (max7 >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
        m->avx512_bf16 = m->avx512 && (a & (1u << 5));
}
#else
static void read_cpuid(muon__machine *m)
{
    (void)m;
}
#endif

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

/* OpenBLAS runs the kernels of the core it detects, or of the one
 * OPENBLAS_CORETYPE names (some machines set Haswell there, for correct
 * results on CPUs newer than the build knows). */
static int wide_core(const char *core)
{
    static const char *const wide[] = {"skylakex", "cooperlake", "sapphirerapids"};
    for (size_t i = 0; i < sizeof wide / sizeof wide[0]; i++)
        if (strcasecmp(core, wide[i]) == 0)
            return 1;
    return 0;
}

static void read_machine(void)
{
    muon__machine *m = &mach;
    m->cores = omp_get_num_procs();
    read_cpuid(m);
    const char *core = openblas_get_corename();
    snprintf(m->openblas_core, sizeof m->openblas_core, "%s", core ? core : "unknown");
    m->openblas_avx512 = wide_core(m->openblas_core);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    snprintf(m->onednn_isa, sizeof m->onednn_isa, "%s", isa_name(isa));
    m->onednn_bf16 = isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
    const char *env = getenv("MUON_BF16");
    m->bf16_emulate = env && strcmp(env, "emulate") == 0;
}

const muon__machine *muon__machine_get(void)
{
    pthread_once(&once, read_machine);
    return &mach;
}
