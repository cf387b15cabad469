/* bf16 and the "mixed" precision, checked against references written here:
 * rounding against integer arithmetic on the IEEE bits for every bf16
 * value, the bf16 GEMM against double loops on the rounded operands (the
 * native kernel and, in a child run with MUON_BF16=emulate, the fp32
 * fallback), threads building and running kernels at once, the mixed
 * linear layer, mixed orthogonalization against the exact polar factor
 * and fp32 for every step count and method, and the model in mixed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "base/bf16.h"
#include "harness.h"
#include "nn/gpt.h"
#include "nn/linear_mixed.h"
#include "ref_ortho.h"
#include "testutil.h"
#include "train/train.h"

static int is_nan_bits(uint32_t u)
{
    return (u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu) != 0;
}

/* Round to nearest, ties to even, from the definition on the bits: the 16
 * dropped bits against half an ulp of the kept ones. Adding one to the kept
 * sign-magnitude bits steps the magnitude up, through the exponent when
 * the mantissa is full, and from the largest finite value to Inf. */
static uint16_t round_ref(float f)
{
    uint32_t u = tu_float_bits(f), keep = u >> 16, dropped = u & 0xffffu;
    if (dropped > 0x8000u || (dropped == 0x8000u && (keep & 1u)))
        keep++;
    return (uint16_t)keep;
}

/* The bf16-rounded value in double, by the reference. */
static double rounded(float f)
{
    return (double)tu_bits_float((uint32_t)round_ref(f) << 16);
}

TEST(bf16_rounding_every_upper_half)
{
    /* every bf16 value with the low halves that decide rounding: exact,
     * just above, just below / at / just above the tie, the largest; NaN
     * patterns included (0x7f800001 truncates to Inf) */
    static const uint32_t lows[] = {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu};
    enum { NL = sizeof lows / sizeof lows[0] + 1, N = 65536 * NL };
    tu_rng r;
    tu_seed(&r, mt_seed);
    float *x = malloc(N * sizeof *x);
    muon__bf16 *y = malloc(N * sizeof *y), *y_small = malloc(N * sizeof *y_small);
    for (uint32_t hi = 0; hi < 65536; hi++) {
        for (int l = 0; l < NL - 1; l++)
            x[hi * NL + (uint32_t)l] = tu_bits_float(hi << 16 | lows[l]);
        x[hi * NL + NL - 1] = tu_bits_float(hi << 16 | (uint32_t)(tu_uniform(&r) * 65536));
    }
    /* one call large enough to be split across threads, and the same in
     * pieces that stay on the calling thread */
    muon__to_bf16(y, x, N);
    for (size_t i = 0; i < N; i += 1000)
        muon__to_bf16(y_small + i, x + i, N - i < 1000 ? N - i : 1000);
    ASSERT(memcmp(y, y_small, N * sizeof *y) == 0);
    long bad = -1, nans = 0;
    for (long i = 0; i < N && bad < 0; i++) {
        uint32_t u = tu_float_bits(x[i]);
        if (is_nan_bits(u)) {
            nans++;
            bad = is_nan_bits((uint32_t)y[i] << 16) ? -1 : i;
        } else if (y[i] != round_ref(x[i])) {
            bad = i;
        }
    }
    if (bad >= 0)
        printf("    0x%08x -> 0x%04x, want 0x%04x\n", tu_float_bits(x[bad]), y[bad], round_ref(x[bad]));
    ASSERT_EQ_INT(bad, -1);
    ASSERT(nans > 2 * 127 * 6); /* the sweep did reach the NaN patterns */
    free(x);
    free(y);
    free(y_small);
}

TEST(bf16_rounding_hand_picked)
{
    /* the expected values follow from the IEEE definition, not the code */
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1.0 exactly */
        {0x3f808000u, 0x3f80}, /* tie, kept bits even: down */
        {0x3f818000u, 0x3f82}, /* tie, kept bits odd: up */
        {0xbf818000u, 0xbf82}, /* the same, negative: away from zero */
        {0xbf808000u, 0xbf80},
        {0x3f807fffu, 0x3f80}, /* just below the tie */
        {0x3f808001u, 0x3f81}, /* just above the tie */
        {0x3fffffffu, 0x4000}, /* mantissa carry into the exponent */
        {0x80000000u, 0x8000}, /* -0 keeps its sign */
        {0x00000000u, 0x0000},
        {0x7f800000u, 0x7f80}, /* +Inf */
        {0xff800000u, 0xff80}, /* -Inf */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX: past the largest bf16, Inf */
        {0xff7fffffu, 0xff80},
        {0x7f7f7fffu, 0x7f7f}, /* stays the largest finite bf16 */
        {0x7f7f8000u, 0x7f80}, /* tie above the largest, odd: Inf */
        {0x00000001u, 0x0000}, /* smallest subnormal: to +0 */
        {0x80000001u, 0x8000}, /* and to -0 */
        {0x00008000u, 0x0000}, /* subnormal tie, even: down */
        {0x00018000u, 0x0002}, /* subnormal tie, odd: up */
        {0x00008001u, 0x0001},
        {0x007fffffu, 0x0080}, /* largest subnormal: up to the smallest normal */
        {0x00400000u, 0x0040}, /* an exact subnormal */
    };
    enum { N = sizeof cases / sizeof cases[0] };
    float in[N];
    muon__bf16 out[N];
    for (int i = 0; i < N; i++)
        in[i] = tu_bits_float(cases[i].in);
    muon__to_bf16(out, in, N);
    for (int i = 0; i < N; i++) {
        if (out[i] != cases[i].out)
            printf("    0x%08x -> 0x%04x, want 0x%04x\n", cases[i].in, out[i], cases[i].out);
        ASSERT_EQ_INT(out[i], cases[i].out);
        ASSERT_EQ_INT(round_ref(in[i]), cases[i].out); /* the reference agrees too */
    }
    /* NaN stays NaN, quiet or signalling, either sign */
    float nan_in[4] = {tu_bits_float(0x7fc00000u), tu_bits_float(0x7f800001u), tu_bits_float(0xff800001u),
                       tu_bits_float(0x7f80ffffu)};
    muon__bf16 nan_out[4];
    muon__to_bf16(nan_out, nan_in, 4);
    for (int i = 0; i < 4; i++)
        ASSERT(is_nan_bits((uint32_t)nan_out[i] << 16));
}

