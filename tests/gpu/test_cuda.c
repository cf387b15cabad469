/* The CUDA backend on a GPU (build/test_cuda; the runner of tests/main.c,
 * so `build/test_cuda NAME` selects cases). Exits 77 when no device is
 * usable. Every result is compared against a reference:
 *
 * - muon_cuda_orthogonalize against tests/ref_ortho.c's double-precision
 *   iteration, with ref_ortho_tol's tolerance: the deviation of a rounding
 *   model of the same iteration (every k-term product perturbed by
 *   u sqrt(k) |a_i| |b_j|, u = 2^-24, plus bf16 operand rounding, 2^-9, in
 *   the bf16 steps of "mixed"), times 8. The model carries the iteration's
 *   own amplification (large first coefficients, Gram NS's squared
 *   spectrum), so the bound is the one the CPU library is held to. Against
 *   the CPU's own result (cpu-ref backend) the bound is twice that: both
 *   sit within it of the exact iteration.
 * - the optimizer against src/optim on the cpu-ref backend (weights) and
 *   against a host loop of the update formulas (state). Momentum and AdamW
 *   are the same IEEE operations in the same order on both sides (the .cu
 *   files are built with -fmad=false; CUDA's / and sqrtf are correctly
 *   rounded), so they must agree exactly. A Muon weight differs by the
 *   orthogonalization: after step k,
 *       d_k = decay d_{k-1} + lr scale (t_gpu + t_cpu) + 3u (|W| + lr scale |O|)
 *   where t is ref_ortho_tol of that step's N (each side's distance to the
 *   exact iteration) and the last term is the rounding of the three float
 *   operations of W = decay W - step O on inputs that already differ. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "../harness.h"
#include "../ref_ortho.h"
#include "../testutil.h"
#include "muon_cuda.h"

#define U32 (1.0 / 16777216.0)

__attribute__((constructor)) static void need_a_gpu(void)
{
    if (muon_cuda_device_count() == 0) {
        printf("test_cuda: no usable CUDA device; skipped\n");
        exit(77);
    }
}

static float *dev_upload(const float *h, size_t n)
{
    void *d = NULL;
    if (cudaMalloc(&d, n * sizeof(float)) != cudaSuccess)
        return NULL;
    if (h && cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return (float *)d;
}

static int dev_download(float *h, const float *d, size_t n)
{
    return cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
}

static double max_abs_fd(const float *a, const double *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN wins */
    }
    return m;
}

typedef struct {
    long rows, cols, batch;
    muon_ortho_method method;
    muon_precision precision;
    muon_coeffs coeffs;
    int taylor_k, steps;
    int in_place;
} ortho_case;

/* One case: GPU against the exact iteration and against the CPU. */
static int ortho_case_ok(muon_cuda *c, muon_backend *ref, const ortho_case *k, int index)
{
    size_t per = (size_t)(k->rows * k->cols), n = per * (size_t)k->batch;
    float *g = malloc(n * sizeof *g), *o = malloc(n * sizeof *o), *cpu = malloc(per * sizeof *cpu);
    double *exact = malloc(per * sizeof *exact);
    tu_rng r;
    tu_seed(&r, mt_seed + (uint64_t)index);
    for (long b = 0; b < k->batch; b++)
        tu_matrix_with_cond(&r, g + (size_t)b * per, k->rows, k->cols, 20.0);
    muon_ortho_config oc = muon_ortho_config_default();
    oc.method = k->method;
    oc.precision = k->precision;
    oc.coeffs = k->coeffs;
    oc.taylor_k = k->taylor_k;
    oc.steps = k->steps;
    float *din = dev_upload(g, n), *dout = k->in_place ? din : dev_upload(NULL, n);
    int ok = din && dout;
    muon_status st = ok ? muon_cuda_orthogonalize(c, &oc, din, dout, k->batch, k->rows, k->cols)
                        : MUON_ERR_NOMEM;
    ok = st == MUON_OK && muon_cuda_synchronize(c) == MUON_OK && dev_download(o, dout, n);
    if (!ok)
        printf("    case %d: %s: %s\n", index, muon_status_name(st), muon_cuda_error(c));
    /* what the GPU ran: AUTO method as the CPU resolves it, AUTO precision mixed */
    muon_ortho_config run;
    ok = ok && muon_ortho_resolve(ref, &oc, k->rows, k->cols, &run) == MUON_OK;
    if (oc.precision == MUON_PRECISION_AUTO)
        run.precision = MUON_PRECISION_MIXED;
    double worst = 0, worst_cpu = 0, tol_min = INFINITY;
    for (long b = 0; ok && b < k->batch; b++) {
        const float *gb = g + (size_t)b * per, *ob = o + (size_t)b * per;
        int gram = run.method == MUON_ORTHO_GRAM_NS;
        ref_ortho(&run, gram, gb, k->rows, k->cols, NULL, exact);
        double tol = ref_ortho_tol(&run, gb, k->rows, k->cols, exact);
        double d = max_abs_fd(ob, exact, per);
        ok = muon_orthogonalize_on(ref, &run, gb, cpu, k->rows, k->cols, NULL, 0) == MUON_OK;
        double dc = ok ? tu_max_abs_diff_ff(ob, cpu, per) : INFINITY;
        if (!(d <= tol) || !(dc <= 2 * tol)) {
            printf("    case %d matrix %ld: |gpu - exact| %.3g (tol %.3g), |gpu - cpu| %.3g "
                   "(tol %.3g)\n", index, b, d, tol, dc, 2 * tol);
            ok = 0;
        }
        worst = d / tol > worst ? d / tol : worst;
        worst_cpu = dc > worst_cpu ? dc : worst_cpu;
        tol_min = tol < tol_min ? tol : tol_min;
    }
    if (ok)
        printf("    %ldx%ld x%ld %s %s: |gpu - exact| <= %.2f tol (tol >= %.2g), |gpu - cpu| %.2g\n",
               k->rows, k->cols, k->batch, muon_ortho_method_name(run.method),
               muon_precision_name(run.precision), worst, tol_min, worst_cpu);
    cudaFree(din);
    if (!k->in_place)
        cudaFree(dout);
    free(g);
    free(o);
    free(cpu);
    free(exact);
    return ok;
}

