/* The optimizers: Muon and AdamW against double-precision references written
 * here with plain loops, hand-checked small cases, the hybrid routing, the
 * moonlight update RMS, N-D views, non-finite gradients, bad input and
 * agreement across thread counts. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "harness.h"
#include "ref_ortho.h"
#include "testutil.h"

static muon_opt_config svd_config(void)
{
    muon_opt_config c = muon_opt_config_default();
    c.ortho.method = MUON_ORTHO_SVD;
    return c;
}

static double ref_scale(muon_scale_rule r, long rows, long cols)
{
    double m = (double)rows, n = (double)cols;
    switch (r) {
    case MUON_SCALE_MOONLIGHT:
        return 0.2 * sqrt(m > n ? m : n);
    case MUON_SCALE_KELLER:
        return m > n ? sqrt(m / n) : 1.0;
    case MUON_SCALE_SPECTRAL:
        return sqrt(m / n);
    default:
        return 1.0;
    }
}

/* One Muon step in double (docs/algorithms.md 2) with the exact polar factor. */
static int ref_muon_step(double *w, double *m, const float *g, long rows, long cols, double lr,
                         double mu, int nesterov, double wd, double scale)
{
    size_t n = (size_t)(rows * cols);
    float *nf = malloc(n * sizeof *nf);
    double *o = malloc(n * sizeof *o);
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] + g[i];
        nf[i] = (float)(nesterov ? g[i] + mu * m[i] : m[i]);
    }
    int rc = tu_polar_ref(nf, rows, cols, o);
    for (size_t i = 0; i < n; i++)
        w[i] = w[i] * (1.0 - lr * wd) - lr * scale * o[i];
    free(nf);
    free(o);
    return rc;
}

/* One AdamW step in double (docs/algorithms.md 3); t counts from 1. */
static void ref_adamw_step(double *w, double *m, double *v, const float *g, size_t n, double lr,
                           double b1, double b2, double eps, double wd, long t)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1 - b1) * g[i];
        v[i] = b2 * v[i] + (1 - b2) * (double)g[i] * g[i];
        double mh = m[i] / (1 - pow(b1, (double)t)), vh = v[i] / (1 - pow(b2, (double)t));
        w[i] = w[i] * (1 - lr * wd) - lr * mh / (sqrt(vh) + eps);
    }
}

TEST(optim_config_default_and_validate)
{
    muon_opt_config c = muon_opt_config_default();
    ASSERT_EQ_INT(c.algo, MUON_ALGO_MUON);
    ASSERT_NEAR(c.lr, 1e-3, 0);
    ASSERT_NEAR(c.momentum, 0.95, 0);
    ASSERT_EQ_INT(c.nesterov, 1);
    ASSERT_NEAR(c.weight_decay, 0.1, 0);
    ASSERT_EQ_INT(c.scale, MUON_SCALE_MOONLIGHT);
    ASSERT_NEAR(c.adam_beta1, 0.9, 0);
    ASSERT_NEAR(c.adam_beta2, 0.95, 0);
    ASSERT_NEAR(c.adam_eps, 1e-8, 0);
    ASSERT_NEAR(c.adam_weight_decay, 0.1, 0);
    ASSERT_OK(muon_opt_config_validate(&c));
    ASSERT_STATUS(muon_opt_config_validate(NULL), MUON_ERR_NULL);

    muon_opt_config b;
    b = c, b.lr = NAN;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.lr = -1;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.momentum = -0.1;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.nesterov = 2;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.weight_decay = INFINITY;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.scale = MUON_SCALE_COUNT;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.algo = MUON_ALGO_COUNT;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.adam_beta1 = 1.0;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.adam_beta2 = -0.5;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.adam_eps = 0;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.adam_lr = NAN;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.ortho.steps = -3;
    ASSERT(muon_opt_config_validate(&b) != MUON_OK);

    muon_opt *opt = (muon_opt *)&b; /* must stay untouched on failure */
    b = c, b.lr = -1;
    ASSERT_STATUS(muon_opt_create(&b, &opt), MUON_ERR_ARG);
    ASSERT(opt == (muon_opt *)&b);
    ASSERT_STATUS(muon_opt_create(NULL, &opt), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_create(&c, NULL), MUON_ERR_NULL);
}

TEST(optim_names_and_scale_factor)
{
    const char *scales[] = {"moonlight", "keller", "spectral", "none"};
    for (int i = 0; i < 4; i++) {
        muon_scale_rule r;
        ASSERT_OK(muon_scale_parse(scales[i], &r));
        ASSERT_EQ_INT(r, i);
        ASSERT(strcmp(muon_scale_name(r), scales[i]) == 0);
    }
    const char *roles[] = {"matrix", "embedding", "head", "vector"};
    for (int i = 0; i < 4; i++) {
        muon_role r;
        ASSERT_OK(muon_role_parse(roles[i], &r));
        ASSERT_EQ_INT(r, i);
        ASSERT(strcmp(muon_role_name(r), roles[i]) == 0);
    }
    muon_scale_rule r = MUON_SCALE_KELLER;
    ASSERT_STATUS(muon_scale_parse("Moonlight", &r), MUON_ERR_ARG);
    ASSERT_EQ_INT(r, MUON_SCALE_KELLER);
    ASSERT_STATUS(muon_scale_parse(NULL, &r), MUON_ERR_NULL);
    muon_role role = MUON_ROLE_HEAD;
    ASSERT_STATUS(muon_role_parse("bias", &role), MUON_ERR_ARG);
    ASSERT_EQ_INT(role, MUON_ROLE_HEAD);
    ASSERT(muon_scale_name((muon_scale_rule)99) != NULL);
    ASSERT(muon_role_name((muon_role)-1) != NULL);

    /* hand-checked values */
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_MOONLIGHT, 100, 400), 0.2 * 20, 1e-12);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_MOONLIGHT, 400, 100), 0.2 * 20, 1e-12);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_KELLER, 400, 100), 2.0, 1e-12);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_KELLER, 100, 400), 1.0, 1e-12);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_SPECTRAL, 100, 400), 0.5, 1e-12);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_SPECTRAL, 400, 100), 2.0, 1e-12);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_NONE, 7, 3), 1.0, 0);
    ASSERT_NEAR(muon_scale_factor(MUON_SCALE_NONE, 0, 3), 0.0, 0);
}