TEST(bf16_widening_is_exact_and_round_trips)
{
    enum { N = 65536 };
    muon__bf16 *p = malloc(N * sizeof *p), *back = malloc(N * sizeof *back);
    float *f = malloc(N * sizeof *f);
    for (int i = 0; i < N; i++)
        p[i] = (muon__bf16)i;
    muon__from_bf16(f, p, N);
    muon__to_bf16(back, f, N);
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++) {
        uint32_t u = tu_float_bits(f[i]);
        int nan = is_nan_bits((uint32_t)i << 16);
        if (u != (uint32_t)i << 16 || (nan ? !is_nan_bits((uint32_t)back[i] << 16) : back[i] != i))
            bad = i;
    }
    if (bad >= 0)
        printf("    0x%04x -> 0x%08x -> 0x%04x\n", bad, tu_float_bits(f[bad]), back[bad]);
    ASSERT_EQ_INT(bad, -1);
    free(p);
    free(back);
    free(f);
}

/* ---- the GEMM ---- */

typedef struct {
    int ta, tb;
    long m, n, k, ldc;
    float alpha, beta;
} gemm_shape;

/* Operands of op(A) (m x k) and op(B) (k x n) as stored, rounded by
 * muon__to_bf16 (checked above), and the reference: C = alpha op(A) op(B) +
 * beta C0 in double from the reference-rounded values, with the sum of the
 * terms' magnitudes as the error scale. beta == 0 ignores C0 (BLAS). */
typedef struct {
    gemm_shape s;
    muon__bf16 *A, *B;
    float *C0;
    double *R, *S;
} gemm_case;

static void gemm_case_make(gemm_case *g, const gemm_shape *s, tu_rng *r)
{
    long m = s->m, n = s->n, k = s->k;
    size_t na = (size_t)(m * k), nb = (size_t)(k * n), nc = (size_t)(m * s->ldc);
    g->s = *s;
    float *fa = malloc((na + 1) * sizeof *fa), *fb = malloc((nb + 1) * sizeof *fb);
    g->A = malloc((na + 1) * sizeof *g->A);
    g->B = malloc((nb + 1) * sizeof *g->B);
    g->C0 = malloc(nc * sizeof *g->C0);
    g->R = malloc(nc * sizeof *g->R);
    g->S = malloc(nc * sizeof *g->S);
    /* magnitudes over a few binades, so products are not all alike */
    for (size_t i = 0; i < na; i++)
        fa[i] = (float)ldexp(tu_normal(r), (int)(tu_uniform(r) * 8) - 4);
    for (size_t i = 0; i < nb; i++)
        fb[i] = (float)ldexp(tu_normal(r), (int)(tu_uniform(r) * 8) - 4);
    tu_fill_normal(r, g->C0, nc, 1.0);
    muon__to_bf16(g->A, fa, na);
    muon__to_bf16(g->B, fb, nb);
    /* op(A) and op(B) in double, row-major, from the reference rounding */
    double *a = malloc((na + 1) * sizeof *a), *b = malloc((nb + 1) * sizeof *b);
    for (long i = 0; i < m; i++)
        for (long p = 0; p < k; p++)
            a[i * k + p] = rounded(s->ta ? fa[p * m + i] : fa[i * k + p]);
    for (long p = 0; p < k; p++)
        for (long j = 0; j < n; j++)
            b[p * n + j] = rounded(s->tb ? fb[j * k + p] : fb[p * n + j]);
    double *acc = malloc((size_t)n * sizeof *acc), *mag = malloc((size_t)n * sizeof *mag);
    for (long i = 0; i < m; i++) {
        memset(acc, 0, (size_t)n * sizeof *acc);
        memset(mag, 0, (size_t)n * sizeof *mag);
        for (long p = 0; p < k; p++)
            for (long j = 0; j < n; j++) {
                double t = a[i * k + p] * b[p * n + j];
                acc[j] += t;
                mag[j] += fabs(t);
            }
        for (long j = 0; j < n; j++) {
            double c0 = s->beta == 0.0f ? 0.0 : (double)g->C0[i * s->ldc + j];
            g->R[i * s->ldc + j] = s->alpha * acc[j] + s->beta * c0;
            g->S[i * s->ldc + j] = fabs(s->alpha) * mag[j] + fabs(s->beta * c0);
        }
    }
    free(fa);
    free(fb);
    free(a);
    free(b);
    free(acc);
    free(mag);
}

static void gemm_case_free(gemm_case *g)
{
    free(g->A);
    free(g->B);
    free(g->C0);
    free(g->R);
    free(g->S);
}

/* C starts as C0, or all NaN when beta == 0 (which must not read it). */
static void gemm_case_start(const gemm_case *g, float *C)
{
    size_t nc = (size_t)(g->s.m * g->s.ldc);
    memcpy(C, g->C0, nc * sizeof *C);
    if (g->s.beta == 0.0f)
        for (long i = 0; i < g->s.m; i++)
            for (long j = 0; j < g->s.n; j++)
                C[i * g->s.ldc + j] = NAN;
}

/* Every element within fp32 accumulation error of the reference: a k-term
 * sum in any order errs by at most k u times the sum of the terms'
 * magnitudes (gamma_k; bf16 x bf16 products are exact in fp32), and alpha
 * and beta C add two roundings; columns past n untouched. */
static long gemm_case_bad(const gemm_case *g, const float *C, int verbose)
{
    const gemm_shape *s = &g->s;
    long bad = 0;
    for (long i = 0; i < s->m; i++)
        for (long j = 0; j < s->ldc; j++) {
            size_t e = (size_t)(i * s->ldc + j);
            int ok = j >= s->n ? tu_float_bits(C[e]) == tu_float_bits(g->C0[e])
                               : fabs(C[e] - g->R[e]) <= (double)(s->k + 2) * REF_U32 * g->S[e] + 1e-35;
            if (!ok && verbose && bad == 0)
                printf("    ta %d tb %d %ldx%ldx%ld ldc %ld alpha %g beta %g: C[%ld,%ld] = %.9g, "
                       "want %.9g\n",
                       s->ta, s->tb, s->m, s->n, s->k, s->ldc, s->alpha, s->beta, i, j, C[e],
                       j < s->n ? g->R[e] : g->C0[e]);
            bad += !ok;
        }
    return bad;
}

