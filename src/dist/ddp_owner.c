/* The DDP and OWNER steps: every rank (DDP) or the owner (OWNER) receives
 * the whole summed gradient of a parameter and updates all of it; OWNER
 * then broadcasts the parameter from its owner.
 *
 * Overlap: every gradient's collective is posted before any update, and a
 * parameter is updated as soon as its own has finished, while the later
 * ones are still moving. In OWNER a rank posts the broadcasts of
 * parameters it does not own at once (collectives go in the same order on
 * every rank) and goes on to its own, so the owners work in parallel. */
#include "dist/dist.h"

static MPI_Request *req(muon_dist *d, int i, int kind)
{
    return &d->req[i * DIST__REQ_KINDS + kind];
}

/* Update all of p from its summed gradient in p->gred. */
static muon_status update_whole(muon_dist *d, dist__param *p, double muon_lr, double adam_lr)
{
    if (p->rule == MUON__RULE_MUON) {
        dist__momentum(&d->cfg, p->buf[0], p->gred, d->nwork, p->n);
        return dist__muon_finish(d, p, d->nwork, muon_lr);
    }
    dist__adamw_part(d, p, p->gred, adam_lr);
    return MUON_OK;
}

muon_status dist__step_ddp(muon_dist *d, double muon_lr, double adam_lr)
{
    muon_status s;
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        dist__mpi_enter(d);
        int rc = MPI_Iallreduce(p->g, p->gred, (int)p->n, MPI_FLOAT, MPI_SUM, d->comm,
                                req(d, i, DIST__REQ_GRAD));
        dist__mpi_leave(d);
        dist__count_allreduce(d, p->n, sizeof(float));
        if ((s = dist__check(d, rc, "all-reduce of a gradient")) != MUON_OK)
            return s;
        if (!d->overlap && (s = dist__wait(d, req(d, i, DIST__REQ_GRAD), "all-reduce")) != MUON_OK)
            return s;
    }
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        if ((s = dist__wait(d, req(d, i, DIST__REQ_GRAD), "all-reduce of a gradient")) != MUON_OK ||
            (s = update_whole(d, p, muon_lr, adam_lr)) != MUON_OK ||
            (s = dist__progress(d)) != MUON_OK)
            return s;
    }
    return MUON_OK;
}

muon_status dist__step_owner(muon_dist *d, double muon_lr, double adam_lr)
{
    muon_status s;
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        int mine = p->owner == d->rank;
        dist__mpi_enter(d);
        int rc = MPI_Ireduce(p->g, mine ? p->gred : NULL, (int)p->n, MPI_FLOAT, MPI_SUM, p->owner,
                             d->comm, req(d, i, DIST__REQ_GRAD));
        dist__mpi_leave(d);
        dist__count_reduce(d, p->n, sizeof(float), p->owner);
        if ((s = dist__check(d, rc, "reduce of a gradient")) != MUON_OK)
            return s;
        if (!d->overlap && (s = dist__wait(d, req(d, i, DIST__REQ_GRAD), "reduce")) != MUON_OK)
            return s;
    }
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        if (p->owner == d->rank &&
            ((s = dist__wait(d, req(d, i, DIST__REQ_GRAD), "reduce of a gradient")) != MUON_OK ||
             (s = update_whole(d, p, muon_lr, adam_lr)) != MUON_OK))
            return s;
        dist__mpi_enter(d);
        int rc = MPI_Ibcast(p->w, (int)p->n, MPI_FLOAT, p->owner, d->comm,
                            req(d, i, DIST__REQ_W));
        dist__mpi_leave(d);
        dist__count_bcast(d, p->n, sizeof(float), p->owner);
        if ((s = dist__check(d, rc, "broadcast of a parameter")) != MUON_OK)
            return s;
        s = d->overlap ? dist__progress(d)
                       : dist__wait(d, req(d, i, DIST__REQ_W), "broadcast of a parameter");
        if (s != MUON_OK)
            return s;
    }
    return dist__waitall(d, "broadcast of the parameters");
}
