/* The AdamW update rule (docs/algorithms.md section 3) with bias correction from
 * the parameter's own step count:
 *     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *     W = W (1 - eta lambda) - eta (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * One fused pass over the elements; the driver splits big parameters into
 * ranges over threads. Each element's arithmetic does not depend on the
 * range it falls in, so the result is independent of the thread count.
 * GCC vectorizes this loop only with -fno-math-errno (sqrtf's errno path is
 * control flow); the second moment is never negative, so the flag would
 * change no result. */
#include <math.h>

#include "optim/optim.h"

void muon__adamw_coef_init(const muon_opt_config *cfg, long step_t, double lr,
                           muon__adamw_coef *c)
{
    double bc1 = 1.0 - pow(cfg->adam_beta1, (double)step_t);
    double bc2 = 1.0 - pow(cfg->adam_beta2, (double)step_t);
    c->b1 = (float)cfg->adam_beta1;
    c->one_minus_b1 = (float)(1.0 - cfg->adam_beta1);
    c->b2 = (float)cfg->adam_beta2;
    c->one_minus_b2 = (float)(1.0 - cfg->adam_beta2);
    c->decay = (float)(1.0 - lr * cfg->adam_weight_decay);
    /* beta = 0 gives bc = 1; beta in [0, 1) and t >= 1 keep bc > 0 */
    c->step_size = (float)(lr / bc1);
    c->inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    c->eps = (float)cfg->adam_eps;
}

void muon__adamw_range(const muon__adamw_coef *c, muon__param *p, size_t lo, size_t hi)
{
    const float b1 = c->b1, a1 = c->one_minus_b1, b2 = c->b2, a2 = c->one_minus_b2;
    const float decay = c->decay, step = c->step_size, ib = c->inv_sqrt_bc2, eps = c->eps;
    const float *restrict g = p->g;
    float *restrict m = p->buf[0];
    float *restrict v = p->buf[1];
    float *restrict w = p->w;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + a1 * gi;
        float vi = b2 * v[i] + a2 * (gi * gi);
        m[i] = mi;
        v[i] = vi;
        w[i] = decay * w[i] - step * mi / (sqrtf(vi) * ib + eps);
    }
}
