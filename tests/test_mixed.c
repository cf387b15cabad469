/* Mixed precision: bf16 rounding, the bf16 GEMM (native oneDNN or the fp32
 * fallback, whichever this machine runs) against double-precision loops,
 * threads sharing it, orthogonalization and the model's linear layers in
 * "mixed" against fp32, and the precision setting in the train config. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "base/bf16.h"
#include "harness.h"
#include "nn/gpt.h"
#include "testutil.h"
#include "train/train.h"

/* Round to nearest bf16, ties to even, written from the definition: the
 * two bf16 values around f (truncation and the next one up in magnitude),
 * whichever is nearer in double, the even one on a tie. */
static uint16_t bf16_ref(float f)
{
    if (isnan(f))
        return 0; /* checked separately */
    uint32_t u = tu_float_bits(f);
    uint32_t lo = u & 0xffff0000u;
    if ((u & 0xffffu) == 0)
        return (uint16_t)(lo >> 16);
    uint32_t hi = lo + 0x10000u; /* next magnitude up; may reach Inf */
    double dlo = fabs((double)tu_bits_float(lo) - (double)f);
    double dhi = isinf(tu_bits_float(hi)) ? fabs(ldexp(1.0, 128) - fabs((double)f))
                                     : fabs((double)tu_bits_float(hi) - (double)f);
    if (dlo < dhi)
        return (uint16_t)(lo >> 16);
    if (dhi < dlo)
        return (uint16_t)(hi >> 16);
    return (uint16_t)(((lo >> 16) & 1u) ? hi >> 16 : lo >> 16);
}

TEST(bf16_rounding_matches_the_definition)
{
    tu_rng r;
    tu_seed(&r, mt_seed);
    enum { N = 20000 };
    float *x = malloc(N * sizeof *x);
    muon__bf16 *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) {
        /* random bit patterns cover every exponent, subnormals included;
         * NaNs are redrawn */
        uint32_t u;
        do {
            u = (uint32_t)(tu_uniform(&r) * 4294967296.0);
        } while ((u & 0x7fffffffu) > 0x7f800000u);
        x[i] = tu_bits_float(u);
    }
    /* hand-picked: ties both ways, exact values, the largest float */
    x[0] = tu_bits_float(0x3f808000u); /* tie, lower is even: stays 0x3f80 */
    x[1] = tu_bits_float(0x3f818000u); /* tie, lower is odd: up to 0x3f82 */
    x[2] = tu_bits_float(0x3f808001u); /* just above the tie: up */
    x[3] = 1.0f;
    x[4] = -0.0f;
    x[5] = INFINITY;
    x[6] = -INFINITY;
    x[7] = tu_bits_float(0x7f7fffffu); /* FLT_MAX rounds to Inf */
    x[8] = tu_bits_float(0x00000001u); /* smallest subnormal rounds to +0 */
    muon__to_bf16(y, x, N);
    ASSERT_EQ_INT(y[0], 0x3f80);
    ASSERT_EQ_INT(y[1], 0x3f82);
    ASSERT_EQ_INT(y[2], 0x3f81);
    ASSERT_EQ_INT(y[4], 0x8000);
    ASSERT_EQ_INT(y[5], 0x7f80);
    ASSERT_EQ_INT(y[6], 0xff80);
    ASSERT_EQ_INT(y[7], 0x7f80);
    ASSERT_EQ_INT(y[8], 0x0000);
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++)
        if (y[i] != bf16_ref(x[i]))
            bad = i;
    if (bad >= 0)
        printf("    x = 0x%08x: got 0x%04x, want 0x%04x\n", tu_float_bits(x[bad]), y[bad],
               bf16_ref(x[bad]));
    ASSERT_EQ_INT(bad, -1);
    /* NaN stays NaN; widening is exact */
    float nan_in[2] = {NAN, tu_bits_float(0x7f800001u)}, back[2];
    muon__bf16 nan_out[2];
    muon__to_bf16(nan_out, nan_in, 2);
    muon__from_bf16(back, nan_out, 2);
    ASSERT(isnan(back[0]) && isnan(back[1]));
    float w;
    muon__bf16 h = 0x4049; /* 3.140625 */
    muon__from_bf16(&w, &h, 1);
    ASSERT(w == 3.140625f);
    free(x);
    free(y);
}

