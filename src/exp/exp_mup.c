/* mup: learning-rate transfer across width ("Understanding the Mechanisms
 * of Fast Hyperparameter Transfer"; docs/algorithms.md 4). The Muon
 * group's lr swept at several widths with the spectral scale sqrt(rows /
 * cols) and with moonlight's 0.2 sqrt(max(rows, cols)); the AdamW group
 * stays at its own rate, so only the swept rate moves. The claim: under
 * spectral, the best lr stays put as the width grows. */
#include <math.h>
#include <stdio.h>

#include "exp/exp.h"

#define N_W 4
#define N_LR 5

int exp_mup(exp_ctx *x)
{
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    const int widths_full[N_W] = {64, 128, 256, 512}, widths_quick[N_W] = {16, 32, 0, 0};
    const int *widths = x->quick ? widths_quick : widths_full, nw = x->quick ? 2 : N_W;
    long steps = x->quick ? 10 : 80;
    const muon_scale_rule rules[2] = {MUON_SCALE_SPECTRAL, MUON_SCALE_MOONLIGHT};
    /* each rule's grid: factors of 2 around a rate whose update RMS matches at width 64 */
    const double base[2] = {0.04, 0.016};
    static double loss[2][N_W][N_LR], lrs[2][N_LR], best[2][N_W], lx[N_LR];
    int rc = 0;
    for (int r = 0; r < 2 && !rc; r++)
        for (int w = 0; w < nw && !rc; w++)
            for (int k = 0; k < N_LR && !rc; k++) {
                lrs[r][k] = base[r] * pow(2.0, k - 2);
                train_config c = exp_gpt_config(x, steps);
                c.model.layers = 1;
                c.model.dim = widths[w];
                c.model.heads = widths[w] / 32 > 0 ? widths[w] / 32 : 1;
                c.model.context = 32;
                c.batch = 8;
                c.scale = rules[r];
                c.lr = lrs[r][k];
                c.adam_lr = TRAIN_DEFAULT_ADAMW_LR;
                c.seed = 1;
                exp_seeds sd;
                rc = exp_gpt_seeds(x, &d, &c, &sd);
                loss[r][w][k] = sd.mean;
            }
    char desc[256];
    snprintf(desc, sizeof desc, "%s", d.desc);
    exp_data_free(&d);
    if (rc)
        return rc;
    exp_md(x, "One-layer GPTs of width w (heads of 32), context 32, batch 8, %ld steps on %s; "
              "the Muon group's lr swept by factors of 2, the AdamW group at %g. Final "
              "validation loss, mean over %d seeds:\n\n",
           steps, desc, TRAIN_DEFAULT_ADAMW_LR, x->seeds);
    cJSON *root = cJSON_CreateObject();
    static plot_series ser[2][N_W];
    static char names[2][N_W][32];
    for (int r = 0; r < 2; r++) {
        exp_md(x, "%s scale:\n\n| width |", muon_scale_name(rules[r]));
        for (int k = 0; k < N_LR; k++)
            exp_md(x, " lr %g |", lrs[r][k]);
        exp_md(x, " best lr |\n|---|");
        for (int k = 0; k <= N_LR; k++)
            exp_md(x, "---|");
        exp_md(x, "\n");
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "lr", exp_json_array(lrs[r], N_LR));
        for (int w = 0; w < nw; w++) {
            int b = 0;
            for (int k = 1; k < N_LR; k++)
                if (loss[r][w][k] < loss[r][w][b])
                    b = k;
            best[r][w] = lrs[r][b];
            exp_md(x, "| %d |", widths[w]);
            for (int k = 0; k < N_LR; k++)
                exp_md(x, k == b ? " **%.4f** |" : " %.4f |", loss[r][w][k]);
            exp_md(x, " %g |\n", best[r][w]);
            char key[32];
            snprintf(key, sizeof key, "%d", widths[w]);
            cJSON_AddItemToObject(o, key, exp_json_array(loss[r][w], N_LR));
            snprintf(names[r][w], sizeof names[r][w], "width %d", widths[w]);
            ser[r][w] = (plot_series){names[r][w], lx, loss[r][w], N_LR};
        }
        double shift = log2(best[r][nw - 1] / best[r][0]);
        exp_md(x, "\nBest lr moved by a factor 2^%.0f from width %d to %d.\n\n", shift, widths[0],
               widths[nw - 1]);
        cJSON_AddItemToObject(o, "best_lr", exp_json_array(best[r], nw));
        cJSON_AddNumberToObject(o, "best_lr_shift_log2", shift);
        cJSON_AddItemToObject(root, muon_scale_name(rules[r]), o);
    }
    cJSON_AddItemToObject(x->root, "sweeps", root);
    for (int k = 0; k < N_LR; k++)
        lx[k] = k - 2;
    plot_panel p[2] = {
        {"spectral scale", "log2(lr / 0.04)", "val loss", ser[0], nw},
        {"moonlight scale", "log2(lr / 0.016)", "val loss", ser[1], nw},
    };
    return exp_plot(x, "mup.svg", "lr sweeps per width", p, 2);
}
