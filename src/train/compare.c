/* The AdamW-versus-Muon comparison. Fairness rules:
 * - both optimizers sweep the same learning-rate grid on the same short
 *   budget, data order and initialisation; the hybrid's AdamW group uses the
 *   swept rate too (the Moonlight recipe: the 0.2 RMS matching lets Muon
 *   reuse AdamW's rate), so no side is tuned by hand;
 * - when an optimizer's best rate sits at an edge of the grid, the grid is
 *   extended by one point on that side (up to max_extend times), so the best
 *   is bracketed;
 * - the final runs use the full budget with each optimizer's best rate,
 *   once per seed (initialisation and data order), so the reported speedup
 *   comes with the spread one run's rounding and noise would hide. */
#include "train/compare.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "train/plot.h"

compare_config compare_config_default(void)
{
    compare_config c;
    memset(&c, 0, sizeof c);
    c.base = train_config_default();
    /* brackets both optimizers' best at the default model: AdamW 4e-3,
     * Muon 1.6e-2 (measured on tinyshakespeare) */
    c.n_grid = 5;
    for (int i = 0; i < c.n_grid; i++)
        c.grid[i] = 2e-3 * (double)(1 << i);
    c.sweep_steps = 0; /* steps / 4 */
    c.max_extend = 3;
    c.seeds = 3;
    return c;
}

double compare_steps_to_reach(const long *steps, const double *loss, int n, double target)
{
    for (int i = 0; i < n; i++) {
        if (!(loss[i] <= target))
            continue;
        if (i == 0)
            return (double)steps[0];
        double f = (loss[i - 1] - target) / (loss[i - 1] - loss[i]);
        return (double)steps[i - 1] + f * (double)(steps[i] - steps[i - 1]);
    }
    return -1;
}

typedef struct {
    double lr, loss;
} sweep_point;

typedef struct {
    const char *name;
    muon_algo algo;
    sweep_point pts[COMPARE_MAX_GRID + 8];
    int n_pts;
    double best_lr;
    int bracketed;
    train_result res;                             /* the first seed's final run */
    train_result more[COMPARE_MAX_SEEDS - 1];     /* the other seeds' */
} side;

static const train_result *seed_result(const side *s, int k)
{
    return k == 0 ? &s->res : &s->more[k - 1];
}

static void free_side(side *s)
{
    train_result_free(&s->res);
    for (int k = 0; k < COMPARE_MAX_SEEDS - 1; k++)
        train_result_free(&s->more[k]);
}

/* Steps Muon needs to reach AdamW's final validation loss in one seed's
 * pair of runs (steps / that: the speedup); when Muon never gets there,
 * AdamW's steps to Muon's final loss over the budget (< 1), so the figure
 * is still a ratio of steps. *muon_steps gets Muon's steps or -1. */
static double pair_speedup(const train_result *aw, const train_result *mu, long steps,
                           double *muon_steps)
{
    double m = compare_steps_to_reach(mu->eval_step, mu->eval_loss, mu->n_evals,
                                      aw->final_val_loss);
    *muon_steps = m;
    if (m > 0)
        return (double)steps / m;
    double a = compare_steps_to_reach(aw->eval_step, aw->eval_loss, aw->n_evals,
                                      mu->final_val_loss);
    return a > 0 ? a / (double)steps : NAN;
}

static int run_one(const compare_config *c, side *s, double lr, long steps, long eval_every,
                   const char *sub, uint64_t seed, train_result *res, char *err, size_t errcap)
{
    train_config t = c->base;
    t.seed = seed;
    t.optim = s->algo;
    t.lr = lr;
    t.adam_lr = lr;
    t.steps = steps;
    t.stop_at = 0;
    t.eval_every = eval_every;
    if (t.warmup > steps / 4)
        t.warmup = steps / 4;
    snprintf(t.label, sizeof t.label, "%s lr=%g", s->name, lr);
    if (snprintf(t.out_dir, sizeof t.out_dir, "%s/%s", c->base.out_dir, sub) >=
        (int)sizeof t.out_dir) {
        snprintf(err, errcap, "output path too long");
        return 1;
    }
    int rc = train_run(&t, NULL, res, err, errcap);
    if (rc && res->diverged) {
        fprintf(stderr, "  %s lr=%g diverged (%s)\n", s->name, lr, err);
        return 0; /* a diverged rate is a result of the sweep, not an error */
    }
    return rc;
}

