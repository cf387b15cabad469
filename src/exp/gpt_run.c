/* The GPT runs of the experiments: the trainer's model and optimizer
 * configuration (train_opt_config), without its files, with the weight RMS
 * of the hidden matrices recorded at every evaluation (exp.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"

train_config exp_gpt_config(const exp_ctx *x, long steps)
{
    train_config c = train_config_default();
    c.model.layers = 2;
    c.model.dim = 64;
    c.model.heads = 2;
    c.model.context = 64;
    c.model.vocab = 256;
    c.batch = 16;
    c.steps = steps;
    c.warmup = steps / 10;
    c.eval_every = steps / 10 > 0 ? steps / 10 : 1;
    c.eval_batches = x->quick ? 2 : 8;
    c.threads = x->threads;
    c.progress = TRAIN_PROGRESS_QUIET;
    c.lr = c.adam_lr = train_default_lr(c.optim);
    return c;
}

static double matrix_rms(gpt_model *m)
{
    const float *w = gpt_params(m);
    double ss = 0;
    size_t n = 0;
    for (int i = 0; i < gpt_num_tensors(m); i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        if (t->role != MUON_ROLE_MATRIX)
            continue;
        for (size_t k = 0; k < t->numel; k++)
            ss += (double)w[t->offset + k] * w[t->offset + k];
        n += t->numel;
    }
    return n ? sqrt(ss / (double)n) : 0;
}

static double eval_loss(gpt_model *m, const data_val *v, const train_config *c, int32_t *in,
                        int32_t *tg)
{
    double s = 0;
    for (int b = 0; b < v->n_batches; b++) {
        data_val_batch(v, b, in, tg);
        s += gpt_forward(m, in, tg, c->batch, c->model.context);
    }
    return s / v->n_batches;
}

static int add_params(exp_ctx *x, muon_opt *opt, gpt_model *model)
{
    float *w = gpt_params(model), *g = gpt_grads(model);
    for (int i = 0; i < gpt_num_tensors(model); i++) {
        const gpt_tensor *t = gpt_tensor_at(model, i);
        if (muon_opt_add_param(opt, t->name, w + t->offset, g + t->offset, t->ndim, t->shape,
                               t->role, NULL) != MUON_OK)
            return exp_fail(x, "optimizer: %s", muon_opt_error(opt));
    }
    if (muon_opt_finalize(opt) != MUON_OK)
        return exp_fail(x, "optimizer: %s", muon_opt_error(opt));
    return 0;
}

int exp_gpt_run(exp_ctx *x, const exp_data *d, const train_config *cin, double stop_below,
                exp_curve *out)
{
    train_config c = *cin;
    c.model.vocab = 256;
    memset(out, 0, sizeof *out);
    char derr[DATA_ERR_LEN];
    data_loader L;
    data_val V;
    if (data_loader_init(&L, d->train.ids, d->train.n, c.batch, c.model.context, c.seed,
                         "training data", derr))
        return exp_fail(x, "%s", derr);
    if (data_val_init(&V, d->val.ids, d->val.n, c.batch, c.model.context, c.eval_batches,
                      "validation data", derr)) {
        data_loader_free(&L);
        return exp_fail(x, "%s", derr);
    }
    gpt_model *model = NULL;
    muon_opt *opt = NULL;
    muon_opt_config oc = train_opt_config(&c);
    size_t tb = (size_t)c.batch * (size_t)c.model.context * sizeof(int32_t);
    int32_t *in = malloc(tb), *tg = malloc(tb);
    int rc = 0;
    if (!in || !tg)
        rc = exp_fail(x, "out of memory");
    else if (gpt_create(&c.model, c.batch, &model) != MUON_OK)
        rc = exp_fail(x, "cannot build the model");
    else if (muon_opt_create(&oc, &opt) != MUON_OK)
        rc = exp_fail(x, "optimizer options invalid (%s)", muon_algo_name(c.optim));
    if (!rc) {
        gpt_init_params(model, c.seed);
        rc = add_params(x, opt, model);
    }
    if (rc)
        goto done;
    muon_schedule sc = muon_schedule_default();
    sc.kind = c.schedule;
    sc.total_steps = c.steps;
    sc.warmup_steps = c.warmup;
    sc.min_ratio = c.min_lr_ratio;
    sc.decay_shape = c.decay_shape;
    double t0 = exp_now(), tokens = (double)c.batch * c.model.context;
    out->n_params = gpt_num_params(model);
    /* 6 N per token for the matrix products, 6 L T D for attention's */
    out->step_flops = tokens * (6.0 * (double)out->n_params +
                                6.0 * c.model.layers * c.model.context * c.model.dim) +
                      muon_opt_ortho_flops(opt);
    for (long step = 1; step <= c.steps; step++) {
        data_loader_next(&L, in, tg);
        gpt_zero_grad(model);
        float loss = gpt_forward(model, in, tg, c.batch, c.model.context);
        if (!isfinite(loss) || gpt_backward(model) != MUON_OK ||
            muon_opt_step(opt, muon_schedule_multiplier(&sc, step - 1)) != MUON_OK) {
            out->diverged = 1;
            break;
        }
        out->final_train = loss;
        if ((step % c.eval_every == 0 || step == c.steps) && out->n < 256) {
            out->step[out->n] = step;
            out->val[out->n] = eval_loss(model, &V, &c, in, tg);
            out->weight_rms[out->n] = matrix_rms(model);
            if (out->val[out->n++] <= stop_below)
                break;
        }
    }
    out->final_val = out->diverged || out->n == 0 ? INFINITY : out->val[out->n - 1];
    out->state_bytes = muon_opt_state_bytes(opt);
    out->wall_s = exp_now() - t0;
