/* The Muon family (docs/algorithms.md section 4): SGD with momentum, SCALE,
 * F-Muon, S-Muon, Fanion-k, MuonAll, AdamW-Muon, spectrum shaping and 3-D
 * expert stacks, each against a double-precision step written here from
 * the formulas (tests/ref_family.h for the tolerances), with bad input and
 * refused non-finite gradients. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ref_family.h"
#include "ref_ortho.h"
#include "testutil.h"

#define U REF_U32
#define MAXN 256

typedef struct {
    const char *name;
    muon_role role;
    int ndim;
    long shape[3];
} pspec;

typedef struct {
    float w[MAXN], g[MAXN];
    double rw[MAXN], rm[MAXN], rv[MAXN];
    double tol;
    long t; /* updates so far */
} pstate;

static size_t numel(const pspec *p)
{
    size_t n = 1;
    for (int d = 0; d < p->ndim; d++)
        n *= (size_t)p->shape[d];
    return n;
}

static double ref_scale(muon_scale_rule r, long rows, long cols)
{
    double m = (double)rows, n = (double)cols;
    switch (r) {
    case MUON_SCALE_MOONLIGHT:
        return 0.2 * sqrt(fmax(m, n));
    case MUON_SCALE_KELLER:
        return sqrt(fmax(1.0, m / n));
    case MUON_SCALE_SPECTRAL:
        return sqrt(m / n);
    default:
        return 1.0;
    }
}

static double sgn(double x)
{
    return (x > 0) - (x < 0);
}

/* AdamW, as in section 3; returns the step's tolerance increment. */
static double ref_adamw(const muon_opt_config *c, double *w, double *m, double *v, const float *g,
                        size_t n, long t, double lr)
{
    double inc = 0;
    for (size_t i = 0; i < n; i++) {
        m[i] = c->adam_beta1 * m[i] + (1 - c->adam_beta1) * g[i];
        v[i] = c->adam_beta2 * v[i] + (1 - c->adam_beta2) * (double)g[i] * g[i];
        double mh = m[i] / (1 - pow(c->adam_beta1, (double)t));
        double vh = v[i] / (1 - pow(c->adam_beta2, (double)t));
        double d = lr * mh / (sqrt(vh) + c->adam_eps);
        double nw = w[i] * (1 - lr * c->adam_weight_decay) - d;
        inc = fmax(inc, REF_FAMILY_ELEM * U * (fabs(w[i]) + fabs(nw - w[i])));
        w[i] = nw;
    }
    return inc;
}

/* M = mu M + G (M from zero when fresh), N = G + mu M or M. */
static void ref_momentum(const muon_opt_config *c, double *m, const float *g, size_t n, int fresh,
                         double *nn)
{
    for (size_t i = 0; i < n; i++) {
        m[i] = (fresh ? 0 : c->momentum * m[i]) + g[i];
        nn[i] = c->nesterov ? g[i] + c->momentum * m[i] : m[i];
    }
}

/* SCALE's u for a rows x cols matrix x, per row (by_col 0) or column. */
static void ref_scale_dir(const double *x, long rows, long cols, int by_col, double *u)
{
    long lines = by_col ? cols : rows, len = by_col ? rows : cols;
    for (long l = 0; l < lines; l++) {
        double ss = 0;
        for (long j = 0; j < len; j++) {
            double e = by_col ? x[j * cols + l] : x[l * cols + j];
            ss += e * e;
        }
        double r = fmax(sqrt(ss / (double)len), 1e-8);
        for (long j = 0; j < len; j++) {
            long i = by_col ? j * cols + l : l * cols + j;
            u[i] = x[i] / r;
        }
    }
}

/* One step of parameter p under c: the rule comes from the algorithm and
 * the role as section 4 describes. Returns the tolerance increment. */
