/* The backend context (src/backend/): its table is filled consistently
 * with the machine it describes, the fast backend agrees with the
 * reference within tolerances derived from float32's epsilon, and a host
 * program's process-wide settings (OpenMP's and OpenBLAS's thread counts,
 * the environment) are as it left them after the library's calls. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "harness.h"
#include "ref_ortho.h"
#include "testutil.h"

TEST(backend_kind_names_round_trip)
{
    for (int k = 0; k < MUON_BACKEND_KIND_COUNT; k++) {
        muon_backend_kind got = MUON_BACKEND_KIND_COUNT;
        ASSERT_OK(muon_backend_kind_parse(muon_backend_kind_name((muon_backend_kind)k), &got));
        ASSERT_EQ_INT(got, k);
    }
    muon_backend_kind keep = MUON_BACKEND_CPU_REF;
    ASSERT_STATUS(muon_backend_kind_parse("cuda", &keep), MUON_ERR_ARG);
    ASSERT_STATUS(muon_backend_kind_parse(NULL, &keep), MUON_ERR_ARG);
    ASSERT_EQ_INT(keep, MUON_BACKEND_CPU_REF);
    ASSERT(strcmp(muon_backend_kind_name(MUON_BACKEND_KIND_COUNT), "unknown") == 0);
    for (int p = 0; p < MUON_PRODUCT_COUNT; p++)
        ASSERT(strcmp(muon_product_name((muon_product)p), "unknown") != 0);
    for (int k = 0; k < MUON_KERNEL_COUNT; k++)
        ASSERT(strcmp(muon_kernel_name((muon_kernel)k), "unknown") != 0);
    muon_backend *be = NULL;
    ASSERT_STATUS(muon_backend_create(MUON_BACKEND_KIND_COUNT, 1, &be), MUON_ERR_ARG);
    ASSERT_STATUS(muon_backend_create(MUON_BACKEND_CPU, 1, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(muon_backend_info_get(NULL, NULL), MUON_ERR_NULL);
}

TEST(backend_table_filled_consistently)
{
    for (int k = 0; k < MUON_BACKEND_KIND_COUNT; k++) {
        muon_backend *be = NULL;
        ASSERT_OK(muon_backend_create((muon_backend_kind)k, 3, &be));
        muon_backend_info in;
        memset(&in, 0xff, sizeof in);
        muon_status s = muon_backend_info_get(be, &in);
        muon_backend_free(be);
        ASSERT_OK(s);
        ASSERT_EQ_INT(in.kind, k);
        ASSERT_EQ_INT(in.threads, 3);
        for (int p = 0; p < MUON_PRODUCT_COUNT; p++)
            ASSERT(in.kernel[p] >= 0 && in.kernel[p] < MUON_KERNEL_COUNT);
        /* only bf16 products may be widened, and they always run somewhere */
        for (int p = 0; p < MUON_PRODUCT_GEMM_BF16; p++)
            ASSERT(in.kernel[p] != MUON_KERNEL_BF16_WIDENED);
        ASSERT(in.kernel[MUON_PRODUCT_GEMM_BF16] != MUON_KERNEL_OPENBLAS);
        /* oneDNN has no SYRK */
        ASSERT_EQ_INT(in.kernel[MUON_PRODUCT_SYRK], MUON_KERNEL_OPENBLAS);
        ASSERT(in.wgrad_min_rows > 0 && in.syrk_panel_min > 0 && in.rows_per_thread > 0);
        ASSERT(in.one_thread_flops > 0 && in.bf16_one_thread_flops > 0);
        ASSERT(in.syrk_panels >= 0 && in.syrk_panels <= 64);
        ASSERT(in.split == 0 || in.split_panels_per_thread > 0);
        /* the machine */
        ASSERT(in.cores >= 1);
        ASSERT(!in.avx512 || in.avx2);
        ASSERT(!in.avx512_bf16 || in.avx512);
        ASSERT(in.openblas_core && in.openblas_core[0]);
        ASSERT(in.onednn_isa && in.onednn_isa[0]);
        ASSERT(!in.openblas_avx512 || in.avx512);
        if (k == MUON_BACKEND_CPU_REF) {
            for (int p = 0; p < MUON_PRODUCT_GEMM_BF16; p++)
                ASSERT_EQ_INT(in.kernel[p], MUON_KERNEL_OPENBLAS);
            ASSERT_EQ_INT(in.kernel[MUON_PRODUCT_GEMM_BF16], MUON_KERNEL_BF16_WIDENED);
            ASSERT_EQ_INT(in.syrk_panels, 0);
            ASSERT_EQ_INT(in.split, 0);
        } else {
            ASSERT_EQ_INT(in.kernel[MUON_PRODUCT_GEMM], MUON_KERNEL_ONEDNN);
            ASSERT_EQ_INT(in.kernel[MUON_PRODUCT_GEMM_WGRAD],
                          in.openblas_avx512 ? MUON_KERNEL_OPENBLAS : MUON_KERNEL_ONEDNN);
            ASSERT_EQ_INT(in.kernel[MUON_PRODUCT_GEMM_BF16],
                          in.bf16_native ? MUON_KERNEL_ONEDNN : MUON_KERNEL_BF16_WIDENED);
            ASSERT_EQ_INT(in.syrk_panels > 0, !in.openblas_avx512);
        }
    }
    /* the default: the fast kind, on the caller's thread count */
    muon_backend_info d;
    ASSERT_OK(muon_backend_info_get(NULL, &d));
    ASSERT_EQ_INT(d.kind, MUON_BACKEND_CPU);
    ASSERT_EQ_INT(d.threads, 0);
}

