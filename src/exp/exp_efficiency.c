/* efficiency: Moonlight's compute-efficiency claim at CPU scale
 * (docs/algorithms.md 6): at three model sizes, AdamW and the Muon hybrid
 * on the same budget; the steps and FLOPs (the model's 6 N per token plus
 * attention, and Muon's orthogonalizations) Muon needs to reach AdamW's
 * final validation loss. Moonlight reports about 2x (52% of AdamW's FLOPs). */
#include <math.h>
#include <stdio.h>

#include "exp/exp.h"

#define N_SIZES 3

int exp_efficiency(exp_ctx *x)
{
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    const int dims_full[N_SIZES] = {64, 96, 128}, dims_quick[N_SIZES] = {16, 32, 48};
    const int *dims = x->quick ? dims_quick : dims_full;
    long steps = x->quick ? 16 : 300;
    static double ratio[N_SIZES][EXP_MAX_SEEDS], flop_ratio[N_SIZES][EXP_MAX_SEEDS];
    static double rm[N_SIZES], rs[N_SIZES], fm[N_SIZES], fs[N_SIZES], params[N_SIZES];
    static double aw_loss[N_SIZES], mu_loss[N_SIZES], dx[N_SIZES];
    int ns = x->seeds < EXP_MAX_SEEDS ? x->seeds : EXP_MAX_SEEDS, rc = 0;
    exp_md(x, "Learning rates: each optimizer's best of a sweep at each width.\n\n");
    for (int k = 0; k < N_SIZES && !rc; k++) {
        train_config tc[2];
        for (int o = 0; o < 2 && !rc; o++) {
            tc[o] = exp_gpt_config(x, steps);
            tc[o].model.dim = dims[k];
            tc[o].model.heads = dims[k] / 32 > 0 ? dims[k] / 32 : 1;
            tc[o].optim = o ? MUON_ALGO_MUON : MUON_ALGO_ADAMW;
            tc[o].lr = tc[o].adam_lr = train_default_lr(tc[o].optim);
            tc[o].eval_every = steps / 30 > 0 ? steps / 30 : 1;
            char label[64];
            snprintf(label, sizeof label, "%s at width %d", o ? "Muon" : "AdamW", dims[k]);
            rc = exp_tune_lr(x, &d, &tc[o], label, 1);
        }
        for (int s = 0; s < ns && !rc; s++) {
            exp_curve cv[2];
            for (int o = 0; o < 2 && !rc; o++) {
                train_config c = tc[o];
                c.seed = (uint64_t)(s + 1);
                rc = exp_gpt_run(x, &d, &c, -INFINITY, &cv[o]);
            }
            if (rc)
                break;
            double st = exp_steps_to(&cv[1], cv[0].final_val);
            ratio[k][s] = (double)steps / st;
            flop_ratio[k][s] = (st * cv[1].step_flops) / ((double)steps * cv[0].step_flops);
            aw_loss[k] += cv[0].final_val / ns;
            mu_loss[k] += cv[1].final_val / ns;
            params[k] = (double)cv[0].n_params;
        }
        exp_mean_std(ratio[k], ns, &rm[k], &rs[k]);
        exp_mean_std(flop_ratio[k], ns, &fm[k], &fs[k]);
        dx[k] = dims[k];
    }
    char desc[256];
    snprintf(desc, sizeof desc, "%s", d.desc);
    exp_data_free(&d);
    if (rc)
        return rc;
    exp_md(x, "\nTwo-layer GPTs of width w on %s, context 64, batch 16, %ld steps, wsd "
              "schedule; AdamW and the Muon hybrid at the rates above. Speedup = AdamW's "
              "steps / Muon's steps to AdamW's final validation loss; Muon's FLOPs to that loss "
              "as a share of AdamW's (optimizer FLOPs included). Mean ± std over %d seeds.\n\n"
              "| width | parameters | AdamW val | Muon val | speedup (steps) | Muon FLOPs / AdamW "
              "FLOPs |\n|---|---|---|---|---|---|\n",
           desc, steps, ns);
    cJSON *arr = cJSON_CreateArray();
    for (int k = 0; k < N_SIZES; k++) {
        exp_md(x, "| %d | %.0f | %.4f | %.4f | %.2f ± %.2f | %.0f%% ± %.0f%% |\n", dims[k],
               params[k], aw_loss[k], mu_loss[k], rm[k], rs[k], 100 * fm[k], 100 * fs[k]);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "width", dims[k]);
        cJSON_AddNumberToObject(e, "parameters", params[k]);
        cJSON_AddNumberToObject(e, "adamw_val", aw_loss[k]);
        cJSON_AddNumberToObject(e, "muon_val", mu_loss[k]);
        cJSON_AddItemToObject(e, "speedup", exp_json_array(ratio[k], ns));
        cJSON_AddItemToObject(e, "flops_share", exp_json_array(flop_ratio[k], ns));
        cJSON_AddNumberToObject(e, "speedup_mean", rm[k]);
        cJSON_AddNumberToObject(e, "flops_share_mean", fm[k]);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToObject(x->root, "sizes", arr);
    exp_md(x, "\nMoonlight: about 2x compute efficiency (52%% of AdamW's FLOPs) at scale.\n");
    plot_series s[2] = {{"speedup in steps", dx, rm, N_SIZES},
                        {"Muon FLOPs / AdamW FLOPs", dx, fm, N_SIZES}};
    plot_panel p = {"Muon against AdamW", "width", "ratio", s, 2};
    return exp_plot(x, "efficiency.svg", "speedup per model size", &p, 1);
}
