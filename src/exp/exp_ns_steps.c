/* ns-steps: how fast each coefficient set orthogonalizes (docs/algorithms.md
 * 1a and 6). For random Gaussian and ill-conditioned inputs, the residual
 * ||I - X X^T||_2 = max |s_i^2 - 1| and max |s_i - 1| after q = 1..Q steps,
 * with taylor-K's bound delta_q <= delta_0^((K+1)^q); then the small GPT's
 * validation loss after a fixed budget with 1..5 polar-express steps and
 * with the exact polar factor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "exp/linalg.h"

#define N_SETS 8
#define MAX_Q 12

static const char *const set_names[N_SETS] = {"keller", "quintic5", "polar-express", "taylor-1",
                                              "taylor-2", "taylor-3", "taylor-4", "taylor-5"};

typedef struct {
    double resid[N_SETS][MAX_Q], dev[N_SETS][MAX_Q], bound[5][MAX_Q], delta0;
} sweep;

static int run_input(exp_ctx *x, const float *g, long rows, long cols, int qmax, sweep *sw)
{
    long k = rows < cols ? rows : cols;
    float *o = malloc(sizeof(float) * (size_t)(rows * cols));
    double *s = malloc(sizeof(double) * (size_t)k);
    if (!o || !s) {
        free(o);
        free(s);
        return exp_fail(x, "out of memory");
    }
    /* delta_0 of the Frobenius-normalized input */
    exp_singular_values_f(g, rows, cols, s);
    double f2 = 0;
    for (long i = 0; i < k; i++)
        f2 += s[i] * s[i];
    sw->delta0 = 1.0 - s[k - 1] * s[k - 1] / f2;
    int rc = 0;
    for (int c = 0; c < N_SETS && !rc; c++)
        for (int q = 1; q <= qmax && !rc; q++) {
            muon_ortho_config oc = muon_ortho_config_default();
            oc.method = MUON_ORTHO_NS;
            oc.steps = q;
            muon_coeffs_parse(set_names[c], &oc);
            if (muon_orthogonalize(&oc, g, o, rows, cols, NULL, 0) != MUON_OK ||
                exp_singular_values_f(o, rows, cols, s)) {
                rc = exp_fail(x, "orthogonalization failed (%s, %d steps)", set_names[c], q);
                break;
            }
            double r = 0, d = 0;
            for (long i = 0; i < k; i++) {
                r = fmax(r, fabs(s[i] * s[i] - 1));
                d = fmax(d, fabs(s[i] - 1));
            }
            sw->resid[c][q - 1] = r;
            sw->dev[c][q - 1] = d;
        }
    for (int K = 1; K <= 5; K++)
        for (int q = 1; q <= qmax; q++)
            sw->bound[K - 1][q - 1] = pow(sw->delta0, pow(K + 1, q));
    free(o);
    free(s);
    return rc;
}

static void table(exp_ctx *x, const char *title, const sweep *sw, int qmax)
{
    exp_md(x, "\n%s: max |s_i - 1| after q steps (delta_0 = %.6f)\n\n| coefficients |", title,
           sw->delta0);
    for (int q = 1; q <= qmax; q++)
        exp_md(x, " q=%d |", q);
    exp_md(x, "\n|---|");
    for (int q = 1; q <= qmax; q++)
        exp_md(x, "---|");
    exp_md(x, "\n");
    for (int c = 0; c < N_SETS; c++) {
        exp_md(x, "| %s |", set_names[c]);
        for (int q = 1; q <= qmax; q++)
            exp_md(x, " %.2g |", sw->dev[c][q - 1]);
        exp_md(x, "\n");
    }
}

static cJSON *sweep_json(const sweep *sw, int qmax)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "delta0", sw->delta0);
    for (int c = 0; c < N_SETS; c++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "residual", exp_json_array(sw->resid[c], qmax));
        cJSON_AddItemToObject(e, "max_dev", exp_json_array(sw->dev[c], qmax));
        if (c >= 3)
            cJSON_AddItemToObject(e, "bound", exp_json_array(sw->bound[c - 3], qmax));
        cJSON_AddItemToObject(o, set_names[c], e);
    }
    return o;
}