/* ---- the host's settings */

typedef struct {
    int omp_threads, omp_dynamic, omp_levels, blas_threads;
    char spin[64], omp_env[64];
} host_settings;

static void env_copy(char *dst, size_t cap, const char *name)
{
    const char *v = getenv(name);
    snprintf(dst, cap, "%s", v ? v : "(unset)");
}

static host_settings read_host(void)
{
    host_settings h;
    memset(&h, 0, sizeof h);
    h.omp_threads = omp_get_max_threads();
    h.omp_dynamic = omp_get_dynamic();
    h.omp_levels = omp_get_max_active_levels();
    h.blas_threads = openblas_get_num_threads();
    env_copy(h.spin, sizeof h.spin, "GOMP_SPINCOUNT");
    env_copy(h.omp_env, sizeof h.omp_env, "OMP_NUM_THREADS");
    return h;
}

static int same_host(const host_settings *a, const host_settings *b, const char *after)
{
    if (a->omp_threads == b->omp_threads && a->omp_dynamic == b->omp_dynamic &&
        a->omp_levels == b->omp_levels && a->blas_threads == b->blas_threads &&
        !strcmp(a->spin, b->spin) && !strcmp(a->omp_env, b->omp_env))
        return 1;
    printf("    after %s: omp threads %d -> %d, dynamic %d -> %d, levels %d -> %d, "
           "OpenBLAS threads %d -> %d, GOMP_SPINCOUNT %s -> %s, OMP_NUM_THREADS %s -> %s\n",
           after, a->omp_threads, b->omp_threads, a->omp_dynamic, b->omp_dynamic, a->omp_levels,
           b->omp_levels, a->blas_threads, b->blas_threads, a->spin, b->spin, a->omp_env,
           b->omp_env);
    return 0;
}

/* Run one call; return its name from the enclosing function when it fails
 * or when the host's settings differ afterwards. */
#define CALL(expr, name)                                                     \
    do {                                                                     \
        if ((expr) != MUON_OK)                                               \
            return name;                                                     \
        now = read_host();                                                   \
        if (!same_host(&before, &now, name))                                 \
            return name;                                                     \
    } while (0)

/* Every entry point that runs products, on shapes that take the split
 * mode, the fixed panels and the optimizer's two phases. Returns the name
 * of the first call after which the settings differ, or NULL. */