static double ref_step(const muon_opt_config *c, const pspec *p, pstate *s, double lr_mult)
{
    size_t n = numel(p);
    long t = ++s->t;
    int matrix = p->role == MUON_ROLE_MATRIX, vector = p->role == MUON_ROLE_VECTOR || p->ndim < 2;
    double lr = c->lr * lr_mult, alr = c->adam_lr * lr_mult;
    muon_algo a = c->algo;
    int adamw = a == MUON_ALGO_ADAMW ||
                (!matrix && (a == MUON_ALGO_MUON || a == MUON_ALGO_FMUON || a == MUON_ALGO_SMUON ||
                             a == MUON_ALGO_FANION_K || a == MUON_ALGO_ADAMW_MUON)) ||
                (a == MUON_ALGO_SCALE && vector) ||
                (a == MUON_ALGO_ADAMW_MUON && t <= c->switch_step);
    if (adamw)
        return ref_adamw(c, s->rw, s->rm, s->rv, s->g, n, t, alr);

    double *nn = malloc(n * sizeof *nn), *u = malloc(n * sizeof *u);
    double decay = 1 - lr * c->weight_decay, factor = 1, inc_o = 0;
    if (a == MUON_ALGO_SGDM) {
        ref_momentum(c, s->rm, s->g, n, 0, nn);
        memcpy(u, nn, n * sizeof *u);
    } else if (a == MUON_ALGO_SCALE) {
        for (size_t i = 0; i < n; i++) {
            if (p->role == MUON_ROLE_HEAD)
                s->rm[i] = 0.9 * s->rm[i] + 0.1 * s->g[i];
            nn[i] = p->role == MUON_ROLE_HEAD ? s->rm[i] : s->g[i];
        }
        ref_scale_dir(nn, p->shape[0], (long)n / p->shape[0], p->role == MUON_ROLE_EMBEDDING, u);
    } else if (a == MUON_ALGO_MUONALL && vector) {
        ref_momentum(c, s->rm, s->g, n, 0, nn);
        for (size_t i = 0; i < n; i++)
            u[i] = sgn(nn[i]);
        factor = c->scale == MUON_SCALE_MOONLIGHT ? 0.2 : 1.0;
    } else {
        /* the orthogonalizing rules, per matrix of a 3-D stack */
        int stack = matrix && p->ndim == 3;
        long e_n = stack ? p->shape[0] : 1, rows = stack ? p->shape[1] : p->shape[0];
        long cols = (long)(n / (size_t)e_n) / rows;
        size_t per = (size_t)(rows * cols);
        int fresh = a == MUON_ALGO_ADAMW_MUON && t == c->switch_step + 1;
        ref_momentum(c, s->rm, s->g, n, fresh, nn);
        factor = ref_scale(c->scale, rows, cols);
        for (long e = 0; e < e_n; e++) {
            const double *ne = nn + e * per;
            double *ue = u + e * per;
            long k_top = a == MUON_ALGO_FANION_K ? c->fanion_k : 1L << 30;
            double power = a == MUON_ALGO_MUON || a == MUON_ALGO_MUONALL ||
                                   a == MUON_ALGO_ADAMW_MUON
                               ? c->spectrum_power
                               : 0.0;
            double to = ref_spectral(ne, rows, cols, k_top, power, (int)t, ue);
            double ss = 0;
            for (size_t i = 0; i < per; i++)
                ss += ne[i] * ne[i];
            double w_o = 1;
            if (a == MUON_ALGO_FMUON || a == MUON_ALGO_SMUON) {
                w_o = c->fanion_alpha;
                for (size_t i = 0; i < per; i++)
                    ue[i] = c->fanion_alpha * ue[i] +
                            (1 - c->fanion_alpha) *
                                (a == MUON_ALGO_FMUON ? (ss > 0 ? ne[i] / sqrt(ss) : 0)
                                                      : c->sign_scale * sgn(ne[i]));
            }
            inc_o = fmax(inc_o, to < 0 ? INFINITY : w_o * to);
        }
    }
    double inc = 0;
    for (size_t i = 0; i < n; i++) {
        double nw = s->rw[i] * decay - lr * factor * u[i];
        inc = fmax(inc, REF_FAMILY_ELEM * U * (fabs(s->rw[i]) + fabs(nw - s->rw[i])));
        s->rw[i] = nw;
    }
    free(nn);
    free(u);
    return inc + lr * factor * inc_o;
}