/* Muon over several steps, every scale rule, Nesterov on and off, against
 * the double reference with the exact polar factor. */
TEST(optim_muon_matches_reference)
{
    const long shapes[2][2] = {{6, 4}, {3, 8}};
    for (int nest = 0; nest <= 1; nest++)
        for (int sc = 0; sc < MUON_SCALE_COUNT; sc++) {
            tu_rng rng;
            tu_seed(&rng, mt_seed + (uint64_t)(10 * nest + sc));
            muon_opt_config cfg = svd_config();
            cfg.lr = 0.05;
            cfg.momentum = 0.9;
            cfg.nesterov = nest;
            cfg.weight_decay = 0.3;
            cfg.scale = (muon_scale_rule)sc;
            cfg.threads = 1;
            muon_opt *opt;
            ASSERT_OK(muon_opt_create(&cfg, &opt));
            float w[2][32], g[2][32];
            double rw[2][32], rm[2][32] = {{0}};
            for (int p = 0; p < 2; p++) {
                size_t n = (size_t)(shapes[p][0] * shapes[p][1]);
                tu_fill_normal(&rng, w[p], n, 1.0);
                for (size_t i = 0; i < n; i++)
                    rw[p][i] = w[p][i];
                char name[16];
                snprintf(name, sizeof name, "m%d", p);
                ASSERT_OK(muon_opt_add_param(opt, name, w[p], g[p], 2, shapes[p],
                                             MUON_ROLE_MATRIX, NULL));
            }
            ASSERT_OK(muon_opt_finalize(opt));
            for (int step = 0; step < 4; step++) {
                for (int p = 0; p < 2; p++)
                    tu_fill_normal(&rng, g[p], (size_t)(shapes[p][0] * shapes[p][1]), 1.0);
                ASSERT_OK(muon_opt_step(opt, 1.0));
                for (int p = 0; p < 2; p++) {
                    long r = shapes[p][0], c = shapes[p][1];
                    ASSERT_EQ_INT(ref_muon_step(rw[p], rm[p], g[p], r, c, cfg.lr, cfg.momentum,
                                                nest, cfg.weight_decay, ref_scale(cfg.scale, r, c)),
                                  0);
                    ASSERT_LE(tu_max_abs_diff_fd(w[p], rw[p], (size_t)(r * c)), 2e-5);
                }
            }
            muon_param_info info;
            ASSERT_OK(muon_opt_param_info(opt, 1, &info));
            ASSERT_EQ_INT(info.steps, 4);
            ASSERT_EQ_INT(info.uses_muon, 1);
            muon_opt_free(opt);
        }
}

