/* Tests of the orthogonalization kernels (src/ortho/): every method and
 * coefficient set against the SVD polar factor and against a slow reference
 * Newton-Schulz written here in double precision straight from
 * docs/algorithms.md 1 (its own coefficient tables, explicit transposition,
 * normalization and AOL); the taylor-K residual bound; Gram NS against NS;
 * edge shapes and scales; bad input; in-place calls; muon_ortho_error. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ortho/ortho.h"
#include "ref_ortho.h"
#include "testutil.h"

/* ------------------------------------------------------------ helpers */

/* The fp32 tolerance of cfg with method meth on x against the exact
 * double result ref (ref_ortho.h: derived from a rounding model, not
 * measured on a CPU) */
static double tol_of(const muon_ortho_config *cfg, int meth, const float *x, long r, long c,
                     const double *ref)
{
    muon_ortho_config m = *cfg;
    m.method = (muon_ortho_method)meth;
    return ref_ortho_tol(&m, x, r, c, ref);
}

static const char *const ALL_COEFFS[] = {"keller",   "quintic5", "polar-express", "taylor-1",
                                         "taylor-2", "taylor-3", "taylor-4",      "taylor-5"};
#define N_COEFFS ((int)(sizeof ALL_COEFFS / sizeof ALL_COEFFS[0]))

static muon_ortho_config make_cfg(muon_ortho_method method, const char *coeffs, int steps)
{
    muon_ortho_config c = muon_ortho_config_default();
    c.method = method;
    if (coeffs)
        muon_coeffs_parse(coeffs, &c);
    c.steps = steps;
    c.precision = MUON_PRECISION_FP32; /* the fp32 kernels; mixed and auto: test_bf16.c */
    return c;
}

static float *new_normal(long rows, long cols, uint64_t k)
{
    tu_rng r;
    tu_seed(&r, mt_seed + k);
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    tu_fill_normal(&r, x, (size_t)(rows * cols), 1.0);
    return x;
}

static float *new_cond(long rows, long cols, double cond, uint64_t k)
{
    tu_rng r;
    tu_seed(&r, mt_seed + k);
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    tu_matrix_with_cond(&r, x, rows, cols, cond);
    return x;
}

/* Gaussian with its rows (or columns, if tall) scaled geometrically from 1
 * to 1/cond: ill-conditioned like new_cond, and cheap at a few hundred rows
 * (tu_matrix_with_cond is O(rows cols min) in double). */
static float *new_graded(long rows, long cols, double cond, uint64_t k)
{
    float *x = new_normal(rows, cols, k);
    int tall = rows > cols;
    long m = tall ? cols : rows;
    for (long i = 0; i < rows; i++)
        for (long j = 0; j < cols; j++) {
            long d = tall ? j : i;
            x[i * cols + j] *= (float)pow(cond, -(double)d / (double)(m - 1));
        }
    return x;
}

/* smallest and largest singular value */
static void sv_range(const float *x, long rows, long cols, double *lo, double *hi)
{
    long k = rows < cols ? rows : cols;
    double *s = malloc(sizeof(double) * (size_t)k);
    if (tu_singular_values(x, rows, cols, s) != 0) {
        *lo = NAN, *hi = NAN;
    } else {
        *lo = s[k - 1];
        *hi = s[0];
    }
    free(s);
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(x[i]) > m)
            m = fabs(x[i]);
    return m;
}

/* ------------------------------------------------------------ vs reference */

/* NS and Gram NS of cfg (method ignored) against ref_ns in double, each
 * within its tolerance; o and ref are scratch of rows x cols. Prints the
 * case that misses. */
static int both_methods_match_reference(muon_ortho_config *cfg, const float *x, long r, long c,
                                        float *o, double *ref)
{
    size_t n = (size_t)(r * c);
    ref_ortho(cfg, 0, x, r, c, NULL, ref);
    int ok = 1;
    for (int meth = MUON_ORTHO_NS; meth <= MUON_ORTHO_GRAM_NS; meth++) {
        cfg->method = (muon_ortho_method)meth;
        double d = muon_orthogonalize(cfg, x, o, r, c, NULL, 0) == MUON_OK
                       ? tu_max_abs_diff_fd(o, ref, n)
                       : INFINITY;
        double tol = tol_of(cfg, meth, x, r, c, ref);
        if (!(d <= tol)) {
            char name[32];
            printf("    %s %s aol %d steps %d %ldx%ld: %.3g > tol %.3g\n",
                   muon_coeffs_name(cfg, name, sizeof name), muon_ortho_method_name(cfg->method),
                   cfg->aol, cfg->steps, r, c, d, tol);
            ok = 0;
        }
    }
    return ok;
}

/* fp32 NS and Gram NS against the double reference, every coefficient set,
 * wide / tall / square, on well-conditioned input (cond 10). */
TEST(ortho_ns_matches_double_reference)
{
    const long shapes[3][2] = {{24, 80}, {80, 24}, {40, 40}};
    for (int si = 0; si < 3; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        float *x = new_cond(r, c, 10.0, (uint64_t)si);
        float *o = malloc(sizeof(float) * n);
        double *ref = malloc(sizeof(double) * n);
        for (int ci = 0; ci < N_COEFFS; ci++) {
            for (int steps = 1; steps <= 6; steps += 5) {
                muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, ALL_COEFFS[ci], steps);
                ASSERT(both_methods_match_reference(&cfg, x, r, c, o, ref));
            }
        }
        free(x);
        free(o);
        free(ref);
    }
}

