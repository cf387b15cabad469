/* batch: the critical batch size ("Convergence Bound and Critical Batch
 * Size of Muon"; docs/algorithms.md 6). For each batch size B, the steps
 * K(B) until the validation loss reaches a target, and the sequences
 * processed B K(B); the critical batch size minimizes B K(B). Muon with and
 * without Nesterov and weight decay, AdamW with and without weight decay,
 * constant learning rates after warmup. The target is what AdamW without
 * decay reaches at batch 16 in the pilot budget. */
#include <math.h>
#include <stdio.h>

#include "exp/exp.h"

#define NV 5
#define MAX_B 6

int exp_batch(exp_ctx *x)
{
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    const int bs_full[MAX_B] = {4, 8, 16, 32, 64, 128}, bs_quick[2] = {8, 16};
    const int *bs = x->quick ? bs_quick : bs_full, nb = x->quick ? 2 : 5;
    long pilot_steps = x->quick ? 20 : 300;
    const char *labels[NV] = {"Muon", "Muon, no Nesterov", "Muon, weight decay 0.1", "AdamW",
                              "AdamW, weight decay 0.1"};
    /* the rates: each optimizer's best at batch 16; the pilot: AdamW without
     * decay at batch 16 */
    exp_md(x, "Learning rates: each optimizer's best of a sweep at batch 16, kept for every "
              "batch size.\n\n");
    train_config pc = exp_gpt_config(x, pilot_steps), mc;
    pc.optim = MUON_ALGO_ADAMW;
    pc.lr = pc.adam_lr = TRAIN_DEFAULT_ADAMW_LR;
    pc.schedule = MUON_SCHED_CONSTANT;
    mc = pc;
    mc.optim = MUON_ALGO_MUON;
    mc.lr = mc.adam_lr = TRAIN_DEFAULT_MUON_LR;
    exp_curve pilot;
    if (exp_tune_lr(x, &d, &pc, "AdamW", 1) || exp_tune_lr(x, &d, &mc, "Muon", 1) ||
        exp_gpt_run(x, &d, &pc, -INFINITY, &pilot)) {
        exp_data_free(&d);
        return 1;
    }
    exp_md(x, "\n");
    double target = pilot.final_val;
    static double k_mean[NV][MAX_B], k_std[NV][MAX_B], bk[NV][MAX_B], bx[MAX_B];
    int rc = 0, crit[NV];
    for (int v = 0; v < NV && !rc; v++) {
        crit[v] = -1;
        for (int b = 0; b < nb && !rc; b++) {
            double ks[EXP_MAX_SEEDS];
            int ns = x->seeds < EXP_MAX_SEEDS ? x->seeds : EXP_MAX_SEEDS;
            for (int s = 0; s < ns && !rc; s++) {
                train_config c = pc;
                c.batch = bs[b];
                /* three times the pilot's sequences, at most */
                c.steps = 3 * pilot_steps * 16 / bs[b];
                c.warmup = c.steps / 20;
                c.eval_every = c.steps / 60 > 0 ? c.steps / 60 : 1;
                c.seed = (uint64_t)(s + 1);
                c.optim = v < 3 ? MUON_ALGO_MUON : MUON_ALGO_ADAMW;
                c.lr = c.adam_lr = v < 3 ? mc.lr : pc.lr;
                c.nesterov = v != 1;
                c.weight_decay = c.adam_weight_decay = (v == 2 || v == 4) ? 0.1 : 0.0;
                exp_curve cv;
                rc = exp_gpt_run(x, &d, &c, target, &cv);
                ks[s] = exp_steps_to(&cv, target);
            }
            exp_mean_std(ks, ns, &k_mean[v][b], &k_std[v][b]);
            bk[v][b] = bs[b] * k_mean[v][b];
            bx[b] = log2(bs[b]);
            if (isfinite(bk[v][b]) && (crit[v] < 0 || bk[v][b] < bk[v][crit[v]]))
                crit[v] = b;
        }
    }
    char desc[256];
    snprintf(desc, sizeof desc, "%s", d.desc);
    exp_data_free(&d);
    if (rc)
        return rc;
    exp_md(x, "The small GPT on %s, context 64; target validation loss %.4f (AdamW at batch 16 "
              "after %ld steps, seed 1); constant lr after a 5%% warmup (Muon %g, AdamW %g); "
              "each run stops at the target or after 3 x %ld x 16 / B steps. K(B) is the mean "
              "over %d seeds (\"-\": a seed did not reach the target).\n\n| variant |",
           desc, target, pilot_steps, mc.lr, pc.lr,
           pilot_steps, x->seeds);
    for (int b = 0; b < nb; b++)
        exp_md(x, " K(%d) | B K(%d) |", bs[b], bs[b]);
    exp_md(x, " critical B |\n|---|");
    for (int b = 0; b < nb; b++)
        exp_md(x, "---|---|");
    exp_md(x, "---|\n");
    cJSON *vs = cJSON_CreateObject();
    double bsd[MAX_B];
    for (int b = 0; b < nb; b++)
        bsd[b] = bs[b];
    cJSON_AddItemToObject(x->root, "batch_sizes", exp_json_array(bsd, nb));
    cJSON_AddNumberToObject(x->root, "target", target);
    for (int v = 0; v < NV; v++) {
        exp_md(x, "| %s |", labels[v]);
        for (int b = 0; b < nb; b++)
            if (isfinite(k_mean[v][b]))
                exp_md(x, " %.0f ± %.0f | %.0f |", k_mean[v][b], k_std[v][b], bk[v][b]);
            else
                exp_md(x, " - | - |");
        if (crit[v] >= 0)
            exp_md(x, " %d |\n", bs[crit[v]]);
        else
            exp_md(x, " - |\n");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "steps_mean", exp_json_array(k_mean[v], nb));
        cJSON_AddItemToObject(e, "steps_std", exp_json_array(k_std[v], nb));
        cJSON_AddItemToObject(e, "sequences", exp_json_array(bk[v], nb));
        if (crit[v] >= 0)
            cJSON_AddNumberToObject(e, "critical_batch", bs[crit[v]]);
        else
            cJSON_AddNullToObject(e, "critical_batch");
        cJSON_AddItemToObject(vs, labels[v], e);
    }
    cJSON_AddItemToObject(x->root, "variants", vs);
    static double lk[NV][MAX_B], lbk[NV][MAX_B];
    plot_series s1[NV], s2[NV];
    for (int v = 0; v < NV; v++) {
        for (int b = 0; b < nb; b++) {
            lk[v][b] = log2(k_mean[v][b]);
            lbk[v][b] = log2(bk[v][b]);
        }
        s1[v] = (plot_series){labels[v], bx, lk[v], nb};
        s2[v] = (plot_series){labels[v], bx, lbk[v], nb};
    }
    plot_panel p[2] = {{"steps to the target", "log2 B", "log2 K(B)", s1, NV},
                       {"sequences to the target", "log2 B", "log2 B K(B)", s2, NV}};
    return exp_plot(x, "batch.svg", "K(B) and B K(B)", p, 2);
}
