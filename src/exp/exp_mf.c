/* mf: matrix factorization min 1/2 ||X Y^T - M||_F^2 with M of rank r and
 * condition number kappa ("Preconditioning Benefits of Spectral
 * Orthogonalization"; docs/algorithms.md 6). Iterations to a relative error
 * ||X Y^T - M||_F / ||M||_F <= 1e-3 for gradient descent, Adam and Muon
 * (the exact polar factor of each factor's gradient, no momentum, a
 * geometrically decaying step: the project's choice), each at the best
 * point of its own grid. Double precision throughout. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "exp/linalg.h"

#define TARGET 1e-3
#define N_KAPPA 4

enum { GD, ADAM, MUON, N_METHODS };
static const char *const method_names[N_METHODS] = {"gd", "adam", "muon"};

typedef struct {
    long n, r;
    const double *m;
    double m_norm;
    const double *x0, *y0;
} problem;

typedef struct {
    double lr, decay; /* decay: Muon's step factor per iteration */
} setting;

/* Residual R = X Y^T - M and its relative norm. */
static double residual(const problem *p, const double *x, const double *y, double *r)
{
    memcpy(r, p->m, sizeof(double) * (size_t)(p->n * p->n));
    exp_gemm(0, 1, p->n, p->n, p->r, 1.0, x, y, -1.0, r);
    double s = 0;
    for (long i = 0; i < p->n * p->n; i++)
        s += r[i] * r[i];
    return sqrt(s) / p->m_norm;
}

/* Iterations to TARGET, or -1 within the budget. */
static long run(const problem *p, int method, setting st, long budget)
{
    long n = p->n, k = p->r, nk = n * k;
    double *w = calloc((size_t)(8 * nk + n * n), sizeof(double));
    if (!w)
        return -1;
    double *x = w, *y = x + nk, *gx = y + nk, *gy = gx + nk, *mx = gy + nk, *my = mx + nk;
    double *vx = my + nk, *vy = vx + nk, *r = vy + nk;
    memcpy(x, p->x0, sizeof(double) * (size_t)nk);
    memcpy(y, p->y0, sizeof(double) * (size_t)nk);
    long found = -1;
    double eta = st.lr;
    for (long t = 0; t <= budget; t++) {
        double e = residual(p, x, y, r);
        if (!isfinite(e) || e > 1e6)
            break;
        if (e <= TARGET) {
            found = t;
            break;
        }
        exp_gemm(0, 0, n, k, n, 1.0, r, y, 0.0, gx);  /* R Y */
        exp_gemm(1, 0, n, k, n, 1.0, r, x, 0.0, gy);  /* R^T X */
        if (method == GD) {
            for (long i = 0; i < nk; i++) {
                x[i] -= st.lr * gx[i];
                y[i] -= st.lr * gy[i];
            }
        } else if (method == ADAM) {
            double b1 = 0.9, b2 = 0.999, c1 = 1 - pow(b1, t + 1), c2 = 1 - pow(b2, t + 1);
            for (long i = 0; i < nk; i++) {
                mx[i] = b1 * mx[i] + (1 - b1) * gx[i];
                vx[i] = b2 * vx[i] + (1 - b2) * gx[i] * gx[i];
                my[i] = b1 * my[i] + (1 - b1) * gy[i];
                vy[i] = b2 * vy[i] + (1 - b2) * gy[i] * gy[i];
                x[i] -= st.lr * (mx[i] / c1) / (sqrt(vx[i] / c2) + 1e-8);
                y[i] -= st.lr * (my[i] / c1) / (sqrt(vy[i] / c2) + 1e-8);
            }
        } else {
            if (exp_polar(gx, n, k, mx) || exp_polar(gy, n, k, my))
                break;
            for (long i = 0; i < nk; i++) {
                x[i] -= eta * mx[i];
                y[i] -= eta * my[i];
            }
            eta *= st.decay;
        }
    }
    free(w);
    return found;
}

static const setting grids[N_METHODS][8] = {
    {{0.05, 1}, {0.1, 1}, {0.2, 1}, {0.5, 1}},
    {{1e-3, 1}, {3e-3, 1}, {1e-2, 1}, {3e-2, 1}},
    {{0.1, 0.97}, {0.1, 0.99}, {0.1, 0.995}, {0.3, 0.97}, {0.3, 0.99}, {0.3, 0.995}},
};
static const int grid_n[N_METHODS] = {4, 4, 6};