TEST(cuda_ortho_against_the_reference)
{
    static const ortho_case cases[] = {
        {96, 160, 3, MUON_ORTHO_NS, MUON_PRECISION_FP32, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        {160, 96, 2, MUON_ORTHO_GRAM_NS, MUON_PRECISION_FP32, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 1},
        {128, 128, 1, MUON_ORTHO_AUTO, MUON_PRECISION_FP32, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        /* m >= 256: the symmetric products by 4 block columns */
        {288, 416, 2, MUON_ORTHO_GRAM_NS, MUON_PRECISION_FP32, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        {416, 288, 1, MUON_ORTHO_NS, MUON_PRECISION_MIXED, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 1},
        {96, 160, 2, MUON_ORTHO_AUTO, MUON_PRECISION_AUTO, MUON_COEFFS_POLAR_EXPRESS, 0, 5, 0},
        {160, 96, 1, MUON_ORTHO_GRAM_NS, MUON_PRECISION_MIXED, MUON_COEFFS_POLAR_EXPRESS, 0, 6, 0},
        /* degree 3: the Horner products, in fp32 and inside bf16 steps */
        {96, 160, 1, MUON_ORTHO_NS, MUON_PRECISION_FP32, MUON_COEFFS_TAYLOR, 3, 10, 0},
        {64, 112, 1, MUON_ORTHO_NS, MUON_PRECISION_MIXED, MUON_COEFFS_TAYLOR, 3, 8, 0},
        {64, 112, 2, MUON_ORTHO_NS, MUON_PRECISION_MIXED, MUON_COEFFS_KELLER, 0, 6, 0},
    };
    muon_cuda *c;
    muon_backend *ref;
    ASSERT_OK(muon_cuda_create(0, &c));
    ASSERT_OK(muon_backend_create(MUON_BACKEND_CPU_REF, 0, &ref));
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ok = ortho_case_ok(c, ref, &cases[i], (int)i) && ok;
    muon_backend_free(ref);
    muon_cuda_free(c);
    ASSERT(ok);
}

TEST(cuda_ortho_nonfinite_zero_and_refusals)
{
    long rows = 48, cols = 80, per = rows * cols;
    float *h = calloc((size_t)(2 * per), sizeof *h), *o = malloc((size_t)(2 * per) * sizeof *o);
    muon_cuda *c;
    ASSERT_OK(muon_cuda_create(0, &c));
    float *din = dev_upload(h, (size_t)(2 * per)), *dout = dev_upload(NULL, (size_t)(2 * per));
    ASSERT(din && dout);
    muon_ortho_config oc = muon_ortho_config_default();
    /* a zero matrix gives zeros, as on the CPU */
    ASSERT_OK(muon_cuda_orthogonalize(c, &oc, din, dout, 2, rows, cols));
    ASSERT_OK(muon_cuda_synchronize(c));
    ASSERT(dev_download(o, dout, (size_t)(2 * per)));
    for (long i = 0; i < 2 * per; i++)
        ASSERT(o[i] == 0.0f);
    /* NaN in the second matrix: refused, out untouched. out holds a
     * sentinel first: the zeros of the call above would not tell an
     * untouched out from one the refused call overwrote with zeros. */
    for (long i = 0; i < 2 * per; i++)
        o[i] = 7.0f;
    ASSERT(cudaMemcpy(dout, o, (size_t)(2 * per) * sizeof *o, cudaMemcpyHostToDevice) == 0);
    for (long i = 0; i < 2 * per; i++)
        h[i] = 0.5f;
    h[per + 7] = NAN;
    ASSERT(cudaMemcpy(din, h, (size_t)(2 * per) * sizeof *h, cudaMemcpyHostToDevice) == 0);
    ASSERT_STATUS(muon_cuda_orthogonalize(c, &oc, din, dout, 2, rows, cols), MUON_ERR_NONFINITE);
    ASSERT(strlen(muon_cuda_error(c)) > 0);
    ASSERT_OK(muon_cuda_synchronize(c));
    memset(o, 0, (size_t)(2 * per) * sizeof *o);
    ASSERT(dev_download(o, dout, (size_t)(2 * per)));
    for (long i = 0; i < 2 * per; i++)
        ASSERT(o[i] == 7.0f);
    h[per + 7] = INFINITY;
    ASSERT(cudaMemcpy(din, h, (size_t)(2 * per) * sizeof *h, cudaMemcpyHostToDevice) == 0);
    ASSERT_STATUS(muon_cuda_orthogonalize(c, &oc, din, dout, 2, rows, cols), MUON_ERR_NONFINITE);
    ASSERT_OK(muon_cuda_synchronize(c));
    ASSERT(dev_download(o, dout, (size_t)(2 * per)));
    for (long i = 0; i < 2 * per; i++)
        ASSERT(o[i] == 7.0f);
    muon_ortho_config bad = oc;
    bad.aol = 1;
    ASSERT_STATUS(muon_cuda_orthogonalize(c, &bad, din, dout, 1, rows, cols),
                  MUON_ERR_UNSUPPORTED);
    bad = oc;
    bad.steps = -1;
    ASSERT_STATUS(muon_cuda_orthogonalize(c, &bad, din, dout, 1, rows, cols), MUON_ERR_ARG);
    ASSERT_STATUS(muon_cuda_orthogonalize(c, &oc, din, dout, 1, -rows, cols), MUON_ERR_SIZE);
    ASSERT_OK(muon_cuda_set_stream(c, NULL));
    ASSERT_EQ_INT(strlen(muon_cuda_error(c)), 0);
    cudaFree(din);
    cudaFree(dout);
    muon_cuda_free(c);
    free(h);
    free(o);
}

/* ---- the optimizer */

typedef struct {
    const char *name;
    int ndim;
    long shape[4];
    muon_role role;
} param_spec;

static const param_spec specs[] = {
    {"h.0.a", 2, {64, 96}, MUON_ROLE_MATRIX},
    {"h.0.b", 2, {96, 64}, MUON_ROLE_MATRIX},
    {"h.1.a", 2, {64, 96}, MUON_ROLE_MATRIX}, /* same group as h.0.a */
    {"experts", 3, {3, 48, 80}, MUON_ROLE_MATRIX},
    {"conv", 4, {16, 4, 3, 3}, MUON_ROLE_MATRIX}, /* 16 x 36 */
    {"wte", 2, {200, 32}, MUON_ROLE_EMBEDDING},
    {"head", 2, {50, 32}, MUON_ROLE_HEAD},
    {"ln", 1, {64}, MUON_ROLE_VECTOR},
};
#define NP ((int)(sizeof specs / sizeof specs[0]))

typedef struct {
    size_t n;
    long batch, rows, cols;
    float *w0;             /* initial weights */
    float *w_cpu, *g;      /* the CPU optimizer's buffers */
    float *m, *v;          /* host reference state */
    double tol;            /* accumulated weight tolerance (Muon) */
    long steps;
    float *dw, *dg, *dg2;  /* device */
} param_run;

static size_t numel(const param_spec *s)
{
    size_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= (size_t)s->shape[d];
    return n;
}

/* The reference's side of one step for parameter p (not refused): the
 * state by the formulas, the weight tolerance by the bound above. */
static void reference_step(const muon_opt_config *cfg, param_run *p, int muon, double lr,
                           double adam_lr)
{
    if (!muon) {
        float b1 = (float)cfg->adam_beta1, a1 = (float)(1.0 - cfg->adam_beta1);
        float b2 = (float)cfg->adam_beta2, a2 = (float)(1.0 - cfg->adam_beta2);
        for (size_t i = 0; i < p->n; i++) {
            p->m[i] = b1 * p->m[i] + a1 * p->g[i];
            p->v[i] = b2 * p->v[i] + a2 * (p->g[i] * p->g[i]);
        }
        (void)adam_lr;
        p->steps++;
        return;
    }
    float mu = (float)cfg->momentum;
    size_t per = (size_t)(p->rows * p->cols);
    float *nb = malloc(per * sizeof *nb);
    double *exact = malloc(per * sizeof *exact);
    double fs = lr * muon_scale_factor(cfg->scale, p->rows, p->cols);
    double decay = 1.0 - lr * cfg->weight_decay, tol_o = 0, wmax = 0;
    for (size_t i = 0; i < p->n; i++) {
        p->m[i] = mu * p->m[i] + p->g[i];
        wmax = fabs(p->w_cpu[i]) > wmax ? fabs(p->w_cpu[i]) : wmax;
    }
    muon_ortho_config run;
    muon_ortho_resolve(NULL, &cfg->ortho, p->rows, p->cols, &run);
    if (cfg->ortho.precision == MUON_PRECISION_AUTO)
        run.precision = MUON_PRECISION_MIXED; /* the GPU's auto */
    for (long e = 0; e < p->batch; e++) {
        for (size_t i = 0; i < per; i++) {
            size_t k = (size_t)e * per + i;
            nb[i] = cfg->nesterov ? p->g[k] + mu * p->m[k] : p->m[k];
        }
        ref_ortho(&run, run.method == MUON_ORTHO_GRAM_NS, nb, p->rows, p->cols, NULL, exact);
        /* the CPU ran its own precision: the larger of the two models */
        double t = ref_ortho_tol(&run, nb, p->rows, p->cols, exact);
        muon_ortho_config cpu_run = run;
        cpu_run.precision = cfg->ortho.precision == MUON_PRECISION_AUTO ? MUON_PRECISION_AUTO
                                                                         : run.precision;
        double t2 = ref_ortho_tol(&cpu_run, nb, p->rows, p->cols, exact);
        double omax = 0;
        for (size_t i = 0; i < per; i++)
            omax = fabs(exact[i]) > omax ? fabs(exact[i]) : omax;
        /* fs (t_gpu + t_cpu), and the rounding of step * O with |O| <= omax + t */
        double inc = fs * (t + t2) + 3 * U32 * fs * (omax + t + t2);
        tol_o = inc > tol_o ? inc : tol_o;
    }
    p->tol = fabs(decay) * p->tol + tol_o + 3 * U32 * (wmax + p->tol);
    p->steps++;
    free(nb);
    free(exact);
}

static int compare_param(muon_cuda_opt *o, int idx, const param_run *p, int muon,
                         const char *name)
{
    float *w = malloc(p->n * sizeof *w), *m = malloc(p->n * sizeof *m);
    float *v = malloc(p->n * sizeof *v);
    float *bufs[2] = {NULL, NULL};
    int count = 0;
    long steps = -1;
    int ok = muon_cuda_opt_param_state(o, idx, bufs, &count, &steps) == MUON_OK &&
             dev_download(w, p->dw, p->n) && dev_download(m, bufs[0], p->n) &&
             (muon || dev_download(v, bufs[1], p->n));
    ok = ok && count == (muon ? 1 : 2) && steps == p->steps;
    double dw = ok ? tu_max_abs_diff_ff(w, p->w_cpu, p->n) : INFINITY;
    double dm = ok ? tu_max_abs_diff_ff(m, p->m, p->n) : INFINITY;
    double dv = ok && !muon ? tu_max_abs_diff_ff(v, p->v, p->n) : 0;
    double tol = muon ? p->tol : 0.0; /* AdamW: the same operations, exactly */
    if (!ok || !(dw <= tol) || dm != 0 || dv != 0) {
        printf("    %s: |w gpu - cpu| %.3g (tol %.3g), |state - host| %.3g %.3g, steps %ld/%ld, "
               "count %d\n", name, dw, tol, dm, dv, steps, p->steps, count);
        ok = 0;
    }
    free(w);
    free(m);
    free(v);
    return ok;
}

/* A parameter's device weights and state, downloaded (v zero for Muon):
 * to check that a refused or held parameter keeps every bit, which the
 * weight tolerance against the CPU could not tell from a small change. */
typedef struct {
    float *w, *m, *v;
} snap;

static int snapshot(muon_cuda_opt *o, int idx, float *dw, size_t n, snap *s)
{
    float *bufs[2] = {NULL, NULL};
    int count = 0;
    s->w = malloc(n * sizeof(float));
    s->m = malloc(n * sizeof(float));
    s->v = calloc(n, sizeof(float));
    return s->w && s->m && s->v &&
           muon_cuda_opt_param_state(o, idx, bufs, &count, NULL) == MUON_OK &&
           dev_download(s->w, dw, n) && dev_download(s->m, bufs[0], n) &&
           (count < 2 || dev_download(s->v, bufs[1], n));
}

static void snap_free(snap *s)
{
    free(s->w);
    free(s->m);
    free(s->v);
}

/* 1: weights and state kept every bit; 0 otherwise (printed). */
static int kept(const snap *before, const snap *after, size_t n, const char *name)
{
    size_t b = n * sizeof(float);
    int w = memcmp(before->w, after->w, b) == 0, m = memcmp(before->m, after->m, b) == 0;
    int v = memcmp(before->v, after->v, b) == 0;
    if (!(w && m && v))
        printf("    %s: should be untouched, but weights %s, m %s, v %s\n", name,
               w ? "kept" : "changed", m ? "kept" : "changed", v ? "kept" : "changed");
    return w && m && v;
}

/* 1: the weights moved (a step with lr > 0 and a nonzero gradient). */
static int moved(const snap *before, const snap *after, size_t n, const char *name)
{
    int mv = memcmp(before->w, after->w, n * sizeof(float)) != 0;
    if (!mv)
        printf("    %s: should have been updated, but its weights did not change\n", name);
    return mv;
}

/* The optimizer tests' config: lr 0.02 / 0.01, one CPU thread. */
static muon_opt_config test_cfg(muon_precision precision)
{
    muon_opt_config cfg = muon_opt_config_default();
    cfg.lr = 0.02;
    cfg.adam_lr = 0.01;
    cfg.threads = 1;
    cfg.ortho.precision = precision;
    return cfg;
}

/* p's host buffers (weights normal(0.05), zero reference state) and its
 * device weights and two gradient buffers; 1 on success. */
static int param_alloc(param_run *p, const param_spec *sp, tu_rng *r)
{
    memset(p, 0, sizeof *p);
    p->n = numel(sp);
    p->batch = sp->ndim == 3 ? sp->shape[0] : 1;
    p->rows = sp->ndim == 3 ? sp->shape[1] : sp->ndim == 1 ? 1 : sp->shape[0];
    p->cols = (long)(p->n / (size_t)(p->batch * p->rows));
    p->w0 = malloc(p->n * sizeof(float));
    p->w_cpu = malloc(p->n * sizeof(float));
    p->g = malloc(p->n * sizeof(float));
    p->m = calloc(p->n, sizeof(float));
    p->v = calloc(p->n, sizeof(float));
    if (!p->w0 || !p->w_cpu || !p->g || !p->m || !p->v)
        return 0;
    tu_fill_normal(r, p->w0, p->n, 0.05);
    memcpy(p->w_cpu, p->w0, p->n * sizeof(float));
    p->dw = dev_upload(p->w0, p->n);
    p->dg = dev_upload(NULL, p->n);
    p->dg2 = dev_upload(NULL, p->n);
    return p->dw && p->dg && p->dg2;
}

static void param_release(param_run *p)
{
    cudaFree(p->dw);
    cudaFree(p->dg);
    cudaFree(p->dg2);
    free(p->w0);
    free(p->w_cpu);
    free(p->g);
    free(p->m);
    free(p->v);
}

static void optimizer_against_cpu(muon_precision precision)
{
    muon_opt_config cfg = test_cfg(precision);
    muon_cuda *c;
    muon_cuda_opt *go;
    muon_opt *co;
    ASSERT_OK(muon_cuda_create(0, &c));
    ASSERT_OK(muon_cuda_opt_create(c, &cfg, &go));
    ASSERT_OK(muon_opt_create(&cfg, &co));
    ASSERT_OK(muon_opt_set_backend(co, MUON_BACKEND_CPU_REF));
    param_run pr[NP];
    tu_rng r;
    tu_seed(&r, mt_seed);
    for (int i = 0; i < NP; i++) {
        param_run *p = &pr[i];
        ASSERT(param_alloc(p, &specs[i], &r));
        int gi = -1, ci = -1;
        ASSERT_OK(muon_cuda_opt_add_param(go, specs[i].name, p->dw, p->dg, specs[i].ndim,
                                          specs[i].shape, specs[i].role, &gi));
        ASSERT_OK(muon_opt_add_param(co, specs[i].name, p->w_cpu, p->g, specs[i].ndim,
                                     specs[i].shape, specs[i].role, &ci));
        ASSERT_EQ_INT(gi, i);
        ASSERT_EQ_INT(ci, i);
    }
    ASSERT_EQ_INT(muon_cuda_opt_num_params(go), NP);
    ASSERT_OK(muon_cuda_opt_finalize(go));
    ASSERT_OK(muon_opt_finalize(co));
    int ok = 1;
    for (int step = 0; step < 5 && ok; step++) {
        double mult = step == 3 ? 0.5 : 1.0;
        for (int i = 0; i < NP; i++) {
            tu_fill_normal(&r, pr[i].g, pr[i].n, 1.0);
            if (step == 2 && (i == 1 || i == 7)) /* h.0.b and ln refused */
                pr[i].g[pr[i].n / 2] = i == 1 ? NAN : INFINITY;
            /* step 4: h.0.a's gradient moves to another device buffer */
            float *dst = step == 4 && i == 0 ? pr[i].dg2 : pr[i].dg;
            ASSERT(cudaMemcpy(dst, pr[i].g, pr[i].n * sizeof(float), cudaMemcpyHostToDevice) ==
                   0);
        }
        if (step == 4)
            ASSERT_OK(muon_cuda_opt_set_buffers(go, 0, NULL, pr[0].dg2));
        snap before[NP], after[NP];
        for (int i = 0; i < NP; i++)
            ASSERT(snapshot(go, i, pr[i].dw, pr[i].n, &before[i]));
        muon_status want = step == 2 ? MUON_ERR_NONFINITE : MUON_OK;
        ASSERT_STATUS(muon_cuda_opt_step(go, mult), want);
        for (int i = 0; i < NP; i++) {
            ASSERT(snapshot(go, i, pr[i].dw, pr[i].n, &after[i]));
            int refused = step == 2 && (i == 1 || i == 7);
            ok = (refused ? kept(&before[i], &after[i], pr[i].n, specs[i].name)
                          : moved(&before[i], &after[i], pr[i].n, specs[i].name)) && ok;
            snap_free(&before[i]);
            snap_free(&after[i]);
        }
        ASSERT_STATUS(muon_opt_step(co, mult), want);
        if (step == 2) {
            const char *e = muon_cuda_opt_error(go);
            printf("    step 2: %s\n", e);
            ASSERT(strstr(e, "'h.0.b'") && strstr(e, "'ln'") && !strstr(e, "'h.0.a'"));
        }
        for (int i = 0; i < NP; i++) {
            int muon = muon_cuda_opt_uses_muon(go, i);
            ASSERT_EQ_INT(muon, specs[i].role == MUON_ROLE_MATRIX);
            if (!(step == 2 && (i == 1 || i == 7)))
                reference_step(&cfg, &pr[i], muon, cfg.lr * mult, cfg.adam_lr * mult);
            ok = compare_param(go, i, &pr[i], muon, specs[i].name) && ok;
        }
    }
    ASSERT(ok);
    /* steps are the caller's to restore (a checkpoint) */
    ASSERT_OK(muon_cuda_opt_set_param_steps(go, 5, 17));
    long steps = 0;
    ASSERT_OK(muon_cuda_opt_param_state(go, 5, NULL, NULL, &steps));
    ASSERT_EQ_INT(steps, 17);
    ASSERT_STATUS(muon_cuda_opt_param_state(go, NP, NULL, NULL, NULL), MUON_ERR_ARG);
    ASSERT_STATUS(muon_cuda_opt_add_param(go, "late", pr[0].dw, NULL, 2, specs[0].shape,
                                          MUON_ROLE_MATRIX, NULL), MUON_ERR_STATE);
    ASSERT_OK(muon_cuda_opt_set_lr(go, 0.01, 0.001));
    muon_cuda_opt_free(go);
    muon_opt_free(co);
    muon_cuda_free(c);
    for (int i = 0; i < NP; i++)
        param_release(&pr[i]);
}

TEST(cuda_optimizer_fp32_against_cpu)
{
    optimizer_against_cpu(MUON_PRECISION_FP32);
}

TEST(cuda_optimizer_mixed_against_cpu)
{
    optimizer_against_cpu(MUON_PRECISION_MIXED);
}

/* muon_cuda_opt_hold_param against muon_opt_hold_param on the cpu-ref
 * backend. "b" shares its group's batch with "a" (a held matrix must not
 * disturb the others of its batch) and "ln" is AdamW; both are registered
 * without a gradient and held from before finalize, then given one and
 * released at step 2. At step 3 "a" is held after finalize with a NaN in
 * its gradient: a held gradient is not read, so the step is MUON_OK.
 * Held: weights and state kept every bit and the step count unchanged;
 * the others: the same tolerances as optimizer_against_cpu (fp32, so
 * ref_ortho_tol is ~1e-3 of |O|'s rms: a held or missing update of a
 * neighbour would be far outside it). */
static const param_spec hold_specs[] = {
    {"a", 2, {64, 96}, MUON_ROLE_MATRIX},
    {"b", 2, {64, 96}, MUON_ROLE_MATRIX},
    {"e", 3, {2, 48, 80}, MUON_ROLE_MATRIX},
    {"wte", 2, {200, 32}, MUON_ROLE_EMBEDDING},
    {"ln", 1, {64}, MUON_ROLE_VECTOR},
};
#define NH ((int)(sizeof hold_specs / sizeof hold_specs[0]))

TEST(cuda_optimizer_hold_param_against_cpu)
{
    muon_opt_config cfg = test_cfg(MUON_PRECISION_FP32);
    muon_cuda *c;
    muon_cuda_opt *go;
    muon_opt *co;
    ASSERT_OK(muon_cuda_create(0, &c));
    ASSERT_OK(muon_cuda_opt_create(c, &cfg, &go));
    ASSERT_OK(muon_opt_create(&cfg, &co));
    ASSERT_OK(muon_opt_set_backend(co, MUON_BACKEND_CPU_REF));
    param_run pr[NH];
    int held[NH] = {0, 1, 0, 0, 1};
    tu_rng r;
    tu_seed(&r, mt_seed + 99);
    for (int i = 0; i < NH; i++) {
        const param_spec *sp = &hold_specs[i];
        param_run *p = &pr[i];
        ASSERT(param_alloc(p, sp, &r));
        /* the held ones without a gradient: PyTorch's grad is None */
        ASSERT_OK(muon_cuda_opt_add_param(go, sp->name, p->dw, held[i] ? NULL : p->dg, sp->ndim,
                                          sp->shape, sp->role, NULL));
        ASSERT_OK(muon_opt_add_param(co, sp->name, p->w_cpu, held[i] ? NULL : p->g, sp->ndim,
                                     sp->shape, sp->role, NULL));
        if (held[i]) {
            ASSERT_OK(muon_cuda_opt_hold_param(go, i, 1));
            ASSERT_OK(muon_opt_hold_param(co, i, 1));
        }
    }
    ASSERT_STATUS(muon_cuda_opt_hold_param(go, NH, 1), MUON_ERR_ARG);
    ASSERT_STATUS(muon_cuda_opt_hold_param(go, -1, 1), MUON_ERR_ARG);
    ASSERT_OK(muon_cuda_opt_finalize(go));
    ASSERT_OK(muon_opt_finalize(co));
    int ok = 1;
    for (int step = 0; step < 4 && ok; step++) {
        if (step == 2) /* released, with a gradient now */
            for (int i = 0; i < NH; i++)
                if (held[i]) {
                    held[i] = 0;
                    ASSERT_OK(muon_cuda_opt_set_buffers(go, i, NULL, pr[i].dg));
                    ASSERT_OK(muon_opt_set_grad(co, i, pr[i].g));
                    ASSERT_OK(muon_cuda_opt_hold_param(go, i, 0));
                    ASSERT_OK(muon_opt_hold_param(co, i, 0));
                }
        if (step == 3) { /* held after finalize, its gradient pointer still set */
            held[0] = 1;
            ASSERT_OK(muon_cuda_opt_hold_param(go, 0, 1));
            ASSERT_OK(muon_opt_hold_param(co, 0, 1));
        }
        for (int i = 0; i < NH; i++) {
            tu_fill_normal(&r, pr[i].g, pr[i].n, 1.0);
            if (step == 3 && i == 0)
                pr[i].g[5] = NAN; /* read, it would refuse the parameter */
            ASSERT(cudaMemcpy(pr[i].dg, pr[i].g, pr[i].n * sizeof(float),
                              cudaMemcpyHostToDevice) == 0);
        }
        snap before[NH], after[NH];
        float *cpu_before[NH];
        for (int i = 0; i < NH; i++) {
            ASSERT(snapshot(go, i, pr[i].dw, pr[i].n, &before[i]));
            cpu_before[i] = malloc(pr[i].n * sizeof(float));
            memcpy(cpu_before[i], pr[i].w_cpu, pr[i].n * sizeof(float));
        }
        ASSERT_OK(muon_cuda_opt_step(go, 1.0));
        ASSERT_OK(muon_opt_step(co, 1.0));
        ASSERT_EQ_INT(strlen(muon_cuda_opt_error(go)), 0);
        for (int i = 0; i < NH; i++) {
            const char *name = hold_specs[i].name;
            int muon = muon_cuda_opt_uses_muon(go, i);
            ASSERT_EQ_INT(muon, hold_specs[i].role == MUON_ROLE_MATRIX);
            ASSERT(snapshot(go, i, pr[i].dw, pr[i].n, &after[i]));
            if (held[i]) {
                ok = kept(&before[i], &after[i], pr[i].n, name) && ok;
                /* the reference itself left it as it was */
                ok = memcmp(cpu_before[i], pr[i].w_cpu, pr[i].n * sizeof(float)) == 0 && ok;
            } else {
                reference_step(&cfg, &pr[i], muon, cfg.lr, cfg.adam_lr);
                ok = moved(&before[i], &after[i], pr[i].n, name) && ok;
            }
            /* weights against the CPU, state against the host loop, and
             * the step count (not advanced while held) */
            ok = compare_param(go, i, &pr[i], muon, name) && ok;
            snap_free(&before[i]);
            snap_free(&after[i]);
            free(cpu_before[i]);
        }
        if (!ok)
            printf("    (step %d)\n", step);
    }
    ASSERT(ok);
    muon_cuda_opt_free(go);
    muon_opt_free(co);
    muon_cuda_free(c);
    for (int i = 0; i < NH; i++)
        param_release(&pr[i]);
}

TEST(cuda_optimizer_adamw_only_and_streams)
{
    /* AdamW for everything: no Muon group, one stream; then a context on a
     * caller's own stream */
    muon_opt_config cfg = muon_opt_config_default();
    cfg.algo = MUON_ALGO_ADAMW;
    muon_cuda *c;
    muon_cuda_opt *o;
    ASSERT_OK(muon_cuda_create(0, &c));
    /* non-blocking, as a framework's side stream may be: nothing the
     * library queues on the legacy stream is ordered before it */
    cudaStream_t s;
    ASSERT(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == 0);
    ASSERT_OK(muon_cuda_set_stream(c, s));
    ASSERT_OK(muon_cuda_opt_create(c, &cfg, &o));
    long shape[2] = {300, 70};
    size_t n = 300 * 70;
    float *h = malloc(n * sizeof *h), *w = malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        h[i] = (float)((double)(i % 17) - 8.0) * 0.01f;
    float *dw = dev_upload(h, n), *dg = dev_upload(h, n);
    /* the uploads ran on the legacy stream, which s does not wait for */
    ASSERT(cudaDeviceSynchronize() == 0);
    ASSERT_OK(muon_cuda_opt_add_param(o, "w", dw, dg, 2, shape, MUON_ROLE_MATRIX, NULL));
    ASSERT_EQ_INT(muon_cuda_opt_uses_muon(o, 0), 0);
    ASSERT_OK(muon_cuda_opt_finalize(o));
    ASSERT_OK(muon_cuda_opt_step(o, 1.0));
    ASSERT(dev_download(w, dw, n));
    /* first AdamW step: m = 0.1 g, v = 0.05 g^2, bias-corrected to g and
     * g^2, so the update is lr (g / (|g| + eps)) + decay: sign-like */
    double lr = cfg.adam_lr, decay = 1.0 - lr * cfg.adam_weight_decay;
    for (size_t i = 0; i < n; i++) {
        double g = h[i], want = decay * h[i] - lr * g / (fabs(g) + cfg.adam_eps);
        /* Worst-case first-order rounding, operation by operation (each
         * float coefficient rounded once from double: u): m = a1 g: 2u;
         * v = a2 (g g): 3u; sqrtf: 1.5u + u; * ib: +2u; + eps: +u, so the
         * denominator 5.5u; step m: 4u; the quotient T (|T| <= lr):
         * 4u + 5.5u + u = 10.5u; decay w: 2u |w|; the subtraction:
         * u (|w| + lr). Sum: 3u |w| + 11.5u lr, rounded up to 12u. */
        ASSERT_NEAR(w[i], want, U32 * (3 * fabs(h[i]) + 12 * lr));
    }
    muon_cuda_opt_free(o);
    muon_cuda_free(c);
    cudaStreamDestroy(s);
    cudaFree(dw);
    cudaFree(dg);
    free(h);
    free(w);
}