/* On more than one BLAS thread a call runs the split mode (kernels.c):
 * SYRKs as row panels over OpenMP threads, the other products on oneDNN's
 * threads; on one thread, SYRKs of m >= 256 go by panels where OpenBLAS
 * runs AVX2 kernels. Against the double reference on one thread and two,
 * with shapes of several panels, a row count off the panels' multiples of
 * 16, both views, the Horner path (taylor-4) and AOL. */
TEST(ortho_split_mode_matches_double_reference)
{
    const long shapes[5][2] = {{96, 200}, {200, 96}, {130, 130}, {72, 300}, {300, 264}};
    static const char *const coeffs[] = {"polar-express", "taylor-4"};
    const int saved = muon_get_blas_threads();
    for (int si = 0; si < 5; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        float *x = new_cond(r, c, 10.0, (uint64_t)(40 + si));
        float *o = malloc(sizeof(float) * n);
        double *ref = malloc(sizeof(double) * n);
        for (int ci = 0; ci < 2; ci++)
            for (int aol = 0; aol <= 1; aol++) {
                muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, coeffs[ci], 5);
                cfg.aol = aol;
                ref_ortho(&cfg, 0, x, r, c, NULL, ref);
                for (int meth = MUON_ORTHO_NS; meth <= MUON_ORTHO_GRAM_NS; meth++) {
                    double tol = tol_of(&cfg, meth, x, r, c, ref);
                    cfg.method = (muon_ortho_method)meth;
                    for (int threads = 1; threads <= 2; threads++) {
                        muon_set_blas_threads(threads);
                        muon_status st = muon_orthogonalize(&cfg, x, o, r, c, NULL, 0);
                        double d = st == MUON_OK ? tu_max_abs_diff_fd(o, ref, n) : INFINITY;
                        if (!(d <= tol))
                            printf("    %s %s aol %d %ldx%ld on %d thread(s): %.3g > tol %.3g\n",
                                   coeffs[ci], muon_ortho_method_name(cfg.method), aol, r, c,
                                   threads, d, tol);
                        muon_set_blas_threads(saved);
                        ASSERT_LE(d, tol);
                    }
                }
            }
        free(x);
        free(o);
        free(ref);
    }
}

/* The library's per-step polynomials equal this file's tables (catches a
 * typo too small to show in a 5-step result, e.g. the safety factor on the
 * 8th Polar Express row). */
TEST(ortho_step_polynomials_match_tables)
{
    for (int ci = 0; ci < N_COEFFS; ci++) {
        muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, ALL_COEFFS[ci], 12);
        muon_ortho_config res = muon__ortho_resolve(&cfg, 4, 8);
        for (int t = 0; t < 12; t++) {
            muon__poly got;
            ref_poly want;
            muon__ortho_step_poly(&res, t, &got);
            ref_step_poly(cfg.coeffs, cfg.taylor_k, t, &want);
            ASSERT_EQ_INT(got.deg, want.deg);
            for (int j = 0; j <= want.deg; j++)
                ASSERT_NEAR(got.q[j], want.q[j], 1e-13 * fabs(want.q[j]));
        }
    }
    /* taylor-1 and taylor-2 as printed in docs/algorithms.md */
    ref_poly p;
    ref_taylor(1, &p);
    ASSERT_NEAR(p.q[0], 1.5, 1e-15);
    ASSERT_NEAR(p.q[1], -0.5, 1e-15);
    ref_taylor(2, &p);
    ASSERT_NEAR(p.q[0], 15.0 / 8, 1e-15);
    ASSERT_NEAR(p.q[1], -10.0 / 8, 1e-15);
    ASSERT_NEAR(p.q[2], 3.0 / 8, 1e-15);
}

/* Polar Express past the 8th row (rows repeat) and quintic5 past its 5th. */
TEST(ortho_long_schedules_match_reference)
{
    long r = 32, c = 72;
    size_t n = (size_t)(r * c);
    float *x = new_normal(r, c, 1);
    float *o = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * n);
    const char *names[2] = {"polar-express", "quintic5"};
    for (int i = 0; i < 2; i++) {
        muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, names[i], 11);
        ref_ns(x, r, c, cfg.coeffs, 0, 11, 0, ref);
        ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
        ASSERT_LE(tu_max_abs_diff_fd(o, ref, n), tol_of(&cfg, MUON_ORTHO_NS, x, r, c, ref));
    }
    /* polar-express converges once it reaches the taylor-2 row */
    muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, "polar-express", 11);
    ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
    double err;
    ASSERT_OK(muon_ortho_error(o, r, c, &err));
    ASSERT_LE(err, 1e-4);
    free(x);
    free(o);
    free(ref);
}

/* Against the exact polar factor: after 5 steps each set leaves singular
 * values in its known band (docs/algorithms.md: polar-express on a Gaussian in
 * [0.87, 1.12], keller roughly [0.7, 1.2]), and the output shares the
 * singular vectors of X, so |O - U V^T| stays within that band. */
