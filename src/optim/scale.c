/* SCALE ("A Minimalist Optimizer Design for LLM Pretraining";
 * docs/algorithms.md section 4): each matrix's update is its gradient with
 * every output row rescaled to RMS 1,
 *     u_i = x_i / max(sqrt(mean_j x_ij^2), 1e-8),
 *     W = W (1 - eta lambda) - eta u,
 * where x is the gradient, or on the output head an EMA momentum
 * m = 0.9 m + 0.1 g. The embedding (vocab x dim: a row per token, most of
 * them absent from a batch) is normalized along the other axis, per column.
 * Momentum is written only here, after the caller's finiteness check. */
#include <math.h>

#include "optim/optim.h"

#define SCALE_FLOOR 1e-8

/* 1 / max(RMS, floor) of a row (step 1) or column (step = row length) of
 * x: the gradient, or the momentum about to be stored when m is given. */
static double inv_rms(const float *g, const float *m, float b, float a, size_t n, size_t step)
{
    double acc = 0;
    for (size_t j = 0; j < n; j++) {
        float xj = m ? b * m[j * step] + a * g[j * step] : g[j * step];
        acc += (double)xj * (double)xj;
    }
    double rms = sqrt(acc / (double)n);
    return 1.0 / (rms > SCALE_FLOOR ? rms : SCALE_FLOOR);
}

static void update_line(float *w, const float *g, float *m, float b, float a, size_t n,
                        size_t step, float decay, float lr)
{
    float k = (float)inv_rms(g, m, b, a, n, step) * lr;
    for (size_t j = 0; j < n; j++) {
        size_t i = j * step;
        float xi = g[i];
        if (m) {
            xi = b * m[i] + a * g[i];
            m[i] = xi;
        }
        w[i] = decay * w[i] - k * xi;
    }
}

void muon__scale_update(const muon_opt *opt, muon__param *p, double lr)
{
    float *m = p->rule == MUON__RULE_SCALE_MOM ? p->buf[0] : NULL;
    const float b = (float)MUON__SCALE_HEAD_MOMENTUM, a = (float)(1.0 - MUON__SCALE_HEAD_MOMENTUM);
    const float decay = (float)(1.0 - lr * opt->cfg.weight_decay), flr = (float)lr;
    size_t rows = (size_t)p->batch * (size_t)p->rows, cols = (size_t)p->cols;
    if (p->role == MUON_ROLE_EMBEDDING) {
        for (size_t c = 0; c < cols; c++)
            update_line(p->w + c, p->g + c, m ? m + c : NULL, b, a, rows, cols, decay, flr);
    } else {
        for (size_t r = 0; r < rows; r++)
            update_line(p->w + r * cols, p->g + r * cols, m ? m + r * cols : NULL, b, a, cols, 1,
                        decay, flr);
    }
}
