/* rms: the moonlight scale's promise (docs/algorithms.md 2): an update RMS
 * of 0.2, like AdamW's, on every shape, against the other scale rules; and
 * Moonlight's observation that without weight decay the weights' RMS keeps
 * growing under Muon while decoupled decay bounds it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "exp/linalg.h"

#define N_SHAPES 6

/* RMS of one Muon update (lr 1, no momentum or decay) of a Gaussian
 * gradient through libmuon's default orthogonalization. */
static double update_rms(muon_scale_rule rule, long rows, long cols, exp_rng *r)
{
    size_t n = (size_t)(rows * cols);
    float *w = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
    double out = NAN;
    muon_opt_config c = muon_opt_config_default();
    c.lr = 1;
    c.momentum = 0;
    c.weight_decay = 0;
    c.scale = rule;
    long shape[2] = {rows, cols};
    muon_opt *opt = NULL;
    if (w && g && muon_opt_create(&c, &opt) == MUON_OK &&
        muon_opt_add_param(opt, "w", w, g, 2, shape, MUON_ROLE_MATRIX, NULL) == MUON_OK &&
        muon_opt_finalize(opt) == MUON_OK) {
        for (size_t i = 0; i < n; i++)
            g[i] = (float)exp_normal(r);
        if (muon_opt_step(opt, 1.0) == MUON_OK) {
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += (double)w[i] * w[i];
            out = sqrt(s / (double)n);
        }
    }
    muon_opt_free(opt);
    free(w);
    free(g);
    return out;
}

static int shapes_table(exp_ctx *x)
{
    long full[N_SHAPES][2] = {{64, 64}, {64, 256}, {256, 64}, {128, 512}, {512, 128}, {256, 1024}};
    long quick[N_SHAPES][2] = {{16, 16}, {16, 64}, {64, 16}, {32, 96}, {96, 32}, {48, 128}};
    long (*sh)[2] = x->quick ? quick : full;
    exp_rng r;
    exp_rng_seed(&r, 3);
    exp_md(x, "## Update RMS per scale rule\n\nOne update of a Gaussian gradient (lr 1, no "
              "momentum, no decay; polar-express 5 steps). A full-rank orthogonal matrix has "
              "RMS 1/sqrt(max(rows, cols)); moonlight multiplies by 0.2 sqrt(max(rows, cols)).\n\n"
              "| shape | moonlight | keller | spectral | none |\n|---|---|---|---|---|\n");
    cJSON *t = cJSON_CreateObject();
    static double rms[MUON_SCALE_COUNT][N_SHAPES], xs[N_SHAPES];
    for (int k = 0; k < N_SHAPES; k++) {
        char name[32];
        snprintf(name, sizeof name, "%ldx%ld", sh[k][0], sh[k][1]);
        exp_md(x, "| %s |", name);
        cJSON *e = cJSON_CreateObject();
        for (int rule = 0; rule < MUON_SCALE_COUNT; rule++) {
            rms[rule][k] = update_rms((muon_scale_rule)rule, sh[k][0], sh[k][1], &r);
            exp_md(x, " %.4f |", rms[rule][k]);
            cJSON_AddNumberToObject(e, muon_scale_name((muon_scale_rule)rule), rms[rule][k]);
        }
        exp_md(x, "\n");
        cJSON_AddItemToObject(t, name, e);
        xs[k] = k;
    }
    cJSON_AddItemToObject(x->root, "update_rms", t);
    plot_series s[MUON_SCALE_COUNT];
    for (int rule = 0; rule < MUON_SCALE_COUNT; rule++)
        s[rule] = (plot_series){muon_scale_name((muon_scale_rule)rule), xs, rms[rule], N_SHAPES};
    plot_panel p = {"update RMS (shapes in table order)", "shape index", "RMS", s,
                    MUON_SCALE_COUNT};
    return exp_plot(x, "update_rms.svg", "update RMS per scale rule", &p, 1);
}

int exp_rms(exp_ctx *x)
{
    if (shapes_table(x))
        return 1;
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    long steps = x->quick ? 20 : 800;
    enum { NV = 2 };
    const char *labels[NV] = {"Muon, no weight decay", "Muon, weight decay 0.1"};
    train_config c[NV];
    for (int v = 0; v < NV; v++) {
        c[v] = exp_gpt_config(x, steps);
        c[v].schedule = MUON_SCHED_CONSTANT;
        c[v].weight_decay = c[v].adam_weight_decay = v ? 0.1 : 0.0;
    }
    static exp_seeds out[NV];
    exp_md(x, "\n## Weight RMS during training\n\n");
    int rc = exp_gpt_compare(x, &d, NV, labels, c, out, "val_loss.svg");
    exp_data_free(&d);
    if (rc)
        return rc;
    static double st[NV][256];
    plot_series s[NV];
    exp_md(x, "\nRMS of the hidden matrices' weights (mean over seeds):\n\n| step | %s | %s |\n"
              "|---|---|---|\n", labels[0], labels[1]);
    cJSON *w = cJSON_CreateObject();
    for (int v = 0; v < NV; v++) {
        const exp_curve *cv = &out[v].mean_curve;
        for (int k = 0; k < cv->n; k++)
            st[v][k] = (double)cv->step[k];
        s[v] = (plot_series){labels[v], st[v], cv->weight_rms, cv->n};
        cJSON_AddItemToObject(w, labels[v], exp_json_array(cv->weight_rms, cv->n));
    }
    for (int k = 0; k < out[0].mean_curve.n; k++)
        exp_md(x, "| %ld | %.4f | %.4f |\n", out[0].mean_curve.step[k],
               out[0].mean_curve.weight_rms[k], out[1].mean_curve.weight_rms[k]);
    cJSON_AddItemToObject(x->root, "weight_rms", w);
    plot_panel p = {"RMS of the hidden matrices", "step", "weight RMS", s, NV};
    return exp_plot(x, "weight_rms.svg", "weight RMS", &p, 1);
}