TEST(ortho_five_steps_vs_polar_factor)
{
    long r = 64, c = 256;
    size_t n = (size_t)(r * c);
    float *x = new_normal(r, c, 2);
    float *o = malloc(sizeof(float) * n);
    double *pol = malloc(sizeof(double) * n);
    ASSERT(tu_polar_ref(x, r, c, pol) == 0);
    static const struct {
        const char *name;
        double lo, hi;
    } band[] = {
        {"keller", 0.65, 1.22},   {"quintic5", 0.95, 1.05}, {"polar-express", 0.85, 1.13},
        {"taylor-2", 0.5, 1.0001}, {"taylor-5", 0.99, 1.0001},
    };
    for (int i = 0; i < (int)(sizeof band / sizeof band[0]); i++) {
        for (int meth = MUON_ORTHO_NS; meth <= MUON_ORTHO_GRAM_NS; meth++) {
            muon_ortho_config cfg = make_cfg((muon_ortho_method)meth, band[i].name, 5);
            ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
            double lo, hi;
            sv_range(o, r, c, &lo, &hi);
            ASSERT_LE(band[i].lo, lo);
            ASSERT_LE(hi, band[i].hi);
            double err = fmax(fabs(1 - lo), fabs(1 - hi));
            ASSERT_LE(tu_max_abs_diff_fd(o, pol, n), err + 1e-4);
        }
    }
    free(x);
    free(o);
    free(pol);
}

/* Convergent sets with many steps, and svd, reach the polar factor. */
TEST(ortho_converged_and_svd_vs_polar_factor)
{
    const long shapes[3][2] = {{48, 160}, {160, 48}, {64, 64}};
    for (int si = 0; si < 3; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        float *x = new_cond(r, c, 5.0, (uint64_t)(10 + si));
        float *o = malloc(sizeof(float) * n);
        double *pol = malloc(sizeof(double) * n), *ref = malloc(sizeof(double) * n);
        ASSERT(tu_polar_ref(x, r, c, pol) == 0);
        const char *names[5] = {"taylor-1", "taylor-2", "taylor-3", "taylor-5", "polar-express"};
        const int steps[5] = {24, 12, 10, 8, 12};
        for (int i = 0; i < 5; i++) {
            /* the iteration's own distance from the polar factor (in
             * double, the same for both methods) plus its fp32 rounding */
            muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, names[i], steps[i]);
            ref_ortho(&cfg, 0, x, r, c, NULL, ref);
            double gap = 0;
            for (size_t e = 0; e < n; e++)
                gap = fmax(gap, fabs(ref[e] - pol[e]));
            for (int meth = MUON_ORTHO_NS; meth <= MUON_ORTHO_GRAM_NS; meth++) {
                cfg.method = (muon_ortho_method)meth;
                ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
                ASSERT_LE(tu_max_abs_diff_fd(o, pol, n), gap + tol_of(&cfg, meth, x, r, c, ref));
            }
        }
        muon_ortho_config svd = make_cfg(MUON_ORTHO_SVD, NULL, 5);
        ASSERT_OK(muon_orthogonalize(&svd, x, o, r, c, NULL, 0));
        ASSERT_LE(tu_max_abs_diff_fd(o, pol, n), 1e-5);
        double err;
        ASSERT_OK(muon_ortho_error(o, r, c, &err));
        ASSERT_LE(err, 1e-5);
        free(x);
        free(o);
        free(pol);
        free(ref);
    }
}

/* taylor-K: delta_q = ||I - X_q X_q^T||_2 <= delta_0^((K+1)^q). */
TEST(ortho_taylor_residual_bound)
{
    long r = 6, c = 20;
    size_t n = (size_t)(r * c);
    float *x = new_cond(r, c, 1.5, 3);
    float *o = malloc(sizeof(float) * n);
    double s[6];
    ASSERT(tu_singular_values(x, r, c, s) == 0);
    double fro = 0;
    for (int i = 0; i < r; i++)
        fro += s[i] * s[i];
    double smin = s[r - 1] / (sqrt(fro) + 1e-7);
    double delta0 = 1 - smin * smin; /* normalized: every s_i <= 1 */
    ASSERT(delta0 > 0.5 && delta0 < 1);
    for (int k = 1; k <= 5; k++) {
        for (int q = 1; q <= 6; q++) {
            double bound = pow(delta0, pow(k + 1, q));
            muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, NULL, q);
            cfg.coeffs = MUON_COEFFS_TAYLOR;
            cfg.taylor_k = k;
            ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
            ASSERT(tu_singular_values(o, r, c, s) == 0);
            double delta = 0;
            for (int i = 0; i < r; i++)
                delta = fmax(delta, fabs(1 - s[i] * s[i]));
            ASSERT_LE(delta, bound + 2e-6);
            if (bound < 1e-7)
                break;
        }
    }
    free(x);
    free(o);
}

/* Gram NS equals NS (same coefficients and steps) on wide and tall shapes,
 * with the default restart and with none, well- and ill-conditioned. The
 * 256-row shapes take the m x m products by row panels (m >= 256). On one
 * BLAS thread Gram NS's general products run on oneDNN, on two on
 * OpenBLAS (kernels.c): both are checked. */