/* Runs `steps` steps of cfg on the params against the reference; every
 * weight within its derived tolerance after every step. */
static void run_case(const muon_opt_config *cfg, const pspec *ps, int np, int steps,
                     uint64_t seed)
{
    tu_rng rng;
    tu_seed(&rng, mt_seed + seed);
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(cfg, &opt));
    pstate *st = calloc((size_t)np, sizeof *st);
    for (int k = 0; k < np; k++) {
        size_t n = numel(&ps[k]);
        ASSERT(n <= MAXN);
        tu_fill_normal(&rng, st[k].w, n, 1.0);
        for (size_t i = 0; i < n; i++)
            st[k].rw[i] = st[k].w[i];
        ASSERT_OK(muon_opt_add_param(opt, ps[k].name, st[k].w, st[k].g, ps[k].ndim, ps[k].shape,
                                     ps[k].role, NULL));
    }
    ASSERT_OK(muon_opt_finalize(opt));
    int ok = 1;
    for (int step = 0; step < steps && ok; step++) {
        double mult = step == steps - 1 ? 0.5 : 1.0;
        for (int k = 0; k < np; k++)
            tu_fill_normal(&rng, st[k].g, numel(&ps[k]), step % 2 ? 0.1 : 1.0);
        ASSERT_OK(muon_opt_step(opt, mult));
        for (int k = 0; k < np && ok; k++) {
            st[k].tol += ref_step(cfg, &ps[k], &st[k], mult);
            double d = tu_max_abs_diff_fd(st[k].w, st[k].rw, numel(&ps[k]));
            if (!(d <= st[k].tol)) {
                mt_fail(__FILE__, __LINE__, "%s: param %s step %d: diff %.3g > tol %.3g",
                        muon_algo_name(cfg->algo), ps[k].name, step, d, st[k].tol);
                ok = 0;
            }
        }
    }
    free(st);
    muon_opt_free(opt);
}

static const pspec small_model[] = {
    {"wte", MUON_ROLE_EMBEDDING, 2, {7, 4}},
    {"h.qkv", MUON_ROLE_MATRIX, 2, {6, 4}},
    {"h.proj", MUON_ROLE_MATRIX, 2, {3, 8}},
    {"head", MUON_ROLE_HEAD, 2, {5, 4}},
    {"ln", MUON_ROLE_VECTOR, 1, {4}},
};
#define N_SMALL ((int)(sizeof small_model / sizeof small_model[0]))

/* An optimizer of cfg over small_model's params in w and g (random
 * weights and gradients when rng is given), finalized; NULL on failure. */
static muon_opt *small_opt(const muon_opt_config *cfg, float w[][MAXN], float g[][MAXN],
                           tu_rng *rng)
{
    muon_opt *opt;
    if (muon_opt_create(cfg, &opt) != MUON_OK)
        return NULL;
    for (int k = 0; k < N_SMALL; k++) {
        if (rng) {
            tu_fill_normal(rng, w[k], numel(&small_model[k]), 1.0);
            tu_fill_normal(rng, g[k], numel(&small_model[k]), 1.0);
        }
        if (muon_opt_add_param(opt, small_model[k].name, w[k], g[k], small_model[k].ndim,
                               small_model[k].shape, small_model[k].role, NULL) != MUON_OK) {
            muon_opt_free(opt);
            return NULL;
        }
    }
    if (muon_opt_finalize(opt) != MUON_OK) {
        muon_opt_free(opt);
        return NULL;
    }
    return opt;
}

