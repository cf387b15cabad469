/* The DDP and OWNER steps: every rank (DDP) or the owner (OWNER) receives
 * the whole summed gradient of a parameter and updates all of it; OWNER
 * then broadcasts the parameter from its owner.
 *
 * Overlap: every gradient's collective is posted (step.c) before any
 * update. DDP updates a parameter as soon as its own has finished, while
 * the later ones are still moving; the ranks do the same work in the same
 * order, so they call MPI at about the same times and the collectives
 * progress. OWNER finishes the reductions first (see below), then a rank
 * posts the broadcasts of parameters it does not own at once (collectives
 * go in the same order on every rank) and goes on to its own, so the
 * owners work in parallel and the broadcasts complete at the end. */
#include "dist/dist.h"

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
        MPI_Request *g = dist__req(d, i, DIST__REQ_GRAD);
        if ((s = dist__wait(d, g, "all-reduce of a gradient")) != MUON_OK ||
            (s = update_whole(d, p, muon_lr, adam_lr)) != MUON_OK ||
            (s = dist__progress(d)) != MUON_OK)
            return s;
    }
    return MUON_OK;
}

muon_status dist__step_owner(muon_dist *d, double muon_lr, double adam_lr)
{
    /* All the reductions first, while every rank is still inside MPI:
     * owners then compute different tensors, and a reduction left in
     * flight would move only when the busy peer next called MPI, making
     * the owners wait on each other in turn. */
    muon_status s = dist__waitall(d, "reduce of the gradients");
    if (s != MUON_OK)
        return s;
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        MPI_Request *g = dist__req(d, i, DIST__REQ_GRAD);
        if (p->owner == d->rank &&
            ((s = dist__wait(d, g, "reduce of a gradient")) != MUON_OK ||
             (s = update_whole(d, p, muon_lr, adam_lr)) != MUON_OK))
            return s;
        MPI_Request *r = dist__req(d, i, DIST__REQ_W);
        dist__count_bcast(d, p->n, sizeof(float), p->owner);
        dist__mpi_enter(d);
        int rc = MPI_Ibcast(p->w, (int)p->n, MPI_FLOAT, p->owner, d->comm, r);
        if ((s = dist__posted(d, rc, r, "broadcast of a parameter")) != MUON_OK ||
            (d->overlap && (s = dist__progress(d)) != MUON_OK))
            return s;
    }
    return dist__waitall(d, "broadcast of the parameters");
}