TEST(ortho_gram_ns_matches_ns)
{
    const long shapes[4][2] = {{64, 256}, {256, 64}, {256, 288}, {288, 256}};
    const unsigned restarts[3] = {0, MUON_GRAM_NO_RESTARTS, (1u << 1) | (1u << 3) | (1u << 4)};
    const int saved = muon_get_blas_threads();
    for (int si = 0; si < 4; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        for (int ill = 0; ill <= 1; ill++) {
            float *x = !ill ? new_normal(r, c, 21)
                       : si < 2 ? new_cond(r, c, 1e3, 20)
                                : new_graded(r, c, 1e3, 20);
            float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
            double *ref = malloc(sizeof(double) * n);
            for (int ci = 0; ci < N_COEFFS; ci++) {
                /* the big shapes: polar-express and a degree-4 Horner only */
                if (si >= 2 && strcmp(ALL_COEFFS[ci], "polar-express") &&
                    strcmp(ALL_COEFFS[ci], "taylor-4"))
                    continue;
                muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, ALL_COEFFS[ci], 5);
                ref_ortho(&cfg, 0, x, r, c, NULL, ref);
                double tol_ns = tol_of(&cfg, MUON_ORTHO_NS, x, r, c, ref), tol_g[3];
                for (int k = 0; k < 3; k++) {
                    cfg.gram_restarts = restarts[k];
                    /* without restarts the squared spectrum loses the small
                     * singular values of an ill-conditioned X: the model's
                     * tolerance grows with it */
                    tol_g[k] = tol_of(&cfg, MUON_ORTHO_GRAM_NS, x, r, c, ref);
                }
                for (int threads = 1; threads <= 2; threads++) {
                    muon_set_blas_threads(threads);
                    cfg.method = MUON_ORTHO_NS;
                    muon_status st = muon_orthogonalize(&cfg, x, a, r, c, NULL, 0);
                    double worst = 0;
                    for (int k = 0; k < 3 && st == MUON_OK; k++) {
                        cfg.method = MUON_ORTHO_GRAM_NS;
                        cfg.gram_restarts = restarts[k];
                        st = muon_orthogonalize(&cfg, x, b, r, c, NULL, 0);
                        double d = tu_max_abs_diff_ff(a, b, n) / (tol_ns + tol_g[k]);
                        worst = d > worst ? d : worst;
                    }
                    muon_set_blas_threads(saved);
                    if (!(worst <= 1.0))
                        printf("    %s %ldx%ld ill %d, %d thread(s): |gram - ns| / tol %.3g\n",
                               ALL_COEFFS[ci], r, c, ill, threads, worst);
                    ASSERT_OK(st);
                    ASSERT_LE(worst, 1.0);
                }
            }
            free(x);
            free(a);
            free(b);
            free(ref);
        }
    }
}

/* AUTO picks Gram NS for max >= 1.5 min and NS otherwise (bitwise equal). */
TEST(ortho_auto_dispatch)
{
    const long shapes[3][2] = {{40, 60}, {60, 40}, {40, 59}};
    const muon_ortho_method want[3] = {MUON_ORTHO_GRAM_NS, MUON_ORTHO_GRAM_NS, MUON_ORTHO_NS};
    for (int i = 0; i < 3; i++) {
        long r = shapes[i][0], c = shapes[i][1];
        size_t n = (size_t)(r * c);
        float *x = new_normal(r, c, 30 + (uint64_t)i);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        muon_ortho_config cfg = muon_ortho_config_default();
        ASSERT_EQ_INT(cfg.method, MUON_ORTHO_AUTO);
        ASSERT_OK(muon_orthogonalize(&cfg, x, a, r, c, NULL, 0));
        cfg.method = want[i];
        ASSERT_OK(muon_orthogonalize(&cfg, x, b, r, c, NULL, 0));
        ASSERT(memcmp(a, b, sizeof(float) * n) == 0);
        free(x);
        free(a);
        free(b);
    }
}

/* ------------------------------------------------------------ edge cases */

TEST(ortho_edge_shapes_and_scales)
{
    const long shapes[6][2] = {{1, 50}, {50, 1}, {1, 1}, {17, 33}, {33, 17}, {20, 20}};
    for (int si = 0; si < 6; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        float *x = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
        double *pol = malloc(sizeof(double) * n);
        for (int meth = MUON_ORTHO_AUTO; meth < MUON_ORTHO_METHOD_COUNT; meth++) {
            for (int aol = 0; aol <= (meth == MUON_ORTHO_SVD ? 0 : 1); aol++) {
                muon_ortho_config cfg = make_cfg((muon_ortho_method)meth, NULL, 5);
                cfg.aol = aol;
                /* zero in, zero out */
                memset(x, 0, sizeof(float) * n);
                for (size_t i = 0; i < n; i++)
                    o[i] = 3.0f;
                ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
                ASSERT_EQ_INT(max_abs(o, n) == 0.0, 1);
                /* tiny: no NaN; the iterative methods give (almost) zeros */
                float *t = new_normal(r, c, 40);
                for (size_t i = 0; i < n; i++)
                    t[i] *= 1e-30f;
                ASSERT_OK(muon_orthogonalize(&cfg, t, o, r, c, NULL, 0));
                ASSERT(all_finite(o, n));
                if (meth != MUON_ORTHO_SVD)
                    ASSERT_LE(max_abs(o, n), 1e-6);
                else
                    ASSERT_LE(max_abs(o, n), 1.0 + 1e-5);
                free(t);
                /* ill-conditioned (1e6): finite, nothing above the band */
                float *ill = new_cond(r, c, 1e6, 41);
                ASSERT_OK(muon_orthogonalize(&cfg, ill, o, r, c, NULL, 0));
                ASSERT(all_finite(o, n));
                double lo, hi;
                sv_range(o, r, c, &lo, &hi);
                ASSERT_LE(hi, 1.13);
                /* a vector's polar factor is x / |x| */
                if (r == 1 || c == 1) {
                    ASSERT(tu_polar_ref(ill, r, c, pol) == 0);
                    ASSERT_LE(tu_max_abs_diff_fd(o, pol, n), 0.13);
                    ASSERT_LE(0.87, lo);
                }
                free(ill);
            }
        }
        free(x);
        free(o);
        free(pol);
    }
}