static const char *calls_leave_host_alone(tu_rng *r, float *x, float *y, float *z)
{
    const host_settings before = read_host();
    host_settings now;
    muon_ortho_config oc = muon_ortho_config_default();
    CALL(muon_orthogonalize(&oc, x, y, 320, 256, NULL, 0), "muon_orthogonalize");
    oc.precision = MUON_PRECISION_MIXED;
    CALL(muon_orthogonalize(&oc, x, y, 320, 256, NULL, 0), "muon_orthogonalize, mixed");
    muon_backend *be = NULL;
    CALL(muon_backend_create(MUON_BACKEND_CPU, 2, &be), "muon_backend_create");
    muon_status s = muon_orthogonalize_on(be, &oc, x, y, 320, 256, NULL, 0);
    muon_backend_free(be);
    CALL(s, "muon_orthogonalize_on");
    CALL(muon_sgemm(NULL, 1, 0, 640, 256, 64, 1.0f, x, 640, y, 256, 0.0f, z, 256, 2),
         "muon_sgemm");
    muon_bf16 *hb = malloc(320 * 256 * sizeof *hb);
    if (!hb)
        return "malloc";
    muon_to_bf16(hb, x, 320 * 256, 2);
    s = muon_gemm_bf16(NULL, 0, 1, 320, 320, 256, 1.0f, hb, hb, 0.0f, z, 320, 2);
    free(hb);
    CALL(s, "muon_gemm_bf16");

    muon_opt_config cfg = muon_opt_config_default();
    cfg.threads = 2;
    muon_opt *opt = NULL;
    CALL(muon_opt_create(&cfg, &opt), "muon_opt_create");
    long big[2] = {320, 256}, small[2] = {24, 40}, vec[1] = {256};
    float *w = malloc(sizeof(float) * (320 * 256 + 24 * 40 + 256));
    if (!w) {
        muon_opt_free(opt);
        return "malloc";
    }
    tu_fill_normal(r, w, 320 * 256 + 24 * 40 + 256, 0.02);
    s = muon_opt_add_param(opt, "big", w, x, 2, big, MUON_ROLE_MATRIX, NULL);
    if (s == MUON_OK)
        s = muon_opt_add_param(opt, "small", w + 320 * 256, x, 2, small, MUON_ROLE_MATRIX, NULL);
    if (s == MUON_OK)
        s = muon_opt_add_param(opt, "vec", w + 320 * 256 + 24 * 40, x, 1, vec, MUON_ROLE_VECTOR,
                               NULL);
    if (s == MUON_OK)
        s = muon_opt_finalize(opt);
    for (int i = 0; i < 2 && s == MUON_OK; i++)
        s = muon_opt_step(opt, 1.0);
    muon_opt_free(opt);
    free(w);
    CALL(s, "muon_opt_finalize and muon_opt_step");
    return NULL;
}

TEST(backend_host_settings_left_as_they_were)
{
    tu_rng r;
    tu_seed(&r, mt_seed);
    float *x = malloc(sizeof(float) * 640 * 256), *y = malloc(sizeof(float) * 640 * 256);
    float *z = malloc(sizeof(float) * 640 * 320);
    ASSERT(x && y && z);
    tu_fill_normal(&r, x, 640 * 256, 1.0);
    const int old_omp = omp_get_max_threads(), old_blas = openblas_get_num_threads();
    const char *spin = getenv("GOMP_SPINCOUNT");
    char old_spin[64];
    snprintf(old_spin, sizeof old_spin, "%s", spin ? spin : "");
    setenv("GOMP_SPINCOUNT", "4321", 1);
    /* counts that differ from each other and from the calls' own */
    const int settings[][2] = {{3, 1}, {1, 3}, {2, 2}};
    const char *bad = NULL;
    host_settings before, after;
    for (int i = 0; i < 3 && !bad; i++) {
        omp_set_num_threads(settings[i][0]);
        openblas_set_num_threads(settings[i][1]);
        before = read_host();
        bad = calls_leave_host_alone(&r, x, y, z);
        after = read_host();
        if (!bad && !same_host(&before, &after, "the calls"))
            bad = "the calls";
    }
    omp_set_num_threads(old_omp);
    openblas_set_num_threads(old_blas);
    if (spin)
        setenv("GOMP_SPINCOUNT", old_spin, 1);
    else
        unsetenv("GOMP_SPINCOUNT");
    free(x);
    free(y);
    free(z);
    if (bad)
        mt_fail(__FILE__, __LINE__, "settings changed or call failed: %s", bad);
}

/* ---- the fast backend against the reference */

static int run_on(muon_backend_kind kind, int threads, const muon_ortho_config *c,
                  const float *in, float *out, long rows, long cols)
{
    muon_backend *be = NULL;
    if (muon_backend_create(kind, threads, &be) != MUON_OK)
        return 0;
    muon_status s = muon_orthogonalize_on(be, c, in, out, rows, cols, NULL, 0);
    muon_backend_free(be);
    return s == MUON_OK;
}

/* Both backends round every product to float32 and differ in the order of
 * the sums (kernels, panels, splits): each is held to the rounding model's
 * tolerance of the exact result (tests/ref_ortho.h; bf16 operands in the
 * bf16 steps of mixed precision), on 1 and 2 threads. */
