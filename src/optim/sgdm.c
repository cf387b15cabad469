/* The elementwise momentum rules (docs/algorithms.md section 4):
 *   SGD with momentum:  M = mu M + G;  N = G + mu M (Nesterov) or M;
 *                       W = W (1 - eta lambda) - eta N
 *   MuonAll's vectors:  the same N, W = W (1 - eta lambda) - eta s1 sign(N).
 * A 1-D parameter is the diagonal of diag(N), whose polar factor is
 * diag(sign(N)) (0 where N is 0): Muon on it needs no n x n matrix. s1 is
 * the RMS the scale rule gives a square orthogonal update: 0.2 under
 * moonlight, 1 under the others (sign(N) has RMS 1 already).
 * Each element's arithmetic does not depend on the range it falls in. */
#include "optim/optim.h"

typedef struct {
    float mu, decay, step;
    int nesterov;
} momentum_coef;

static momentum_coef coef_of(const muon_opt *opt, double lr, double factor)
{
    momentum_coef c;
    c.mu = (float)opt->cfg.momentum;
    c.decay = (float)(1.0 - lr * opt->cfg.weight_decay);
    c.step = (float)(lr * factor);
    c.nesterov = opt->cfg.nesterov;
    return c;
}

void muon__sgdm_range(const muon_opt *opt, muon__param *p, double lr, size_t lo, size_t hi)
{
    const momentum_coef c = coef_of(opt, lr, 1.0);
    const float *restrict g = p->g;
    float *restrict m = p->buf[0];
    float *restrict w = p->w;
    for (size_t i = lo; i < hi; i++) {
        float mi = c.mu * m[i] + g[i];
        float ni = c.nesterov ? g[i] + c.mu * mi : mi;
        m[i] = mi;
        w[i] = c.decay * w[i] - c.step * ni;
    }
}

void muon__sign_range(const muon_opt *opt, muon__param *p, double lr, size_t lo, size_t hi)
{
    const double s1 = opt->cfg.scale == MUON_SCALE_MOONLIGHT ? 0.2 : 1.0;
    const momentum_coef c = coef_of(opt, lr, s1);
    const float *restrict g = p->g;
    float *restrict m = p->buf[0];
    float *restrict w = p->w;
    for (size_t i = lo; i < hi; i++) {
        float mi = c.mu * m[i] + g[i];
        float ni = c.nesterov ? g[i] + c.mu * mi : mi;
        float si = (float)((ni > 0.0f) - (ni < 0.0f));
        m[i] = mi;
        w[i] = c.decay * w[i] - c.step * si;
    }
}