/* Huge finite entries: normalization must not overflow. */
TEST(ortho_huge_input_is_finite)
{
    long r = 16, c = 40;
    size_t n = (size_t)(r * c);
    float *x = new_normal(r, c, 50), *o = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] *= 1e37f;
    for (int meth = MUON_ORTHO_NS; meth < MUON_ORTHO_METHOD_COUNT; meth++) {
        muon_ortho_config cfg = make_cfg((muon_ortho_method)meth, NULL, 5);
        ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
        ASSERT(all_finite(o, n));
        double err;
        ASSERT_OK(muon_ortho_error(o, r, c, &err));
        ASSERT_LE(err, 0.2);
    }
    free(x);
    free(o);
}

/* svd of a rank-deficient matrix: the null directions contribute zero. */
TEST(ortho_svd_rank_deficient)
{
    long r = 12, c = 30;
    size_t n = (size_t)(r * c);
    tu_rng g;
    tu_seed(&g, mt_seed + 60);
    double u[12], v[30], nu = 0, nv = 0;
    for (int i = 0; i < r; i++)
        u[i] = tu_normal(&g), nu += u[i] * u[i];
    for (int j = 0; j < c; j++)
        v[j] = tu_normal(&g), nv += v[j] * v[j];
    float *x = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
    double *want = malloc(sizeof(double) * n);
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++) {
            x[i * c + j] = (float)(3.0 * u[i] * v[j]);
            want[i * c + j] = u[i] * v[j] / sqrt(nu * nv);
        }
    muon_ortho_config cfg = make_cfg(MUON_ORTHO_SVD, NULL, 5);
    ASSERT_OK(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0));
    ASSERT_LE(tu_max_abs_diff_fd(o, want, n), 1e-5);
    free(x);
    free(o);
    free(want);
}

/* ------------------------------------------------------------ AOL */

TEST(ortho_aol_on_off)
{
    const long shapes[2][2] = {{24, 70}, {70, 24}};
    for (int si = 0; si < 2; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        float *x = new_cond(r, c, 20.0, 70 + (uint64_t)si);
        float *on = malloc(sizeof(float) * n), *off = malloc(sizeof(float) * n);
        double *ref = malloc(sizeof(double) * n);
        for (int meth = MUON_ORTHO_NS; meth <= MUON_ORTHO_GRAM_NS; meth++) {
            muon_ortho_config cfg = make_cfg((muon_ortho_method)meth, "polar-express", 5);
            ASSERT_OK(muon_orthogonalize(&cfg, x, off, r, c, NULL, 0));
            cfg.aol = 1;
            ASSERT_OK(muon_orthogonalize(&cfg, x, on, r, c, NULL, 0));
            ref_ortho(&cfg, 0, x, r, c, NULL, ref);
            ASSERT_LE(tu_max_abs_diff_fd(on, ref, n), tol_of(&cfg, meth, x, r, c, ref));
            /* AOL changes the result, and still orthogonalizes */
            ASSERT(tu_max_abs_diff_ff(on, off, n) > 1e-4);
            double lo, hi;
            sv_range(on, r, c, &lo, &hi);
            ASSERT_LE(0.85, lo);
            ASSERT_LE(hi, 1.13);
        }
        muon_ortho_config svd = make_cfg(MUON_ORTHO_SVD, NULL, 5);
        svd.aol = 1;
        ASSERT_STATUS(muon_orthogonalize(&svd, x, on, r, c, NULL, 0), MUON_ERR_UNSUPPORTED);
        free(x);
        free(on);
        free(off);
        free(ref);
    }
}

/* ------------------------------------------------------------ names, config */

TEST(ortho_coeff_names_round_trip)
{
    char buf[32];
    for (int i = 0; i < N_COEFFS; i++) {
        muon_ortho_config cfg = muon_ortho_config_default();
        ASSERT_OK(muon_coeffs_parse(ALL_COEFFS[i], &cfg));
        ASSERT_OK(muon_ortho_config_validate(&cfg));
        ASSERT(strcmp(muon_coeffs_name(&cfg, buf, sizeof buf), ALL_COEFFS[i]) == 0);
    }
    const char *bad[] = {"",          "Keller",   "polar_express", "taylor",  "taylor-",
                         "taylor-0",  "taylor-6", "taylor-12",     "keller ", "quintic",
                         "taylor-1x", "svd"};
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        muon_ortho_config cfg = muon_ortho_config_default(), before = cfg;
        ASSERT_STATUS(muon_coeffs_parse(bad[i], &cfg), MUON_ERR_ARG);
        ASSERT(memcmp(&cfg, &before, sizeof cfg) == 0);
    }
    muon_ortho_config cfg = muon_ortho_config_default();
    ASSERT_STATUS(muon_coeffs_parse(NULL, &cfg), MUON_ERR_NULL);
    ASSERT_STATUS(muon_coeffs_parse("keller", NULL), MUON_ERR_NULL);

    const char *methods[] = {"auto", "ns", "gram-ns", "svd"};
    for (int i = 0; i < 4; i++) {
        muon_ortho_method m;
        ASSERT_OK(muon_ortho_method_parse(methods[i], &m));
        ASSERT_EQ_INT(m, i);
        ASSERT(strcmp(muon_ortho_method_name(m), methods[i]) == 0);
    }
    muon_ortho_method m = MUON_ORTHO_SVD;
    ASSERT_STATUS(muon_ortho_method_parse("NS", &m), MUON_ERR_ARG);
    ASSERT_STATUS(muon_ortho_method_parse("gram", &m), MUON_ERR_ARG);
    ASSERT_EQ_INT(m, MUON_ORTHO_SVD);
    ASSERT(strcmp(muon_ortho_method_name((muon_ortho_method)99), "unknown") == 0);
}

