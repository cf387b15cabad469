/* step.cu - muon_cuda_opt_step: one update of every parameter.
 *
 * Order on the device, all queued without waiting:
 *   caller's stream: AdamW coefficients up, flags zeroed, the gradient
 *     check (flags[p] = 1 when p's gradient holds NaN / Inf), fork;
 *   internal stream 0: one AdamW kernel over every AdamW tensor;
 *   each Muon group on its stream: momentum + Nesterov into the batch
 *     buffer (with the norm's partial sums), the norm, normalization (into
 *     bf16 for mixed), the iterations, then W = decay W - lr scale O;
 *   join, then the flags back to the host: the step's one device-to-host
 *     copy, which the host waits for to report and count steps.
 * Flagged parameters are skipped inside the kernels (a flagged matrix
 * enters its batch as zeros, whose polar factor is zero, and its update is
 * skipped), so nothing waits for the check. A held parameter
 * (muon_cuda_opt_hold_param) is flagged 2 by the check without its
 * gradient being read, and skipped the same way; the host then neither
 * counts its step nor names it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cuda/opt.cuh"

static void adam_coefs(muon_cuda_opt *o, double lr)
{
    const muon_opt_config *cfg = &o->cfg;
    for (int i = 0; i < o->n_params; i++) {
        const muon__cuda_param *p = &o->params[i];
        if (p->muon)
            continue;
        /* src/optim/adamw.c's muon__adamw_coef_init, for step t */
        double t = (double)(p->steps + 1);
        double bc1 = 1.0 - pow(cfg->adam_beta1, t), bc2 = 1.0 - pow(cfg->adam_beta2, t);
        muon__cuda_acoef *k = &o->h_acoef[p->group];
        k->step_size = (float)(lr / bc1);
        k->inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
        k->decay = (float)(1.0 - lr * cfg->adam_weight_decay);
        k->unused = 0.0f;
    }
}

static muon_status group_step(muon_cuda_opt *o, const muon__cuda_group *gr, double lr)
{
    muon_cuda *c = o->ctx;
    cudaStream_t s = c->s[gr->stream];
    muon__cuda_ortho_ws ws;
    muon__cuda_ortho_layout(o->work[gr->stream], &gr->oc, gr->slots, gr->rows, gr->cols, &ws);
    const muon__cuda_slot *slots = o->d_slots + gr->slot_off;
    long per = gr->rows * gr->cols;
    int half = muon__bf16_steps(&gr->oc) > 0;
    MUON__TRY(muon__cuda_momentum(c, s, slots, gr->slots, per, (float)o->cfg.momentum,
                                  o->cfg.nesterov, o->d_flags, ws.xa, ws.partials, ws.nchunk));
    MUON__TRY(muon__cuda_sumsq_finish(c, s, gr->slots, ws.nchunk, ws.partials, ws.sumsq, NULL));
    MUON__TRY(muon__cuda_normalize(c, s, ws.xa, gr->slots, per, ws.sumsq,
                                   muon__ortho_norm_factor(&gr->oc), gr->oc.eps,
                                   half ? NULL : ws.xa, half ? ws.xh : NULL));
    float *res = NULL;
    MUON__TRY(muon__cuda_ortho_iterate(c, s, c->h[gr->stream], &gr->oc, gr->slots, gr->rows,
                                       gr->cols, &ws, NULL, &res));
    /* muon.c: decay and step rounded to float from double */
    float decay = (float)(1.0 - lr * o->cfg.weight_decay), step = (float)(lr * gr->scale);
    return muon__cuda_muon_apply(c, s, slots, gr->slots, per, decay, step, o->d_flags, res);
}