static muon_opt_config family_config(muon_algo algo, int nesterov)
{
    muon_opt_config c = muon_opt_config_default();
    c.algo = algo;
    c.lr = 0.05;
    c.adam_lr = 0.01;
    c.momentum = 0.9;
    c.nesterov = nesterov;
    c.weight_decay = 0.2;
    c.adam_weight_decay = 0.05;
    c.ortho.method = MUON_ORTHO_SVD; /* the exact polar factor the reference computes */
    c.threads = 1;
    return c;
}

TEST(family_algo_names)
{
    const char *names[] = {"muon", "adamw", "sgdm", "scale", "fmuon", "smuon", "fanion-k",
                           "muonall", "adamw-muon"};
    ASSERT_EQ_INT(MUON_ALGO_COUNT, 9);
    for (int i = 0; i < MUON_ALGO_COUNT; i++) {
        muon_algo a;
        ASSERT_OK(muon_algo_parse(names[i], &a));
        ASSERT_EQ_INT(a, i);
        ASSERT(strcmp(muon_algo_name(a), names[i]) == 0);
    }
    muon_algo a = MUON_ALGO_SCALE;
    ASSERT_STATUS(muon_algo_parse("Muon", &a), MUON_ERR_ARG);
    ASSERT_STATUS(muon_algo_parse("fanion", &a), MUON_ERR_ARG);
    ASSERT_STATUS(muon_algo_parse(NULL, &a), MUON_ERR_NULL);
    ASSERT_EQ_INT(a, MUON_ALGO_SCALE);
    muon_opt_config c = muon_opt_config_default();
    ASSERT_NEAR(c.fanion_alpha, 0.5, 0);
    ASSERT_NEAR(c.sign_scale, 0.01, 0);
    ASSERT_EQ_INT(c.fanion_k, 16);
    ASSERT_NEAR(c.spectrum_power, 0, 0);
    ASSERT_EQ_INT(c.switch_step, 0);
}

TEST(family_elementwise_rules_match_reference)
{
    const muon_algo algos[] = {MUON_ALGO_SGDM, MUON_ALGO_SCALE};
    for (int a = 0; a < 2; a++)
        for (int nest = 0; nest <= 1; nest++) {
            muon_opt_config c = family_config(algos[a], nest);
            run_case(&c, small_model, N_SMALL, 4, (uint64_t)(10 * a + nest));
        }
}

TEST(family_ortho_rules_match_reference)
{
    const muon_algo algos[] = {MUON_ALGO_MUON, MUON_ALGO_FMUON, MUON_ALGO_SMUON,
                               MUON_ALGO_FANION_K, MUON_ALGO_MUONALL};
    for (int a = 0; a < 5; a++)
        for (int nest = 0; nest <= 1; nest++) {
            muon_opt_config c = family_config(algos[a], nest);
            c.fanion_k = 2;
            c.fanion_alpha = 0.3;
            c.sign_scale = 0.05;
            c.scale = nest ? MUON_SCALE_MOONLIGHT : MUON_SCALE_KELLER;
            run_case(&c, small_model, N_SMALL, 4, (uint64_t)(100 + 10 * a + nest));
        }
}

TEST(family_spectrum_shaping_matches_reference)
{
    const double powers[] = {0.25, 0.5, 1.0};
    for (int k = 0; k < 3; k++) {
        muon_opt_config c = family_config(MUON_ALGO_MUON, 1);
        c.ortho = muon_ortho_config_default(); /* shaping takes the SVD whatever this says */
        c.spectrum_power = powers[k];
        run_case(&c, small_model, N_SMALL, 3, (uint64_t)(200 + k));
    }
}

/* p = 1 on one step from zero momentum is the gradient scaled to O's
 * Frobenius norm: N sqrt(k) / ||N||_F, checked without an SVD. */
