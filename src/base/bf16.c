/* bf16 conversions and the bf16 x bf16 -> fp32 GEMM (see bf16.h).
 *
 * A oneDNN matmul primitive is built once per (shape, transposes, ldc,
 * beta, threads) and kept in a process-wide table guarded by a mutex;
 * alpha is passed at run time so data-dependent factors do not grow the
 * table. Primitives are stateless once built, so threads share them. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <dnnl.h>

#include "backend/backend.h"
#include "base/bf16.h"
#include "base/internal.h"

#define SLOTS 512

static inline muon__bf16 round_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it a (quiet) NaN */
        return (muon__bf16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round half to even */
    return (muon__bf16)(u >> 16);
}

void muon__to_bf16_t(muon__bf16 *dst, const float *src, size_t n, int threads)
{
    int nth = n < muon__backend_default()->convert_par_min || omp_in_parallel() || threads < 1
                  ? 1
                  : threads;
#pragma omp parallel for simd schedule(static) num_threads(nth)
    for (size_t i = 0; i < n; i++)
        dst[i] = round_bf16(src[i]);
}

void muon__to_bf16(muon__bf16 *dst, const float *src, size_t n)
{
    muon__to_bf16_t(dst, src, n, muon__caller_threads());
}

void muon_to_bf16(muon_bf16 *dst, const float *src, size_t n, int threads)
{
    if (dst && src)
        muon__to_bf16_t(dst, src, n, threads);
}

void muon__from_bf16(float *dst, const muon__bf16 *src, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, sizeof u);
    }
}

struct key {
    int ta, tb, nth, scaled;
    long m, n, k, ldc;
    float beta;
};

struct slot {
    struct key key;
    int used;
    dnnl_primitive_t prim; /* NULL: no native kernel for this key */
    size_t scratch;        /* bytes of scratchpad it needs */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot table[SLOTS];
static int count;
static dnnl_engine_t engine;
/* Per-thread state. A stream is not safe to share between threads (the
 * optimizer orthogonalizes several matrices at once), and the primitives'
 * scratchpads are ours ("user" mode), one per thread: with oneDNN's own,
 * two threads running primitives at once corrupted each other's results
 * (measured, oneDNN 2.6). A thread-specific key frees both when a thread
 * ends, so programs whose threads come and go do not leak. */
struct per_thread {
    dnnl_stream_t stream;
    void *scratch;
    size_t cap;
};
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static int thread_key_ok;

static void per_thread_free(void *p)
{
    struct per_thread *t = p;
    if (t->stream)
        dnnl_stream_destroy(t->stream);
    free(t->scratch);
    free(t);
}

static void make_thread_key(void)
{
    thread_key_ok = pthread_key_create(&thread_key, per_thread_free) == 0;
}

/* This thread's state, created on first use; NULL when out of memory. */
static struct per_thread *this_thread(void)
{
    pthread_once(&thread_key_once, make_thread_key);
    if (!thread_key_ok)
        return NULL;
    struct per_thread *t = pthread_getspecific(thread_key);
    if (t)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    if (dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) != dnnl_success ||
        pthread_setspecific(thread_key, t) != 0) {
        per_thread_free(t);
        return NULL;
    }
    return t;
}
static int mode = -1; /* -1 unknown, 0 fallback, 1 oneDNN */

static int init_locked(void)
{
    if (mode >= 0)
        return mode;
    mode = 0;
    /* bf16 matmul without AVX512-BF16 or AMX is oneDNN's slow path */
    const muon__machine *mach = muon__machine_get();
    if (!mach->onednn_bf16 || mach->bf16_emulate)
        return mode;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success)
        return mode;
    mode = 1;
    return mode;
}

int muon__bf16_native(void)
{
    pthread_mutex_lock(&lock);
    int m = init_locked();
    pthread_mutex_unlock(&lock);
    return m;
}

static unsigned long hash_key(const struct key *k)
{
    uint32_t b;
    memcpy(&b, &k->beta, sizeof b);
    unsigned long v[] = {(unsigned long)k->ta, (unsigned long)k->tb, (unsigned long)k->nth,
                         (unsigned long)k->scaled, (unsigned long)k->m, (unsigned long)k->n,
                         (unsigned long)k->k, (unsigned long)k->ldc, b};
    unsigned long h = 1469598103934665603ul;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        h ^= v[i];
        h *= 1099511628211ul;
    }
    return h;
}

static int same_key(const struct key *a, const struct key *b)
{
    return a->ta == b->ta && a->tb == b->tb && a->nth == b->nth && a->scaled == b->scaled &&
           a->m == b->m && a->n == b->n && a->k == b->k && a->ldc == b->ldc &&
           memcmp(&a->beta, &b->beta, sizeof a->beta) == 0;
}