static double sweep_loss(const compare_config *c, side *s, double lr, long steps, char *err,
                         size_t errcap, int *rc)
{
    for (int i = 0; i < s->n_pts; i++)
        if (s->pts[i].lr == lr)
            return s->pts[i].loss;
    char sub[128];
    snprintf(sub, sizeof sub, "sweep/%s-lr%g", s->name, lr);
    train_result r;
    *rc = run_one(c, s, lr, steps, steps, sub, c->base.seed, &r, err, errcap);
    double loss = r.diverged || !isfinite(r.final_val_loss) ? INFINITY : r.final_val_loss;
    if (c->base.progress != TRAIN_PROGRESS_QUIET && !*rc)
        fprintf(stderr, "  sweep %-5s lr=%-8g val loss %.4f (%.1f s)\n", s->name, lr, loss,
                r.wall_s);
    train_result_free(&r);
    if (s->n_pts < (int)(sizeof s->pts / sizeof s->pts[0]))
        s->pts[s->n_pts++] = (sweep_point){lr, loss};
    return loss;
}

/* Sweep the grid, extending it while the best rate is at an edge. */
static int sweep(const compare_config *c, side *s, long steps, char *err, size_t errcap)
{
    double grid[COMPARE_MAX_GRID + 8];
    int n = c->n_grid, rc = 0;
    memcpy(grid, c->grid, sizeof(double) * (size_t)n);
    for (int ext = 0;; ext++) {
        int best = 0;
        double best_loss = INFINITY;
        for (int i = 0; i < n; i++) {
            double l = sweep_loss(c, s, grid[i], steps, err, errcap, &rc);
            if (rc)
                return rc;
            if (l < best_loss) {
                best_loss = l;
                best = i;
            }
        }
        s->best_lr = grid[best];
        s->bracketed = best > 0 && best < n - 1;
        if (s->bracketed || ext == c->max_extend || n >= (int)(sizeof grid / sizeof grid[0]))
            return 0;
        /* one more point beyond the edge, with the grid's own spacing */
        if (best == 0) {
            double ratio = n > 1 ? grid[1] / grid[0] : 2.0;
            memmove(grid + 1, grid, sizeof(double) * (size_t)n);
            grid[0] = grid[1] / ratio;
        } else {
            double ratio = n > 1 ? grid[n - 1] / grid[n - 2] : 2.0;
            grid[n] = grid[n - 1] * ratio;
        }
        n++;
        if (!isfinite(best_loss)) /* everything diverged: stop extending upward */
            return 0;
    }
}

static cJSON *side_json(const side *s, double steps_to_target)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "final_val_loss", s->res.final_val_loss);
    cJSON_AddNumberToObject(o, "lr", s->best_lr);
    cJSON_AddBoolToObject(o, "lr_bracketed", s->bracketed);
    cJSON_AddNumberToObject(o, "tokens_per_s", s->res.tokens_per_s);
    cJSON_AddNumberToObject(o, "optimizer_state_bytes", (double)s->res.opt_state_bytes);
    cJSON_AddNumberToObject(o, "wall_s", s->res.wall_s);
    if (steps_to_target >= 0)
        cJSON_AddNumberToObject(o, "steps_to_adamw_final", steps_to_target);
    else
        cJSON_AddNullToObject(o, "steps_to_adamw_final");
    cJSON *sw = cJSON_AddArrayToObject(o, "sweep");
    for (int i = 0; i < s->n_pts; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "lr", s->pts[i].lr);
        if (isfinite(s->pts[i].loss))
            cJSON_AddNumberToObject(p, "val_loss", s->pts[i].loss);
        else
            cJSON_AddNullToObject(p, "val_loss");
        cJSON_AddItemToArray(sw, p);
    }
    cJSON *curve = cJSON_AddArrayToObject(o, "val_curve");
    for (int i = 0; i < s->res.n_evals; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "step", (double)s->res.eval_step[i]);
        cJSON_AddNumberToObject(p, "val_loss", s->res.eval_loss[i]);
        cJSON_AddNumberToObject(p, "wall_s", s->res.eval_wall[i]);
        cJSON_AddItemToArray(curve, p);
    }
    return o;
}