TEST(backend_fast_matches_reference_ortho)
{
    static const long shapes[][2] = {{64, 96}, {300, 264}, {256, 640}, {96, 40}};
    static const muon_ortho_method methods[] = {MUON_ORTHO_NS, MUON_ORTHO_GRAM_NS};
    tu_rng r;
    tu_seed(&r, mt_seed);
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        long rows = shapes[si][0], cols = shapes[si][1];
        size_t n = (size_t)rows * (size_t)cols;
        float *x = malloc(n * sizeof *x), *o = malloc(n * sizeof *o);
        double *exact = malloc(n * sizeof *exact);
        ASSERT(x && o && exact);
        tu_matrix_with_cond(&r, x, rows, cols, 100.0);
        /* the exact result does not depend on the method or precision */
        muon_ortho_config c0 = muon_ortho_config_default();
        ref_ortho(&c0, 0, x, rows, cols, NULL, exact);
        for (int mi = 0; mi < 2; mi++)
            for (int prec = 0; prec < MUON_PRECISION_COUNT; prec++) {
                muon_ortho_config c = c0;
                c.method = methods[mi];
                c.precision = (muon_precision)prec;
                double tol = ref_ortho_tol(&c, x, rows, cols, exact);
                for (int kind = 0; kind < MUON_BACKEND_KIND_COUNT; kind++)
                    for (int t = 1; t <= 2; t++) {
                        ASSERT(run_on((muon_backend_kind)kind, t, &c, x, o, rows, cols));
                        double d = tu_max_abs_diff_fd(o, exact, n);
                        if (!(d <= tol))
                            printf("    %ldx%ld %s %s, backend %s, %d threads: %.3g > tol %.3g\n",
                                   rows, cols, muon_ortho_method_name(c.method),
                                   muon_precision_name(c.precision),
                                   muon_backend_kind_name((muon_backend_kind)kind), t, d, tol);
                        ASSERT_LE(d, tol);
                    }
            }
        free(x);
        free(o);
        free(exact);
    }
}

/* muon_sgemm on each backend and thread count against a double-precision
 * product: |C - C_ref| <= K eps (|A| |B|) elementwise (the classic bound
 * on a float32 dot of length K, with eps = 2u). */
TEST(backend_sgemm_within_rounding_bound)
{
    static const long cases[][4] = {/* ta, M, N, K */ {0, 256, 192, 96}, {1, 640, 96, 128},
                                    {0, 40, 96, 640}, {1, 96, 64, 256}};
    tu_rng r;
    tu_seed(&r, mt_seed);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int ta = (int)cases[ci][0];
        long M = cases[ci][1], N = cases[ci][2], K = cases[ci][3];
        size_t na = (size_t)(M * K), nb = (size_t)(K * N), nc = (size_t)(M * N);
        float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
        float *c = malloc(sizeof(float) * nc), *c1 = malloc(sizeof(float) * nc);
        double *ref = malloc(sizeof(double) * nc), *abs_ab = malloc(sizeof(double) * nc);
        ASSERT(a && b && c && c1 && ref && abs_ab);
        tu_fill_normal(&r, a, na, 1.0);
        tu_fill_normal(&r, b, nb, 1.0);
        for (long i = 0; i < M; i++)
            for (long j = 0; j < N; j++) {
                double s = 0, sa = 0;
                for (long k = 0; k < K; k++) {
                    double av = ta ? a[k * M + i] : a[i * K + k], bv = b[k * N + j];
                    s += av * bv;
                    sa += fabs(av * bv);
                }
                ref[i * N + j] = s;
                abs_ab[i * N + j] = sa;
            }
        for (int kind = 0; kind < MUON_BACKEND_KIND_COUNT; kind++)
            for (int t = 1; t <= 2; t++) {
                muon_backend *be = NULL;
                ASSERT_OK(muon_backend_create((muon_backend_kind)kind, t, &be));
                muon_status s = muon_sgemm(be, ta, 0, M, N, K, 1.0f, a, ta ? M : K, b, N, 0.0f,
                                           c, N, t);
                muon_backend_free(be);
                ASSERT_OK(s);
                for (long i = 0; i < M * N; i++)
                    ASSERT_LE(fabs(c[i] - ref[i]), (double)K * FLT_EPSILON * abs_ab[i]);
            }
        for (int t = 1; t <= 2; t++) { /* the default context (NULL) too */
            ASSERT_OK(muon_sgemm(NULL, ta, 0, M, N, K, 1.0f, a, ta ? M : K, b, N, 0.0f, c1, N, t));
            for (long i = 0; i < M * N; i++)
                ASSERT_LE(fabs(c1[i] - ref[i]), (double)K * FLT_EPSILON * abs_ab[i]);
        }
        free(a);
        free(b);
        free(c);
        free(c1);
        free(ref);
        free(abs_ab);
    }
}