/* Cases small enough to check by hand. */
TEST(optim_muon_hand_checked)
{
    /* 1x2: polar([3, 4]) = [0.6, 0.8]. mu = 0 so N = G. */
    muon_opt_config cfg = svd_config();
    cfg.lr = 0.5;
    cfg.momentum = 0;
    cfg.weight_decay = 0.2;
    cfg.scale = MUON_SCALE_NONE;
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w[2] = {1, -1}, g[2] = {3, 4};
    long s12[2] = {1, 2};
    ASSERT_OK(muon_opt_add_param(opt, "row", w, g, 2, s12, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    /* W = 0.9 W - 0.5 [0.6, 0.8] */
    ASSERT_NEAR(w[0], 0.6, 1e-6);
    ASSERT_NEAR(w[1], -1.3, 1e-6);
    muon_opt_free(opt);

    /* 2x2 diagonal, Nesterov with mu = 0.5, moonlight scale 0.2 sqrt(2):
     * step 1: M = G1 = diag(2, .5), N = 1.5 G1, polar = I
     * step 2: G2 = diag(1, -1): M = diag(2, -.75), N = G2 + .5 M = diag(2, -1.375),
     *         polar = diag(1, -1). */
    cfg = svd_config();
    cfg.lr = 0.1;
    cfg.momentum = 0.5;
    cfg.nesterov = 1;
    cfg.weight_decay = 0;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w2[4] = {0, 0, 0, 0}, g2[4] = {2, 0, 0, 0.5f};
    long s22[2] = {2, 2};
    ASSERT_OK(muon_opt_add_param(opt, "diag", w2, g2, 2, s22, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    double s = 0.1 * 0.2 * sqrt(2.0);
    ASSERT_NEAR(w2[0], -s, 1e-6);
    ASSERT_NEAR(w2[1], 0, 1e-6);
    ASSERT_NEAR(w2[2], 0, 1e-6);
    ASSERT_NEAR(w2[3], -s, 1e-6);
    g2[0] = 1, g2[3] = -1;
    ASSERT_OK(muon_opt_step(opt, 1.0));
    ASSERT_NEAR(w2[0], -2 * s, 1e-6);
    ASSERT_NEAR(w2[3], 0, 1e-6);
    /* a rotation: polar([[0, 3], [-2, 0]]) = [[0, 1], [-1, 0]] */
    muon_opt_free(opt);
    cfg.momentum = 0;
    cfg.scale = MUON_SCALE_NONE;
    cfg.lr = 1;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w3[4] = {0, 0, 0, 0}, g3[4] = {0, 3, -2, 0};
    ASSERT_OK(muon_opt_add_param(opt, "rot", w3, g3, 2, s22, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    ASSERT_NEAR(w3[0], 0, 1e-6);
    ASSERT_NEAR(w3[1], -1, 1e-6);
    ASSERT_NEAR(w3[2], 1, 1e-6);
    ASSERT_NEAR(w3[3], 0, 1e-6);
    muon_opt_free(opt);
}

/* Momentum must not be normalized in place (a known bug elsewhere). With
 * mu = 1, no Nesterov and G = [3, 0], [3, 0], [-3, 0] the true momentum is
 * [3, 0], [6, 0], [3, 0], so all three updates are -[1, 0] and W ends at
 * [-3, 0]. A momentum replaced by its polar factor would be [1, 0], [1, 0],
 * then [-2, 0], and the last update would go the other way (W = [-1, 0]). */
TEST(optim_muon_momentum_not_normalized)
{
    muon_opt_config cfg = svd_config();
    cfg.lr = 1;
    cfg.momentum = 1;
    cfg.nesterov = 0;
    cfg.weight_decay = 0;
    cfg.scale = MUON_SCALE_NONE;
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w[2] = {0, 0}, g[2] = {3, 0};
    long s[2] = {1, 2};
    ASSERT_OK(muon_opt_add_param(opt, "v", w, g, 2, s, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0)); /* M = 3: w = -1 */
    ASSERT_OK(muon_opt_step(opt, 1.0)); /* M = 6: w = -2 */
    g[0] = -3;
    ASSERT_OK(muon_opt_step(opt, 1.0)); /* M = 3 > 0: w = -3 */
    ASSERT_NEAR(w[0], -3, 1e-6);
    ASSERT_NEAR(w[1], 0, 1e-6);
    muon_opt_free(opt);
}

TEST(optim_adamw_matches_reference)
{
    tu_rng rng;
    tu_seed(&rng, mt_seed + 1);
    muon_opt_config cfg = muon_opt_config_default();
    cfg.algo = MUON_ALGO_ADAMW;
    cfg.adam_lr = 0.01;
    cfg.adam_beta1 = 0.8;
    cfg.adam_beta2 = 0.99;
    cfg.adam_eps = 1e-6;
    cfg.adam_weight_decay = 0.5;
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w[3][15], g[3][15];
    double rw[3][15], rm[3][15] = {{0}}, rv[3][15] = {{0}};
    long sh[3][2] = {{5, 3}, {15, 0}, {3, 5}};
    int nd[3] = {2, 1, 2};
    muon_role roles[3] = {MUON_ROLE_HEAD, MUON_ROLE_VECTOR, MUON_ROLE_MATRIX};
    const char *names[3] = {"head", "bias", "mat"};
    for (int p = 0; p < 3; p++) {
        tu_fill_normal(&rng, w[p], 15, 1.0);
        for (int i = 0; i < 15; i++)
            rw[p][i] = w[p][i];
        ASSERT_OK(muon_opt_add_param(opt, names[p], w[p], g[p], nd[p], sh[p], roles[p], NULL));
    }
    ASSERT_OK(muon_opt_finalize(opt));
    for (long t = 1; t <= 6; t++) {
        for (int p = 0; p < 3; p++)
            tu_fill_normal(&rng, g[p], 15, t % 2 ? 1.0 : 0.01);
        ASSERT_OK(muon_opt_step(opt, 1.0));
        for (int p = 0; p < 3; p++) {
            ref_adamw_step(rw[p], rm[p], rv[p], g[p], 15, cfg.adam_lr, cfg.adam_beta1,
                           cfg.adam_beta2, cfg.adam_eps, cfg.adam_weight_decay, t);
            ASSERT_LE(tu_max_abs_diff_fd(w[p], rw[p], 15), 2e-6);
        }
    }
    muon_param_info info;
    ASSERT_OK(muon_opt_param_info(opt, 2, &info));
    ASSERT_EQ_INT(info.uses_muon, 0); /* algo adamw: even the matrix */
    ASSERT_EQ_INT(info.steps, 6);
    muon_opt_free(opt);
}

/* Step 1 with bias correction: m / (sqrt(v) + eps) = g / (|g| + eps). */
TEST(optim_adamw_first_step_is_sign)
{
    muon_opt_config cfg = muon_opt_config_default();
    cfg.adam_lr = 0.01;
    cfg.adam_weight_decay = 0;
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w[6] = {1, 1, 1, 1, 1, 1}, g[6] = {1e-3f, -2e3f, 0.5f, -7, 0, 3e-2f};
    long s[1] = {6};
    ASSERT_OK(muon_opt_add_param(opt, "v", w, g, 1, s, MUON_ROLE_VECTOR, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    for (int i = 0; i < 6; i++) {
        double want = g[i] > 0 ? 0.99 : g[i] < 0 ? 1.01 : 1.0;
        ASSERT_NEAR(w[i], want, 1e-6);
    }
    muon_opt_free(opt);
}

/* Builds a four-parameter hybrid: two matrices, an embedding, a vector. */
typedef struct {
    float w[4][48], g[4][48];
} small_model;

static muon_status add_small(muon_opt *opt, small_model *m)
{
    long s0[2] = {6, 8}, s1[2] = {8, 6}, s2[2] = {12, 4}, s3[1] = {48};
    muon_status s;
    if ((s = muon_opt_add_param(opt, "h.0.w", m->w[0], m->g[0], 2, s0, MUON_ROLE_MATRIX, NULL)))
        return s;
    if ((s = muon_opt_add_param(opt, "h.1.w", m->w[1], m->g[1], 2, s1, MUON_ROLE_MATRIX, NULL)))
        return s;
    if ((s = muon_opt_add_param(opt, "wte", m->w[2], m->g[2], 2, s2, MUON_ROLE_EMBEDDING, NULL)))
        return s;
    return muon_opt_add_param(opt, "ln.w", m->w[3], m->g[3], 1, s3, MUON_ROLE_VECTOR, NULL);
}

static void fill_small(small_model *m, uint64_t seed, int grads_only)
{
    tu_rng rng;
    tu_seed(&rng, seed);
    for (int p = 0; p < 4; p++) {
        if (!grads_only)
            tu_fill_normal(&rng, m->w[p], 48, 1.0);
        tu_fill_normal(&rng, m->g[p], 48, 1.0);
    }
}

TEST(optim_hybrid_routing_and_groups)
{
    muon_opt_config cfg = svd_config();
    small_model a, b;
    fill_small(&a, mt_seed, 0);
    b = a;
    /* Muon group frozen (lr 0), AdamW group moving */
    cfg.lr = 0;
    cfg.adam_lr = 0.1;
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    ASSERT_OK(add_small(opt, &a));
    ASSERT_OK(muon_opt_finalize(opt));
    int want_muon[4] = {1, 1, 0, 0};
    for (int p = 0; p < 4; p++) {
        muon_param_info info;
        ASSERT_OK(muon_opt_param_info(opt, p, &info));
        ASSERT_EQ_INT(info.uses_muon, want_muon[p]);
    }
    ASSERT_OK(muon_opt_step(opt, 1.0));
    for (int p = 0; p < 4; p++)
        ASSERT_EQ_INT(memcmp(a.w[p], b.w[p], sizeof a.w[p]) == 0, want_muon[p]);
    /* swap the groups with set_lr */
    small_model before = a;
    ASSERT_OK(muon_opt_set_lr(opt, 0.1, 0));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    for (int p = 0; p < 4; p++)
        ASSERT_EQ_INT(memcmp(a.w[p], before.w[p], sizeof a.w[p]) == 0, !want_muon[p]);
    /* lr_mult 0 freezes everything (steps still count) */
    before = a;
    ASSERT_OK(muon_opt_set_lr(opt, 0.1, 0.1));
    ASSERT_OK(muon_opt_step(opt, 0.0));
    ASSERT(memcmp(&a.w, &before.w, sizeof a.w) == 0);
    muon_param_info info;
    ASSERT_OK(muon_opt_param_info(opt, 3, &info));
    ASSERT_EQ_INT(info.steps, 3);
    muon_opt_free(opt);

    /* separate weight decay per group: with zero gradients only decay acts;
     * AdamW's update is 0 / (0 + eps) = 0 */
    cfg = svd_config();
    cfg.lr = 0.1;
    cfg.weight_decay = 0.5;
    cfg.adam_lr = 0.2;
    cfg.adam_weight_decay = 0.1;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    fill_small(&a, mt_seed + 1, 0);
    before = a;
    memset(a.g, 0, sizeof a.g);
    ASSERT_OK(add_small(opt, &a));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < 48; i++)
            ASSERT_NEAR(a.w[p][i], before.w[p][i] * (want_muon[p] ? 0.95 : 0.98), 1e-6);
    muon_opt_free(opt);

    /* lr_mult scales both groups: lr 0.1 x 0.5 == lr 0.05 x 1, bit for bit */
    muon_opt_config c1 = svd_config(), c2 = svd_config();
    c1.lr = 0.1, c1.adam_lr = 0.02;
    c2.lr = 0.05, c2.adam_lr = 0.01;
    muon_opt *o1, *o2;
    fill_small(&a, mt_seed + 2, 0);
    b = a;
    ASSERT_OK(muon_opt_create(&c1, &o1));
    ASSERT_OK(muon_opt_create(&c2, &o2));
    ASSERT_OK(add_small(o1, &a));
    ASSERT_OK(add_small(o2, &b));
    ASSERT_OK(muon_opt_finalize(o1));
    ASSERT_OK(muon_opt_finalize(o2));
    ASSERT_OK(muon_opt_step(o1, 0.5));
    ASSERT_OK(muon_opt_step(o2, 1.0));
    ASSERT(memcmp(&a.w, &b.w, sizeof a.w) == 0);
    ASSERT_OK(muon_opt_step(o1, 1.0));
    ASSERT_OK(muon_opt_step(o2, 1.0));
    ASSERT(memcmp(&a.w, &b.w, sizeof a.w) != 0);
    muon_opt_free(o1);
    muon_opt_free(o2);
}

/* lr = 1, wd = 0, mu = 0: W1 - W0 = -scale O, RMS 0.2 for a full-rank O.
 * The gradient has condition number 10 so that 5 polar-express steps
 * converge well (a square Gaussian matrix has singular values near 0). */
static muon_status moonlight_rms(const muon_ortho_config *oc, long rows, long cols, uint64_t seed,
                                 double *rms, double *ortho_err)
{
    muon_opt_config cfg = muon_opt_config_default();
    cfg.ortho = *oc;
    cfg.lr = 1;
    cfg.momentum = 0;
    cfg.weight_decay = 0;
    size_t n = (size_t)(rows * cols);
    float *w = calloc(n, sizeof *w), *g = malloc(n * sizeof *g), *o = malloc(n * sizeof *o);
    tu_rng rng;
    tu_seed(&rng, seed);
    tu_matrix_with_cond(&rng, g, rows, cols, 10.0);
    muon_opt *opt;
    long s[2] = {rows, cols};
    muon_status st = muon_opt_create(&cfg, &opt);
    if (st == MUON_OK) {
        if ((st = muon_opt_add_param(opt, "m", w, g, 2, s, MUON_ROLE_MATRIX, NULL)) == MUON_OK &&
            (st = muon_opt_finalize(opt)) == MUON_OK && (st = muon_opt_step(opt, 1.0)) == MUON_OK) {
            *rms = tu_rms(w, n);
            double sc = 0.2 * sqrt((double)(rows > cols ? rows : cols));
            for (size_t i = 0; i < n; i++)
                o[i] = (float)(-w[i] / sc);
            st = muon_ortho_error(o, rows, cols, ortho_err);
        }
        muon_opt_free(opt);
    }
    free(w);
    free(g);
    free(o);
    return st;
}

TEST(optim_moonlight_update_rms)
{
    const long shapes[3][2] = {{64, 64}, {32, 96}, {96, 40}};
    for (int k = 0; k < 3; k++) {
        double rms, err;
        muon_ortho_config svd = muon_ortho_config_default();
        svd.method = MUON_ORTHO_SVD;
        ASSERT_OK(moonlight_rms(&svd, shapes[k][0], shapes[k][1], mt_seed + (uint64_t)k, &rms,
                                &err));
        ASSERT_NEAR(rms, 0.2, 0.002);
        ASSERT_LE(err, 1e-4);
        /* the default (polar-express) is within its own orthogonality error:
         * RMS(O) sqrt(max) is a mean of the singular values squared */
        muon_ortho_config def = muon_ortho_config_default();
        ASSERT_OK(moonlight_rms(&def, shapes[k][0], shapes[k][1], mt_seed + (uint64_t)k, &rms,
                                &err));
        ASSERT_LE(err, 0.3); /* sanity: it did orthogonalize */
        ASSERT_NEAR(rms, 0.2, 0.2 * err + 1e-4);
    }
}

/* A 4x3x2x2 conv kernel is updated exactly as the 4x12 matrix it views. */
TEST(optim_nd_param_viewed_as_matrix)
{
    tu_rng rng;
    tu_seed(&rng, mt_seed);
    float w4[48], w2[48], g[48];
    tu_fill_normal(&rng, w4, 48, 1.0);
    memcpy(w2, w4, sizeof w4);
    muon_opt_config cfg = muon_opt_config_default();
    cfg.lr = 0.1;
    muon_opt *a, *b;
    ASSERT_OK(muon_opt_create(&cfg, &a));
    ASSERT_OK(muon_opt_create(&cfg, &b));
    long s4[4] = {4, 3, 2, 2}, s2[2] = {4, 12};
    ASSERT_OK(muon_opt_add_param(a, "conv", w4, g, 4, s4, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_add_param(b, "conv", w2, g, 2, s2, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(a));
    ASSERT_OK(muon_opt_finalize(b));
    muon_param_info info;
    ASSERT_OK(muon_opt_param_info(a, 0, &info));
    ASSERT_EQ_INT(info.ndim, 4);
    ASSERT_EQ_INT(info.rows, 4);
    ASSERT_EQ_INT(info.cols, 12);
    ASSERT_EQ_INT(info.shape[3], 2);
    for (int step = 0; step < 3; step++) {
        tu_fill_normal(&rng, g, 48, 1.0);
        ASSERT_OK(muon_opt_step(a, 1.0));
        ASSERT_OK(muon_opt_step(b, 1.0));
    }
    ASSERT(memcmp(w4, w2, sizeof w4) == 0);
    /* 1-D is (1, n) */
    long s1[1] = {48};
    float w1[48] = {0};
    muon_opt *c;
    ASSERT_OK(muon_opt_create(&cfg, &c));
    ASSERT_OK(muon_opt_add_param(c, "b", w1, g, 1, s1, MUON_ROLE_VECTOR, NULL));
    ASSERT_OK(muon_opt_param_info(c, 0, &info));
    ASSERT_EQ_INT(info.rows, 1);
    ASSERT_EQ_INT(info.cols, 48);
    ASSERT_EQ_INT(muon_opt_state_bytes(c), 2 * 48 * 4);
    ASSERT_EQ_INT(muon_opt_state_bytes(a), 48 * 4);
    muon_opt_free(a);
    muon_opt_free(b);
    muon_opt_free(c);
}

TEST(optim_nonfinite_gradient_refused)
{
    muon_opt_config cfg = svd_config();
    cfg.lr = 0.1;
    cfg.adam_lr = 0.1;
    for (int bad = 0; bad < 4; bad++) { /* NaN/Inf in a Muon and in an AdamW param */
        small_model a, ref;
        fill_small(&a, mt_seed, 0);
        ref = a;
        muon_opt *opt, *fresh;
        ASSERT_OK(muon_opt_create(&cfg, &opt));
        ASSERT_OK(muon_opt_create(&cfg, &fresh));
        ASSERT_OK(add_small(opt, &a));
        ASSERT_OK(add_small(fresh, &ref));
        ASSERT_OK(muon_opt_finalize(opt));
        ASSERT_OK(muon_opt_finalize(fresh));
        int victim = bad < 2 ? 1 : 3;
        small_model before = a;
        a.g[victim][5] = bad % 2 ? INFINITY : NAN;
        ASSERT_STATUS(muon_opt_step(opt, 1.0), MUON_ERR_NONFINITE);
        const char *names[4] = {"h.0.w", "h.1.w", "wte", "ln.w"};
        ASSERT(strstr(muon_opt_error(opt), names[victim]) != NULL);
        ASSERT(strstr(muon_opt_error(opt), names[victim == 1 ? 0 : 1]) == NULL);
        for (int p = 0; p < 4; p++) {
            int same = memcmp(a.w[p], before.w[p], sizeof a.w[p]) == 0;
            ASSERT_EQ_INT(same, p == victim);
            muon_param_info info;
            ASSERT_OK(muon_opt_param_info(opt, p, &info));
            ASSERT_EQ_INT(info.skipped, p == victim);
            ASSERT_EQ_INT(info.steps, p == victim ? 0 : 1);
        }
        /* its state is untouched: its next good step equals a fresh first step */
        fill_small(&a, mt_seed + 7, 1);
        ASSERT_OK(muon_opt_step(opt, 1.0));
        ASSERT(strcmp(muon_opt_error(opt), "") == 0);
        memcpy(ref.g, a.g, sizeof a.g);
        ASSERT_OK(muon_opt_step(fresh, 1.0));
        ASSERT(memcmp(a.w[victim], ref.w[victim], sizeof a.w[victim]) == 0);
        muon_param_info info;
        ASSERT_OK(muon_opt_param_info(opt, victim, &info));
        ASSERT_EQ_INT(info.skipped, 0);
        ASSERT_EQ_INT(info.steps, 1);
        muon_opt_free(opt);
        muon_opt_free(fresh);
    }
}

/* Many refused parameters: the message lists what fits and counts the rest. */
TEST(optim_nonfinite_many_names)
{
    muon_opt_config cfg = muon_opt_config_default();
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    enum { NPAR = 40 };
    static float w[NPAR][4], g[NPAR][4];
    long s[1] = {4};
    for (int p = 0; p < NPAR; p++) {
        char name[128];
        snprintf(name, sizeof name, "block.%02d.a.rather.long.parameter.name.for.the.message", p);
        g[p][0] = p == 7 ? 1.0f : NAN;
        ASSERT_OK(muon_opt_add_param(opt, name, w[p], g[p], 1, s, MUON_ROLE_VECTOR, NULL));
    }
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_STATUS(muon_opt_step(opt, 1.0), MUON_ERR_NONFINITE);
    const char *msg = muon_opt_error(opt);
    ASSERT(strstr(msg, "block.00.") != NULL);
    ASSERT(strstr(msg, "block.07.") == NULL);
    ASSERT(strstr(msg, "more)") != NULL);
    ASSERT(strlen(msg) < 512);
    muon_param_info info;
    ASSERT_OK(muon_opt_param_info(opt, 7, &info));
    ASSERT_EQ_INT(info.steps, 1);
    ASSERT_OK(muon_opt_param_info(opt, 39, &info));
    ASSERT_EQ_INT(info.skipped, 1);
    muon_opt_free(opt);
}

TEST(optim_bad_input)
{
    muon_opt_config cfg = muon_opt_config_default();
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&cfg, &opt));
    float w[64], g[64];
    memset(w, 0, sizeof w);
    memset(g, 0, sizeof g);
    long s2[2] = {4, 4}, s1[1] = {4};
    ASSERT_STATUS(muon_opt_add_param(NULL, "a", w, g, 2, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_add_param(opt, NULL, w, g, 2, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", NULL, g, 2, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_NULL);
    ASSERT(strstr(muon_opt_error(opt), "'a'") != NULL);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 2, NULL, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 0, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    long s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 9, s9, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    long s0[2] = {4, 0}, sneg[2] = {-4, 4}, sbig[3] = {LONG_MAX / 2, 4, 4};
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 2, s0, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 2, sneg, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 3, sbig, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 1, s1, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_ARG);
    ASSERT(strstr(muon_opt_error(opt), "'a'") != NULL);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, g, 2, s2, (muon_role)7, NULL), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_add_param(opt, "", w, g, 2, s2, MUON_ROLE_MATRIX, NULL), MUON_ERR_ARG);
    char longname[200];
    memset(longname, 'x', 128);
    longname[128] = '\0';
    ASSERT_STATUS(muon_opt_add_param(opt, longname, w, g, 2, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_ARG);
    longname[127] = '\0'; /* 127 bytes is allowed */
    ASSERT_OK(muon_opt_add_param(opt, longname, w + 48, g + 48, 1, s1, MUON_ROLE_VECTOR, NULL));
    /* w and g overlapping, in either order */
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w, w + 15, 2, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_ALIAS);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w + 15, w, 2, s2, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_ALIAS);
    ASSERT(strstr(muon_opt_error(opt), "'a'") != NULL);
    ASSERT_EQ_INT(muon_opt_num_params(opt), 1);
    int idx = -1;
    ASSERT_OK(muon_opt_add_param(opt, "a", w, w + 16, 2, s2, MUON_ROLE_MATRIX, &idx));
    ASSERT_EQ_INT(idx, 1);
    ASSERT_STATUS(muon_opt_add_param(opt, "a", w + 32, g, 1, s1, MUON_ROLE_VECTOR, NULL),
                  MUON_ERR_DUPLICATE);
    ASSERT(strstr(muon_opt_error(opt), "'a'") != NULL);
    ASSERT_EQ_INT(muon_opt_num_params(opt), 2);

    /* buffers */
    long s2b[2] = {4, 5};
    ASSERT_STATUS(muon_opt_set_buffers(opt, 1, w, g, 2, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_set_buffers(opt, 1, w, g, 2, s2b), MUON_ERR_SHAPE);
    ASSERT(strstr(muon_opt_error(opt), "'a'") != NULL);
    ASSERT_STATUS(muon_opt_set_buffers(opt, 1, w, g, 1, s1), MUON_ERR_SHAPE);
    ASSERT_STATUS(muon_opt_set_buffers(opt, 2, w, g, 2, s2), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_set_buffers(opt, -1, w, g, 2, s2), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_set_buffers(opt, 1, NULL, w + 8, 2, s2), MUON_ERR_ALIAS);
    ASSERT_STATUS(muon_opt_set_grad(opt, 1, w + 3), MUON_ERR_ALIAS);
    ASSERT_STATUS(muon_opt_set_grad(opt, 1, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_set_grad(opt, 5, g), MUON_ERR_ARG);
    ASSERT_OK(muon_opt_set_buffers(opt, 1, NULL, NULL, 2, s2)); /* g set later */

    ASSERT_STATUS(muon_opt_step(opt, 1.0), MUON_ERR_STATE); /* before finalize */
    ASSERT_STATUS(muon_opt_load_buffer(opt, "x", 1), MUON_ERR_STATE);
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_STATUS(muon_opt_finalize(opt), MUON_ERR_STATE);
    ASSERT_STATUS(muon_opt_add_param(opt, "late", w + 40, g, 1, s1, MUON_ROLE_VECTOR, NULL),
                  MUON_ERR_STATE);
    ASSERT(strstr(muon_opt_error(opt), "'late'") != NULL);
    ASSERT_EQ_INT(muon_opt_num_params(opt), 2);
    /* gradient NULL at step time names the parameter, changes nothing */
    float before[64];
    memcpy(before, w, sizeof w);
    w[0] = 1;
    memcpy(before, w, sizeof w);
    ASSERT_STATUS(muon_opt_step(opt, 1.0), MUON_ERR_NULL);
    ASSERT(strstr(muon_opt_error(opt), "'a'") != NULL);
    ASSERT(memcmp(before, w, sizeof w) == 0);
    ASSERT_OK(muon_opt_set_grad(opt, 1, g + 16));
    ASSERT_STATUS(muon_opt_step(opt, NAN), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_step(opt, -1.0), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_step(opt, INFINITY), MUON_ERR_ARG);
    ASSERT(memcmp(before, w, sizeof w) == 0);
    ASSERT_STATUS(muon_opt_set_lr(opt, -1, 0.1), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_set_lr(opt, 0.1, NAN), MUON_ERR_ARG);
    ASSERT_OK(muon_opt_step(opt, 1.0));
    ASSERT(strcmp(muon_opt_error(opt), "") == 0);
    muon_param_info info;
    ASSERT_STATUS(muon_opt_param_info(opt, 2, &info), MUON_ERR_ARG);
    ASSERT_STATUS(muon_opt_param_info(opt, 0, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_step(NULL, 1.0), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_finalize(NULL), MUON_ERR_NULL);
    ASSERT_EQ_INT(muon_opt_num_params(NULL), 0);
    ASSERT(muon_opt_error(NULL) != NULL);
    muon_opt_free(opt);
    muon_opt_free(NULL);
}

/* the steps of the thread-count test */
enum { THREAD_STEPS = 3 };

static muon_opt_config thread_config(int threads, muon_ortho_method method)
{
    muon_opt_config cfg = muon_opt_config_default();
    cfg.ortho.method = method;
    cfg.threads = threads;
    cfg.lr = 0.02;
    cfg.adam_lr = 0.01;
    return cfg;
}

static int run_threads(int threads, muon_ortho_method method, long big_rows, long big_cols,
                       float *out, size_t *n_out)
{
    const long shapes[6][2] = {{big_rows, big_cols}, {64, 96}, {96, 64}, {64, 64}, {300, 256},
                               {1, 96}};
    const muon_role roles[6] = {MUON_ROLE_MATRIX, MUON_ROLE_MATRIX, MUON_ROLE_MATRIX,
                                MUON_ROLE_MATRIX, MUON_ROLE_EMBEDDING, MUON_ROLE_VECTOR};
    muon_opt_config cfg = thread_config(threads, method);
    muon_opt *opt;
    if (muon_opt_create(&cfg, &opt) != MUON_OK)
        return -1;
    size_t total = 0, off[6];
    for (int p = 0; p < 6; p++) {
        off[p] = total;
        total += (size_t)(shapes[p][0] * shapes[p][1]);
    }
    float *w = out, *g = malloc(total * sizeof *g);
    tu_rng rng;
    tu_seed(&rng, mt_seed + 99);
    tu_fill_normal(&rng, w, total, 0.1);
    int rc = 0;
    for (int p = 0; p < 6 && !rc; p++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", p);
        long s1[1] = {shapes[p][1]};
        int nd = roles[p] == MUON_ROLE_VECTOR ? 1 : 2;
        rc = muon_opt_add_param(opt, name, w + off[p], g + off[p], nd,
                                nd == 1 ? s1 : shapes[p], roles[p], NULL);
    }
    if (!rc)
        rc = muon_opt_finalize(opt);
    for (int step = 0; step < THREAD_STEPS && !rc; step++) {
        tu_fill_normal(&rng, g, total, 1.0);
        rc = muon_opt_step(opt, 1.0);
    }
    muon_opt_free(opt);
    free(g);
    *n_out = total;
    return rc;
}

static char plan_log[512];
static void capture_log(void *user, const char *msg)
{
    (void)user;
    if (strstr(msg, "plan"))
        snprintf(plan_log, sizeof plan_log, "%s", msg);
}

/* The float32 tolerance of one parameter after run_threads's steps, from
 * the rounding model of tests/ref_ortho.h: the steps' momentum and Nesterov
 * inputs are rebuilt in double, and each orthogonalization contributes lr
 * scale times its model tolerance (SVD: a backward error of u sqrt(k)
 * ||N|| moves the polar factor by at most 2 ||dN|| / s_min); every
 * elementwise update (weight decay, AdamW) rounds a few times per element
 * and step, bounded against the weights and the largest total change. */
typedef struct {
    const muon_opt_config *cfg;
    const float *w0;             /* the weights before the first step */
    float *const *grads;         /* THREAD_STEPS gradients of `total` floats */
    const float *w_end;          /* the weights after the last step */
} thread_case;


static double thread_tol(const thread_case *tc, size_t off, long rows, long cols, int muon)
{
    size_t n = (size_t)(rows * cols);
    double wmax = 0, change = 0, ortho = 0;
    for (size_t i = 0; i < n; i++) {
        wmax = fmax(wmax, fmax(fabs(tc->w0[off + i]), fabs(tc->w_end[off + i])));
        change = fmax(change, fabs(tc->w_end[off + i] - tc->w0[off + i]));
    }
    if (muon) {
        const muon_opt_config *c = tc->cfg;
        double *mom = calloc(n, sizeof *mom), *exact = malloc(n * sizeof *exact);
        float *nf = malloc(n * sizeof *nf);
        double scale = muon_scale_factor(c->scale, rows, cols);
        for (int t = 0; t < THREAD_STEPS; t++) {
            const float *g = tc->grads[t] + off;
            for (size_t i = 0; i < n; i++) {
                mom[i] = c->momentum * mom[i] + g[i];
                nf[i] = (float)(c->nesterov ? g[i] + c->momentum * mom[i] : mom[i]);
            }
            double tol;
            if (c->ortho.method == MUON_ORTHO_SVD) {
                long k = rows < cols ? rows : cols;
                double *sv = malloc((size_t)k * sizeof *sv);
                tol = tu_singular_values(nf, rows, cols, sv) == 0
                          ? REF_SAFETY * 2 * sqrt((double)(rows > cols ? rows : cols)) * REF_U32 *
                                sv[0] / sv[k - 1]
                          : INFINITY;
                free(sv);
            } else {
                ref_ortho(&c->ortho, 0, nf, rows, cols, NULL, exact);
                tol = ref_ortho_tol(&c->ortho, nf, rows, cols, exact);
            }
            ortho += c->lr * scale * tol;
        }
        free(mom);
        free(exact);
        free(nf);
    }
    /* both runs round each element's update a few times (<= 16) a step */
    return ortho + 2.0 * THREAD_STEPS * 16 * REF_U32 * (wmax + change);
}

/* Thread counts 1 and 2 agree within float32 rounding: the set includes one
 * matrix that dominates the cost (run alone with threaded BLAS at 2
 * threads), several small ones spread over OpenMP threads, and an
 * embedding big enough to be split by elements. The big one is square-ish
 * (NS), 200 x 700 (Gram NS) or run through the SVD. The thread count may
 * change the bits (another BLAS blocking), not more than rounding can. */
TEST(optim_threads_1_and_2_agree)
{
    static const struct {
        muon_ortho_method method;
        long rows, cols; /* the matrix that runs alone at 2 threads */
    } cases[4] = {{MUON_ORTHO_AUTO, 256, 192},
                  {MUON_ORTHO_AUTO, 200, 700},
                  {MUON_ORTHO_SVD, 256, 192},
                  {MUON_ORTHO_AUTO, 320, 256}};
    const long small[5][2] = {{64, 96}, {96, 64}, {64, 64}, {300, 256}, {1, 96}};
    const size_t n_small = 2 * 64 * 96 + 64 * 64 + 300 * 256 + 96, most = 200 * 700;
    float *a = malloc((most + n_small) * sizeof *a), *b = malloc((most + n_small) * sizeof *b);
    float *w0 = malloc((most + n_small) * sizeof *w0), *g[THREAD_STEPS];
    for (int t = 0; t < THREAD_STEPS; t++)
        g[t] = malloc((most + n_small) * sizeof *g[t]);
    for (int m = 0; m < 4; m++) {
        const size_t big = (size_t)(cases[m].rows * cases[m].cols), cap = big + n_small;
        size_t na, nb;
        ASSERT_EQ_INT(run_threads(1, cases[m].method, cases[m].rows, cases[m].cols, a, &na), 0);
        plan_log[0] = '\0';
        muon_set_log(capture_log, NULL);
        int rc = run_threads(2, cases[m].method, cases[m].rows, cases[m].cols, b, &nb);
        muon_set_log(NULL, NULL);
        ASSERT_EQ_INT(rc, 0);
        /* every phase of the step ran */
        ASSERT(strstr(plan_log, "1 alone") != NULL);
        ASSERT(strstr(plan_log, "(2 OpenMP threads") != NULL);
        ASSERT(strstr(plan_log, "1 split by elements") != NULL);
        ASSERT_EQ_INT(na, cap);
        ASSERT_EQ_INT(nb, cap);
        /* the inputs run_threads drew, in its order */
        tu_rng rng;
        tu_seed(&rng, mt_seed + 99);
        tu_fill_normal(&rng, w0, cap, 0.1);
        for (int t = 0; t < THREAD_STEPS; t++)
            tu_fill_normal(&rng, g[t], cap, 1.0);
        muon_opt_config cfg = thread_config(1, cases[m].method);
        thread_case tc = {&cfg, w0, g, a};
        size_t off = 0;
        for (int p = 0; p < 6; p++) {
            long rows = p ? small[p - 1][0] : cases[m].rows;
            long cols = p ? small[p - 1][1] : cases[m].cols;
            size_t n = (size_t)(rows * cols);
            double tol = thread_tol(&tc, off, rows, cols, p < 4);
            double d = tu_max_abs_diff_ff(a + off, b + off, n);
            if (!(d <= tol))
                printf("    case %d param %d (%ld x %ld): 1 vs 2 threads %.3g > tol %.3g\n", m, p,
                       rows, cols, d, tol);
            ASSERT_LE(d, tol);
            off += n;
        }
    }
    for (int t = 0; t < THREAD_STEPS; t++)
        free(g[t]);
    free(w0);
    free(a);
    free(b);
}