static int gemm_check(tu_rng *r, gemm_shape s)
{
    gemm_case g;
    gemm_case_make(&g, &s, r);
    float *C = malloc((size_t)(s.m * s.ldc) * sizeof *C);
    gemm_case_start(&g, C);
    muon_status st = muon__gemm_bf16(s.ta, s.tb, s.m, s.n, s.k, s.alpha, g.A, g.B, s.beta, C, s.ldc);
    int ok = st == MUON_OK && gemm_case_bad(&g, C, 1) == 0;
    free(C);
    gemm_case_free(&g);
    return ok;
}

/* Under MUON_BF16=emulate (bf16_fallback_runs_the_gemm_tests) the fp32
 * fallback must be what runs. */
static int path_as_requested(void)
{
    const char *e = getenv("MUON_BF16");
    int native = muon__bf16_native();
    printf("    bf16 products: %s\n", native ? "native kernel" : "fp32 fallback");
    return !(e && strcmp(e, "emulate") == 0 && native);
}

TEST(bf16_gemm_shapes_against_double)
{
    ASSERT(path_as_requested());
    tu_rng r;
    tu_seed(&r, mt_seed);
    for (int t = 0; t < 4; t++) {
        int ta = t >> 1, tb = t & 1;
        const gemm_shape shapes[] = {
            {ta, tb, 37, 53, 29, 53, 1.0f, 0.0f},
            {ta, tb, 37, 53, 29, 60, -0.75f, 0.5f},
            {ta, tb, 37, 53, 29, 53, 1.0f, 1.0f},
            /* degenerate: a row, a column, a rank one */
            {ta, tb, 1, 53, 29, 53, 2.0f, 1.0f},
            {ta, tb, 37, 1, 29, 3, 2.0f, 0.0f},
            {ta, tb, 37, 53, 1, 53, 0.5f, 0.5f},
            {ta, tb, 128, 96, 160, 96, 0.75f, 0.0f},
            {ta, tb, 128, 96, 160, 100, 0.75f, 1.0f},
            {ta, tb, 128, 96, 160, 96, 0.75f, 0.5f},
        };
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
            ASSERT(gemm_check(&r, shapes[i]));
    }
    /* k = 0: C = beta C, and beta 0 clears even NaN */
    ASSERT(gemm_check(&r, (gemm_shape){0, 0, 5, 7, 0, 9, 1.0f, 0.5f}));
    ASSERT(gemm_check(&r, (gemm_shape){1, 1, 5, 7, 0, 7, 1.0f, 0.0f}));
    /* m = 0 or n = 0: nothing to do, C untouched */
    float c = 42.0f;
    ASSERT_OK(muon__gemm_bf16(0, 0, 0, 1, 3, 1.0f, NULL, NULL, 0.0f, &c, 1));
    ASSERT_OK(muon__gemm_bf16(0, 0, 1, 0, 3, 1.0f, NULL, NULL, 0.0f, &c, 1));
    ASSERT(c == 42.0f);
}