static int matrices(exp_ctx *x)
{
    long rows = x->quick ? 64 : 256, cols = x->quick ? 128 : 1024;
    int qmax = x->quick ? 6 : MAX_Q;
    float *g = malloc(sizeof(float) * (size_t)(rows * cols));
    double *gd = malloc(sizeof(double) * (size_t)(rows * cols));
    double *sv = malloc(sizeof(double) * (size_t)rows);
    static sweep sw[2];
    int rc = !g || !gd || !sv ? exp_fail(x, "out of memory") : 0;
    exp_rng r;
    exp_rng_seed(&r, 1);
    for (long i = 0; !rc && i < rows * cols; i++)
        g[i] = (float)exp_normal(&r);
    if (!rc)
        rc = run_input(x, g, rows, cols, qmax, &sw[0]);
    for (long i = 0; i < rows && !rc; i++)
        sv[i] = pow(1e-3, (double)i / (double)(rows - 1));
    if (!rc && exp_matrix_with_spectrum(&r, rows, cols, sv, gd))
        rc = exp_fail(x, "LAPACK failed");
    for (long i = 0; !rc && i < rows * cols; i++)
        g[i] = (float)gd[i];
    if (!rc)
        rc = run_input(x, g, rows, cols, qmax, &sw[1]);
    free(g);
    free(gd);
    free(sv);
    if (rc)
        return rc;
    exp_md(x, "## Residual per step\n\nInputs %ldx%ld: a Gaussian matrix, and one with singular "
              "values spaced geometrically from 1 to 1e-3 (condition number 1e3). Plain NS "
              "(method ns), fp32.\n",
           rows, cols);
    table(x, "Gaussian", &sw[0], qmax);
    table(x, "Condition number 1e3", &sw[1], qmax);
    cJSON_AddItemToObject(x->root, "gaussian", sweep_json(&sw[0], qmax));
    cJSON_AddItemToObject(x->root, "cond1e3", sweep_json(&sw[1], qmax));

    static double qs[MAX_Q], lr[2][N_SETS][MAX_Q], lb[5][MAX_Q];
    for (int q = 0; q < qmax; q++)
        qs[q] = q + 1;
    plot_series s0[N_SETS], s1[N_SETS], s2[10];
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < N_SETS; c++)
            for (int q = 0; q < qmax; q++)
                lr[k][c][q] = log10(fmax(sw[k].resid[c][q], 1e-8));
    for (int c = 0; c < N_SETS; c++) {
        s0[c] = (plot_series){set_names[c], qs, lr[0][c], qmax};
        s1[c] = (plot_series){set_names[c], qs, lr[1][c], qmax};
    }
    static char labels[5][32];
    for (int K = 0; K < 5; K++) {
        for (int q = 0; q < qmax; q++)
            lb[K][q] = log10(fmax(sw[0].bound[K][q], 1e-8));
        snprintf(labels[K], sizeof labels[K], "bound K=%d", K + 1);
        s2[2 * K] = (plot_series){set_names[3 + K], qs, lr[0][3 + K], qmax};
        s2[2 * K + 1] = (plot_series){labels[K], qs, lb[K], qmax};
    }
    plot_panel p[3] = {
        {"Gaussian input", "NS steps q", "log10 ||I - X X^T||_2", s0, N_SETS},
        {"condition number 1e3", "NS steps q", "log10 ||I - X X^T||_2", s1, N_SETS},
        {"taylor-K and its bound (Gaussian)", "NS steps q", "log10 residual", s2, 10},
    };
    return exp_plot(x, "residual.svg", "residual per step", p, 3);
}

static int training(exp_ctx *x)
{
    exp_data d;
    if (exp_data_load(x, &d))
        return 1;
    long steps = x->quick ? 16 : 300;
    enum { NV = 6 };
    static exp_seeds out[NV];
    static double mean[NV], sd[NV], qv[NV];
    int rc = 0;
    for (int v = 0; v < NV && !rc; v++) {
        train_config c = exp_gpt_config(x, steps);
        if (v < 5)
            c.ortho.steps = v + 1;
        else
            c.ortho.method = MUON_ORTHO_SVD;
        rc = exp_gpt_seeds(x, &d, &c, &out[v]);
        mean[v] = out[v].mean;
        sd[v] = out[v].std;
    }
    char desc[256];
    snprintf(desc, sizeof desc, "%s", d.desc);
    exp_data_free(&d);
    if (rc)
        return rc;
    exp_md(x, "\n## Training with q steps\n\nThe small GPT (2 layers, width 64, context 64, "
              "batch 16) on %s, Muon hybrid at lr %g, %ld steps, wsd schedule, polar-express "
              "coefficients; mean and standard deviation of the final validation loss over %d "
              "seeds.\n\n| NS steps | val loss | std |\n|---|---|---|\n",
           desc, TRAIN_DEFAULT_MUON_LR, steps, x->seeds);
    cJSON *t = cJSON_CreateObject();
    for (int v = 0; v < NV; v++) {
        qv[v] = v + 1;
        exp_md(x, "| %s | %.4f | %.4f |\n", v < 5 ? (const char *[]){"1", "2", "3", "4", "5"}[v]
                                                  : "exact (svd)",
               mean[v], sd[v]);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "mean", mean[v]);
        cJSON_AddNumberToObject(e, "std", sd[v]);
        cJSON_AddItemToObject(e, "per_seed", exp_json_array(out[v].final_val, out[v].n));
        cJSON_AddItemToObject(t, v < 5 ? (const char *[]){"1", "2", "3", "4", "5"}[v] : "svd", e);
    }
    cJSON_AddItemToObject(x->root, "training", t);
    static double svdline[2], svdx[2] = {1, 5};
    svdline[0] = svdline[1] = mean[5];
    plot_series s[2] = {{"polar-express, q steps", qv, mean, 5}, {"exact polar (svd)", svdx, svdline, 2}};
    plot_panel p = {"final validation loss", "NS steps q", "val loss", s, 2};
    return exp_plot(x, "training.svg", "loss against NS steps", &p, 1);
}

int exp_ns_steps(exp_ctx *x)
{
    int rc = matrices(x);
    return rc ? rc : training(x);
}