/* C = alpha op(A) op(B) + beta C in double from the bf16 operands. */
static void gemm_ref(int ta, int tb, long m, long n, long k, double alpha, const muon__bf16 *A,
                     const muon__bf16 *B, double beta, const float *C0, long ldc, double *C,
                     double *scale)
{
    float *a = malloc((size_t)(m * k + 1) * sizeof *a), *b = malloc((size_t)(k * n + 1) * sizeof *b);
    muon__from_bf16(a, A, (size_t)(m * k));
    muon__from_bf16(b, B, (size_t)(k * n));
    for (long i = 0; i < m; i++)
        for (long j = 0; j < n; j++) {
            double acc = 0, mag = 0;
            for (long p = 0; p < k; p++) {
                double x = ta ? a[p * m + i] : a[i * k + p];
                double y = tb ? b[j * k + p] : b[p * n + j];
                acc += x * y;
                mag += fabs(x * y);
            }
            C[i * ldc + j] = alpha * acc + beta * C0[i * ldc + j];
            scale[i * ldc + j] = fabs(alpha) * mag + fabs(beta * C0[i * ldc + j]);
        }
    free(a);
    free(b);
}

/* One product against the reference: every element within fp32
 * accumulation error of the sum of its terms' magnitudes; elements of C
 * outside the m x n block (ldc > n) untouched. */
static int check_gemm(tu_rng *r, int ta, int tb, long m, long n, long k, float alpha, float beta,
                      long ldc)
{
    size_t nc = (size_t)(m * ldc);
    float *fa = malloc((size_t)(m * k) * sizeof *fa), *fb = malloc((size_t)(k * n) * sizeof *fb);
    muon__bf16 *A = malloc((size_t)(m * k) * sizeof *A), *B = malloc((size_t)(k * n) * sizeof *B);
    float *C = malloc(nc * sizeof *C), *C0 = malloc(nc * sizeof *C0);
    double *R = malloc(nc * sizeof *R), *S = malloc(nc * sizeof *S);
    tu_fill_normal(r, fa, (size_t)(m * k), 1.0);
    tu_fill_normal(r, fb, (size_t)(k * n), 1.0);
    tu_fill_normal(r, C0, nc, 1.0);
    muon__to_bf16(A, fa, (size_t)(m * k));
    muon__to_bf16(B, fb, (size_t)(k * n));
    memcpy(C, C0, nc * sizeof *C);
    gemm_ref(ta, tb, m, n, k, alpha, A, B, beta, C0, ldc, R, S);
    int ok = muon__gemm_bf16(ta, tb, m, n, k, alpha, A, B, beta, C, ldc) == MUON_OK;
    for (long i = 0; ok && i < m; i++)
        for (long j = 0; ok && j < ldc; j++) {
            size_t e = (size_t)(i * ldc + j);
            if (j >= n)
                ok = tu_float_bits(C[e]) == tu_float_bits(C0[e]);
            else
                ok = fabs(C[e] - R[e]) <= 1e-5 * S[e] + 1e-30;
            if (!ok)
                printf("    ta %d tb %d %ldx%ldx%ld alpha %g beta %g ldc %ld: C[%ld,%ld] = %.9g, "
                       "want %.9g\n",
                       ta, tb, m, n, k, alpha, beta, ldc, i, j, C[e], j < n ? R[e] : C0[e]);
        }
    free(fa);
    free(fb);
    free(A);
    free(B);
    free(C);
    free(C0);
    free(R);
    free(S);
    return ok;
}

