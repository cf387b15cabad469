/* The backend tables (backend.h): the reference, and the fast CPU path
 * as this machine suits it. Every choice that depends on the CPU or its
 * libraries is made here; the measurements behind them are in
 * docs/bench.md and docs/ortho.md. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

#include <cblas.h>

#include "backend/backend.h"
#include "base/internal.h"

static const char *const kind_names[] = {"cpu", "cpu-ref"};
static const char *const product_names[] = {"syrk", "gemm", "gemm-wgrad", "gemm-bf16"};
static const char *const kernel_names[] = {"openblas", "onednn", "bf16-widened"};

muon_status muon_backend_kind_parse(const char *name, muon_backend_kind *out)
{
    if (!out)
        return MUON_ERR_NULL;
    int i = muon__name_index(kind_names, MUON_BACKEND_KIND_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_backend_kind)i;
    return MUON_OK;
}

const char *muon_backend_kind_name(muon_backend_kind k)
{
    return muon__name_at(kind_names, MUON_BACKEND_KIND_COUNT, (int)k);
}

const char *muon_product_name(muon_product p)
{
    return muon__name_at(product_names, MUON_PRODUCT_COUNT, (int)p);
}

const char *muon_kernel_name(muon_kernel k)
{
    return muon__name_at(kernel_names, MUON_KERNEL_COUNT, (int)k);
}

/* Choices shared by both kinds: where a product is worth more than one
 * thread. */
static void common(muon__backend *be, muon_backend_kind kind, int threads)
{
    be->kind = kind;
    be->threads = threads;
    be->mach = muon__machine_get();
    be->wgrad_min_rows = 512;
    be->syrk_panel_min = 256;
    be->split_panels_per_thread = 4;
    be->one_thread_flops = 64.0 * 16384.0;
    be->rows_per_thread = 32;
    be->bf16_one_thread_flops = (double)(1L << 22);
    be->convert_par_min = (size_t)1 << 18;
    be->bf16_speedup = 0;
    be->auto_mixed_min = 256;
}

/* Every product one OpenBLAS call; bf16 widened to fp32 first. */
static void fill_ref(muon__backend *be)
{
    for (int p = 0; p < MUON_PRODUCT_COUNT; p++)
        be->kernel[p] = MUON_KERNEL_OPENBLAS;
    be->kernel[MUON_PRODUCT_GEMM_BF16] = MUON_KERNEL_BF16_WIDENED;
    be->syrk_panels = 0;
    be->split = 0;
}

/* AUTO precision weighs fp32 flops against bf16 flops at the ratio of the
 * two GEMM rates (AMX's tiles several times fp32's, AVX512-BF16's dot
 * products about twice; docs/bench.md). Below auto_mixed_min the
 * conversions and oneDNN's per-shape set-up outweigh the faster products. */
static double bf16_speedup(const muon__backend *be)
{
    if (be->kernel[MUON_PRODUCT_GEMM_BF16] != MUON_KERNEL_ONEDNN)
        return 0;
    return be->mach->amx ? 6.0 : 1.8;
}

/* SYRKs stay on OpenBLAS (oneDNN has none). The general products go to
 * oneDNN, which writes C directly and suits the small K or N of the
 * layers; weight gradients with many rows go back to OpenBLAS where its
 * kernels are AVX-512 ones. Where they are AVX2 ones, SYRKs of large m go
 * by row panels whose GEMMs run on oneDNN. On more than one thread the
 * split mode keeps OpenBLAS's own threads idle, so its pool and OpenMP's
 * never take turns on the cores. bf16 products use oneDNN's matmul only
 * where it has bf16 units: elsewhere it is slower than widening. */