/* rows x cols operand, stored transposed (cols x rows, contiguous) when t */
static int desc(dnnl_memory_desc_t *md, long rows, long cols, long ld, int t, dnnl_data_type_t dt)
{
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {t ? 1 : ld, t ? ld : 1};
    return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides) == dnnl_success;
}

static int descs(const struct key *k, dnnl_memory_desc_t *a, dnnl_memory_desc_t *b,
                 dnnl_memory_desc_t *c)
{
    return desc(a, k->m, k->k, k->ta ? k->m : k->k, k->ta, dnnl_bf16) &&
           desc(b, k->k, k->n, k->tb ? k->k : k->n, k->tb, dnnl_bf16) &&
           desc(c, k->m, k->n, k->ldc, 0, dnnl_f32);
}

static dnnl_primitive_t build(const struct key *k, size_t *scratch)
{
    dnnl_memory_desc_t a, b, c;
    dnnl_matmul_desc_t md;
    if (!descs(k, &a, &b, &c) || dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) != dnnl_success)
        return NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    const char *impl = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success)
        goto out;
    const float runtime = DNNL_RUNTIME_F32_VAL;
    if (k->scaled && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &runtime) != dnnl_success)
        goto out;
    if (k->beta != 0.0f &&
        (dnnl_post_ops_create(&ops) != dnnl_success ||
         dnnl_post_ops_append_sum(ops, k->beta) != dnnl_success ||
         dnnl_primitive_attr_set_post_ops(attr, ops) != dnnl_success))
        goto out;
    if (dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) != dnnl_success)
        goto out;
    /* the reference kernel is far slower than the fp32 fallback */
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success ||
        !impl || strncmp(impl, "ref", 3) == 0)
        goto out;
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    *scratch = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (dnnl_primitive_create(&prim, pd) != dnnl_success)
        prim = NULL;
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (ops)
        dnnl_post_ops_destroy(ops);
    dnnl_primitive_attr_destroy(attr);
    return prim;
}

static dnnl_primitive_t lookup(const struct key *k, size_t *scratch)
{
    dnnl_primitive_t prim = NULL;
    pthread_mutex_lock(&lock);
    if (init_locked() == 1) {
        unsigned long i = hash_key(k) % SLOTS;
        for (int probe = 0; probe < SLOTS; probe++, i = (i + 1) % SLOTS) {
            struct slot *s = &table[i];
            if (s->used && same_key(&s->key, k)) {
                prim = s->prim;
                *scratch = s->scratch;
                break;
            }
            if (!s->used) {
                /* a table three quarters full sends new keys to the
                 * fallback rather than growing probe chains */
                if (count < SLOTS * 3 / 4) {
                    s->key = *k;
                    s->scratch = 0;
                    s->prim = build(k, &s->scratch);
                    s->used = 1;
                    count++;
                    prim = s->prim;
                    *scratch = s->scratch;
                }
                break;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return prim;
}

static int run_native(dnnl_primitive_t prim, size_t scratch, const struct key *k, float alpha,
                      const muon__bf16 *A, const muon__bf16 *B, float *C)
{
    dnnl_memory_desc_t a, b, c, s, w;
    dnnl_dims_t one = {1}, wbytes = {(dnnl_dim_t)(scratch ? scratch : 1)};
    if (!descs(k, &a, &b, &c) || dnnl_memory_desc_init_by_tag(&s, 1, one, dnnl_f32, dnnl_a) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&w, 1, wbytes, dnnl_u8, dnnl_a) != dnnl_success)
        return 0;
    struct per_thread *th = this_thread();
    if (!th)
        return 0;
    if (scratch > th->cap) {
        /* grows once per thread to the largest primitive's need */
        void *p = muon__aligned_alloc(scratch);
        if (!p)
            return 0;
        free(th->scratch);
        th->scratch = p;
        th->cap = scratch;
    }
    dnnl_memory_t ma = NULL, mb = NULL, mc = NULL, ms = NULL, mw = NULL;
    int ok = dnnl_memory_create(&mw, &w, engine, scratch ? th->scratch : (void *)&th->cap) == dnnl_success &&
             dnnl_memory_create(&ma, &a, engine, (void *)A) == dnnl_success &&
             dnnl_memory_create(&mb, &b, engine, (void *)B) == dnnl_success &&
             dnnl_memory_create(&mc, &c, engine, C) == dnnl_success &&
             dnnl_memory_create(&ms, &s, engine, &alpha) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ma},
                                   {DNNL_ARG_WEIGHTS, mb},
                                   {DNNL_ARG_DST, mc},
                                   {DNNL_ARG_SCRATCHPAD, mw},
                                   {DNNL_ARG_ATTR_OUTPUT_SCALES, ms}};
        /* oneDNN checks the arguments before it writes C, so a refused
         * call can still be made by the fallback */
        ok = dnnl_primitive_execute(prim, th->stream, k->scaled ? 5 : 4, args) == dnnl_success &&
             dnnl_stream_wait(th->stream) == dnnl_success;
    }
    if (ma)
        dnnl_memory_destroy(ma);
    if (mb)
        dnnl_memory_destroy(mb);
    if (mc)
        dnnl_memory_destroy(mc);
    if (ms)
        dnnl_memory_destroy(ms);
    if (mw)
        dnnl_memory_destroy(mw);
    return ok;
}