TEST(bf16_gemm_matches_double_reference)
{
    tu_rng r;
    tu_seed(&r, mt_seed);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            ASSERT(check_gemm(&r, ta, tb, 37, 53, 29, 1.0f, 0.0f, 53));
            ASSERT(check_gemm(&r, ta, tb, 37, 53, 29, 0.75f, 1.0f, 61));
            ASSERT(check_gemm(&r, ta, tb, 64, 48, 96, -1.5f, 0.5f, 48));
            /* big enough for the native kernels' blocking */
            ASSERT(check_gemm(&r, ta, tb, 256, 384, 192, 1.0f, 1.0f, 384));
        }
    /* k = 0: C = beta C */
    ASSERT(check_gemm(&r, 0, 0, 5, 7, 0, 1.0f, 0.5f, 7));
}

TEST(bf16_gemm_from_many_threads_at_once)
{
    /* Threads running the same shape concurrently: once, with oneDNN's
     * own scratchpad, they corrupted each other's results. */
    enum { T = 4, M = 96, N = 160, K = 128, REPS = 20 };
    tu_rng r;
    tu_seed(&r, mt_seed);
    muon__bf16 *A[T], *B[T];
    float *C[T];
    double *R[T], *S[T];
    float zero[M * N];
    memset(zero, 0, sizeof zero);
    for (int t = 0; t < T; t++) {
        float fa[M * K], fb[K * N];
        A[t] = malloc(sizeof(muon__bf16) * M * K);
        B[t] = malloc(sizeof(muon__bf16) * K * N);
        C[t] = malloc(sizeof(float) * M * N);
        R[t] = malloc(sizeof(double) * M * N);
        S[t] = malloc(sizeof(double) * M * N);
        tu_fill_normal(&r, fa, M * K, 1.0);
        tu_fill_normal(&r, fb, K * N, 1.0);
        muon__to_bf16(A[t], fa, M * K);
        muon__to_bf16(B[t], fb, K * N);
        gemm_ref(0, 0, M, N, K, 1.0, A[t], B[t], 0.0, zero, N, R[t], S[t]);
    }
    int bad = 0;
    for (int rep = 0; rep < REPS; rep++) {
#pragma omp parallel for num_threads(2) schedule(static, 1)
        for (int t = 0; t < T; t++)
            muon__gemm_bf16(0, 0, M, N, K, 1.0f, A[t], B[t], 0.0f, C[t], N);
        for (int t = 0; t < T; t++)
            for (int e = 0; e < M * N; e++)
                bad += !(fabs(C[t][e] - R[t][e]) <= 1e-5 * S[t][e] + 1e-30);
    }
    for (int t = 0; t < T; t++) {
        free(A[t]);
        free(B[t]);
        free(C[t]);
        free(R[t]);
        free(S[t]);
    }
    ASSERT_EQ_INT(bad, 0);
}

/* mixed against fp32: as orthogonal (the last two steps are fp32), and a
 * direction that differs by about bf16's rounding on a Gaussian input. */
static int ortho_case(long rows, long cols, muon_ortho_config cfg, double err_tol, double rel_tol)
{
    tu_rng r;
    tu_seed(&r, mt_seed + (uint64_t)rows * 7 + (uint64_t)cols);
    size_t n = (size_t)(rows * cols);
    float *g = malloc(n * sizeof *g), *o32 = malloc(n * sizeof *o32), *o16 = malloc(n * sizeof *o16);
    tu_fill_normal(&r, g, n, 1.0);
    cfg.precision = MUON_PRECISION_FP32;
    int ok = muon_orthogonalize(&cfg, g, o32, rows, cols, NULL, 0) == MUON_OK;
    cfg.precision = MUON_PRECISION_MIXED;
    ok = ok && muon_orthogonalize(&cfg, g, o16, rows, cols, NULL, 0) == MUON_OK;
    double e32 = 1, e16 = 1;
    ok = ok && muon_ortho_error(o32, rows, cols, &e32) == MUON_OK &&
         muon_ortho_error(o16, rows, cols, &e16) == MUON_OK;
    double rel = tu_rel_frob(o16, o32, n);
    if (!ok || !(fabs(e16 - e32) <= err_tol) || !(rel > 0 && rel <= rel_tol)) {
        printf("    %ldx%ld method %d coeffs %d aol %d: err fp32 %.4f mixed %.4f, rel diff %.4g\n",
               rows, cols, cfg.method, cfg.coeffs, cfg.aol, e32, e16, rel);
        ok = 0;
    }
    free(g);
    free(o32);
    free(o16);
    return ok;
}