static void fill_cpu(muon__backend *be)
{
    const muon__machine *m = be->mach;
    be->kernel[MUON_PRODUCT_SYRK] = MUON_KERNEL_OPENBLAS;
    be->kernel[MUON_PRODUCT_GEMM] = MUON_KERNEL_ONEDNN;
    be->kernel[MUON_PRODUCT_GEMM_WGRAD] =
        m->openblas_avx512 ? MUON_KERNEL_OPENBLAS : MUON_KERNEL_ONEDNN;
    be->kernel[MUON_PRODUCT_GEMM_BF16] =
        m->onednn_bf16 && !m->bf16_emulate ? MUON_KERNEL_ONEDNN : MUON_KERNEL_BF16_WIDENED;
    be->syrk_panels = m->openblas_avx512 ? 0 : 8;
    be->split = 1;
    be->bf16_speedup = bf16_speedup(be);
}

muon_status muon__backend_init(muon__backend *be, muon_backend_kind kind, int threads)
{
    if (!be)
        return MUON_ERR_NULL;
    if ((int)kind < 0 || kind >= MUON_BACKEND_KIND_COUNT || threads < 0)
        return MUON_ERR_ARG;
    common(be, kind, threads);
    if (kind == MUON_BACKEND_CPU_REF)
        fill_ref(be);
    else
        fill_cpu(be);
    return MUON_OK;
}

static muon__backend default_be;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void make_default(void)
{
    muon__backend_init(&default_be, MUON_BACKEND_CPU, 0);
}

const muon__backend *muon__backend_default(void)
{
    pthread_once(&default_once, make_default);
    return &default_be;
}

int muon__caller_threads(void)
{
    return omp_in_parallel() ? 1 : openblas_get_num_threads();
}

int muon__blas_threads_push(int n)
{
    int old = openblas_get_num_threads();
    if (n != old)
        openblas_set_num_threads(n);
    return old;
}

void muon__blas_threads_pop(int old)
{
    if (openblas_get_num_threads() != old)
        openblas_set_num_threads(old);
}

muon_status muon_backend_create(muon_backend_kind kind, int threads, muon_backend **out)
{
    if (!out)
        return MUON_ERR_NULL;
    muon__backend *be = malloc(sizeof *be);
    if (!be)
        return MUON_ERR_NOMEM;
    muon_status s = muon__backend_init(be, kind, threads > 0 ? threads : omp_get_num_procs());
    if (s != MUON_OK) {
        free(be);
        return s;
    }
    *out = be;
    return MUON_OK;
}

void muon_backend_free(muon_backend *be)
{
    free(be);
}

muon_status muon_backend_info_get(const muon_backend *be, muon_backend_info *info)
{
    if (!info)
        return MUON_ERR_NULL;
    if (!be)
        be = muon__backend_default();
    const muon__machine *m = be->mach;
    muon_backend_info i = {
        .kind = be->kind,
        .threads = be->threads,
        .wgrad_min_rows = be->wgrad_min_rows,
        .syrk_panels = be->syrk_panels,
        .syrk_panel_min = be->syrk_panel_min,
        .split = be->split,
        .split_panels_per_thread = be->split_panels_per_thread,
        .one_thread_flops = be->one_thread_flops,
        .rows_per_thread = be->rows_per_thread,
        .bf16_one_thread_flops = be->bf16_one_thread_flops,
        .cores = m->cores,
        .avx2 = m->avx2,
        .avx512 = m->avx512,
        .avx512_bf16 = m->avx512_bf16,
        .amx = m->amx,
        .openblas_core = m->openblas_core,
        .openblas_avx512 = m->openblas_avx512,
        .onednn_isa = m->onednn_isa,
        .bf16_native = m->onednn_bf16 && !m->bf16_emulate,
        .bf16_speedup = be->bf16_speedup,
        .auto_mixed_min = be->auto_mixed_min,
    };
    for (int p = 0; p < MUON_PRODUCT_COUNT; p++)
        i.kernel[p] = be->kernel[p];
    *info = i;
    return MUON_OK;
}

muon_precision muon_backend_layer_precision(const muon_backend *be, muon_precision p)
{
    if (p != MUON_PRECISION_AUTO)
        return p;
    if (!be)
        be = muon__backend_default();
    return be->bf16_speedup > 0 ? MUON_PRECISION_MIXED : MUON_PRECISION_FP32;
}
