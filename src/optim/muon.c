/* The update rules that orthogonalize (docs/algorithms.md sections 2 and 4),
 * for one parameter, each matrix of a stack on its own:
 *     M = mu M + G;  N = G + mu M (Nesterov) or M;  O = orthogonalize(N)
 *     W = W (1 - eta lambda) - eta scale(rows, cols) U
 * with U = O (Muon; U f(S) V^T under spectrum shaping), alpha O + (1 -
 * alpha) N / ||N||_F (F-Muon), alpha O + (1 - alpha) eta_s sign(N)
 * (S-Muon), or the top-k singular directions of N (Fanion-k). AdamW-Muon's
 * first Muon update starts from a fresh (zero) momentum.
 *
 * A stack of experts given several threads spreads its experts over them,
 * each with single-threaded BLAS in its thread's workspace (finalize.c
 * sizes them): small expert matrices gain nothing from a threaded product,
 * and each expert's arithmetic is then the same on any thread count.
 *
 * N is built in the workspace, never in the momentum buffer (normalizing the
 * momentum in place is a known bug of some implementations: it rescales the
 * state every step). The momentum and weights are only written once every
 * matrix's orthogonalization has succeeded, so a failed update changes
 * nothing; N's elementwise parts are recomputed then from M and G with the
 * same expression, so they match the N that was orthogonalized bit for bit. */
#include <limits.h>
#include <math.h>

#include <omp.h>

#include "optim/optim.h"
#include "ortho/ortho.h"

#define ALIGN 64

typedef struct {
    float mu;
    int nesterov, fresh; /* fresh: the stored momentum counts as zero */
} n_coef;

static inline float n_at(const n_coef *c, const float *m, const float *g, size_t i, float *mnew)
{
    float mi = (c->fresh ? 0.0f : c->mu * m[i]) + g[i];
    *mnew = mi;
    return c->nesterov ? g[i] + c->mu * mi : mi;
}

/* The matrix's orthogonalization in place in nb (rows x cols). */
static muon_status ortho_one(const muon_opt *opt, const muon__param *p,
                             const muon_ortho_config *oc, int threads, float *nb, void *work,
                             size_t work_bytes)
{
    long k_top = LONG_MAX;
    double power = 0.0;
    if (p->rule == MUON__RULE_FANION_K)
        k_top = opt->cfg.fanion_k;
    else
        power = opt->cfg.spectrum_power;
    if (oc->method != MUON_ORTHO_SVD || (k_top == LONG_MAX && power == 0.0))
        /* same_bits: the thread plan must not change the rounding (step.c) */
        return muon__orthogonalize(&opt->be, threads, oc, nb, nb, p->rows, p->cols, work,
                                   work_bytes, 1);
    size_t n = (size_t)p->rows * (size_t)p->cols;
    size_t need = muon__svd_work_floats(p->rows, p->cols) * sizeof(float);
    if (work_bytes < need)
        return MUON_ERR_WORKSPACE;
    if (!muon__all_finite(nb, n))
        return MUON_ERR_NONFINITE;
    return muon__svd_shaped(nb, nb, p->rows, p->cols, work, k_top, power);
}

muon_status muon__muon_update(const muon_opt *opt, muon__param *p, double lr, int threads,
                              void *work, size_t work_bytes)
{
    const muon_opt_config *cfg = &opt->cfg;
    const size_t n = p->n, per = (size_t)p->rows * (size_t)p->cols;
    const n_coef nc = {(float)cfg->momentum, cfg->nesterov,
                       p->rule == MUON__RULE_ADAMW_MUON && p->steps == cfg->switch_step};
    const float *restrict g = p->g;
    float *restrict m = p->buf[0];
    float *restrict w = p->w;
    float *restrict nb = work;
    size_t nbytes = (muon__round16(n) * sizeof(float) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (work_bytes < nbytes)
        return MUON_ERR_WORKSPACE;
    void *ow = (char *)work + nbytes;
    size_t ow_bytes = work_bytes - nbytes;

    float mnew;
    for (size_t i = 0; i < n; i++)
        nb[i] = n_at(&nc, m, g, i, &mnew);
    muon_ortho_config oc = muon__param_ortho(opt, p);
    if (threads > 1 && p->batch > 1 && !omp_in_parallel()) {
        muon_status st = MUON_OK;
        int old = muon__blas_threads_push(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (long e = 0; e < p->batch; e++) {
            int t = omp_get_thread_num();
            muon_status s = ortho_one(opt, p, &oc, 1, nb + (size_t)e * per, t ? opt->work[t] : ow,
                                      t ? opt->work_bytes[t] : ow_bytes);
            if (s != MUON_OK) {
#pragma omp critical(muon_expert_status)
                st = s;
            }
        }
        muon__blas_threads_pop(old);
        if (st != MUON_OK)
            return st;
    } else {
        for (long e = 0; e < p->batch; e++) {
            muon_status s = ortho_one(opt, p, &oc, threads, nb + (size_t)e * per, ow, ow_bytes);
            if (s != MUON_OK)
                return s;
        }
    }

    const float decay = (float)(1.0 - lr * cfg->weight_decay);
    const double step = lr * muon_scale_factor(cfg->scale, p->rows, p->cols);
    const float alpha = (float)cfg->fanion_alpha;
    for (long e = 0; e < p->batch; e++) {
        size_t lo = (size_t)e * per, hi = lo + per;
        switch (p->rule) {
        case MUON__RULE_FMUON: {
            double ss = 0;
            for (size_t i = lo; i < hi; i++) {
                float ni = n_at(&nc, m, g, i, &mnew);
                ss += (double)ni * (double)ni;
            }
            /* a zero N has a zero polar factor too: nothing to add */
            const float k = ss > 0 ? (float)((1.0 - cfg->fanion_alpha) / sqrt(ss)) : 0.0f;
            const float fs = (float)step;
            for (size_t i = lo; i < hi; i++) {
                float ni = n_at(&nc, m, g, i, &mnew);
                m[i] = mnew;
                w[i] = decay * w[i] - fs * (alpha * nb[i] + k * ni);
            }
            break;
        }
        case MUON__RULE_SMUON: {
            const float k = (float)((1.0 - cfg->fanion_alpha) * cfg->sign_scale);
            const float fs = (float)step;
            for (size_t i = lo; i < hi; i++) {
                float ni = n_at(&nc, m, g, i, &mnew);
                float si = (float)((ni > 0.0f) - (ni < 0.0f));
                m[i] = mnew;
                w[i] = decay * w[i] - fs * (alpha * nb[i] + k * si);
            }
            break;
        }
        default: {
            const float fs = (float)step;
            for (size_t i = lo; i < hi; i++) {
                n_at(&nc, m, g, i, &mnew);
                m[i] = mnew;
                w[i] = decay * w[i] - fs * nb[i];
            }
            break;
        }
        }
    }
    return MUON_OK;
}