TEST(ortho_mixed_is_as_orthogonal_as_fp32)
{
    muon_ortho_config c = muon_ortho_config_default();
    ASSERT(ortho_case(96, 160, c, 0.01, 0.03));
    ASSERT(ortho_case(160, 96, c, 0.01, 0.03));
    ASSERT(ortho_case(128, 128, c, 0.01, 0.03));
    ASSERT(ortho_case(200, 640, c, 0.01, 0.03));
    c.method = MUON_ORTHO_NS;
    ASSERT(ortho_case(96, 160, c, 0.01, 0.03));
    c = muon_ortho_config_default();
    c.coeffs = MUON_COEFFS_TAYLOR;
    c.taylor_k = 3;
    c.steps = 8;
    ASSERT(ortho_case(64, 96, c, 0.01, 0.03));
    c = muon_ortho_config_default();
    c.aol = 1;
    ASSERT(ortho_case(96, 160, c, 0.01, 0.03));
}

TEST(ortho_mixed_edges)
{
    tu_rng r;
    tu_seed(&r, mt_seed);
    enum { ROWS = 40, COLS = 72 };
    float g[ROWS * COLS], a[ROWS * COLS], b[ROWS * COLS];
    tu_fill_normal(&r, g, ROWS * COLS, 1.0);
    /* two steps leave none for bf16: identical to fp32 */
    muon_ortho_config c = muon_ortho_config_default();
    c.steps = 2;
    ASSERT_OK(muon_orthogonalize(&c, g, a, ROWS, COLS, NULL, 0));
    c.precision = MUON_PRECISION_MIXED;
    ASSERT_OK(muon_orthogonalize(&c, g, b, ROWS, COLS, NULL, 0));
    ASSERT(memcmp(a, b, sizeof a) == 0);
    /* the workspace grows for the bf16 copies, and a short one is refused
     * with out untouched */
    c.steps = 5;
    size_t w32, w16;
    muon_ortho_config f = muon_ortho_config_default();
    ASSERT_OK(muon_ortho_workspace_size(&f, ROWS, COLS, &w32));
    ASSERT_OK(muon_ortho_workspace_size(&c, ROWS, COLS, &w16));
    ASSERT(w16 > w32);
    void *work = malloc(w16);
    memcpy(b, a, sizeof b);
    ASSERT_STATUS(muon_orthogonalize(&c, g, b, ROWS, COLS, work, w16 - 64), MUON_ERR_WORKSPACE);
    ASSERT(memcmp(a, b, sizeof a) == 0);
    ASSERT_OK(muon_orthogonalize(&c, g, b, ROWS, COLS, work, w16));
    free(work);
    ASSERT(muon_ortho_flops(&c, ROWS, COLS) > 0);
    /* svd has no steps to run in bf16; unknown values are refused */
    c.method = MUON_ORTHO_SVD;
    ASSERT_STATUS(muon_ortho_config_validate(&c), MUON_ERR_UNSUPPORTED);
    c = muon_ortho_config_default();
    c.precision = (muon_precision)7;
    ASSERT_STATUS(muon_ortho_config_validate(&c), MUON_ERR_ARG);
    muon_precision p;
    ASSERT_OK(muon_precision_parse("mixed", &p));
    ASSERT_EQ_INT(p, MUON_PRECISION_MIXED);
    ASSERT_STATUS(muon_precision_parse("bf16", &p), MUON_ERR_ARG);
    ASSERT(strcmp(muon_precision_name(MUON_PRECISION_FP32), "fp32") == 0);
}