static muon_status run(muon_cuda_opt *o, double lr, double adam_lr)
{
    muon_cuda *c = o->ctx;
    if (o->dirty)
        MUON__TRY(muon__cuda_opt_upload(o));
    if (o->n_adam) {
        adam_coefs(o, adam_lr);
        MUON__CU(c, cudaMemcpyAsync(o->d_acoef, o->h_acoef, (size_t)o->n_adam * sizeof *o->h_acoef,
                                    cudaMemcpyHostToDevice, c->user));
    }
    MUON__CU(c, cudaMemsetAsync(o->d_flags, 0, (size_t)o->n_params * sizeof(int), c->user));
    MUON__TRY(muon__cuda_check_grads(c, c->user, o->d_all, o->d_gchunks, o->n_gchunks,
                                     o->d_flags));
    MUON__TRY(muon__cuda_fork(c, o->n_streams));
    const muon_opt_config *cfg = &o->cfg;
    MUON__TRY(muon__cuda_adamw(c, c->s[0], o->d_adam, o->d_achunks, o->n_achunks, o->d_acoef,
                               (float)cfg->adam_beta1, (float)(1.0 - cfg->adam_beta1),
                               (float)cfg->adam_beta2, (float)(1.0 - cfg->adam_beta2),
                               (float)cfg->adam_eps, o->d_flags));
    for (int k = 0; k < o->n_groups; k++)
        MUON__TRY(group_step(o, &o->groups[k], lr));
    MUON__TRY(muon__cuda_join(c, o->n_streams));
    MUON__CU(c, cudaMemcpyAsync(o->h_flags, o->d_flags, (size_t)o->n_params * sizeof(int),
                                cudaMemcpyDeviceToHost, c->user));
    MUON__CU(c, cudaStreamSynchronize(c->user));
    return MUON_OK;
}

/* Steps counted, and the refused parameters named as muon_opt_step does. */
static muon_status report(muon_cuda_opt *o)
{
    int bad = 0;
    size_t len = 0, cap = sizeof o->err;
    o->err[0] = '\0';
    for (int i = 0; i < o->n_params; i++) {
        muon__cuda_param *p = &o->params[i];
        if (o->h_flags[i] == 2) /* held: left as it is, step count too */
            continue;
        if (!o->h_flags[i]) {
            p->steps++;
            continue;
        }
        if (bad == 0)
            len = (size_t)snprintf(o->err, cap, "non-finite gradient, update refused for");
        if (len + strlen(p->name) + 16 < cap)
            len += (size_t)snprintf(o->err + len, cap - len, "%s '%s'", bad ? "," : "", p->name);
        else if (len + 8 < cap)
            len += (size_t)snprintf(o->err + len, cap - len, " ...");
        bad++;
    }
    return bad ? MUON_ERR_NONFINITE : MUON_OK;
}

extern "C" muon_status muon_cuda_opt_step(muon_cuda_opt *o, double lr_mult)
{
    if (!o)
        return MUON_ERR_NULL;
    if (!o->finalized)
        return muon__cuda_opt_fail(o, MUON_ERR_STATE, "step before muon_cuda_opt_finalize");
    if (!isfinite(lr_mult) || lr_mult < 0)
        return muon__cuda_opt_fail(o, MUON_ERR_ARG, "lr_mult must be finite and >= 0 (got %g)",
                                   lr_mult);
    for (int i = 0; i < o->n_params; i++)
        if (!o->params[i].g && !o->params[i].hold)
            return muon__cuda_opt_fail(o, MUON_ERR_NULL, "parameter '%s': gradient is NULL (see "
                                       "muon_cuda_opt_set_buffers)", o->params[i].name);
    double lr = o->cfg.lr * lr_mult, adam_lr = o->cfg.adam_lr * lr_mult;
    if (!isfinite(lr) || !isfinite(adam_lr))
        return muon__cuda_opt_fail(o, MUON_ERR_ARG, "lr_mult %g overflows the learning rate",
                                   lr_mult);
    muon__cuda_dev_guard g;
    muon_status s = muon__cuda_enter(o->ctx, &g);
    if (s == MUON_OK)
        s = run(o, lr, adam_lr);
    muon__cuda_leave(&g);
    if (s != MUON_OK) {
        snprintf(o->err, sizeof o->err, "%s", o->ctx->err);
        return s;
    }
    return report(o);
}