/* The optimizer on each backend: two steps agree within twice the
 * orthogonalization's model tolerance (both Nesterov inputs are multiples
 * of G, and the orthogonalization does not see the scale) times lr scale
 * per step, plus the weights' own rounding. */
TEST(backend_opt_step_matches_reference)
{
    enum { R = 300, C = 264 };
    tu_rng r;
    tu_seed(&r, mt_seed);
    float *w0 = malloc(sizeof(float) * R * C), *g = malloc(sizeof(float) * R * C);
    float *w[2] = {malloc(sizeof(float) * R * C), malloc(sizeof(float) * R * C)};
    ASSERT(w0 && g && w[0] && w[1]);
    tu_fill_normal(&r, w0, R * C, 0.02);
    tu_fill_normal(&r, g, R * C, 1.0);
    muon_opt_config cfg = muon_opt_config_default();
    cfg.threads = 2;
    long shape[2] = {R, C};
    for (int k = 0; k < 2; k++) {
        memcpy(w[k], w0, sizeof(float) * R * C);
        muon_opt *opt = NULL;
        ASSERT_OK(muon_opt_create(&cfg, &opt));
        muon_status s = muon_opt_set_backend(opt, (muon_backend_kind)k);
        if (s == MUON_OK)
            s = muon_opt_add_param(opt, "w", w[k], g, 2, shape, MUON_ROLE_MATRIX, NULL);
        if (s == MUON_OK)
            s = muon_opt_finalize(opt);
        if (s == MUON_OK)
            s = muon_opt_set_backend(opt, MUON_BACKEND_CPU) == MUON_ERR_STATE ? MUON_OK
                                                                               : MUON_ERR_ARG;
        for (int i = 0; i < 2 && s == MUON_OK; i++)
            s = muon_opt_step(opt, 1.0);
        muon_opt_free(opt);
        ASSERT_OK(s);
    }
    double *exact = malloc(sizeof(double) * R * C), wmax = 0;
    ref_ortho(&cfg.ortho, 0, g, R, C, NULL, exact);
    double tol_o = ref_ortho_tol(&cfg.ortho, g, R, C, exact);
    free(exact);
    for (long i = 0; i < (long)R * C; i++)
        wmax = fmax(wmax, fabs(w0[i]));
    double tol = 2 * (cfg.lr * muon_scale_factor(cfg.scale, R, C) * 2 * tol_o) +
                 2 * 2 * 4 * REF_U32 * wmax;
    ASSERT_LE(tu_max_abs_diff_ff(w[0], w[1], (size_t)R * C), tol);
    free(w0);
    free(g);
    free(w[0]);
    free(w[1]);
}

