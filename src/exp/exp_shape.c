/* shape: spectrum shaping (the isotropic curvature model; docs/algorithms.md
 * 4): the Muon rule's singular values mapped s -> s^p, rescaled to the
 * polar factor's Frobenius norm, for p in {0, 0.25, 0.5, 1}; p = 0 is Muon
 * (through the same SVD here, so only p changes). */
#include <stdio.h>

#include "exp/exp.h"

int exp_shape(exp_ctx *x)
{
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    long steps = x->quick ? 16 : 300;
    enum { NV = 4 };
    const double ps[NV] = {0, 0.25, 0.5, 1};
    const char *labels[NV] = {"p = 0 (Muon)", "p = 0.25", "p = 0.5", "p = 1"};
    train_config c[NV];
    exp_md(x, "Learning rates: each p's best of a sweep (both groups at the swept rate, as "
              "`muon compare` does).\n\n");
    int rc = 0;
    for (int v = 0; v < NV && !rc; v++) {
        c[v] = exp_gpt_config(x, steps);
        c[v].spectrum_power = ps[v];
        c[v].ortho.method = MUON_ORTHO_SVD;
        rc = exp_tune_lr(x, &d, &c[v], labels[v], 1);
    }
    exp_md(x, "\n");
    static exp_seeds out[NV];
    if (!rc)
        rc = exp_gpt_compare(x, &d, NV, labels, c, out, "shape.svg");
    exp_data_free(&d);
    if (!rc) {
        int best = 0;
        for (int v = 1; v < NV; v++)
            if (out[v].mean < out[best].mean)
                best = v;
        exp_md(x, "\nLowest mean loss: %s.\n", labels[best]);
        cJSON_AddNumberToObject(x->root, "best_p", ps[best]);
    }
    return rc;
}
