/* muon_dist_finalize: check that the ranks agree on the parameters, decide
 * each rank's part of every parameter, and size every buffer once. */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

size_t dist__block(size_t n, int P, int r)
{
    return n / (size_t)P + ((size_t)r < n % (size_t)P ? 1 : 0);
}

size_t dist__block_start(size_t n, int P, int r)
{
    size_t q = n / (size_t)P, extra = n % (size_t)P, rr = (size_t)r;
    return rr * q + (rr < extra ? rr : extra);
}

/* A checksum of the registration: names, shapes, roles, in order. */
static uint32_t registration_crc(const muon_dist *d)
{
    uint32_t crc = muon__crc32(0, &d->cfg.algo, sizeof d->cfg.algo);
    for (int i = 0; i < d->np; i++) {
        const dist__param *p = &d->p[i];
        crc = muon__crc32(crc, p->name, strlen(p->name) + 1);
        crc = muon__crc32(crc, &p->role, sizeof p->role);
        crc = muon__crc32(crc, &p->ndim, sizeof p->ndim);
        crc = muon__crc32(crc, p->shape, sizeof(long) * (size_t)p->ndim);
    }
    return crc;
}

/* Longest-processing-time first: the costliest parameter goes to the
 * least-loaded rank (lowest rank on ties), the same on every rank. */
static muon_status assign_owners(muon_dist *d)
{
    int *order = malloc(sizeof(int) * (size_t)(d->np ? d->np : 1));
    double *load = calloc((size_t)d->size, sizeof(double));
    if (!order || !load) {
        free(order);
        free(load);
        return MUON_ERR_NOMEM;
    }
    for (int i = 0; i < d->np; i++)
        order[i] = i;
    /* insertion sort: stable, so equal costs keep registration order */
    for (int i = 1; i < d->np; i++) {
        int x = order[i], j = i;
        while (j > 0 && d->p[order[j - 1]].cost < d->p[x].cost) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
    for (int k = 0; k < d->np; k++) {
        int best = 0;
        for (int r = 1; r < d->size; r++)
            if (load[r] < load[best])
                best = r;
        d->p[order[k]].owner = best;
        load[best] += d->p[order[k]].cost;
    }
    free(order);
    free(load);
    return MUON_OK;
}

static muon_status decide_parts(muon_dist *d)
{
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        switch (d->mode) {
        case MUON_DIST_DDP:
            p->lo = 0;
            p->cnt = p->n;
            break;
        case MUON_DIST_ZERO1:
            p->counts = malloc(sizeof(int) * (size_t)d->size);
            p->displs = malloc(sizeof(int) * (size_t)d->size);
            if (!p->counts || !p->displs)
                return MUON_ERR_NOMEM;
            for (int r = 0; r < d->size; r++) {
                p->counts[r] = (int)dist__block(p->n, d->size, r);
                p->displs[r] = (int)dist__block_start(p->n, d->size, r);
            }
            p->lo = (size_t)p->displs[d->rank];
            p->cnt = (size_t)p->counts[d->rank];
            break;
        case MUON_DIST_OWNER:
            p->lo = 0;
            p->cnt = p->owner == d->rank ? p->n : 0;
            break;
        default:
            return MUON_ERR_ARG;
        }
    }
    return MUON_OK;
}