TEST(gpt_mixed_gradients_close_to_fp32)
{
    gpt_config c = gpt_config_default();
    c.dim = 64;
    c.layers = 2;
    c.heads = 4;
    c.context = 32;
    enum { B = 2 };
    gpt_model *m = NULL;
    ASSERT_OK(gpt_create(&c, B, &m));
    gpt_init_params(m, 3);
    /* nonzero head and projections, so every gradient is nonzero */
    tu_rng r;
    tu_seed(&r, mt_seed);
    size_t np = gpt_num_params(m);
    float *p = gpt_params(m);
    for (size_t i = 0; i < np; i++)
        p[i] += (float)(0.02 * tu_normal(&r));
    int32_t tok[B * 32], tgt[B * 32];
    for (int i = 0; i < B * 32; i++) {
        tok[i] = (int32_t)(tu_uniform(&r) * 256);
        tgt[i] = (int32_t)(tu_uniform(&r) * 256);
    }
    float *g32 = malloc(np * sizeof *g32);
    float loss[2];
    for (int pass = 0; pass < 2; pass++) {
        ASSERT_OK(gpt_set_precision(m, pass ? MUON_PRECISION_MIXED : MUON_PRECISION_FP32));
        gpt_zero_grad(m);
        loss[pass] = gpt_forward(m, tok, tgt, B, 32);
        ASSERT_OK(gpt_backward(m));
        if (!pass)
            memcpy(g32, gpt_grads(m), np * sizeof *g32);
    }
    ASSERT(isfinite(loss[0]) && isfinite(loss[1]));
    ASSERT_NEAR(loss[1], loss[0], 0.01 * loss[0]);
    ASSERT_EQ_INT(gpt_get_precision(m), MUON_PRECISION_MIXED);
    const float *g16 = gpt_grads(m);
    double worst = 0;
    for (int t = 0; t < gpt_num_tensors(m); t++) {
        const gpt_tensor *T = gpt_tensor_at(m, t);
        double rel = tu_rel_frob(g16 + T->offset, g32 + T->offset, T->numel);
        if (rel > worst)
            worst = rel;
    }
    printf("    largest relative gradient difference %.4f\n", worst);
    /* bf16 operands: ~0.4% per product; a few percent at most end to end */
    ASSERT(worst > 0 && worst < 0.03);
    ASSERT_STATUS(gpt_set_precision(m, (muon_precision)9), MUON_ERR_ARG);
    free(g32);
    gpt_free(m);
}

TEST(train_config_keeps_precision)
{
    train_config c = train_config_default();
    c.ortho.precision = MUON_PRECISION_MIXED;
    char *json = train_config_to_json(&c);
    ASSERT(json && strstr(json, "\"precision\":\"mixed\""));
    train_config back;
    char err[256];
    ASSERT_EQ_INT(train_config_from_json(json, strlen(json), &back, err, sizeof err), 0);
    ASSERT_EQ_INT(back.ortho.precision, MUON_PRECISION_MIXED);
    /* written before the setting existed: fp32 */
    char *k = strstr(json, ",\"precision\":\"mixed\"");
    ASSERT(k);
    memmove(k, k + strlen(",\"precision\":\"mixed\""), strlen(k + strlen(",\"precision\":\"mixed\"")) + 1);
    ASSERT_EQ_INT(train_config_from_json(json, strlen(json), &back, err, sizeof err), 0);
    ASSERT_EQ_INT(back.ortho.precision, MUON_PRECISION_FP32);
    free(json);
    c.ortho.precision = MUON_PRECISION_FP32;
    json = train_config_to_json(&c);
    char *v = strstr(json, "\"precision\":\"fp32\"");
    ASSERT(v);
    memcpy(v + strlen("\"precision\":\""), "fp64", 4);
    ASSERT(train_config_from_json(json, strlen(json), &back, err, sizeof err) != 0);
    ASSERT(strstr(err, "precision"));
    free(json);
}