TEST(ortho_config_defaults_and_validation)
{
    muon_ortho_config d = muon_ortho_config_default();
    ASSERT_EQ_INT(d.method, MUON_ORTHO_AUTO);
    ASSERT_EQ_INT(d.coeffs, MUON_COEFFS_POLAR_EXPRESS);
    ASSERT_EQ_INT(d.steps, 5);
    ASSERT_EQ_INT(d.aol, 0);
    ASSERT_OK(muon_ortho_config_validate(&d));
    ASSERT_STATUS(muon_ortho_config_validate(NULL), MUON_ERR_NULL);

    /* zeros select the defaults: same result as the explicit values */
    long r = 20, c = 36;
    size_t n = (size_t)(r * c);
    float *x = new_normal(r, c, 80), *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    muon_ortho_config z = d;
    z.steps = 0, z.safety = 0, z.eps = 0, z.gram_restarts = 0;
    ASSERT_OK(muon_orthogonalize(&d, x, a, r, c, NULL, 0));
    ASSERT_OK(muon_orthogonalize(&z, x, b, r, c, NULL, 0));
    ASSERT(memcmp(a, b, sizeof(float) * n) == 0);
    free(x);
    free(a);
    free(b);

    muon_ortho_config bad[8];
    for (int i = 0; i < 8; i++)
        bad[i] = d;
    bad[0].method = (muon_ortho_method)7;
    bad[1].coeffs = (muon_coeffs)9;
    bad[2].coeffs = MUON_COEFFS_TAYLOR, bad[2].taylor_k = 6;
    bad[3].steps = -1;
    bad[4].safety = 0.5;
    bad[5].eps = -1e-7;
    bad[6].aol = 2;
    bad[7].eps = NAN;
    for (int i = 0; i < 8; i++) {
        ASSERT_STATUS(muon_ortho_config_validate(&bad[i]), MUON_ERR_ARG);
        size_t bytes = 0;
        ASSERT_STATUS(muon_ortho_workspace_size(&bad[i], 4, 4, &bytes), MUON_ERR_ARG);
        ASSERT_EQ_INT(muon_ortho_flops(&bad[i], 4, 4) == 0.0, 1);
    }
}

/* ------------------------------------------------------------ bad input */

TEST(ortho_bad_input_leaves_out_untouched)
{
    long r = 8, c = 12;
    size_t n = (size_t)(r * c);
    float *x = new_normal(r, c, 90), *o = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        o[i] = 7.0f;
    for (int meth = MUON_ORTHO_AUTO; meth < MUON_ORTHO_METHOD_COUNT; meth++) {
        muon_ortho_config cfg = make_cfg((muon_ortho_method)meth, NULL, 5);
        size_t bytes;
        ASSERT_OK(muon_ortho_workspace_size(&cfg, r, c, &bytes));
        void *w = malloc(bytes);
        ASSERT_STATUS(muon_orthogonalize(NULL, x, o, r, c, NULL, 0), MUON_ERR_NULL);
        ASSERT_STATUS(muon_orthogonalize(&cfg, NULL, o, r, c, NULL, 0), MUON_ERR_NULL);
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, NULL, r, c, NULL, 0), MUON_ERR_NULL);
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, o, 0, c, NULL, 0), MUON_ERR_SIZE);
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, o, r, -3, NULL, 0), MUON_ERR_SIZE);
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, o, r, c, w, bytes - 1), MUON_ERR_WORKSPACE);
        float keep = x[5];
        x[5] = NAN;
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, o, r, c, w, bytes), MUON_ERR_NONFINITE);
        x[5] = INFINITY;
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, o, r, c, NULL, 0), MUON_ERR_NONFINITE);
        x[5] = -INFINITY;
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, x, r, c, w, bytes), MUON_ERR_NONFINITE);
        ASSERT(x[5] == -INFINITY);
        x[5] = keep;
        cfg.steps = -2;
        ASSERT_STATUS(muon_orthogonalize(&cfg, x, o, r, c, w, bytes), MUON_ERR_ARG);
        for (size_t i = 0; i < n; i++)
            ASSERT(o[i] == 7.0f);
        ASSERT_STATUS(muon_ortho_workspace_size(NULL, r, c, &bytes), MUON_ERR_NULL);
        ASSERT_STATUS(muon_ortho_workspace_size(&cfg, r, c, NULL), MUON_ERR_NULL);
        cfg.steps = 5;
        ASSERT_STATUS(muon_ortho_workspace_size(&cfg, 0, c, &bytes), MUON_ERR_SIZE);
        ASSERT_STATUS(muon_ortho_workspace_size(&cfg, r, -1, &bytes), MUON_ERR_SIZE);
        ASSERT_STATUS(muon_ortho_workspace_size(&cfg, 1L << 40, 1L << 40, &bytes), MUON_ERR_SIZE);
        free(w);
    }
    free(x);
    free(o);
}

/* in == out gives the out-of-place result; a given (misaligned, exactly
 * sized) workspace gives the same as an internal one. Covers both chain
 * parities (odd and even step / restart counts), AOL, tall and wide. */