int exp_mf(exp_ctx *x)
{
    const double kappas[N_KAPPA] = {10, 1e2, 1e3, 1e4};
    long n = x->quick ? 24 : 64, r = x->quick ? 4 : 8, budget = x->quick ? 1500 : 20000;
    double *m = malloc(sizeof(double) * (size_t)(n * n));
    double *x0 = malloc(sizeof(double) * (size_t)(n * r)), *y0 = malloc(sizeof(double) * (size_t)(n * r));
    double s[64] = {0};
    static double iters[N_METHODS][N_KAPPA], best_lr[N_METHODS][N_KAPPA], best_decay[N_KAPPA];
    if (!m || !x0 || !y0) {
        free(m);
        free(x0);
        free(y0);
        return exp_fail(x, "out of memory");
    }
    exp_rng rng;
    exp_rng_seed(&rng, 7);
    for (long i = 0; i < n * r; i++) {
        x0[i] = exp_normal(&rng) / sqrt((double)n);
        y0[i] = exp_normal(&rng) / sqrt((double)n);
    }
    int rc = 0;
    for (int k = 0; k < N_KAPPA && !rc; k++) {
        for (long i = 0; i < n; i++)
            s[i] = i < r ? pow(1.0 / kappas[k], (double)i / (double)(r - 1)) : 0.0;
        exp_rng mr;
        exp_rng_seed(&mr, 100);
        if (exp_matrix_with_spectrum(&mr, n, n, s, m)) {
            rc = exp_fail(x, "LAPACK failed");
            break;
        }
        double mn = 0;
        for (long i = 0; i < r; i++)
            mn += s[i] * s[i];
        problem p = {n, r, m, sqrt(mn), x0, y0};
        for (int meth = 0; meth < N_METHODS; meth++) {
            long best = -1;
            for (int g = 0; g < grid_n[meth]; g++) {
                long it = run(&p, meth, grids[meth][g], best >= 0 ? best : budget);
                if (it >= 0 && (best < 0 || it < best)) {
                    best = it;
                    best_lr[meth][k] = grids[meth][g].lr;
                    if (meth == MUON)
                        best_decay[k] = grids[meth][g].decay;
                }
            }
            iters[meth][k] = best >= 0 ? (double)best : NAN;
        }
    }
    free(m);
    free(x0);
    free(y0);
    if (rc)
        return rc;
    cJSON_AddItemToObject(x->root, "kappa", exp_json_array(kappas, N_KAPPA));
    for (int meth = 0; meth < N_METHODS; meth++)
        cJSON_AddItemToObject(x->root, method_names[meth], exp_json_array(iters[meth], N_KAPPA));
    cJSON *set = cJSON_CreateObject();
    for (int meth = 0; meth < N_METHODS; meth++)
        cJSON_AddItemToObject(set, method_names[meth], exp_json_array(best_lr[meth], N_KAPPA));
    cJSON_AddItemToObject(set, "muon_decay", exp_json_array(best_decay, N_KAPPA));
    cJSON_AddItemToObject(x->root, "best_lr", set);
    cJSON_AddNumberToObject(x->root, "budget", (double)budget);
    exp_md(x, "M is %ldx%ld of rank %ld with singular values spaced geometrically from 1 to "
              "1/kappa; X, Y are %ldx%ld from the same random start (entries N(0, 1/n)). "
              "Iterations until ||X Y^T - M||_F / ||M||_F <= %g (budget %ld; \"-\": not "
              "reached), each method at the best point of its grid: GD lr in {0.05, 0.1, 0.2, "
              "0.5}, Adam lr in {1e-3, 3e-3, 1e-2, 3e-2} (betas 0.9, 0.999), Muon step eta0 "
              "gamma^t with eta0 in {0.1, 0.3}, gamma in {0.97, 0.99, 0.995}.\n\n"
              "| kappa | GD | Adam | Muon |\n|---|---|---|---|\n",
           n, n, r, n, r, TARGET, budget);
    for (int k = 0; k < N_KAPPA; k++) {
        exp_md(x, "| %g |", kappas[k]);
        for (int meth = 0; meth < N_METHODS; meth++)
            if (isfinite(iters[meth][k]))
                exp_md(x, " %.0f (lr %g) |", iters[meth][k], best_lr[meth][k]);
            else
                exp_md(x, " - |");
        exp_md(x, "\n");
    }
    static double lk[N_KAPPA], li[N_METHODS][N_KAPPA];
    plot_series ser[N_METHODS];
    for (int k = 0; k < N_KAPPA; k++)
        lk[k] = log10(kappas[k]);
    for (int meth = 0; meth < N_METHODS; meth++) {
        for (int k = 0; k < N_KAPPA; k++)
            li[meth][k] = isfinite(iters[meth][k]) ? log10(fmax(iters[meth][k], 1)) : NAN;
        ser[meth] = (plot_series){method_names[meth], lk, li[meth], N_KAPPA};
    }
    plot_panel p = {"iterations to 1e-3 relative error", "log10 kappa", "log10 iterations", ser,
                    N_METHODS};
    return exp_plot(x, "mf.svg", "iterations against the condition number", &p, 1);
}
