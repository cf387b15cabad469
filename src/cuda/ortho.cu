/* ortho.cu - Newton-Schulz (docs/algorithms.md 1a) and Gram Newton-Schulz
 * (1b) on a batch of same-shape matrices with cuBLAS, following
 * src/ortho/iterate.c and mixed.c step for step: the same per-step
 * polynomials and restarts (taken from src/ortho/coeffs.c itself), the same
 * bf16 leading steps under "mixed", the same normalization.
 *
 * Layout: cuBLAS is column-major, and a row-major rows x cols matrix is the
 * column-major cols x rows matrix Xc = X^T. In the wide view (m <= n, as
 * src/ortho/kernels.c) a wide X is Xc (n x m, ld n): X X^T = Xc^T Xc and
 * S X = (Xc S)^T. A tall X is Xc (m x n, ld m): X^T X = Xc Xc^T and
 * X S = (S Xc)^T. Every m x m matrix here is symmetric, so its two layouts
 * are the same array.
 *
 * Symmetric products (X X^T, A A, and Z B for commuting polynomials Z, B
 * of one Gram matrix) compute only their block lower triangle: one
 * strided-batched GEMM per block column of 4 (for m >= 256: 62.5% of the
 * flops, as the CPU's panels), then k_sym_finish mirrors it while adding
 * the polynomial's other terms. Every product is one strided-batched call
 * over the whole batch: fp32 operands with fp32 compute (no TF32), or bf16
 * operands with fp32 accumulation on the tensor cores. */
#include <limits.h>
#include <string.h>

#include "cuda/internal.cuh"

#define SYM_PANELS 4
#define ALIGN 256

typedef struct {
    long m, n;
    int tall;
    long batch;
} view;

/* One strided-batched product, column-major C = alpha op(A) op(B) + beta C,
 * fp32 results; operands bf16 (tensor cores) or fp32 (no TF32). */