done:
    muon_opt_free(opt);
    gpt_free(model);
    free(in);
    free(tg);
    data_loader_free(&L);
    return rc;
}

int exp_gpt_seeds(exp_ctx *x, const exp_data *d, const train_config *c, exp_seeds *out)
{
    memset(out, 0, sizeof *out);
    double fin[EXP_MAX_SEEDS];
    int n = x->seeds < EXP_MAX_SEEDS ? x->seeds : EXP_MAX_SEEDS;
    for (int s = 0; s < n; s++) {
        train_config cs = *c;
        cs.seed = c->seed + (uint64_t)s;
        exp_curve cv;
        if (exp_gpt_run(x, d, &cs, -INFINITY, &cv))
            return 1;
        fin[s] = cv.final_val;
        out->final_val[s] = cv.final_val;
        if (s == 0) {
            out->mean_curve = cv;
        } else {
            for (int k = 0; k < cv.n && k < out->mean_curve.n; k++) {
                out->mean_curve.val[k] += cv.val[k];
                out->mean_curve.weight_rms[k] += cv.weight_rms[k];
            }
            out->mean_curve.wall_s += cv.wall_s;
        }
        out->any_diverged |= cv.diverged;
    }
    for (int k = 0; k < out->mean_curve.n; k++) {
        out->mean_curve.val[k] /= n;
        out->mean_curve.weight_rms[k] /= n;
    }
    out->n = n;
    exp_mean_std(fin, n, &out->mean, &out->std);
    return 0;
}

cJSON *exp_seeds_json(const exp_seeds *s, const train_config *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "optim", muon_algo_name(c->optim));
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "final_val_mean", s->mean);
    cJSON_AddNumberToObject(o, "final_val_std", s->std);
    cJSON_AddItemToObject(o, "final_val", exp_json_array(s->final_val, s->n));
    double st[256];
    for (int k = 0; k < s->mean_curve.n; k++)
        st[k] = (double)s->mean_curve.step[k];
    cJSON_AddItemToObject(o, "eval_step", exp_json_array(st, s->mean_curve.n));
    cJSON_AddItemToObject(o, "val_mean", exp_json_array(s->mean_curve.val, s->mean_curve.n));
    cJSON_AddNumberToObject(o, "state_bytes", (double)s->mean_curve.state_bytes);
    return o;
}

