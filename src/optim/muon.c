/* The Muon update rule (ALGORITHMS.md section 2) for one parameter:
 *     M = mu M + G;  N = G + mu M (Nesterov) or M;  O = orthogonalize(N)
 *     W = W (1 - eta lambda) - eta scale(rows, cols) O
 * N is built in the workspace, never in the momentum buffer (normalizing the
 * momentum in place is a known bug of some implementations: it rescales the
 * state every step). The momentum is only written once the
 * orthogonalization has succeeded, so a failed update changes nothing. */
#include "optim/optim.h"
#include "ortho/ortho.h"

muon_status muon__muon_update(const muon_opt *opt, muon__param *p, double lr, int threads,
                              void *work, size_t work_bytes)
{
    const muon_opt_config *cfg = &opt->cfg;
    const size_t n = p->n;
    const float mu = (float)cfg->momentum;
    const float *restrict g = p->g;
    float *restrict m = p->buf[0];
    float *restrict w = p->w;
    float *restrict nb = work;
    size_t nbytes = muon__round16(n) * sizeof(float);
    if (work_bytes < nbytes)
        return MUON_ERR_WORKSPACE;

    /* The new momentum is recomputed below with the same expression, so N
     * sees bit-for-bit the momentum that is finally stored. */
    if (cfg->nesterov) {
        for (size_t i = 0; i < n; i++) {
            float mi = mu * m[i] + g[i];
            nb[i] = g[i] + mu * mi;
        }
    } else {
        for (size_t i = 0; i < n; i++)
            nb[i] = mu * m[i] + g[i];
    }
    /* same_bits: the thread plan must not change the rounding (step.c) */
    muon_status s = muon__orthogonalize(&opt->be, threads, &cfg->ortho, nb, nb, p->rows, p->cols,
                                        (char *)work + nbytes, work_bytes - nbytes, 1);
    if (s != MUON_OK)
        return s;

    const float decay = (float)(1.0 - lr * cfg->weight_decay);
    const float step = (float)(lr * muon_scale_factor(cfg->scale, p->rows, p->cols));
    for (size_t i = 0; i < n; i++) {
        m[i] = mu * m[i] + g[i];
        w[i] = decay * w[i] - step * nb[i];
    }
    return MUON_OK;
}