static muon_status allocate(muon_dist *d)
{
    size_t state = 0, grads = 0, nfull = 0, nmax = 0, wmax = 0;
    for (int i = 0; i < d->np; i++) {
        const dist__param *p = &d->p[i];
        state += (size_t)muon__rule_table[p->rule].n_buffers * muon__round16(p->cnt);
        /* ZERO1 receives its block; DDP and an owner the whole gradient */
        grads += muon__round16(p->cnt);
        if (p->rule != MUON__RULE_MUON)
            continue;
        if (d->mode == MUON_DIST_ZERO1)
            nfull += muon__round16(p->n);
        if (p->cnt > 0 || d->mode == MUON_DIST_ZERO1) {
            size_t wb = 0;
            if (muon_ortho_workspace_size(&d->cfg.ortho, p->rows, p->cols, &wb) != MUON_OK)
                return dist__fail(d, MUON_ERR_ARG, "parameter '%s': orthogonalization config",
                                  p->name);
            wmax = wb > wmax ? wb : wmax;
            nmax = p->n > nmax ? p->n : nmax;
        }
    }
    d->state_floats = state;
    d->state = muon__aligned_alloc((state ? state : 1) * sizeof(float));
    d->grads = muon__aligned_alloc((grads ? grads : 1) * sizeof(float));
    d->nbufs = muon__aligned_alloc((nfull ? nfull : 1) * sizeof(float));
    d->nb16s = d->gather_bf16 ? malloc((nfull ? nfull : 1) * sizeof(muon_bf16)) : NULL;
    d->nwork = muon__aligned_alloc((nmax ? muon__round16(nmax) : 1) * sizeof(float));
    d->work_bytes = wmax;
    d->work = muon__aligned_alloc(wmax ? wmax : 64);
    d->req = malloc(sizeof(MPI_Request) * (size_t)(d->np ? d->np : 1) * DIST__REQ_KINDS);
    d->flags = malloc(sizeof(int) * (size_t)(d->np ? d->np : 1));
    if (!d->state || !d->grads || !d->nbufs || (d->gather_bf16 && !d->nb16s) || !d->nwork ||
        !d->work || !d->req || !d->flags)
        return MUON_ERR_NOMEM;
    memset(d->state, 0, (state ? state : 1) * sizeof(float));
    float *s = d->state, *g = d->grads, *nf = d->nbufs;
    muon_bf16 *h = d->nb16s;
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        for (int k = 0; k < muon__rule_table[p->rule].n_buffers; k++) {
            p->buf[k] = s;
            s += muon__round16(p->cnt);
        }
        p->gred = g;
        g += muon__round16(p->cnt);
        if (p->rule == MUON__RULE_MUON && d->mode == MUON_DIST_ZERO1) {
            p->nfull = nf;
            nf += muon__round16(p->n);
            if (h) {
                p->nb16 = h;
                h += muon__round16(p->n);
            }
        }
    }
    for (int i = 0; i < d->np * DIST__REQ_KINDS; i++)
        d->req[i] = MPI_REQUEST_NULL;
    d->st.state_bytes = 0;
    for (int i = 0; i < d->np; i++)
        d->st.state_bytes +=
            (size_t)muon__rule_table[d->p[i].rule].n_buffers * d->p[i].cnt * sizeof(float);
    return MUON_OK;
}

muon_status muon_dist_finalize(muon_dist *d)
{
    if (!d)
        return MUON_ERR_NULL;
    if (d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "finalize called twice");
    uint32_t mine = registration_crc(d);
    unsigned long lo_hi[2] = {mine, ~(unsigned long)mine}, agreed[2];
    int np_range[2] = {d->np, -d->np}, np_agreed[2];
    muon_status s = dist__check(d, MPI_Allreduce(lo_hi, agreed, 2, MPI_UNSIGNED_LONG, MPI_MIN,
                                                 d->comm),
                                "checking the registration");
    if (s == MUON_OK)
        s = dist__check(d, MPI_Allreduce(np_range, np_agreed, 2, MPI_INT, MPI_MIN, d->comm),
                        "checking the registration");
    if (s != MUON_OK)
        return s;
    if (agreed[0] != mine || ~agreed[1] != mine || np_agreed[0] != -np_agreed[1])
        return dist__fail(d, MUON_ERR_MISMATCH,
                          "the ranks registered different parameters (names, shapes, roles or "
                          "order differ)");
    if (muon_backend_create(MUON_BACKEND_CPU, d->threads, &d->be) != MUON_OK)
        return dist__fail(d, MUON_ERR_NOMEM, "cannot create the backend context");
    if (d->mode == MUON_DIST_OWNER && (s = assign_owners(d)) != MUON_OK)
        return s;
    if ((s = decide_parts(d)) != MUON_OK || (s = allocate(d)) != MUON_OK)
        return s == MUON_ERR_NOMEM ? dist__fail(d, s, "out of memory sizing the buffers") : s;
    d->finalized = 1;
    d->err[0] = 0;
    return MUON_OK;
}