TEST(bf16_gemm_large_on_the_native_blocking)
{
    ASSERT(path_as_requested());
    tu_rng r;
    tu_seed(&r, mt_seed + 1);
    /* each transpose pair with its own alpha, beta and ldc */
    const gemm_shape shapes[] = {
        {0, 0, 256, 384, 512, 384, 1.0f, 0.0f},
        {0, 1, 256, 384, 512, 384, -0.5f, 1.0f},
        {1, 0, 256, 384, 512, 390, 1.5f, 0.5f},
        {1, 1, 256, 384, 512, 400, 1.0f, 0.5f},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        ASSERT(gemm_check(&r, shapes[i]));
}

TEST(bf16_gemm_alpha_is_read_at_every_call)
{
    /* kernels are cached per shape; alpha must not be baked into one */
    ASSERT(path_as_requested());
    tu_rng r;
    tu_seed(&r, mt_seed + 2);
    const float alphas[] = {0.5f, 3.0f, -2.0f, 1.0f, 0.5f};
    for (int i = 0; i < 5; i++) {
        ASSERT(gemm_check(&r, (gemm_shape){0, 1, 96, 80, 112, 80, alphas[i], 0.0f}));
        ASSERT(gemm_check(&r, (gemm_shape){1, 0, 96, 80, 112, 80, alphas[i], 1.0f}));
    }
}

TEST(bf16_gemm_threads_building_and_running_at_once)
{
    /* Shapes used nowhere else, so their kernels are built while the
     * other thread runs one; two jobs per shape with their own data, run
     * by the two threads at once (a kernel's state shared between its
     * callers shows there). Every result against its own reference. Two
     * threads, the pool's usual size: a larger team lets threads exit, and
     * a thread's bf16 scratch is not freed when it exits (LeakSanitizer
     * in make test-sanitize). */
    ASSERT(path_as_requested());
    enum { JOBS = 8, REPS = 30 };
    const gemm_shape shapes[4] = {
        {0, 1, 96, 168, 136, 168, 1.0f, 0.0f},
        {1, 0, 168, 96, 72, 100, 0.5f, 1.0f},
        {0, 0, 136, 136, 136, 136, -1.0f, 0.5f},
        {1, 1, 72, 200, 104, 200, 1.0f, 1.0f},
    };
    tu_rng r;
    tu_seed(&r, mt_seed + 3);
    gemm_case g[JOBS];
    float *C[JOBS];
    for (int j = 0; j < JOBS; j++) {
        /* static schedule: jobs 2i and 2i+1 run together, on one shape */
        gemm_case_make(&g[j], &shapes[j / 2], &r);
        C[j] = malloc((size_t)(g[j].s.m * g[j].s.ldc) * sizeof(float));
    }
    long bad = 0, failed = 0;
    for (int rep = 0; rep < REPS; rep++) {
#pragma omp parallel for num_threads(2) schedule(static, 1) reduction(+ : failed)
        for (int j = 0; j < JOBS; j++) {
            const gemm_shape *s = &g[j].s;
            gemm_case_start(&g[j], C[j]);
            failed += muon__gemm_bf16(s->ta, s->tb, s->m, s->n, s->k, s->alpha, g[j].A, g[j].B,
                                      s->beta, C[j], s->ldc) != MUON_OK;
        }
        for (int j = 0; j < JOBS; j++)
            bad += gemm_case_bad(&g[j], C[j], bad == 0);
    }
    for (int j = 0; j < JOBS; j++) {
        gemm_case_free(&g[j]);
        free(C[j]);
    }
    ASSERT_EQ_INT(failed, 0);
    ASSERT_EQ_INT(bad, 0);
}

TEST(bf16_env_is_read_once)
{
    /* the first use fixed the path; the environment changing later does
     * not move it */
    int native = muon__bf16_native();
    const char *old = getenv("MUON_BF16");
    char keep[64] = "";
    if (old)
        snprintf(keep, sizeof keep, "%s", old);
    setenv("MUON_BF16", native ? "emulate" : "native", 1);
    int after = muon__bf16_native();
    if (old)
        setenv("MUON_BF16", keep, 1);
    else
        unsetenv("MUON_BF16");
    ASSERT_EQ_INT(after, native);
}

TEST(bf16_fallback_runs_the_gemm_tests)
{
    /* The fp32 fallback (machines without AMX or AVX512-BF16) runs here
     * only when forced: the GEMM cases again in a child runner that has
     * MUON_BF16=emulate from its start. */
    const char *e = getenv("MUON_BF16");
    if (e && strcmp(e, "emulate") == 0)
        SKIP("already the emulated run");
    if (!muon__bf16_native())
        SKIP("the fallback is this machine's only path; the other cases ran it");
    char cmd[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "MUON_BF16=emulate '%s/test_runner' bf16_gemm_shapes bf16_gemm_large "
             "bf16_gemm_alpha bf16_linear_mixed",
             tu_build_dir());
    int rc = tu_run(cmd, &out);
    int passed = -1, failed = -1;
    const char *last = out ? strstr(out, " passed, ") : NULL;
    while (last && last > out && last[-1] >= '0' && last[-1] <= '9')
        last--;
    if (last)
        sscanf(last, "%d passed, %d failed", &passed, &failed);
    if (rc != 0 || failed != 0 || passed != 4)
        printf("    %s\n%s", cmd, out ? out : "");
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(failed, 0);
    ASSERT_EQ_INT(passed, 4); /* three GEMM cases and the linear layer */
}

/* ---- the mixed linear layer ---- */

/* rows x cols of a float matrix, reference-rounded, into double; stored
 * transposed (cols x rows) when t. */
static double *rounded_matrix(const float *x, long rows, long cols, int t)
{
    double *d = malloc((size_t)(rows * cols) * sizeof *d);
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++)
            d[t ? j * rows + i : i * cols + j] = rounded(x[i * cols + j]);
    return d;
}

/* got (rows x cols) = add + A Bt^T in double, A rows x inner and Bt cols x
 * inner; within gamma_(inner + 1) of the terms' magnitudes. */
static int linear_ref_check(const float *got, const double *A, const double *Bt, long rows,
                            long cols, long inner, const float *add, const char *what)
{
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++) {
            double acc = add ? add[i * cols + j] : 0.0, mag = fabs(acc);
            for (long p = 0; p < inner; p++) {
                acc += A[i * inner + p] * Bt[j * inner + p];
                mag += fabs(A[i * inner + p] * Bt[j * inner + p]);
            }
            if (!(fabs(got[i * cols + j] - acc) <= (double)(inner + 1) * REF_U32 * mag + 1e-30)) {
                printf("    %s[%ld,%ld] = %.9g, want %.9g\n", what, i, j, got[i * cols + j], acc);
                return 0;
            }
        }
    return 1;
}

