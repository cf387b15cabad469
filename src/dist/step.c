/* muon_dist_step: screen the gradients, run the mode's step, report. The
 * element kernels here repeat the single-process rules' expressions
 * (src/optim/muon.c, adamw.c) so a part computes the same bits. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "dist/dist.h"

void dist__momentum(const muon_opt_config *cfg, float *restrict m, const float *restrict g,
                    float *restrict nb, size_t cnt)
{
    const float mu = (float)cfg->momentum;
    if (cfg->nesterov) {
        for (size_t i = 0; i < cnt; i++) {
            float mi = mu * m[i] + g[i];
            nb[i] = g[i] + mu * mi;
            m[i] = mi;
        }
    } else {
        for (size_t i = 0; i < cnt; i++) {
            float mi = mu * m[i] + g[i];
            nb[i] = mi;
            m[i] = mi;
        }
    }
}

void dist__apply(float *restrict w, const float *restrict o, size_t cnt, float decay, float step)
{
    for (size_t i = 0; i < cnt; i++)
        w[i] = decay * w[i] - step * o[i];
}

void dist__adamw_part(const muon_dist *d, dist__param *p, const float *g, double lr)
{
    if (p->cnt == 0)
        return;
    muon__adamw_coef c;
    muon__adamw_coef_init(&d->cfg, p->steps + 1, lr, &c);
    /* a view of the part as a parameter of cnt elements */
    muon__param view;
    memset(&view, 0, sizeof view);
    view.n = p->cnt;
    view.w = p->w + p->lo;
    view.g = g;
    view.buf[0] = p->buf[0];
    view.buf[1] = p->buf[1];
    muon__adamw_range(&c, &view, 0, p->cnt);
}

muon_status dist__muon_finish(muon_dist *d, dist__param *p, float *nfull, double lr)
{
    muon_status s = muon_orthogonalize_on(d->be, &d->cfg.ortho, nfull, nfull, p->rows, p->cols,
                                          d->work, d->work_bytes);
    if (s != MUON_OK)
        return dist__fail(d, s, "parameter '%s': orthogonalization failed: %s", p->name,
                          muon_strerror(s));
    const float decay = (float)(1.0 - lr * d->cfg.weight_decay);
    const float step = (float)(lr * muon_scale_factor(d->cfg.scale, p->rows, p->cols));
    dist__apply(p->w + p->lo, nfull + p->lo, p->cnt, decay, step);
    return MUON_OK;
}

/* Which parameters have a non-finite gradient on some rank: one small
 * all-reduce, so every rank skips the same ones. */
static muon_status screen(muon_dist *d, int *n_bad)
{
    for (int i = 0; i < d->np; i++)
        d->flags[i] = !muon__all_finite(d->p[i].g, d->p[i].n);
    dist__mpi_enter(d);
    int rc = MPI_Allreduce(MPI_IN_PLACE, d->flags, d->np, MPI_INT, MPI_MAX, d->comm);
    dist__mpi_leave(d);
    muon_status s = dist__check(d, rc, "screening the gradients");
    if (s != MUON_OK)
        return s;
    *n_bad = 0;
    for (int i = 0; i < d->np; i++) {
        d->p[i].skip = d->flags[i];
        *n_bad += d->flags[i];
    }
    return MUON_OK;
}

/* Post every gradient's collective, in the same order on every rank:
 * DDP an all-reduce, ZERO1 a reduce-scatter by blocks, OWNER a reduce to
 * the owner. */
static muon_status post_gradients(muon_dist *d)
{
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        MPI_Request *r = dist__req(d, i, DIST__REQ_GRAD);
        int rc;
        const char *what;
        if (d->mode == MUON_DIST_DDP) {
            dist__count_allreduce(d, p->n, sizeof(float));
            dist__mpi_enter(d);
            rc = MPI_Iallreduce(p->g, p->gred, (int)p->n, MPI_FLOAT, MPI_SUM, d->comm, r);
            what = "all-reduce of a gradient";
        } else if (d->mode == MUON_DIST_ZERO1) {
            dist__count_rs(d, p->n, sizeof(float));
            dist__mpi_enter(d);
            rc = MPI_Ireduce_scatter(p->g, p->gred, p->counts, MPI_FLOAT, MPI_SUM, d->comm, r);
            what = "reduce-scatter of a gradient";
        } else {
            dist__count_reduce(d, p->n, sizeof(float), p->owner);
            dist__mpi_enter(d);
            rc = MPI_Ireduce(p->g, p->owner == d->rank ? p->gred : NULL, (int)p->n, MPI_FLOAT,
                             MPI_SUM, p->owner, d->comm, r);
            what = "reduce of a gradient";
        }
        muon_status s = dist__posted(d, rc, r, what);
        if (s != MUON_OK)
            return s;
    }
    return MUON_OK;
}

static muon_status report_skipped(muon_dist *d)
{
    size_t len = (size_t)snprintf(d->err, sizeof d->err,
                                  "non-finite gradient, update refused for");
    int listed = 0;
    for (int i = 0; i < d->np && len + 40 < sizeof d->err; i++) {
        if (!d->p[i].skip)
            continue;
        int w = snprintf(d->err + len, sizeof d->err - len, "%s '%s'", listed ? "," : "",
                         d->p[i].name);
        len += w > 0 ? (size_t)w : 0;
        listed++;
    }
    return MUON_ERR_NONFINITE;
}

muon_status muon_dist_step(muon_dist *d, double lr_mult)
{
    if (!d)
        return MUON_ERR_NULL;
    if (!d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "step before muon_dist_finalize");
    if (!isfinite(lr_mult) || lr_mult < 0)
        return dist__fail(d, MUON_ERR_ARG, "lr_mult must be finite and >= 0 (got %g)", lr_mult);
    d->st.comm_bytes = 0;
    d->st.comm_s = 0;
    int n_bad = 0;
    muon_status s = screen(d, &n_bad);
    if (s != MUON_OK)
        return s;
    const double muon_lr = d->cfg.lr * lr_mult, adam_lr = d->cfg.adam_lr * lr_mult;
    int old = muon__blas_threads_push(d->threads);
    s = post_gradients(d);
    switch (s == MUON_OK ? d->mode : MUON_DIST_MODE_COUNT) {
    case MUON_DIST_DDP:
        s = dist__step_ddp(d, muon_lr, adam_lr);
        break;
    case MUON_DIST_ZERO1:
        s = dist__step_zero1(d, muon_lr, adam_lr);
        break;
    case MUON_DIST_OWNER:
        s = dist__step_owner(d, muon_lr, adam_lr);
        break;
    default:
        break;
    }
    muon__blas_threads_pop(old);
    if (s != MUON_OK) {
        /* a rank leaving its collectives unfinished would hang the others:
         * cancel nothing, but never return with requests in flight */
        char keep[sizeof d->err];
        memcpy(keep, d->err, sizeof keep);
        (void)dist__waitall(d, "finishing the step after an error");
        memcpy(d->err, keep, sizeof keep);
        return s;
    }
    for (int i = 0; i < d->np; i++)
        if (!d->p[i].skip)
            d->p[i].steps++;
    if (n_bad)
        return report_skipped(d);
    d->err[0] = 0;
    return MUON_OK;
}