TEST(ortho_in_place_and_workspace)
{
    const long shapes[3][2] = {{20, 52}, {52, 20}, {30, 30}};
    for (int si = 0; si < 3; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        size_t n = (size_t)(r * c);
        float *x = new_normal(r, c, 100 + (uint64_t)si);
        float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
        for (int meth = MUON_ORTHO_NS; meth < MUON_ORTHO_METHOD_COUNT; meth++)
            for (int steps = 4; steps <= 5; steps++)
                for (int aol = 0; aol <= (meth == MUON_ORTHO_SVD ? 0 : 1); aol++)
                    for (unsigned rs = 0; rs < 2; rs++) {
                        muon_ortho_config cfg = make_cfg((muon_ortho_method)meth, NULL, steps);
                        cfg.aol = aol;
                        cfg.gram_restarts = rs ? ((1u << 1) | (1u << 2)) : 0;
                        cfg.coeffs = steps == 4 ? MUON_COEFFS_TAYLOR : cfg.coeffs;
                        cfg.taylor_k = 4;
                        ASSERT_OK(muon_orthogonalize(&cfg, x, a, r, c, NULL, 0));
                        memcpy(b, x, sizeof(float) * n);
                        ASSERT_OK(muon_orthogonalize(&cfg, b, b, r, c, NULL, 0));
                        ASSERT(memcmp(a, b, sizeof(float) * n) == 0);
                        size_t bytes;
                        ASSERT_OK(muon_ortho_workspace_size(&cfg, r, c, &bytes));
                        char *w = malloc(bytes + 3);
                        ASSERT_OK(muon_orthogonalize(&cfg, x, b, r, c, w + 3, bytes));
                        free(w);
                        ASSERT(memcmp(a, b, sizeof(float) * n) == 0);
                    }
        free(x);
        free(a);
        free(b);
    }
}

/* ------------------------------------------------------------ flops, error */

TEST(ortho_flops_counts)
{
    double m = 64, n = 256;
    muon_ortho_config cfg = make_cfg(MUON_ORTHO_NS, "polar-express", 5);
    /* per step: SYRK m x n, SYRK m x m, SYMM m x n */
    double ns = 5 * (m * (m + 1) * n + m * (m + 1) * m + 2 * m * m * n);
    ASSERT_NEAR(muon_ortho_flops(&cfg, 64, 256), ns, 1e-6 * ns);
    ASSERT_NEAR(muon_ortho_flops(&cfg, 256, 64), ns, 1e-6 * ns);
    cfg.coeffs = MUON_COEFFS_TAYLOR, cfg.taylor_k = 4; /* + 2 Horner SYMMs */
    double t4 = ns + 5 * 2 * (2 * m * m * m);
    ASSERT_NEAR(muon_ortho_flops(&cfg, 64, 256), t4, 1e-6 * t4);
    cfg = make_cfg(MUON_ORTHO_GRAM_NS, "polar-express", 5);
    cfg.gram_restarts = MUON_GRAM_NO_RESTARTS;
    /* R once, 5 Z (SYRK), 4 Q updates, 4 x 2 R updates, final Q X */
    double g = m * (m + 1) * n + 5 * m * (m + 1) * m + 12 * 2 * m * m * m + 2 * m * m * n;
    ASSERT_NEAR(muon_ortho_flops(&cfg, 64, 256), g, 1e-6 * g);
    /* from m = 256 the symmetric m x m products (Q and R updates) compute
     * their block upper triangle only, by four row panels of 64 rows: 2 x 64
     * x (256 + 192 + 128 + 64) x 256 flops each instead of 2 m^3 */
    m = 256, n = 512;
    double panel = 2 * 64 * (256 + 192 + 128 + 64) * m;
    g = m * (m + 1) * n + 5 * m * (m + 1) * m + 12 * panel + 2 * m * m * n;
    ASSERT_NEAR(muon_ortho_flops(&cfg, 256, 512), g, 1e-6 * g);
    ASSERT_NEAR(muon_ortho_flops(&cfg, 512, 256), g, 1e-6 * g);
    cfg = make_cfg(MUON_ORTHO_SVD, NULL, 5);
    ASSERT(muon_ortho_flops(&cfg, 64, 256) > 0);
    ASSERT_EQ_INT(muon_ortho_flops(NULL, 64, 256) == 0.0, 1);
    ASSERT_EQ_INT(muon_ortho_flops(&cfg, 0, 256) == 0.0, 1);
}

TEST(ortho_error_matches_singular_values)
{
    const long shapes[3][2] = {{10, 30}, {30, 10}, {16, 16}};
    for (int si = 0; si < 3; si++) {
        long r = shapes[si][0], c = shapes[si][1];
        float *x = new_normal(r, c, 110 + (uint64_t)si);
        for (long i = 0; i < r * c; i++)
            x[i] *= 0.2f;
        double s[30], want = 0, err = -1;
        ASSERT(tu_singular_values(x, r, c, s) == 0);
        for (int i = 0; i < (r < c ? r : c); i++)
            want = fmax(want, fabs(s[i] - 1));
        ASSERT_OK(muon_ortho_error(x, r, c, &err));
        ASSERT_NEAR(err, want, 1e-12);
        memset(x, 0, sizeof(float) * (size_t)(r * c));
        ASSERT_OK(muon_ortho_error(x, r, c, &err));
        ASSERT_NEAR(err, 1.0, 0);
        x[0] = NAN;
        ASSERT_STATUS(muon_ortho_error(x, r, c, &err), MUON_ERR_NONFINITE);
        ASSERT_STATUS(muon_ortho_error(NULL, r, c, &err), MUON_ERR_NULL);
        ASSERT_STATUS(muon_ortho_error(x, r, c, NULL), MUON_ERR_NULL);
        ASSERT_STATUS(muon_ortho_error(x, 0, c, &err), MUON_ERR_SIZE);
        free(x);
    }
}

