/* switch: Xmodel-2.5's recipe (docs/algorithms.md 4): AdamW in the stable
 * phase of a warmup-stable-decay schedule, the hidden matrices switched to
 * Muon with fresh momentum for the decay phase (their decay shape), against
 * AdamW and Muon throughout on the same schedule. */
#include <math.h>

#include "exp/exp.h"

int exp_switch(exp_ctx *x)
{
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    long steps = x->quick ? 20 : 400;
    enum { NV = 3 };
    const char *labels[NV] = {"AdamW throughout", "Muon throughout", "AdamW -> Muon at decay"};
    const muon_algo algos[NV] = {MUON_ALGO_ADAMW, MUON_ALGO_MUON, MUON_ALGO_ADAMW_MUON};
    train_config c[NV];
    exp_md(x, "Learning rates: each optimizer's best of a sweep on this model; the switch "
              "runs each phase at its own optimizer's rate.\n\n");
    int rc = 0;
    for (int v = 0; v < NV && !rc; v++) {
        c[v] = exp_gpt_config(x, steps);
        c[v].optim = algos[v];
        c[v].decay_shape = MUON_DECAY_XMODEL;
        c[v].lr = c[v].adam_lr = train_default_lr(algos[v]);
        if (v < 2)
            rc = exp_tune_lr(x, &d, &c[v], labels[v], 1);
    }
    if (rc) {
        exp_data_free(&d);
        return rc;
    }
    c[2].lr = c[1].lr;
    c[2].adam_lr = c[0].lr;
    exp_md(x, "\n");
    static exp_seeds out[NV];
    rc = exp_gpt_compare(x, &d, NV, labels, c, out, "switch.svg");
    if (!rc) {
        muon_opt_config oc = train_opt_config(&c[2]);
        double gain = (out[0].mean - out[2].mean) / out[0].mean * 100;
        exp_md(x, "\nThe switch happens at step %ld (the decay phase's first, 20%% of the "
                  "steps). Validation loss of the switch relative to AdamW throughout: "
                  "%+.2f%% (lower is better); to Muon throughout: %+.2f%%. Xmodel-2.5 reports "
                  "+4.58%% on a 13-task average at 1.3B parameters, a different measure.\n",
               oc.switch_step, -gain, (out[2].mean - out[1].mean) / out[1].mean * 100);
        cJSON_AddNumberToObject(x->root, "switch_step", (double)oc.switch_step);
        cJSON_AddNumberToObject(x->root, "switch_vs_adamw_pct", -gain);
    }
    exp_data_free(&d);
    return rc;
}