static int write_text(const char *path, const char *text, char *err, size_t errcap)
{
    char tmp[TRAIN_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int write_outputs(const compare_config *c, side *aw, side *mu, char *err, size_t errcap)
{
    long steps = c->base.steps;
    /* AdamW reaches its own final loss at its last step (by definition) */
    double muon_steps = -1, sp[COMPARE_MAX_SEEDS], sp_lo = INFINITY, sp_hi = -INFINITY, sp_mean = 0;
    double lo[2] = {INFINITY, INFINITY}, hi[2] = {-INFINITY, -INFINITY}, mean[2] = {0, 0};
    for (int k = c->seeds - 1; k >= 0; k--) { /* seed 0 last: its muon_steps stays */
        sp[k] = pair_speedup(seed_result(aw, k), seed_result(mu, k), steps, &muon_steps);
        sp_lo = fmin(sp_lo, sp[k]);
        sp_hi = fmax(sp_hi, sp[k]);
        sp_mean += sp[k] / c->seeds;
        for (int i = 0; i < 2; i++) {
            double v = seed_result(i ? mu : aw, k)->final_val_loss;
            lo[i] = fmin(lo[i], v);
            hi[i] = fmax(hi[i], v);
            mean[i] += v / c->seeds;
        }
    }
    double speedup = sp_mean;
    double mu_time = NAN;
    if (muon_steps > 0) { /* wall time at which Muon reached the target */
        for (int i = 1; i < mu->res.n_evals; i++)
            if (mu->res.eval_step[i] >= muon_steps) {
                double f = (muon_steps - (double)mu->res.eval_step[i - 1]) /
                           (double)(mu->res.eval_step[i] - mu->res.eval_step[i - 1]);
                mu_time = mu->res.eval_wall[i - 1] + f * (mu->res.eval_wall[i] -
                                                          mu->res.eval_wall[i - 1]);
                break;
            }
        if (!isfinite(mu_time) && mu->res.n_evals > 0)
            mu_time = mu->res.eval_wall[0] * muon_steps / (double)mu->res.eval_step[0];
    }
    double time_speedup = isfinite(mu_time) && mu_time > 0 ? aw->res.wall_s / mu_time : NAN;

    char path[TRAIN_PATH_MAX + 32];
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "adamw", side_json(aw, (double)steps));
    cJSON_AddItemToObject(root, "muon", side_json(mu, muon_steps));
    if (isfinite(speedup))
        cJSON_AddNumberToObject(root, "speedup", speedup);
    else
        cJSON_AddNullToObject(root, "speedup");
    cJSON_AddNumberToObject(root, "seeds", c->seeds);
    cJSON *spa = cJSON_AddArrayToObject(root, "speedup_per_seed");
    cJSON *fla[2] = {cJSON_AddArrayToObject(cJSON_GetObjectItem(root, "adamw"), "final_val_loss_per_seed"),
                     cJSON_AddArrayToObject(cJSON_GetObjectItem(root, "muon"), "final_val_loss_per_seed")};
    for (int k = 0; k < c->seeds; k++) {
        cJSON_AddItemToArray(spa, isfinite(sp[k]) ? cJSON_CreateNumber(sp[k]) : cJSON_CreateNull());
        for (int i = 0; i < 2; i++)
            cJSON_AddItemToArray(fla[i], cJSON_CreateNumber(seed_result(i ? mu : aw, k)->final_val_loss));
    }
    if (isfinite(time_speedup))
        cJSON_AddNumberToObject(root, "wall_time_speedup", time_speedup);
    cJSON_AddNumberToObject(root, "steps", (double)steps);
    cJSON_AddNumberToObject(root, "sweep_steps", (double)c->sweep_steps);
    char *conf = train_config_to_json(&c->base);
    cJSON_AddItemToObject(root, "config", cJSON_Parse(conf));
    free(conf);
    char *json = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/summary.json", c->base.out_dir);
    int rc = write_text(path, json, err, errcap);
    free(json);
    if (rc)
        return rc;

    /* report.md */
    size_t cap = 16384;
    char *md = malloc(cap);
    if (!md)
        return -1;
    int n = 0;
    const train_config *b = &c->base;
    n += snprintf(md + n, cap - (size_t)n,
                  "# AdamW vs Muon\n\n"
                  "Data `%s`; model %d layers, width %d, %d heads, context %d, vocabulary %d; "
                  "batch %d; %ld steps, %s schedule (warmup %ld); weight decay %g on Muon's "
                  "matrices and %g on the AdamW group (AdamW alone: %g); final runs with seeds "
                  "%llu..%llu.\n\n"
                  "| optimizer | lr | final val loss (seed %llu) | over %d seeds: mean (min - max) "
                  "| steps to AdamW's final val loss (seed %llu) | "
                  "tokens/s | optimizer state | wall time |\n|---|---|---|---|---|---|---|---|\n",
                  b->data, b->model.layers, b->model.dim, b->model.heads, b->model.context,
                  aw->res.n_params ? b->model.vocab : 0, b->batch, steps,
                  muon_schedule_name(b->schedule), b->warmup, b->weight_decay,
                  b->adam_weight_decay, b->weight_decay, (unsigned long long)b->seed,
                  (unsigned long long)b->seed + (unsigned)c->seeds - 1,
                  (unsigned long long)b->seed, c->seeds, (unsigned long long)b->seed);
    side *sides[2] = {aw, mu};
    for (int i = 0; i < 2; i++) {
        side *s = sides[i];
        char reach[32];
        double st = i == 0 ? (double)steps : muon_steps;
        if (st >= 0)
            snprintf(reach, sizeof reach, "%.0f", st);
        else
            snprintf(reach, sizeof reach, "not reached");
        n += snprintf(md + n, cap - (size_t)n,
                      "| %s | %g%s | %.4f | %.4f (%.4f - %.4f) | %s | %.0f | %.1f KiB | %.1f s |\n",
                      i == 0 ? "AdamW" : "Muon (hybrid, moonlight scale)", s->best_lr,
                      s->bracketed ? "" : " (edge)", s->res.final_val_loss, mean[i], lo[i], hi[i],
                      reach, s->res.tokens_per_s, (double)s->res.opt_state_bytes / 1024.0,
                      s->res.wall_s);
    }
    n += snprintf(md + n, cap - (size_t)n,
                  "\n**Speedup** (AdamW's steps / Muon's steps to AdamW's final validation "
                  "loss, seed by seed): **%.2f**, from %.2f to %.2f over %d seeds (",
                  speedup, sp_lo, sp_hi, c->seeds);
    for (int k = 0; k < c->seeds; k++)
        n += snprintf(md + n, cap - (size_t)n, "%s%.2f", k ? ", " : "", sp[k]);
    n += snprintf(md + n, cap - (size_t)n, ")");
    if (isfinite(time_speedup))
        n += snprintf(md + n, cap - (size_t)n, "; in wall time: %.2f", time_speedup);
    n += snprintf(md + n, cap - (size_t)n,
                  ".\n\nLearning rates: both optimizers swept the same grid for %ld steps "
                  "each (the hybrid's AdamW group uses the swept rate too); validation loss "
                  "after the sweep run:\n\n| lr |", c->sweep_steps);
    /* the union of both sweeps' rates, ascending */
    double lrs[2 * (COMPARE_MAX_GRID + 8)];
    int nl = 0;
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < sides[i]->n_pts; k++) {
            int dup = 0;
            for (int j = 0; j < nl; j++)
                dup |= lrs[j] == sides[i]->pts[k].lr;
            if (!dup)
                lrs[nl++] = sides[i]->pts[k].lr;
        }
    for (int i = 1; i < nl; i++)
        for (int j = i; j > 0 && lrs[j] < lrs[j - 1]; j--) {
            double t = lrs[j];
            lrs[j] = lrs[j - 1];
            lrs[j - 1] = t;
        }
    for (int i = 0; i < nl; i++)
        n += snprintf(md + n, cap - (size_t)n, " %g |", lrs[i]);
    n += snprintf(md + n, cap - (size_t)n, "\n|---|");
    for (int i = 0; i < nl; i++)
        n += snprintf(md + n, cap - (size_t)n, "---|");
    for (int i = 0; i < 2; i++) {
        n += snprintf(md + n, cap - (size_t)n, "\n| %s |", sides[i]->name);
        for (int j = 0; j < nl; j++) {
            double l = NAN;
            for (int k = 0; k < sides[i]->n_pts; k++)
                if (sides[i]->pts[k].lr == lrs[j])
                    l = sides[i]->pts[k].loss;
            if (isnan(l))
                n += snprintf(md + n, cap - (size_t)n, " |");
            else if (isinf(l))
                n += snprintf(md + n, cap - (size_t)n, " diverged |");
            else
                n += snprintf(md + n, cap - (size_t)n, " %s%.4f%s |",
                              lrs[j] == sides[i]->best_lr ? "**" : "", l,
                              lrs[j] == sides[i]->best_lr ? "**" : "");
        }
    }
    n += snprintf(md + n, cap - (size_t)n,
                  "\n\nCurves: `compare.svg`; per-step metrics: `adamw/metrics.jsonl`, "
                  "`muon/metrics.jsonl`; numbers: `summary.json`.\n");
    if (!aw->bracketed || !mu->bracketed)
        n += snprintf(md + n, cap - (size_t)n,
                      "\nWarning: a best learning rate stayed at the edge of the grid after %d "
                      "extensions; widen --lr-grid.\n", c->max_extend);
    snprintf(path, sizeof path, "%s/report.md", c->base.out_dir);
    rc = write_text(path, md, err, errcap);
    free(md);
    if (rc)
        return rc;

    /* compare.svg: validation loss against step and against wall time */
    double *xs[2], *ys[2], *ts[2];
    for (int i = 0; i < 2; i++) {
        int k = sides[i]->res.n_evals;
        xs[i] = malloc(sizeof(double) * (size_t)(k + 1));
        ys[i] = malloc(sizeof(double) * (size_t)(k + 1));
        ts[i] = malloc(sizeof(double) * (size_t)(k + 1));
        for (int j = 0; xs[i] && ys[i] && ts[i] && j < k; j++) {
            xs[i][j] = (double)sides[i]->res.eval_step[j];
            ys[i][j] = sides[i]->res.eval_loss[j];
            ts[i][j] = sides[i]->res.eval_wall[j];
        }
    }
    plot_series by_step[2] = {{"AdamW", xs[0], ys[0], aw->res.n_evals},
                              {"Muon", xs[1], ys[1], mu->res.n_evals}};
    plot_series by_time[2] = {{"AdamW", ts[0], ys[0], aw->res.n_evals},
                              {"Muon", ts[1], ys[1], mu->res.n_evals}};
    plot_panel panels[2] = {{"validation loss by step", "step", "loss (nats)", by_step, 2},
                            {"validation loss by wall time", "seconds", "loss (nats)", by_time, 2}};
    snprintf(path, sizeof path, "%s/compare.svg", c->base.out_dir);
    rc = plot_write_svg(path, panels, 2, err, errcap);
    for (int i = 0; i < 2; i++) {
        free(xs[i]);
        free(ys[i]);
        free(ts[i]);
    }
    if (rc == 0)
        printf("AdamW lr %g: final val loss %.4f | Muon lr %g: final val loss %.4f | "
               "speedup %.2f (%.2f - %.2f over %d seeds)\nwrote %s/report.md, compare.svg, "
               "summary.json\n",
               aw->best_lr, mean[0], mu->best_lr, mean[1], speedup, sp_lo, sp_hi, c->seeds,
               c->base.out_dir);
    return rc;
}