/* The restart text: what parses, what names, and what is refused with
 * the bits untouched. */
TEST(ortho_gram_restarts_parse_and_name)
{
    unsigned b = 77;
    ASSERT_OK(muon_gram_restarts_parse("none", 5, &b));
    ASSERT_EQ_INT(b, MUON_GRAM_NO_RESTARTS);
    ASSERT_OK(muon_gram_restarts_parse("3", 5, &b));
    ASSERT_EQ_INT(b, MUON_GRAM_DEFAULT_RESTARTS);
    ASSERT_OK(muon_gram_restarts_parse("4,2", 0, &b)); /* steps 0: the default 5 */
    ASSERT_EQ_INT(b, (1u << 2) | (1u << 4));
    ASSERT_OK(muon_gram_restarts_parse("31", 100, &b));
    ASSERT_EQ_INT(b, 1u << 31);
    static const char *const bad[] = {"", "0", "5", "2,", ",2", "+2", " 2", "2,,3", "2 ",
                                      "abc", "-1", "99999999999", "None", "3;4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = 77;
        if (muon_gram_restarts_parse(bad[i], 5, &b) != MUON_ERR_ARG || b != 77)
            printf("    accepted '%s'\n", bad[i]);
        ASSERT_STATUS(muon_gram_restarts_parse(bad[i], 5, &b), MUON_ERR_ARG);
        ASSERT_EQ_INT(b, 77);
    }
    ASSERT_STATUS(muon_gram_restarts_parse("3", 3, &b), MUON_ERR_ARG);
    ASSERT_STATUS(muon_gram_restarts_parse(NULL, 5, &b), MUON_ERR_NULL);
    ASSERT_STATUS(muon_gram_restarts_parse("3", 5, NULL), MUON_ERR_NULL);
    char buf[64];
    ASSERT(!strcmp(muon_gram_restarts_name(0, buf, sizeof buf), "3"));
    ASSERT(!strcmp(muon_gram_restarts_name(MUON_GRAM_NO_RESTARTS, buf, sizeof buf), "none"));
    ASSERT(!strcmp(muon_gram_restarts_name((1u << 1) | (1u << 4) | (1u << 31), buf, sizeof buf),
                   "1,4,31"));
    /* a short buffer keeps whole items that fit, terminated */
    ASSERT(!strcmp(muon_gram_restarts_name((1u << 12) | (1u << 13), buf, 4), "12"));
    ASSERT(!strcmp(muon_gram_restarts_name(1u << 3, buf, 0), ""));
    /* name and parse are inverses on every single-step and two-step set */
    for (int t = 1; t < 8; t++)
        for (int u = t; u < 8; u++) {
            unsigned in = (1u << t) | (1u << u), out = 0;
            ASSERT_OK(muon_gram_restarts_parse(muon_gram_restarts_name(in, buf, sizeof buf), 8,
                                               &out));
            ASSERT_EQ_INT(out, in);
        }
}

/* The fused update and mirror (the register-block path for whole 16 x 16
 * tiles, the element loop on the diagonal and ragged edge) equals the plain
 * loops: upper a += alpha b (a multiply, then an add), then the lower
 * triangle copied from it. Bit-exact, since both round the same way. */
TEST(ortho_mirror_upper_add_matches_loops)
{
    const long sizes[] = {1, 9, 16, 31, 48, 70};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        long m = sizes[k];
        size_t mm = (size_t)(m * m);
        float *a = malloc(sizeof(float) * mm), *b = malloc(sizeof(float) * mm);
        float *ref = malloc(sizeof(float) * mm);
        tu_rng rng;
        tu_seed(&rng, 11 + (uint64_t)k);
        tu_fill_normal(&rng, a, mm, 1.0);
        tu_fill_normal(&rng, b, mm, 1.0);
        const float alpha = -0.37f;
        for (long i = 0; i < m; i++)
            for (long j = 0; j < m; j++) {
                long u = i <= j ? i * m + j : j * m + i; /* the upper entry */
                float prod = alpha * b[u];
                ref[i * m + j] = a[u] + prod;
            }
        muon__mirror_upper_add(a, b, alpha, m);
        ASSERT(memcmp(a, ref, sizeof(float) * mm) == 0);
        free(a);
        free(b);
        free(ref);
    }
}

/* The tiled mirror of a SYRK triangle equals the plain loop, whatever m is
 * modulo the 8/16 tile sizes; the upper triangle stays untouched. */
TEST(ortho_mirror_upper_any_size)
{
    const long sizes[] = {1, 2, 7, 8, 15, 16, 17, 24, 40, 100};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        long m = sizes[k];
        float *a = malloc(sizeof(float) * (size_t)(m * m));
        for (long i = 0; i < m * m; i++)
            a[i] = (float)i;
        muon__mirror_upper(a, m);
        for (long i = 0; i < m; i++)
            for (long j = 0; j < m; j++)
                ASSERT_EQ_INT((long)a[i * m + j], i <= j ? i * m + j : j * m + i);
        free(a);
    }
}