/* `muon bench backend --json` prints the default table as one object. */
TEST(backend_bench_prints_the_table)
{
    char cmd[512], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s/muon' bench backend --json --threads 2", tu_build_dir());
    int rc = tu_run(cmd, &out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(out);
    int ok = strstr(out, "\"bench\":\"backend\"") && strstr(out, "\"kind\":\"cpu\"") &&
             strstr(out, "\"threads\":2") && strstr(out, "\"products\":{\"syrk\":") &&
             strstr(out, "\"gemm-bf16\":") && strstr(out, "\"onednn_isa\":");
    if (!ok)
        printf("    got: %s\n", out);
    free(out);
    ASSERT(ok);
    snprintf(cmd, sizeof cmd, "'%s/muon' bench backend --kind cuda 2>/dev/null", tu_build_dir());
    ASSERT_EQ_INT(tu_run(cmd, NULL), 2);
}


/* AUTO precision: muon_ortho_resolve names a precision the call then runs
 * (the same bits as asking for it; same build, machine and threads), a
 * backend whose bf16 speed-up is 0 (the reference, and any without native
 * bf16 products) never picks mixed, svd runs AUTO in fp32, and the workspace sized without a
 * backend serves either choice. */
TEST(backend_auto_precision_runs_what_resolve_names)
{
    static const long shapes[][2] = {{64, 64}, {288, 288}, {256, 640}, {640, 256}};
    tu_rng r;
    tu_seed(&r, mt_seed);
    for (int kind = 0; kind < MUON_BACKEND_KIND_COUNT; kind++) {
        muon_backend *be = NULL;
        muon_backend_info info;
        ASSERT_OK(muon_backend_create((muon_backend_kind)kind, 1, &be));
        ASSERT_OK(muon_backend_info_get(be, &info));
        muon_precision layers = muon_backend_layer_precision(be, MUON_PRECISION_AUTO);
        ASSERT_EQ_INT(layers, (info.bf16_speedup > 0 ? MUON_PRECISION_MIXED : MUON_PRECISION_FP32));
        if (!info.bf16_native)
            ASSERT(info.bf16_speedup == 0);
        ASSERT_EQ_INT(muon_backend_layer_precision(be, MUON_PRECISION_FP32), MUON_PRECISION_FP32);
        ASSERT_EQ_INT(muon_backend_layer_precision(be, MUON_PRECISION_MIXED),
                      MUON_PRECISION_MIXED);
        if (kind == MUON_BACKEND_CPU_REF)
            ASSERT_EQ_INT(layers, MUON_PRECISION_FP32);
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            long rows = shapes[si][0], cols = shapes[si][1];
            size_t n = (size_t)rows * (size_t)cols, bytes, b32, b16;
            float *x = malloc(n * sizeof *x), *o = malloc(n * sizeof *o);
            float *want = malloc(n * sizeof *want);
            ASSERT(x && o && want);
            tu_fill_normal(&r, x, n, 1.0);
            muon_ortho_config c = muon_ortho_config_default(), res;
            ASSERT_EQ_INT(c.precision, MUON_PRECISION_AUTO);
            ASSERT_OK(muon_ortho_resolve(be, &c, rows, cols, &res));
            ASSERT(res.precision == MUON_PRECISION_FP32 || res.precision == MUON_PRECISION_MIXED);
            ASSERT(res.method == MUON_ORTHO_NS || res.method == MUON_ORTHO_GRAM_NS);
            if (info.bf16_speedup == 0)
                ASSERT_EQ_INT(res.precision, MUON_PRECISION_FP32);
            ASSERT_OK(muon_orthogonalize_on(be, &c, x, o, rows, cols, NULL, 0));
            ASSERT_OK(muon_orthogonalize_on(be, &res, x, want, rows, cols, NULL, 0));
            ASSERT(memcmp(o, want, n * sizeof *o) == 0);
            /* the workspace AUTO is sized for holds both choices */
            muon_ortho_config f = c, m = c;
            f.precision = MUON_PRECISION_FP32;
            m.precision = MUON_PRECISION_MIXED;
            ASSERT_OK(muon_ortho_workspace_size(&c, rows, cols, &bytes));
            ASSERT_OK(muon_ortho_workspace_size(&f, rows, cols, &b32));
            ASSERT_OK(muon_ortho_workspace_size(&m, rows, cols, &b16));
            ASSERT(bytes >= b32 && bytes >= b16);
            void *w = malloc(bytes);
            ASSERT(w);
            ASSERT_OK(muon_orthogonalize_on(be, &c, x, o, rows, cols, w, bytes));
            ASSERT(memcmp(o, want, n * sizeof *o) == 0);
            ASSERT_STATUS(muon_orthogonalize_on(be, &c, x, o, rows, cols, w, bytes - 1),
                          MUON_ERR_WORKSPACE);
            /* svd: AUTO is fp32; mixed refused */
            muon_ortho_config s = c;
            s.method = MUON_ORTHO_SVD;
            ASSERT_OK(muon_ortho_resolve(be, &s, rows, cols, &res));
            ASSERT_EQ_INT(res.precision, MUON_PRECISION_FP32);
            s.precision = MUON_PRECISION_MIXED;
            ASSERT_STATUS(muon_ortho_resolve(be, &s, rows, cols, &res), MUON_ERR_UNSUPPORTED);
            free(w);
            free(x);
            free(o);
            free(want);
        }
        muon_ortho_config c = muon_ortho_config_default(), res;
        ASSERT_STATUS(muon_ortho_resolve(be, NULL, 8, 8, &res), MUON_ERR_NULL);
        ASSERT_STATUS(muon_ortho_resolve(be, &c, 8, 8, NULL), MUON_ERR_NULL);
        ASSERT_STATUS(muon_ortho_resolve(be, &c, 0, 8, &res), MUON_ERR_SIZE);
        c.precision = MUON_PRECISION_COUNT;
        ASSERT_STATUS(muon_ortho_resolve(be, &c, 8, 8, &res), MUON_ERR_ARG);
        muon_backend_free(be);
    }
}