TEST(family_spectrum_power_one_is_normalized_gradient)
{
    muon_opt_config c = family_config(MUON_ALGO_MUON, 0);
    c.spectrum_power = 1.0;
    c.weight_decay = 0;
    c.scale = MUON_SCALE_NONE;
    c.lr = 1.0;
    float w[24] = {0}, g[24];
    tu_rng rng;
    tu_seed(&rng, mt_seed);
    tu_fill_normal(&rng, g, 24, 1.0);
    long sh[2] = {4, 6};
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&c, &opt));
    ASSERT_OK(muon_opt_add_param(opt, "m", w, g, 2, sh, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    ASSERT_OK(muon_opt_step(opt, 1.0));
    double ss = 0;
    for (int i = 0; i < 24; i++)
        ss += (double)g[i] * g[i];
    double want[24];
    for (int i = 0; i < 24; i++)
        want[i] = -g[i] * 2.0 / sqrt(ss);
    /* the SVD's backward error with L = 1 (f is linear) */
    ASSERT_LE(tu_max_abs_diff_fd(w, want, 24), REF_SAFETY * U * (sqrt(6.0) + 3) * 2.0);
    muon_opt_free(opt);
}

/* A [E, rows, cols] stack: each expert orthogonalized on its own, with the
 * scale of its own shape, under the exact polar and the default NS. */
TEST(family_expert_stack_per_matrix)
{
    const pspec stack[] = {{"experts", MUON_ROLE_MATRIX, 3, {3, 5, 4}},
                           {"wide", MUON_ROLE_MATRIX, 3, {2, 3, 7}}};
    for (int sc = 0; sc < 2; sc++) {
        muon_opt_config c = family_config(MUON_ALGO_MUON, 1);
        c.scale = sc ? MUON_SCALE_SPECTRAL : MUON_SCALE_MOONLIGHT;
        run_case(&c, stack, 2, 3, (uint64_t)(300 + sc));
    }
    /* default polar-express NS, one step from zero momentum: the double NS
     * of the same float N within the rounding model's tolerance */
    muon_opt_config c = muon_opt_config_default();
    c.weight_decay = 0;
    c.lr = 1.0;
    c.scale = MUON_SCALE_NONE;
    c.threads = 1;
    float w[60] = {0}, g[60];
    tu_rng rng;
    tu_seed(&rng, mt_seed + 7);
    tu_fill_normal(&rng, g, 60, 1.0);
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&c, &opt));
    ASSERT_OK(muon_opt_add_param(opt, "e", w, g, 3, stack[0].shape, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    muon_param_info info;
    ASSERT_OK(muon_opt_param_info(opt, 0, &info));
    ASSERT_EQ_INT(info.batch, 3);
    ASSERT_EQ_INT(info.rows, 5);
    ASSERT_EQ_INT(info.cols, 4);
    ASSERT(strcmp(info.rule, "muon") == 0);
    ASSERT_OK(muon_opt_step(opt, 1.0));
    float nf[20];
    double exact[20];
    for (int e = 0; e < 3; e++) {
        for (int i = 0; i < 20; i++) {
            float mi = 0.0f * 0.95f + g[e * 20 + i];
            nf[i] = g[e * 20 + i] + 0.95f * mi;
        }
        ref_ortho(&c.ortho, 0, nf, 5, 4, NULL, exact);
        for (int i = 0; i < 20; i++)
            exact[i] = -exact[i];
        double tol = ref_ortho_tol(&c.ortho, nf, 5, 4, exact) + 2 * U;
        ASSERT_LE(tu_max_abs_diff_fd(w + e * 20, exact, 20), tol);
    }
    ASSERT_EQ_INT(muon_opt_state_bytes(opt), 60 * 4);
    muon_opt_free(opt);
}

/* MuonAll: 1-D params take sign(N) (moonlight: 0.2 sign(N)), the
 * embedding and head are ordinary Muon matrices. */
TEST(family_muonall_routes_every_param_through_muon)
{
    muon_opt_config c = family_config(MUON_ALGO_MUONALL, 1);
    float w[5][MAXN], g[5][MAXN];
    muon_opt *opt = small_opt(&c, w, g, NULL);
    ASSERT(opt != NULL);
    const char *want[] = {"muon", "muon", "muon", "muon", "sign"};
    for (int k = 0; k < N_SMALL; k++) {
        muon_param_info info;
        ASSERT_OK(muon_opt_param_info(opt, k, &info));
        ASSERT(strcmp(info.rule, want[k]) == 0);
        ASSERT_EQ_INT(info.uses_muon, k < 4);
    }
    muon_opt_free(opt);
    for (int sc = 0; sc < 2; sc++) {
        c.scale = sc ? MUON_SCALE_NONE : MUON_SCALE_MOONLIGHT;
        run_case(&c, small_model, N_SMALL, 3, (uint64_t)(400 + sc));
    }
}

/* AdamW-Muon: AdamW for switch_step updates, then Muon from a fresh
 * momentum for the hidden matrices, AdamW still for the rest. */
TEST(family_adamw_muon_switch)
{
    muon_opt_config c = family_config(MUON_ALGO_ADAMW_MUON, 1);
    c.switch_step = 2;
    run_case(&c, small_model, N_SMALL, 5, 500);
    muon_opt *opt;
    ASSERT_OK(muon_opt_create(&c, &opt));
    float w[24] = {0}, g[24] = {0};
    long sh[2] = {4, 6};
    ASSERT_OK(muon_opt_add_param(opt, "m", w, g, 2, sh, MUON_ROLE_MATRIX, NULL));
    ASSERT_OK(muon_opt_finalize(opt));
    muon_param_info info;
    for (int step = 0; step < 4; step++) {
        ASSERT_OK(muon_opt_param_info(opt, 0, &info));
        ASSERT_EQ_INT(info.uses_muon, step >= 2);
        ASSERT(strcmp(info.rule, step >= 2 ? "muon" : "adamw") == 0);
        ASSERT_OK(muon_opt_step(opt, 1.0));
    }
    ASSERT_EQ_INT(muon_opt_state_bytes(opt), 2 * 24 * 4);
    muon_opt_free(opt);
}

/* SCALE's memory: no state on hidden matrices and the embedding, one
 * buffer on the head, AdamW's two on vectors. */
TEST(family_scale_state_bytes)
{
    muon_opt_config c = family_config(MUON_ALGO_SCALE, 0);
    float w[5][MAXN], g[5][MAXN];
    muon_opt *opt = small_opt(&c, w, g, NULL);
    ASSERT(opt != NULL);
    ASSERT_EQ_INT(muon_opt_state_bytes(opt), (20 + 2 * 4) * 4);
    muon_opt_free(opt);
}

TEST(family_bad_config)
{
    muon_opt_config c = muon_opt_config_default(), b;
    b = c, b.fanion_alpha = 1.5;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.fanion_alpha = -0.1;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.sign_scale = NAN;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.fanion_k = 0;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.spectrum_power = -1;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.spectrum_power = 9;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.switch_step = -1;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    b = c, b.algo = (muon_algo)-1;
    ASSERT_STATUS(muon_opt_config_validate(&b), MUON_ERR_ARG);
    muon_opt *opt = NULL;
    b = c, b.fanion_k = -3;
    ASSERT_STATUS(muon_opt_create(&b, &opt), MUON_ERR_ARG);
    ASSERT(opt == NULL);
    /* a 3-D stack needs sizes like any matrix */
    ASSERT_OK(muon_opt_create(&c, &opt));
    float w[8], g[8];
    long bad[3] = {2, 0, 4};
    ASSERT_STATUS(muon_opt_add_param(opt, "e", w, g, 3, bad, MUON_ROLE_MATRIX, NULL),
                  MUON_ERR_SIZE);
    ASSERT(strstr(muon_opt_error(opt), "'e'") != NULL);
    ASSERT_EQ_INT(muon_opt_num_params(opt), 0);
    muon_opt_free(opt);
}

/* A non-finite gradient leaves that parameter and its state as they were,
 * for every rule. */
TEST(family_nonfinite_gradient_changes_nothing)
{
    for (int a = 0; a < MUON_ALGO_COUNT; a++) {
        muon_opt_config c = family_config((muon_algo)a, 1);
        c.fanion_k = 2;
        float w[5][MAXN], g[5][MAXN];
        tu_rng rng;
        tu_seed(&rng, mt_seed + (uint64_t)a);
        muon_opt *opt = small_opt(&c, w, g, &rng);
        ASSERT(opt != NULL);
        ASSERT_OK(muon_opt_step(opt, 1.0));
        size_t sz;
        ASSERT_OK(muon_opt_serialized_size(opt, &sz));
        unsigned char *before = malloc(sz), *after = malloc(sz);
        float keep[5][MAXN];
        memcpy(keep, w, sizeof keep);
        ASSERT_OK(muon_opt_save_buffer(opt, before, sz, NULL));
        for (int k = 0; k < N_SMALL; k++)
            g[k][1] = k % 2 ? NAN : INFINITY;
        ASSERT_STATUS(muon_opt_step(opt, 1.0), MUON_ERR_NONFINITE);
        int named = strstr(muon_opt_error(opt), "h.qkv") != NULL;
        ASSERT_OK(muon_opt_save_buffer(opt, after, sz, NULL));
        int same_state = memcmp(before, after, sz) == 0;
        free(before);
        free(after);
        if (!same_state) {
            mt_fail(__FILE__, __LINE__, "%s: state changed by a refused step",
                    muon_algo_name((muon_algo)a));
            muon_opt_free(opt);
            return;
        }
        ASSERT(memcmp(keep, w, sizeof keep) == 0);
        ASSERT(named);
        muon_opt_free(opt);
    }
}

/* Every algorithm's state saves and loads back, and the state of one
 * algorithm is refused by another. */
TEST(family_state_round_trip)
{
    for (int a = 0; a < MUON_ALGO_COUNT; a++) {
        muon_opt_config c = family_config((muon_algo)a, 1);
        c.switch_step = 1;
        float w[5][MAXN], g[5][MAXN];
        tu_rng rng;
        tu_seed(&rng, mt_seed + (uint64_t)a);
        muon_opt *x = small_opt(&c, w, g, &rng), *y = small_opt(&c, w, g, NULL);
        ASSERT(x != NULL && y != NULL);
        ASSERT_OK(muon_opt_step(x, 1.0));
        ASSERT_OK(muon_opt_step(x, 1.0));
        size_t sz, sz2;
        ASSERT_OK(muon_opt_serialized_size(x, &sz));
        unsigned char *b1 = malloc(sz), *b2 = malloc(sz);
        ASSERT_OK(muon_opt_save_buffer(x, b1, sz, NULL));
        ASSERT_OK(muon_opt_load_buffer(y, b1, sz));
        ASSERT_OK(muon_opt_serialized_size(y, &sz2));
        ASSERT_EQ_INT(sz2, sz);
        ASSERT_OK(muon_opt_save_buffer(y, b2, sz, NULL));
        int same = memcmp(b1, b2, sz) == 0;
        free(b2);
        ASSERT(same);
        muon_opt_config o = family_config((muon_algo)((a + 1) % MUON_ALGO_COUNT), 1);
        muon_opt *z = small_opt(&o, w, g, NULL);
        ASSERT(z != NULL);
        ASSERT_STATUS(muon_opt_load_buffer(z, b1, sz), MUON_ERR_MISMATCH);
        free(b1);
        muon_opt_free(x);
        muon_opt_free(y);
        muon_opt_free(z);
    }
}

/* Xmodel-2.5's decay: min + (2 * 0.5^(k/K) - 1) (max - min), K the last
 * decay step; the phase starts where muon_schedule_decay_start says. */
TEST(family_wsd_xmodel_decay)
{
    muon_schedule s = muon_schedule_default();
    ASSERT_EQ_INT(s.decay_shape, MUON_DECAY_LINEAR);
    s.kind = MUON_SCHED_WSD;
    s.total_steps = 100;
    s.warmup_steps = 10;
    s.decay_frac = 0.2;
    s.min_ratio = 0.1;
    s.decay_shape = MUON_DECAY_XMODEL;
    ASSERT_OK(muon_schedule_validate(&s));
    ASSERT_EQ_INT(muon_schedule_decay_start(&s), 80);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 79), 1.0, 0);
    for (long k = 0; k < 20; k++) {
        double want = 0.1 + (2 * pow(0.5, (double)k / 19.0) - 1) * 0.9;
        ASSERT_NEAR(muon_schedule_multiplier(&s, 80 + k), want, 1e-15);
    }
    ASSERT_NEAR(muon_schedule_multiplier(&s, 99), 0.1, 1e-15);
    muon_decay_shape d;
    ASSERT_OK(muon_decay_shape_parse("xmodel", &d));
    ASSERT_EQ_INT(d, MUON_DECAY_XMODEL);
    ASSERT(strcmp(muon_decay_shape_name(MUON_DECAY_LINEAR), "linear") == 0);
    ASSERT_STATUS(muon_decay_shape_parse("exp", &d), MUON_ERR_ARG);
    s.decay_shape = MUON_DECAY_COUNT;
    ASSERT_STATUS(muon_schedule_validate(&s), MUON_ERR_ARG);
    s.kind = MUON_SCHED_COSINE;
    s.decay_shape = MUON_DECAY_LINEAR;
    ASSERT_EQ_INT(muon_schedule_decay_start(&s), 100);
}

