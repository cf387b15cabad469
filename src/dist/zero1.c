/* The ZERO1 step, Moonlight's Distributed Muon (ALGORITHMS.md 5):
 *   1. reduce-scatter of each gradient: this rank's block of the sum
 *   2. momentum and Nesterov input on the block (state: 1/P)
 *   3. all-gather of the Nesterov input (fp32, or bf16 as in Moonlight)
 *   4. orthogonalization of the whole matrix, redundant on every rank
 *   5. update of the rank's block of the parameter
 *   6. all-gather of the parameter
 * AdamW parameters take steps 1, 5 (AdamW on the block) and 6.
 *
 * Overlap: every reduce-scatter is posted first (step.c); each parameter's gather
 * is posted as soon as its block is ready, so one matrix's gather moves
 * while another is orthogonalized. Collectives go in the same order on
 * every rank because every rank runs the same loops. */
#include <string.h>

#include "dist/dist.h"

/* Post the in-place all-gather of buf (n elements of type t, `elt` bytes)
 * by p's blocks; with overlap off, wait for it. */
static muon_status gather(muon_dist *d, dist__param *p, void *buf, MPI_Datatype t, size_t elt,
                          MPI_Request *r, const char *what)
{
    dist__count_rs(d, p->n, elt);
    dist__mpi_enter(d);
    int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, p->counts, p->displs, t,
                             d->comm, r);
    muon_status s = dist__posted(d, rc, r, what);
    return s == MUON_OK && d->overlap ? dist__progress(d) : s;
}

static void widen_bf16(float *dst, const muon_bf16 *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &u, sizeof u);
    }
}

muon_status dist__step_zero1(muon_dist *d, double muon_lr, double adam_lr)
{
    muon_status s;
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip)
            continue;
        if ((s = dist__wait(d, dist__req(d, i, DIST__REQ_GRAD), "reduce-scatter of a gradient")) !=
            MUON_OK)
            return s;
        if (p->rule == MUON__RULE_MUON) {
            dist__momentum(&d->cfg, p->buf[0], p->gred, p->nfull + p->lo, p->cnt);
            if (d->gather_bf16) {
                muon_to_bf16(p->nb16 + p->lo, p->nfull + p->lo, p->cnt, 1);
                s = gather(d, p, p->nb16, MPI_UINT16_T, sizeof(muon_bf16), dist__req(d, i, DIST__REQ_N),
                           "all-gather of a Nesterov input");
            } else
                s = gather(d, p, p->nfull, MPI_FLOAT, sizeof(float), dist__req(d, i, DIST__REQ_N),
                           "all-gather of a Nesterov input");
        } else {
            dist__adamw_part(d, p, p->gred, adam_lr);
            s = gather(d, p, p->w, MPI_FLOAT, sizeof(float), dist__req(d, i, DIST__REQ_W),
                       "all-gather of a parameter");
        }
        if (s != MUON_OK)
            return s;
    }
    for (int i = 0; i < d->np; i++) {
        dist__param *p = &d->p[i];
        if (p->skip || p->rule != MUON__RULE_MUON)
            continue;
        if ((s = dist__wait(d, dist__req(d, i, DIST__REQ_N), "all-gather of a Nesterov input")) !=
            MUON_OK)
            return s;
        if (d->gather_bf16)
            widen_bf16(p->nfull, p->nb16, p->n);
        if ((s = dist__muon_finish(d, p, p->nfull, muon_lr)) != MUON_OK ||
            (s = gather(d, p, p->w, MPI_FLOAT, sizeof(float), dist__req(d, i, DIST__REQ_W),
                        "all-gather of a parameter")) != MUON_OK)
            return s;
    }
    return dist__waitall(d, "all-gather of the parameters");
}