int compare_run(const compare_config *cc, char *err, size_t errcap)
{
    compare_config c = *cc;
    if (c.sweep_steps <= 0)
        c.sweep_steps = c.base.steps / 4 > 0 ? c.base.steps / 4 : 1;
    if (c.n_grid < 1 || c.n_grid > COMPARE_MAX_GRID) {
        snprintf(err, errcap, "--lr-grid needs 1 to %d rates", COMPARE_MAX_GRID);
        return 2;
    }
    for (int i = 0; i < c.n_grid; i++)
        if (!(c.grid[i] > 0) || (i > 0 && !(c.grid[i] > c.grid[i - 1]))) {
            snprintf(err, errcap, "--lr-grid must be positive and ascending");
            return 2;
        }
    if (c.seeds < 1 || c.seeds > COMPARE_MAX_SEEDS) {
        snprintf(err, errcap, "--seeds must be in 1..%d", COMPARE_MAX_SEEDS);
        return 2;
    }
    if (train_config_validate(&c.base, err, errcap))
        return 2;
    static side aw, mu;
    memset(&aw, 0, sizeof aw);
    memset(&mu, 0, sizeof mu);
    aw.name = "adamw";
    aw.algo = MUON_ALGO_ADAMW;
    mu.name = "muon";
    mu.algo = MUON_ALGO_MUON;
    int rc;
    side *sides[2] = {&aw, &mu};
    for (int i = 0; i < 2; i++) {
        if (c.base.progress != TRAIN_PROGRESS_QUIET)
            fprintf(stderr, "sweeping %s over %d rates, %ld steps each\n", sides[i]->name,
                    c.n_grid, c.sweep_steps);
        if ((rc = sweep(&c, sides[i], c.sweep_steps, err, errcap)))
            return rc;
    }
    for (int k = 0; k < c.seeds; k++)
        for (int i = 0; i < 2; i++) {
            side *s = sides[i];
            uint64_t seed = c.base.seed + (uint64_t)k;
            train_result *res = k == 0 ? &s->res : &s->more[k - 1];
            char sub[64];
            if (k == 0)
                snprintf(sub, sizeof sub, "%s", s->name);
            else
                snprintf(sub, sizeof sub, "%s-seed%llu", s->name, (unsigned long long)seed);
            if (c.base.progress != TRAIN_PROGRESS_QUIET)
                fprintf(stderr, "final run: %s at lr %g for %ld steps, seed %llu\n", s->name,
                        s->best_lr, c.base.steps, (unsigned long long)seed);
            rc = run_one(&c, s, s->best_lr, c.base.steps, c.base.eval_every, sub, seed, res, err,
                         errcap);
            if (rc || res->diverged) {
                if (!rc)
                    snprintf(err, errcap, "the final %s run diverged at lr %g (seed %llu)",
                             s->name, s->best_lr, (unsigned long long)seed);
                free_side(&aw);
                free_side(&mu);
                return 1;
            }
        }
    rc = write_outputs(&c, &aw, &mu, err, errcap) ? 1 : 0;
    free_side(&aw);
    free_side(&mu);
    return rc;
}
