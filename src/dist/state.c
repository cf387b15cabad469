/* The distributed state in libmuon's single-process format: a save gathers
 * every part into a whole-model muon_opt on the root and serializes that;
 * a load deserializes into one on every rank and keeps each rank's part.
 * The state file therefore does not depend on the rank count or the mode,
 * which is what lets a run resume on another number of ranks. Both hold
 * the whole state for the length of the call, on the root or on every
 * rank. */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

/* A muon_opt over the same parameters (its weights are d's; nothing is
 * stepped), with its state allocated. */
static muon_status whole_opt(muon_dist *d, muon_opt **out)
{
    muon_opt_config cfg = d->cfg;
    cfg.threads = 1;
    muon_opt *o = NULL;
    muon_status s = muon_opt_create(&cfg, &o);
    for (int i = 0; s == MUON_OK && i < d->np; i++) {
        dist__param *p = &d->p[i];
        s = muon_opt_add_param(o, p->name, p->w, NULL, p->ndim, p->shape, p->role, NULL);
    }
    if (s == MUON_OK)
        s = muon_opt_finalize(o);
    if (s != MUON_OK) {
        dist__fail(d, s, "whole-state optimizer: %s", o ? muon_opt_error(o) : muon_strerror(s));
        muon_opt_free(o);
        return s;
    }
    *out = o;
    return MUON_OK;
}

/* Every rank's count of p's part (into counts) and where it sits. */
static void part_layout(const muon_dist *d, const dist__param *p, int *counts, int *displs)
{
    for (int r = 0; r < d->size; r++) {
        switch (d->mode) {
        case MUON_DIST_ZERO1:
            counts[r] = p->counts[r];
            displs[r] = p->displs[r];
            break;
        case MUON_DIST_OWNER:
            counts[r] = r == p->owner ? (int)p->n : 0;
            displs[r] = 0;
            break;
        default: /* DDP: the root has it all */
            counts[r] = 0;
            displs[r] = 0;
            break;
        }
    }
}

muon_status muon_dist_save_alloc(muon_dist *d, int root, void **buf, size_t *len)
{
    if (!d || !buf || !len)
        return MUON_ERR_NULL;
    *buf = NULL;
    *len = 0;
    if (!d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "save before muon_dist_finalize");
    muon_opt *o = NULL;
    int *counts = malloc(sizeof(int) * (size_t)d->size * 2);
    int ok = counts != NULL, all = 0;
    if (ok && d->rank == root)
        ok = whole_opt(d, &o) == MUON_OK;
    /* every rank takes part in the gathers below, or none does */
    muon_status s = dist__check(d, MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, d->comm),
                                "saving the state");
    if (s != MUON_OK || !all) {
        muon_opt_free(o);
        free(counts);
        return s != MUON_OK ? s : dist__fail(d, MUON_ERR_NOMEM, "out of memory gathering the "
                                             "state on rank %d", root);
    }
    int *displs = counts + d->size;
    for (int i = 0; s == MUON_OK && i < d->np; i++) {
        dist__param *p = &d->p[i];
        muon__param *q = o ? &o->params[i] : NULL;
        part_layout(d, p, counts, displs);
        for (int k = 0; s == MUON_OK && k < muon__rule_table[p->rule].n_buffers; k++) {
            if (d->mode == MUON_DIST_DDP) {
                if (q)
                    memcpy(q->buf[k], p->buf[k], p->n * sizeof(float));
                continue;
            }
            s = dist__check(d, MPI_Gatherv(p->buf[k], (int)p->cnt, MPI_FLOAT, q ? q->buf[k] : NULL,
                                           counts, displs, MPI_FLOAT, root, d->comm),
                            "gathering the state");
        }
        if (q)
            q->steps = p->steps;
    }
    free(counts);
    if (s == MUON_OK && o) {
        size_t need = 0;
        s = muon_opt_serialized_size(o, &need);
        void *b = s == MUON_OK ? malloc(need) : NULL;
        if (s == MUON_OK && !b)
            s = MUON_ERR_NOMEM;
        if (s == MUON_OK && (s = muon_opt_save_buffer(o, b, need, len)) == MUON_OK)
            *buf = b;
        else {
            free(b);
            dist__fail(d, s, "serializing the state: %s", muon_opt_error(o));
        }
    }
    muon_opt_free(o);
    return s;
}

muon_status muon_dist_load_buffer(muon_dist *d, const void *buf, size_t len)
{
    if (!d || !buf)
        return MUON_ERR_NULL;
    if (!d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "load before muon_dist_finalize");
    muon_opt *o = NULL;
    muon_status s = whole_opt(d, &o);
    if (s == MUON_OK && (s = muon_opt_load_buffer(o, buf, len)) != MUON_OK)
        dist__fail(d, s, "%s", muon_opt_error(o));
    /* change nothing unless every rank can take its part */
    int bad = s != MUON_OK, any = 0;
    muon_status c = dist__check(d, MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, d->comm),
                                "loading the state");
    if (c != MUON_OK || any) {
        muon_opt_free(o);
        if (c != MUON_OK)
            return c;
        return bad ? s : dist__fail(d, MUON_ERR_IO, "another rank could not load the state");
    }
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        const muon__param *q = &o->params[i];
        for (int k = 0; k < muon__rule_table[p->rule].n_buffers; k++)
            memcpy(p->buf[k], q->buf[k] + p->lo, p->cnt * sizeof(float));
        p->steps = q->steps;
    }
    muon_opt_free(o);
    d->err[0] = 0;
    return MUON_OK;
}