/* A stack's experts spread over threads, each with single-threaded BLAS:
 * the same bits as one thread, for NS and for the SVD path. */
TEST(family_expert_stack_threads_agree)
{
    const long shape[3] = {8, 24, 16};
    const size_t n = 8 * 24 * 16;
    for (int m = 0; m < 2; m++) {
        float *w[2], *g = malloc(n * sizeof(float));
        tu_rng rng;
        tu_seed(&rng, mt_seed + (uint64_t)m);
        w[0] = malloc(n * sizeof(float));
        w[1] = malloc(n * sizeof(float));
        tu_fill_normal(&rng, w[0], n, 1.0);
        memcpy(w[1], w[0], n * sizeof(float));
        muon_opt *opt[2];
        for (int k = 0; k < 2; k++) {
            muon_opt_config c = muon_opt_config_default();
            c.threads = k ? 2 : 1;
            if (m)
                c.ortho.method = MUON_ORTHO_SVD;
            ASSERT_OK(muon_opt_create(&c, &opt[k]));
            ASSERT_OK(muon_opt_add_param(opt[k], "experts", w[k], g, 3, shape, MUON_ROLE_MATRIX,
                                         NULL));
            ASSERT_OK(muon_opt_finalize(opt[k]));
        }
        for (int step = 0; step < 3; step++) {
            tu_fill_normal(&rng, g, n, 1.0);
            ASSERT_OK(muon_opt_step(opt[0], 1.0));
            ASSERT_OK(muon_opt_step(opt[1], 1.0));
        }
        int same = memcmp(w[0], w[1], n * sizeof(float)) == 0;
        double d = tu_max_abs_diff_ff(w[0], w[1], n);
        for (int k = 0; k < 2; k++) {
            muon_opt_free(opt[k]);
            free(w[k]);
        }
        free(g);
        if (!same)
            mt_fail(__FILE__, __LINE__, "method %s: 1 and 2 threads differ by %.3g",
                    m ? "svd" : "ns", d);
    }
}