static muon_status run_fallback(int ta, int tb, long m, long n, long k, float alpha,
                                const muon__bf16 *A, const muon__bf16 *B, float beta, float *C,
                                long ldc)
{
    size_t na = (size_t)m * (size_t)k, nb = (size_t)k * (size_t)n;
    if (k <= 0) { /* an empty sum: C = beta C */
        for (long i = 0; i < m; i++)
            for (long j = 0; j < n; j++)
                C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return MUON_OK;
    }
    float *a = malloc(na * sizeof(float)), *b = malloc(nb * sizeof(float));
    if (!a || !b) {
        free(a);
        free(b);
        return MUON_ERR_NOMEM;
    }
    muon__from_bf16(a, A, na);
    muon__from_bf16(b, B, nb);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, ta ? (int)m : (int)k, b, tb ? (int)k : (int)n,
                beta, C, (int)ldc);
    free(a);
    free(b);
    return MUON_OK;
}

muon_status muon__be_gemm_bf16(const muon__backend *be, int threads, int ta, int tb, long m,
                               long n, long k, float alpha, const muon__bf16 *A,
                               const muon__bf16 *B, float beta, float *C, long ldc)
{
    if (m <= 0 || n <= 0)
        return MUON_OK;
    /* Small products run on the calling thread alone: waking a second pool
     * (oneDNN's OpenMP threads beside OpenBLAS's) costs more than they do. */
    int nth = omp_in_parallel() || threads < 1 ||
                      (double)m * (double)n * (double)k < be->bf16_one_thread_flops
                  ? 1
                  : threads;
    struct key key = {ta != 0, tb != 0, nth, alpha != 1.0f, m, n, k, ldc, beta};
    if (k > 0 && be->kernel[MUON_PRODUCT_GEMM_BF16] == MUON_KERNEL_ONEDNN) {
        /* A primitive splits its work for the thread count it sees when it
         * is built and expects as many when it runs; inside a parallel
         * region the nested team has one thread, so the count is set to
         * the key's (in a parallel region this sets only this thread's
         * nested count) around both, and restored. */
        int old = omp_get_max_threads();
        if (old != key.nth)
            omp_set_num_threads(key.nth);
        size_t scratch = 0;
        dnnl_primitive_t prim = lookup(&key, &scratch);
        int ok = prim && run_native(prim, scratch, &key, alpha, A, B, C);
        if (old != key.nth)
            omp_set_num_threads(old);
        if (ok)
            return MUON_OK;
    }
    return run_fallback(ta, tb, m, n, k, alpha, A, B, beta, C, ldc);
}

muon_status muon__gemm_bf16(int ta, int tb, long m, long n, long k, float alpha, const muon__bf16 *A,
                            const muon__bf16 *B, float beta, float *C, long ldc)
{
    return muon__be_gemm_bf16(muon__backend_default(), muon__caller_threads(), ta, tb, m, n, k,
                              alpha, A, B, beta, C, ldc);
}

muon_status muon_gemm_bf16(const muon_backend *be, int ta, int tb, long m, long n, long k,
                           float alpha, const muon_bf16 *A, const muon_bf16 *B, float beta,
                           float *C, long ldc, int threads)
{
    if (!A || !B || !C)
        return MUON_ERR_NULL;
    if (m < 0 || n < 0 || k < 0)
        return MUON_ERR_SIZE;
    int inside = omp_in_parallel(), nth = inside || threads < 1 ? 1 : threads;
    /* the widened path's SGEMM runs on OpenBLAS's count */
    int old = inside ? 0 : muon__blas_threads_push(nth);
    muon_status s = muon__be_gemm_bf16(be ? be : muon__backend_default(), nth, ta, tb, m, n, k,
                                       alpha, A, B, beta, C, ldc);
    if (!inside)
        muon__blas_threads_pop(old);
    return s;
}