int exp_gpt_compare(exp_ctx *x, const exp_data *d, int nv, const char *const *labels,
                    const train_config *cfgs, exp_seeds *out, const char *plot_file)
{
    for (int v = 0; v < nv; v++)
        if (exp_gpt_seeds(x, d, &cfgs[v], &out[v]))
            return 1;
    const train_config *c0 = &cfgs[0];
    exp_md(x, "The small GPT (%d layers, width %d, %d heads, context %d, batch %d) on %s; "
              "%ld steps, %s schedule (%s decay); final validation loss, mean and standard "
              "deviation over %d seeds.\n\n| variant | optimizer | lr (AdamW group) | weight "
              "decay | val loss | std | optimizer state |\n|---|---|---|---|---|---|---|\n",
           c0->model.layers, c0->model.dim, c0->model.heads, c0->model.context, c0->batch,
           d->desc, c0->steps, muon_schedule_name(c0->schedule),
           muon_decay_shape_name(c0->decay_shape), x->seeds);
    cJSON *vs = cJSON_CreateObject();
    static plot_series ser[16];
    static double steps[16][256];
    for (int v = 0; v < nv; v++) {
        const train_config *c = &cfgs[v];
        exp_md(x, "| %s | %s | %g (%g) | %g | %.4f%s | %.4f | %.1f KiB |\n", labels[v],
               muon_algo_name(c->optim), c->lr, c->adam_lr, c->weight_decay, out[v].mean,
               out[v].any_diverged ? " (diverged)" : "", out[v].std,
               (double)out[v].mean_curve.state_bytes / 1024.0);
        cJSON_AddItemToObject(vs, labels[v], exp_seeds_json(&out[v], c));
        for (int k = 0; k < out[v].mean_curve.n; k++)
            steps[v][k] = (double)out[v].mean_curve.step[k];
        if (v < 16)
            ser[v] = (plot_series){labels[v], steps[v], out[v].mean_curve.val,
                                   out[v].mean_curve.n};
    }
    cJSON_AddItemToObject(x->root, "variants", vs);
    plot_panel p = {"validation loss (mean over seeds)", "step", "val loss", ser,
                    nv < 16 ? nv : 16};
    return exp_plot(x, plot_file, "validation loss", &p, 1);
}

double exp_steps_to(const exp_curve *c, double target)
{
    for (int k = 0; k < c->n; k++) {
        if (!(c->val[k] <= target))
            continue;
        if (k == 0)
            return (double)c->step[0];
        double f = (c->val[k - 1] - target) / (c->val[k - 1] - c->val[k]);
        return (double)c->step[k - 1] + f * (double)(c->step[k] - c->step[k - 1]);
    }
    return NAN;
}

/* The final validation loss of c at rate lr over half its steps, seed 1. */
static int sweep_point(exp_ctx *x, const exp_data *d, const train_config *c, double lr,
                       int tie_adam, double *loss)
{
    train_config t = *c;
    t.lr = lr;
    if (tie_adam)
        t.adam_lr = lr;
    t.steps = c->steps / 2 > 0 ? c->steps / 2 : 1;
    t.warmup = t.steps / 10;
    t.eval_every = t.steps;
    t.seed = 1;
    exp_curve cv;
    if (exp_gpt_run(x, d, &t, -INFINITY, &cv))
        return 1;
    *loss = cv.final_val;
    return 0;
}

int exp_tune_lr(exp_ctx *x, const exp_data *d, train_config *c, const char *label, int tie_adam)
{
    /* factors of 2 around c->lr, extended by one point at a time (at most
     * two) while the best sits at an edge, so the best is bracketed */
    enum { MAX_PTS = 9 };
    double lr[MAX_PTS], loss[MAX_PTS];
    int half = x->quick ? 1 : 2, n = 2 * half + 1, best = 0;
    for (int k = 0; k < n; k++) {
        lr[k] = c->lr * pow(2.0, k - half);
        if (sweep_point(x, d, c, lr[k], tie_adam, &loss[k]))
            return 1;
    }
    for (int ext = 0; ext <= 2; ext++) {
        best = 0;
        for (int k = 1; k < n; k++)
            if (loss[k] < loss[best])
                best = k;
        if (x->quick || ext == 2 || (best > 0 && best < n - 1))
            break;
        if (best == 0) { /* a smaller rate in front */
            memmove(lr + 1, lr, sizeof(double) * (size_t)n);
            memmove(loss + 1, loss, sizeof(double) * (size_t)n);
            lr[0] = lr[1] / 2;
            if (sweep_point(x, d, c, lr[0], tie_adam, &loss[0]))
                return 1;
        } else {
            lr[n] = lr[n - 1] * 2;
            if (sweep_point(x, d, c, lr[n], tie_adam, &loss[n]))
                return 1;
        }
        n++;
    }
    exp_md(x, "- lr sweep for %s (%ld steps, seed 1):", label, c->steps / 2);
    for (int k = 0; k < n; k++)
        exp_md(x, k == best ? " **%g: %.4f**" : " %g: %.4f", lr[k], loss[k]);
    exp_md(x, best == 0 || best == n - 1 ? " (best at the edge)\n" : "\n");
    c->lr = lr[best];
    if (tie_adam)
        c->adam_lr = c->lr;
    return 0;
}