static muon_status gemm(muon_cuda *c, cublasHandle_t h, int bf16, int ta, int tb, long M, long N,
                        long K, float alpha, const void *A, long lda, long sa, const void *B,
                        long ldb, long sb, float beta, float *C, long ldc, long sc, long batch)
{
    cudaDataType ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
    MUON__CUBLAS(c, cublasGemmStridedBatchedEx(
                        h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, (int)M,
                        (int)N, (int)K, &alpha, A, ab, (int)lda, (long long)sa, B, ab, (int)ldb,
                        (long long)sb, &beta, C, CUDA_R_32F, (int)ldc, (long long)sc, (int)batch,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return MUON_OK;
}

static const void *offset(const void *p, size_t elems, int bf16)
{
    return (const char *)p + elems * (bf16 ? sizeof(muon__bf16_t) : sizeof(float));
}

/* raw (m x m per matrix, stride m*m) = block lower triangle of op(A) op(B),
 * inner length K. Block column [lo, hi) covers rows [lo, m). */
static muon_status sym_lower(muon_cuda *c, cublasHandle_t h, int bf16, int ta, int tb, long m,
                             long K, const void *A, long lda, long sa, const void *B, long ldb,
                             long sb, float *raw, long batch)
{
    long lo[SYM_PANELS + 1];
    int np = m >= 256 ? SYM_PANELS : 1;
    lo[0] = 0;
    for (int i = 1; i < np; i++)
        lo[i] = (m * i / np + 32) / 64 * 64;
    lo[np] = m;
    for (int j = 0; j < np; j++) {
        long r0 = lo[j], w = lo[j + 1] - lo[j];
        const void *a = offset(A, (size_t)(ta ? r0 * lda : r0), bf16);
        const void *b = offset(B, (size_t)(tb ? r0 : r0 * ldb), bf16);
        MUON__TRY(gemm(c, h, bf16, ta, tb, m - r0, w, K, 1.0f, a, lda, sa, b, ldb, sb, 0.0f,
                       raw + r0 + r0 * m, m, m * m, batch));
    }
    return MUON_OK;
}

/* raw = block lower triangle of X X^T of the wide view (X fp32 or bf16). */
static muon_status gram(muon_cuda *c, cublasHandle_t h, const view *v, int bf16, const void *x,
                        float *raw)
{
    long m = v->m, n = v->n;
    if (v->tall)
        return sym_lower(c, h, bf16, 0, 1, m, n, x, m, m * n, x, m, m * n, raw, v->batch);
    return sym_lower(c, h, bf16, 1, 0, m, n, x, n, m * n, x, n, m * n, raw, v->batch);
}

/* y = S X of the wide view (X S for a tall one). */
static muon_status apply(muon_cuda *c, cublasHandle_t h, const view *v, int bf16, const void *s,
                         const void *x, float *y)
{
    long m = v->m, n = v->n;
    if (v->tall)
        return gemm(c, h, bf16, 0, 0, m, n, m, 1.0f, s, m, m * m, x, m, m * n, 0.0f, y, m, m * n,
                    v->batch);
    return gemm(c, h, bf16, 0, 0, n, m, m, 1.0f, x, n, m * n, s, m, m * m, 0.0f, y, n, m * n,
                v->batch);
}

/* s = c0 I + sum_{j>=1} q_j A^j (fp32, full), A full symmetric; raw and
 * tmp are m x m scratch (kernels.c's muon__poly_eval, same grouping: the
 * top three terms first, the rest by Horner). */
static muon_status poly_eval(muon_cuda *c, cudaStream_t st, cublasHandle_t h, const view *v,
                             const muon__poly *p, double c0, const float *a, float *s, float *raw,
                             float *tmp)
{
    long m = v->m, B = v->batch;
    int d = p->deg;
    if (d == 1)
        return muon__cuda_sym_finish(c, st, B, m, a, (float)p->q[1], NULL, 0.0f, (float)c0, s,
                                     NULL);
    MUON__TRY(sym_lower(c, h, 0, 0, 0, m, m, a, m, m * m, a, m, m * m, raw, B));
    MUON__TRY(muon__cuda_sym_finish(c, st, B, m, raw, (float)p->q[d], a, (float)p->q[d - 1],
                                    (float)(d == 2 ? c0 : p->q[d - 2]), s, NULL));
    float *cur = s, *nxt = tmp;
    for (int j = d - 3; j >= 0; j--) {
        MUON__TRY(muon__cuda_fill_diag(c, st, B, m, (float)(j == 0 ? c0 : p->q[j]), nxt));
        MUON__TRY(gemm(c, h, 0, 0, 0, m, m, m, 1.0f, a, m, m * m, cur, m, m * m, 1.0f, nxt, m,
                       m * m, B));
        float *t = cur;
        cur = nxt;
        nxt = t;
    }
    if (cur != s)
        MUON__CU(c, cudaMemcpyAsync(s, cur, (size_t)B * m * m * sizeof(float),
                                    cudaMemcpyDeviceToDevice, st));
    return MUON_OK;
}

/* dst = beta b + Z B for commuting symmetric Z, B (iterate.c's sym_update);
 * dst may be b. */
static muon_status sym_update(muon_cuda *c, cudaStream_t st, cublasHandle_t h, const view *v,
                              const float *z, const float *b, float beta, float *raw, float *dst)
{
    long m = v->m;
    MUON__TRY(sym_lower(c, h, 0, 0, 0, m, m, z, m, m * m, b, m, m * m, raw, v->batch));
    return muon__cuda_sym_finish(c, st, v->batch, m, raw, 1.0f, b, beta, 0.0f, dst, NULL);
}

typedef struct {
    float *cur, *other;
} chain;

static void swap(chain *x)
{
    float *t = x->cur;
    x->cur = x->other;
    x->other = t;
}

/* mixed.c's bf16 steps 0 .. t0-1: plain NS with bf16 operands, fp32
 * accumulation; X arrives in ws->xh and leaves, fp32, in x->cur. */
static muon_status bf16_steps(muon_cuda *c, cudaStream_t st, cublasHandle_t h,
                              const muon_ortho_config *cfg, const view *v,
                              const muon__cuda_ortho_ws *ws, int t0, chain *x)
{
    long m = v->m, B = v->batch;
    size_t mn = (size_t)B * m * v->n, mm = (size_t)B * m * m;
    float *a = ws->mm[0], *s = ws->mm[1], *raw = ws->mm[3], *tmp = ws->mm[4];
    for (int t = 0; t < t0; t++) {
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        if (t > 0)
            MUON__TRY(muon__cuda_to_bf16(c, st, x->cur, ws->xh, mn));
        MUON__TRY(gram(c, h, v, 1, ws->xh, raw));
        MUON__TRY(muon__cuda_sym_finish(c, st, B, m, raw, 1.0f, NULL, 0.0f, 0.0f, a,
                                        p.deg == 2 ? ws->ah : NULL));
        if (p.deg == 2) { /* S = q0 I + q1 A + q2 A A, A A from bf16 A */
            MUON__TRY(sym_lower(c, h, 1, 0, 0, m, m, ws->ah, m, m * m, ws->ah, m, m * m, raw, B));
            MUON__TRY(muon__cuda_sym_finish(c, st, B, m, raw, (float)p.q[2], a, (float)p.q[1],
                                            (float)p.q[0], s, ws->sh));
        } else { /* taylor-K: its Horner chain in fp32, as mixed.c */
            MUON__TRY(poly_eval(c, st, h, v, &p, p.q[0], a, s, raw, tmp));
            MUON__TRY(muon__cuda_to_bf16(c, st, s, ws->sh, mm));
        }
        /* the first step's X exists only in bf16: its product lands in cur */
        float *dst = t == 0 ? x->cur : x->other;
        MUON__TRY(apply(c, h, v, 1, ws->sh, ws->xh, dst));
        if (t > 0)
            swap(x);
    }
    return MUON_OK;
}

static muon_status ns_steps(muon_cuda *c, cudaStream_t st, cublasHandle_t h,
                            const muon_ortho_config *cfg, const view *v,
                            const muon__cuda_ortho_ws *ws, int t0, chain *x, float **out)
{
    float *a = ws->mm[0], *s = ws->mm[1], *raw = ws->mm[3], *tmp = ws->mm[4];
    for (int t = t0; t < cfg->steps; t++) {
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        MUON__TRY(gram(c, h, v, 0, x->cur, raw));
        MUON__TRY(muon__cuda_sym_finish(c, st, v->batch, v->m, raw, 1.0f, NULL, 0.0f, 0.0f, a,
                                        NULL));
        MUON__TRY(poly_eval(c, st, h, v, &p, p.q[0], a, s, raw, tmp));
        int last = t == cfg->steps - 1;
        if (last && !*out)
            *out = x->other;
        MUON__TRY(apply(c, h, v, 0, s, x->cur, last ? *out : x->other));
        if (!last)
            swap(x);
    }
    return MUON_OK;
}

/* iterate.c's muon__gram_ns_run: R = X X^T, Q accumulates the polynomials,
 * X is touched only at restarts and at the end. */
static muon_status gram_ns_steps(muon_cuda *c, cudaStream_t st, cublasHandle_t h,
                                 const muon_ortho_config *cfg, const view *v,
                                 const muon__cuda_ortho_ws *ws, int t0, chain *x, float **out)
{
    long m = v->m, B = v->batch;
    float *r = ws->mm[0], *z = ws->mm[1], *q = ws->mm[2], *raw = ws->mm[3], *tmp = ws->mm[4];
    MUON__TRY(gram(c, h, v, 0, x->cur, raw));
    MUON__TRY(muon__cuda_sym_finish(c, st, B, m, raw, 1.0f, NULL, 0.0f, 0.0f, r, NULL));
    int have_q = 0;
    for (int t = t0; t < cfg->steps; t++) {
        if (t > t0 && muon__gram_restart_at(cfg, t)) {
            MUON__TRY(apply(c, h, v, 0, q, x->cur, x->other));
            swap(x);
            MUON__TRY(gram(c, h, v, 0, x->cur, raw));
            MUON__TRY(muon__cuda_sym_finish(c, st, B, m, raw, 1.0f, NULL, 0.0f, 0.0f, r, NULL));
            have_q = 0;
        }
        muon__poly p;
        muon__ortho_step_poly(cfg, t, &p);
        float a = (float)p.q[0];
        MUON__TRY(poly_eval(c, st, h, v, &p, 0.0, r, z, raw, tmp)); /* Z = p(R) - a I */
        if (!have_q)
            MUON__TRY(muon__cuda_sym_finish(c, st, B, m, z, 1.0f, NULL, 0.0f, a, q, NULL));
        else
            MUON__TRY(sym_update(c, st, h, v, z, q, a, raw, q)); /* a Q + Z Q */
        have_q = 1;
        if (t + 1 < cfg->steps && !muon__gram_restart_at(cfg, t + 1)) {
            MUON__TRY(sym_update(c, st, h, v, z, r, a, raw, tmp)); /* RZ = a R + Z R */
            MUON__TRY(sym_update(c, st, h, v, z, tmp, a, raw, r)); /* R = a RZ + Z RZ */
        }
    }
    if (!*out)
        *out = x->other;
    return apply(c, h, v, 0, q, x->cur, *out);
}

muon_status muon__cuda_ortho_iterate(muon_cuda *c, cudaStream_t s, cublasHandle_t h,
                                     const muon_ortho_config *cfg, long batch, long rows,
                                     long cols, const muon__cuda_ortho_ws *ws, float *out,
                                     float **result)
{
    view v = {rows < cols ? rows : cols, rows < cols ? cols : rows, rows > cols, batch};
    chain x = {ws->xa, ws->xb};
    int t0 = muon__bf16_steps(cfg);
    if (t0 > 0)
        MUON__TRY(bf16_steps(c, s, h, cfg, &v, ws, t0, &x));
    /* without out, the last product goes to whichever X buffer its
     * operand is not in */
    float *dst = out;
    if (cfg->method == MUON_ORTHO_GRAM_NS)
        MUON__TRY(gram_ns_steps(c, s, h, cfg, &v, ws, t0, &x, &dst));
    else
        MUON__TRY(ns_steps(c, s, h, cfg, &v, ws, t0, &x, &dst));
    if (result)
        *result = dst;
    return MUON_OK;
}

muon_status muon__cuda_ortho_resolve(const muon_ortho_config *cfg, long rows, long cols,
                                     muon_ortho_config *out)
{
    muon_status st = muon_ortho_config_validate(cfg);
    if (st != MUON_OK)
        return st;
    if (cfg->method == MUON_ORTHO_SVD || cfg->aol)
        return MUON_ERR_UNSUPPORTED;
    *out = muon__ortho_resolve(cfg, rows, cols);
    /* the GPU's bf16 tensor cores run several times fp32's rate at every
     * size this backend is meant for */
    if (out->precision == MUON_PRECISION_AUTO)
        out->precision = MUON_PRECISION_MIXED;
    return MUON_OK;
}

static size_t take(char **p, size_t bytes)
{
    size_t b = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    *p += b;
    return b;
}

size_t muon__cuda_ortho_layout(void *base, const muon_ortho_config *c, long batch, long rows,
                               long cols, muon__cuda_ortho_ws *ws)
{
    long m = rows < cols ? rows : cols, n = rows < cols ? cols : rows;
    size_t mn = (size_t)batch * m * n, mm = (size_t)batch * m * m;
    int half = muon__bf16_steps(c) > 0, nchunk = muon__cuda_nchunk(m * n);
    char *p = (char *)base;
    muon__cuda_ortho_ws w;
    memset(&w, 0, sizeof w);
    w.nchunk = nchunk;
    char *q = p;
    w.xa = (float *)q;
    take(&q, mn * sizeof(float));
    w.xb = (float *)q;
    take(&q, mn * sizeof(float));
    for (int i = 0; i < 5; i++) {
        w.mm[i] = (float *)q;
        take(&q, mm * sizeof(float));
    }
    if (half) {
        w.xh = (muon__bf16_t *)q;
        take(&q, mn * sizeof(muon__bf16_t));
        w.ah = (muon__bf16_t *)q;
        take(&q, mm * sizeof(muon__bf16_t));
        w.sh = (muon__bf16_t *)q;
        take(&q, mm * sizeof(muon__bf16_t));
    }
    w.sumsq = (double *)q;
    take(&q, (size_t)batch * sizeof(double));
    w.partials = (double *)q;
    take(&q, (size_t)batch * nchunk * sizeof(double));
    w.nonfinite = (int *)q;
    take(&q, sizeof(int));
    if (ws)
        *ws = w;
    return (size_t)(q - p);
}

/* Sizes cuBLAS and the kernels can index: int dimensions, size_t totals. */
static int shape_ok(long batch, long rows, long cols)
{
    if (batch <= 0 || rows <= 0 || cols <= 0 || batch > INT_MAX || rows > INT_MAX ||
        cols > INT_MAX)
        return 0;
    long m = rows < cols ? rows : cols;
    double total = (double)batch * ((double)rows * (double)cols + (double)m * (double)m);
    return total < 9.0e15; /* far below SIZE_MAX / 64, exact in a double */
}

static muon_status ensure_work(muon_cuda *c, size_t need)
{
    if (c->work_bytes >= need)
        return MUON_OK;
    if (c->work) {
        /* work queued on the old buffer must end before it is freed */
        MUON__CU(c, cudaStreamSynchronize(c->s[0]));
        MUON__CU(c, cudaFree(c->work));
        c->work = NULL;
        c->work_bytes = 0;
    }
    MUON__CU(c, cudaMalloc(&c->work, need));
    c->work_bytes = need;
    return MUON_OK;
}

static muon_status orthogonalize(muon_cuda *c, const muon_ortho_config *oc, const float *in,
                                 float *out, long batch, long rows, long cols)
{
    muon__cuda_ortho_ws ws;
    size_t need = muon__cuda_ortho_layout(NULL, oc, batch, rows, cols, NULL);
    MUON__TRY(ensure_work(c, need));
    muon__cuda_ortho_layout(c->work, oc, batch, rows, cols, &ws);
    cudaStream_t s = c->s[0];
    long per = rows * cols;
    MUON__TRY(muon__cuda_fork(c, 1));
    MUON__CU(c, cudaMemsetAsync(ws.nonfinite, 0, sizeof(int), s));
    MUON__TRY(muon__cuda_sumsq(c, s, in, batch, per, ws.partials, ws.sumsq, ws.nonfinite));
    MUON__CU(c, cudaMemcpyAsync(c->flag_host, ws.nonfinite, sizeof(int), cudaMemcpyDeviceToHost,
                                s));
    MUON__CU(c, cudaStreamSynchronize(s));
    if (*c->flag_host) {
        MUON__TRY(muon__cuda_join(c, 1));
        return muon__cuda_fail(c, MUON_ERR_NONFINITE, "the input holds NaN or Inf");
    }
    int half = muon__bf16_steps(oc) > 0;
    MUON__TRY(muon__cuda_normalize(c, s, in, batch, per, ws.sumsq, muon__ortho_norm_factor(oc),
                                   oc->eps, half ? NULL : ws.xa, half ? ws.xh : NULL));
    MUON__TRY(muon__cuda_ortho_iterate(c, s, c->h[0], oc, batch, rows, cols, &ws, out, NULL));
    return muon__cuda_join(c, 1);
}

extern "C" muon_status muon_cuda_orthogonalize(muon_cuda *c, const muon_ortho_config *cfg,
                                               const float *in, float *out, long batch, long rows,
                                               long cols)
{
    if (!c)
        return MUON_ERR_NULL;
    if (!cfg || !in || !out)
        return muon__cuda_fail(c, MUON_ERR_NULL, "muon_cuda_orthogonalize: %s is NULL",
                               !cfg ? "cfg" : !in ? "in" : "out");
    if (!shape_ok(batch, rows, cols))
        return muon__cuda_fail(c, MUON_ERR_SIZE, "bad size: batch %ld of %ld x %ld", batch, rows,
                               cols);
    muon_ortho_config oc;
    muon_status st = muon__cuda_ortho_resolve(cfg, rows, cols, &oc);
    if (st != MUON_OK)
        return muon__cuda_fail(c, st, "ortho config: %s%s", muon_strerror(st),
                               st == MUON_ERR_UNSUPPORTED ? " (svd and AOL have no GPU path)" : "");
    muon__cuda_dev_guard g;
    st = muon__cuda_enter(c, &g);
    if (st == MUON_OK)
        st = orthogonalize(c, &oc, in, out, batch, rows, cols);
    muon__cuda_leave(&g);
    if (st == MUON_OK)
        c->err[0] = '\0';
    return st;
}