TEST(bf16_linear_mixed_forward_and_backward)
{
    ASSERT(path_as_requested());
    tu_rng r;
    tu_seed(&r, mt_seed + 4);
    const int sizes[2][3] = {{37, 48, 80}, {128, 192, 256}}; /* N, in, out */
    for (int c = 0; c < 2; c++) {
        int N = sizes[c][0], in = sizes[c][1], out = sizes[c][2];
        size_t nx = (size_t)N * in, ny = (size_t)N * out, nw = (size_t)out * in;
        float *x = malloc(nx * sizeof *x), *W = malloc(nw * sizeof *W), *y = malloc(ny * sizeof *y);
        float *y0 = malloc(ny * sizeof *y0), *dy = malloc(ny * sizeof *dy);
        float *dx = malloc(nx * sizeof *dx), *dW = malloc(nw * sizeof *dW);
        float *dW0 = malloc(nw * sizeof *dW0), *dW1 = malloc(nw * sizeof *dW1);
        tu_fill_normal(&r, x, nx, 1.0);
        tu_fill_normal(&r, W, nw, 0.1);
        tu_fill_normal(&r, y0, ny, 1.0);
        tu_fill_normal(&r, dy, ny, 0.01);
        tu_fill_normal(&r, dW0, nw, 0.01);
        double *X = rounded_matrix(x, N, in, 0), *Xt = rounded_matrix(x, N, in, 1);
        double *Wd = rounded_matrix(W, out, in, 0), *Wt = rounded_matrix(W, out, in, 1);
        double *D = rounded_matrix(dy, N, out, 0), *Dt = rounded_matrix(dy, N, out, 1);
        nn_mixed_scratch s;
        nn_mixed_sizes((size_t)N, (size_t)in, (size_t)out, nw, &s.na, &s.nb, &s.nw);
        s.a = malloc(s.na * sizeof *s.a);
        s.b = malloc(s.nb * sizeof *s.b);
        s.w = malloc(s.nw * sizeof *s.w);
        /* y = x W^T over a NaN-filled y; then y0 + x W^T */
        for (size_t i = 0; i < ny; i++)
            y[i] = NAN;
        ASSERT_OK(nn_linear_forward_mixed(&s, y, x, W, N, in, out, 0));
        ASSERT(linear_ref_check(y, X, Wd, N, out, in, NULL, "y"));
        memcpy(y, y0, ny * sizeof *y);
        ASSERT_OK(nn_linear_forward_mixed(&s, y, x, W, N, in, out, 1));
        ASSERT(linear_ref_check(y, X, Wd, N, out, in, y0, "y+"));
        /* dW = dW0 + dy^T x accumulates, dx = dy W is overwritten */
        memcpy(dW, dW0, nw * sizeof *dW);
        for (size_t i = 0; i < nx; i++)
            dx[i] = NAN;
        ASSERT_OK(nn_linear_backward_mixed(&s, dx, dW, dy, x, W, N, in, out));
        ASSERT(linear_ref_check(dW, Dt, Xt, out, in, N, dW0, "dW"));
        ASSERT(linear_ref_check(dx, D, Wt, N, in, out, NULL, "dx"));
        /* no dx wanted: the same dW */
        memcpy(dW1, dW0, nw * sizeof *dW1);
        ASSERT_OK(nn_linear_backward_mixed(&s, NULL, dW1, dy, x, W, N, in, out));
        ASSERT(memcmp(dW1, dW, nw * sizeof *dW) == 0);
        /* scratch one element short: refused before anything is written */
        memcpy(y, y0, ny * sizeof *y);
        memcpy(dW1, dW0, nw * sizeof *dW1);
        nn_mixed_scratch t = s;
        t.na--;
        ASSERT_STATUS(nn_linear_forward_mixed(&t, y, x, W, N, in, out, 0), MUON_ERR_SIZE);
        ASSERT_STATUS(nn_linear_backward_mixed(&t, dx, dW1, dy, x, W, N, in, out), MUON_ERR_SIZE);
        t = s;
        t.nb--;
        ASSERT_STATUS(nn_linear_backward_mixed(&t, dx, dW1, dy, x, W, N, in, out), MUON_ERR_SIZE);
        t = s;
        t.nw--;
        ASSERT_STATUS(nn_linear_forward_mixed(&t, y, x, W, N, in, out, 0), MUON_ERR_SIZE);
        ASSERT(memcmp(y, y0, ny * sizeof *y) == 0 && memcmp(dW1, dW0, nw * sizeof *dW1) == 0);
        float *fl[] = {x, W, y, y0, dy, dx, dW, dW0, dW1};
        double *dl[] = {X, Xt, Wd, Wt, D, Dt};
        for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
            free(fl[i]);
        for (size_t i = 0; i < sizeof dl / sizeof dl[0]; i++)
            free(dl[i]);
        free(s.a);
        free(s.b);
        free(s.w);
    }
}

/* ---- orthogonalization ---- */

static double rel_frob_d(const float *a, const double *b, size_t n)
{
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += b[i] * b[i];
    }
    return sqrt(d / s);
}

/* Largest |s_i - 1| from the test's own double SVD. */
static double sv_error(const float *x, long rows, long cols)
{
    long k = rows < cols ? rows : cols;
    double *s = malloc((size_t)k * sizeof *s), e = INFINITY;
    if (tu_singular_values(x, rows, cols, s) == 0) {
        e = 0;
        for (long i = 0; i < k; i++)
            e = fabs(s[i] - 1) > e ? fabs(s[i] - 1) : e;
    }
    free(s);
    return e;
}

typedef struct {
    double err32, err16, rel;   /* ortho errors; mixed against fp32 */
    double dist32, dist16;      /* against the exact polar factor */
    double model32, model16;    /* max |o - exact NS| over the rounding model's tolerance */
} mixed_result;

/* fp32 and mixed on one input; 0 when either call fails. */
static int mixed_vs_fp32(muon_ortho_config c, const float *g, long rows, long cols,
                         const double *polar, mixed_result *res)
{
    size_t n = (size_t)(rows * cols);
    float *o32 = malloc(n * sizeof *o32), *o16 = malloc(n * sizeof *o16);
    c.precision = MUON_PRECISION_FP32;
    int ok = muon_orthogonalize(&c, g, o32, rows, cols, NULL, 0) == MUON_OK;
    c.precision = MUON_PRECISION_MIXED;
    ok = ok && muon_orthogonalize(&c, g, o16, rows, cols, NULL, 0) == MUON_OK;
    if (ok) {
        res->err32 = sv_error(o32, rows, cols);
        res->err16 = sv_error(o16, rows, cols);
        res->rel = tu_rel_frob(o16, o32, n);
        res->dist32 = polar ? rel_frob_d(o32, polar, n) : 0;
        res->dist16 = polar ? rel_frob_d(o16, polar, n) : 0;
        /* tests/ref_ortho.h: fp32, and bf16 operands in the bf16 steps */
        double *ref = malloc(n * sizeof *ref);
        ref_ortho(&c, 0, g, rows, cols, NULL, ref);
        c.precision = MUON_PRECISION_FP32;
        res->model32 = tu_max_abs_diff_fd(o32, ref, n) / ref_ortho_tol(&c, g, rows, cols, ref);
        c.precision = MUON_PRECISION_MIXED;
        res->model16 = tu_max_abs_diff_fd(o16, ref, n) / ref_ortho_tol(&c, g, rows, cols, ref);
        free(ref);
    }
    free(o32);
    free(o16);
    return ok;
}

/* Runs body on one BLAS thread: on two cores the OpenMP threads of the
 * bf16 kernels and OpenBLAS's own spin against each other between products
 * (tens of ms per small call under load); the threaded kernels are covered
 * by the GEMM and model cases. */
static void on_one_thread(void (*body)(void))
{
    int old = muon_get_blas_threads();
    muon_set_blas_threads(1);
    body();
    muon_set_blas_threads(old);
}

/* Inputs of known condition the configured steps can orthogonalize: mixed
 * must land as close to the exact polar factor U V^T as fp32, within bf16's
 * rounding (2^-9 relative) carried through the steps. */
static void against_exact_polar(void)
{
    static const struct {
        long rows, cols;
        double cond;
        int method, coeffs, taylor_k, steps, aol;
    } cases[] = {
        {96, 160, 20, MUON_ORTHO_AUTO, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        {160, 96, 20, MUON_ORTHO_AUTO, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        {128, 128, 20, MUON_ORTHO_AUTO, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        {96, 160, 20, MUON_ORTHO_GRAM_NS, MUON_COEFFS_POLAR_EXPRESS, 0, 6, 0},
        {96, 160, 3, MUON_ORTHO_NS, MUON_COEFFS_TAYLOR, 3, 10, 0},
        {160, 96, 20, MUON_ORTHO_NS, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long rows = cases[i].rows, cols = cases[i].cols;
        size_t n = (size_t)(rows * cols);
        tu_rng r;
        tu_seed(&r, mt_seed + i);
        float *g = malloc(n * sizeof *g);
        double *polar = malloc(n * sizeof *polar);
        tu_matrix_with_cond(&r, g, rows, cols, cases[i].cond);
        ASSERT(tu_polar_ref(g, rows, cols, polar) == 0);
        muon_ortho_config c = muon_ortho_config_default();
        c.method = (muon_ortho_method)cases[i].method;
        c.coeffs = (muon_coeffs)cases[i].coeffs;
        c.taylor_k = cases[i].taylor_k;
        c.steps = cases[i].steps;
        c.aol = cases[i].aol;
        mixed_result m;
        ASSERT(mixed_vs_fp32(c, g, rows, cols, polar, &m));
        printf("    %ldx%ld cond %g case %zu: err fp32 %.4f mixed %.4f; to polar fp32 %.4f "
               "mixed %.4f; apart %.4f\n",
               rows, cols, cases[i].cond, i, m.err32, m.err16, m.dist32, m.dist16, m.rel);
        ASSERT_LE(m.err16, m.err32 + 0.01);
        ASSERT_LE(m.dist16, m.dist32 + 0.01);
        ASSERT(m.rel > 0); /* bf16 steps did run */
        ASSERT_LE(m.model32, 1.0);
        ASSERT_LE(m.model16, 1.0);
        free(g);
        free(polar);
    }
}

TEST(ortho_mixed_against_exact_polar)
{
    on_one_thread(against_exact_polar);
}

/* 3..7 steps leave 1..5 bf16 steps: the buffers' parity changes with each,
 * for NS and Gram NS (with a restart inside and one after the bf16 steps),
 * wide and tall. */
static void every_step_count(void)
{
    int count = 0;
    double worst_err = -1, worst_rel = 0;
    for (int method = MUON_ORTHO_NS; method <= MUON_ORTHO_GRAM_NS; method++)
        for (int tall = 0; tall < 2; tall++)
            for (int steps = 3; steps <= 7; steps++) {
                long rows = tall ? 112 : 64, cols = tall ? 64 : 112;
                size_t n = (size_t)(rows * cols);
                tu_rng r;
                tu_seed(&r, mt_seed + (uint64_t)steps);
                float *g = malloc(n * sizeof *g);
                tu_fill_normal(&r, g, n, 1.0);
                muon_ortho_config c = muon_ortho_config_default();
                c.method = (muon_ortho_method)method;
                c.steps = steps;
                c.gram_restarts = (1u << 1) | (1u << (steps - 1));
                mixed_result m;
                ASSERT(mixed_vs_fp32(c, g, rows, cols, NULL, &m));
                if (!(m.err16 <= m.err32 + 0.02 && m.rel > 0 && m.model16 <= 1.0))
                    printf("    %s %ldx%ld %d steps: err fp32 %.4f mixed %.4f, apart %.4f, "
                           "model %.3g\n",
                           muon_ortho_method_name(c.method), rows, cols, steps, m.err32,
                           m.err16, m.rel, m.model16);
                ASSERT_LE(m.err16, m.err32 + 0.02);
                ASSERT(m.rel > 0);
                ASSERT_LE(m.model16, 1.0);
                worst_err = m.err16 - m.err32 > worst_err ? m.err16 - m.err32 : worst_err;
                worst_rel = m.rel > worst_rel ? m.rel : worst_rel;
                free(g);
                count++;
            }
    printf("    largest err mixed - fp32 %.4f, largest relative distance %.4f\n", worst_err,
           worst_rel);
    ASSERT_EQ_INT(count, 20);
}

TEST(ortho_mixed_every_step_count_and_method)
{
    on_one_thread(every_step_count);
}

TEST(ortho_mixed_two_steps_or_fewer_is_fp32)
{
    /* no step is left for bf16: the very same output, flops and workspace */
    for (int steps = 1; steps <= 2; steps++)
        for (int method = MUON_ORTHO_AUTO; method <= MUON_ORTHO_GRAM_NS; method++)
            for (int shape = 0; shape < 3; shape++) {
                long rows = shape == 0 ? 40 : shape == 1 ? 72 : 48;
                long cols = shape == 0 ? 72 : shape == 1 ? 40 : 48;
                size_t n = (size_t)(rows * cols);
                tu_rng r;
                tu_seed(&r, mt_seed + (uint64_t)shape);
                float *g = malloc(n * sizeof *g), *a = malloc(n * sizeof *a);
                float *b = malloc(n * sizeof *b);
                tu_fill_normal(&r, g, n, 1.0);
                muon_ortho_config c = muon_ortho_config_default();
                c.method = (muon_ortho_method)method;
                c.steps = steps;
                c.aol = shape == 2;
                size_t w32, w16;
                ASSERT_OK(muon_ortho_workspace_size(&c, rows, cols, &w32));
                double f32 = muon_ortho_flops(&c, rows, cols);
                ASSERT_OK(muon_orthogonalize(&c, g, a, rows, cols, NULL, 0));
                c.precision = MUON_PRECISION_MIXED;
                ASSERT_OK(muon_ortho_workspace_size(&c, rows, cols, &w16));
                ASSERT_OK(muon_orthogonalize(&c, g, b, rows, cols, NULL, 0));
                ASSERT(memcmp(a, b, n * sizeof *a) == 0);
                ASSERT_EQ_INT(w16, w32);
                ASSERT(muon_ortho_flops(&c, rows, cols) == f32 && f32 > 0);
                free(g);
                free(a);
                free(b);
            }
}

static void workspace_aliasing_and_refusals(void)
{
    enum { ROWS = 72, COLS = 120 };
    const size_t n = ROWS * COLS;
    tu_rng r;
    tu_seed(&r, mt_seed);
    float *g = malloc(n * sizeof *g), *want = malloc(n * sizeof *want), *o = malloc(n * sizeof *o);
    tu_fill_normal(&r, g, n, 1.0);
    for (int method = MUON_ORTHO_NS; method <= MUON_ORTHO_GRAM_NS; method++) {
        muon_ortho_config c = muon_ortho_config_default(), f;
        c.method = (muon_ortho_method)method;
        c.precision = MUON_PRECISION_MIXED;
        f = c;
        f.precision = MUON_PRECISION_FP32;
        ASSERT_OK(muon_orthogonalize(&c, g, want, ROWS, COLS, NULL, 0));
        /* a caller's workspace full of NaN from earlier use: same output */
        size_t need, need32;
        ASSERT_OK(muon_ortho_workspace_size(&c, ROWS, COLS, &need));
        ASSERT_OK(muon_ortho_workspace_size(&f, ROWS, COLS, &need32));
        unsigned char *work = malloc(need);
        memset(work, 0xff, need);
        ASSERT_OK(muon_orthogonalize(&c, g, o, ROWS, COLS, work, need));
        ASSERT(memcmp(o, want, n * sizeof *o) == 0);
        /* one byte short, or sized for fp32: refused, out untouched */
        memcpy(o, g, n * sizeof *o);
        ASSERT(need32 < need);
        ASSERT_STATUS(muon_orthogonalize(&c, g, o, ROWS, COLS, work, need - 1), MUON_ERR_WORKSPACE);
        ASSERT_STATUS(muon_orthogonalize(&c, g, o, ROWS, COLS, work, need32), MUON_ERR_WORKSPACE);
        ASSERT(memcmp(o, g, n * sizeof *o) == 0);
        /* in place */
        ASSERT_OK(muon_orthogonalize(&c, o, o, ROWS, COLS, work, need));
        ASSERT(memcmp(o, want, n * sizeof *o) == 0);
        /* non-finite input: refused, out untouched */
        memcpy(o, g, n * sizeof *o);
        o[n / 2] = INFINITY;
        float *keep = malloc(n * sizeof *keep);
        memcpy(keep, want, n * sizeof *keep);
        ASSERT_STATUS(muon_orthogonalize(&c, o, keep, ROWS, COLS, work, need), MUON_ERR_NONFINITE);
        ASSERT(memcmp(keep, want, n * sizeof *keep) == 0);
        free(keep);
        free(work);
        ASSERT(muon_ortho_flops(&c, ROWS, COLS) > 0);
    }
    /* svd has no steps for bf16: every entry point says so */
    muon_ortho_config s = muon_ortho_config_default();
    s.method = MUON_ORTHO_SVD;
    s.precision = MUON_PRECISION_MIXED;
    size_t bytes = 0;
    memcpy(o, g, n * sizeof *o);
    ASSERT_STATUS(muon_ortho_config_validate(&s), MUON_ERR_UNSUPPORTED);
    ASSERT_STATUS(muon_ortho_workspace_size(&s, ROWS, COLS, &bytes), MUON_ERR_UNSUPPORTED);
    ASSERT_STATUS(muon_orthogonalize(&s, g, o, ROWS, COLS, NULL, 0), MUON_ERR_UNSUPPORTED);
    ASSERT(memcmp(o, g, n * sizeof *o) == 0);
    ASSERT(muon_ortho_flops(&s, ROWS, COLS) == 0.0);
    /* names: both ways, and nothing else */
    muon_precision p = MUON_PRECISION_MIXED;
    ASSERT_OK(muon_precision_parse("fp32", &p));
    ASSERT_EQ_INT(p, MUON_PRECISION_FP32);
    ASSERT_STATUS(muon_precision_parse("Mixed", &p), MUON_ERR_ARG);
    ASSERT_STATUS(muon_precision_parse("", &p), MUON_ERR_ARG);
    ASSERT_EQ_INT(p, MUON_PRECISION_FP32);
    for (int i = 0; i < MUON_PRECISION_COUNT; i++) {
        ASSERT_OK(muon_precision_parse(muon_precision_name((muon_precision)i), &p));
        ASSERT_EQ_INT(p, i);
    }
    free(g);
    free(want);
    free(o);
}

TEST(ortho_mixed_workspace_aliasing_and_refusals)
{
    on_one_thread(workspace_aliasing_and_refusals);
}

/* ---- the model ---- */

TEST(gpt_mixed_close_to_fp32_deterministic_and_reversible)
{
    gpt_config c = gpt_config_default();
    c.dim = 48;
    c.layers = 2;
    c.heads = 3;
    c.context = 24;
    enum { B = 2, T = 24 };
    gpt_model *m = NULL;
    ASSERT_OK(gpt_create(&c, B, &m));
    ASSERT_EQ_INT(gpt_get_precision(m), MUON_PRECISION_FP32); /* the default */
    gpt_init_params(m, 5);
    tu_rng r;
    tu_seed(&r, mt_seed + 7);
    size_t np = gpt_num_params(m);
    float *p = gpt_params(m);
    for (size_t i = 0; i < np; i++) /* no zero tensor: every gradient nonzero */
        p[i] += (float)(0.02 * tu_normal(&r));
    int32_t tok[B * T], tgt[B * T];
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(tu_uniform(&r) * c.vocab);
        tgt[i] = (int32_t)(tu_uniform(&r) * c.vocab);
    }
    /* passes: fp32, mixed, mixed again, fp32 again */
    static const muon_precision order[4] = {MUON_PRECISION_FP32, MUON_PRECISION_MIXED,
                                            MUON_PRECISION_MIXED, MUON_PRECISION_FP32};
    float loss[4];
    float *g[4];
    for (int k = 0; k < 4; k++) {
        ASSERT_OK(gpt_set_precision(m, order[k]));
        ASSERT_EQ_INT(gpt_get_precision(m), order[k]);
        gpt_zero_grad(m);
        loss[k] = gpt_forward(m, tok, tgt, B, T);
        ASSERT_OK(gpt_backward(m));
        g[k] = malloc(np * sizeof *g[k]);
        memcpy(g[k], gpt_grads(m), np * sizeof *g[k]);
    }
    ASSERT(isfinite(loss[0]) && isfinite(loss[1]));
    /* switching back restores fp32 exactly; mixed repeats itself */
    ASSERT(tu_float_bits(loss[3]) == tu_float_bits(loss[0]) && memcmp(g[3], g[0], np * sizeof *g[0]) == 0);
    ASSERT(tu_float_bits(loss[2]) == tu_float_bits(loss[1]) && memcmp(g[2], g[1], np * sizeof *g[1]) == 0);
    /* close: rounding both operands of a product to bf16 moves each term
     * by at most 2 u16 of its size, and a gradient passes through at most
     * `depth` products (forward and backward through every block: qkv,
     * scores, values, projection, two MLP products, norms, then the head and
     * the loss), so a tensor's gradients move by at most 2 u16 depth
     * relative (first order, against the tensor's largest gradient) */
    const double depth = 2.0 * (9 * c.layers + 3), rel = 2.0 * REF_U16 * depth;
    ASSERT(loss[1] != loss[0]);
    ASSERT_NEAR(loss[1], loss[0], rel * loss[0]);
    double worst = 0;
    const char *worst_name = "";
    for (int t = 0; t < gpt_num_tensors(m); t++) {
        const gpt_tensor *tt = gpt_tensor_at(m, t);
        double gmax = 0;
        for (size_t i = 0; i < tt->numel; i++)
            gmax = fmax(gmax, fabs(g[0][tt->offset + i]));
        double d = tu_max_abs_diff_ff(g[1] + tt->offset, g[0] + tt->offset, tt->numel) / gmax;
        if (!(d <= worst)) {
            worst = d;
            worst_name = tt->name;
        }
    }
    printf("    loss fp32 %.6f mixed %.6f; largest gradient difference %.4f of the tensor's "
           "largest (%s; bound %.3f)\n",
           loss[0], loss[1], worst, worst_name, rel);
    ASSERT(worst > 0);
    ASSERT_LE(worst, rel);
    /* a smaller batch than the capacity */
    float l1[2];
    for (int k = 0; k < 2; k++) {
        ASSERT_OK(gpt_set_precision(m, k ? MUON_PRECISION_MIXED : MUON_PRECISION_FP32));
        l1[k] = gpt_forward(m, tok + T, tgt + T, 1, T);
    }
    ASSERT(isfinite(l1[1]));
    ASSERT_NEAR(l1[1], l1[0], rel * l1[0]);
    ASSERT_STATUS(gpt_set_precision(m, MUON_PRECISION_COUNT), MUON_ERR_ARG);
    ASSERT_STATUS(gpt_set_precision(NULL, MUON_PRECISION_MIXED), MUON_ERR_NULL);
    for (int k = 0; k < 4; k++)
        free(g[k]);
    gpt_free(m);
}

/* ---- the train configuration ---- */

/* The default configuration's JSON with its "precision" value replaced by
 * the raw JSON text v (NULL: the key removed). */
static char *config_with_precision(const char *v)
{
    train_config c = train_config_default();
    c.ortho.precision = MUON_PRECISION_FP32;
    char *json = train_config_to_json(&c);
    char *k = json ? strstr(json, ",\"precision\":\"fp32\"") : NULL;
    if (!k)
        return NULL;
    size_t len = strlen(json), klen = strlen(",\"precision\":\"fp32\"");
    char *out = malloc(len + 64);
    snprintf(out, len + 64, "%.*s%s%s%s", (int)(k - json), json, v ? ",\"precision\":" : "",
             v ? v : "", k + klen);
    free(json);
    return out;
}

TEST(train_config_precision_values)
{
    static const struct {
        const char *value; /* raw JSON; NULL: absent */
        int ok;
        muon_precision want;
    } cases[] = {
        {NULL, 1, MUON_PRECISION_FP32},       {"\"fp32\"", 1, MUON_PRECISION_FP32},
        {"\"mixed\"", 1, MUON_PRECISION_MIXED}, {"\"MIXED\"", 0, 0},
        {"\"auto\"", 1, MUON_PRECISION_AUTO},
        {"\"bf16\"", 0, 0},                   {"\"\"", 0, 0},
        {"1", 0, 0},                          {"null", 0, 0},
        {"[\"mixed\"]", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *json = config_with_precision(cases[i].value);
        ASSERT(json != NULL);
        ASSERT(cases[i].value || !strstr(json, "precision"));
        train_config got;
        char err[256] = "";
        got.ortho.precision = MUON_PRECISION_COUNT;
        int rc = train_config_from_json(json, strlen(json), &got, err, sizeof err);
        if ((rc == 0) != cases[i].ok)
            printf("    precision %s: rc %d, '%s'\n", cases[i].value ? cases[i].value : "(absent)",
                   rc, err);
        free(json);
        ASSERT_EQ_INT(rc == 0, cases[i].ok);
        if (cases[i].ok)
            ASSERT_EQ_INT(got.ortho.precision, cases[i].want);
        else
            ASSERT(strstr(err, "'precision'") != NULL);
    }
    /* and the writer's own output reads back as it was */
    train_config c = train_config_default(), back;
    c.ortho.precision = MUON_PRECISION_MIXED;
    c.ortho.method = MUON_ORTHO_GRAM_NS;
    char *json = train_config_to_json(&c), err[256];
    ASSERT(json != NULL);
    ASSERT_EQ_INT(train_config_from_json(json, strlen(json), &back, err, sizeof err), 0);
    free(json);
    ASSERT_EQ_INT(back.ortho.precision, MUON_PRECISION_MIXED);
    ASSERT_EQ_INT(back.ortho.method, MUON_ORTHO_GRAM_NS);
}
