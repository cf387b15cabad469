/* The distributed optimizer object: creation, registration, accessors. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"

static const char *const mode_names[MUON_DIST_MODE_COUNT] = {"ddp", "zero1", "owner"};

muon_status muon_dist_mode_parse(const char *name, muon_dist_mode *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(mode_names, MUON_DIST_MODE_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_dist_mode)i;
    return MUON_OK;
}

const char *muon_dist_mode_name(muon_dist_mode m)
{
    return muon__name_at(mode_names, MUON_DIST_MODE_COUNT, (int)m);
}

muon_status dist__fail(muon_dist *d, muon_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
    return s;
}

muon_status muon_dist_create(const muon_opt_config *cfg, muon_dist_mode mode, MPI_Comm comm,
                             muon_dist **out)
{
    if (!cfg || !out)
        return MUON_ERR_NULL;
    *out = NULL;
    muon_status s = muon_opt_config_validate(cfg);
    if (s != MUON_OK)
        return s;
    if ((int)mode < 0 || mode >= MUON_DIST_MODE_COUNT)
        return MUON_ERR_ARG;
    /* the sharded and owned updates are written for Muon's and AdamW's
     * rules; the rest of the family runs in one process */
    if ((cfg->algo != MUON_ALGO_MUON && cfg->algo != MUON_ALGO_ADAMW) || cfg->spectrum_power != 0)
        return MUON_ERR_UNSUPPORTED;
    muon_dist *d = calloc(1, sizeof *d);
    if (!d)
        return MUON_ERR_NOMEM;
    d->cfg = *cfg;
    d->mode = mode;
    d->overlap = 1;
    d->threads = muon__caller_threads();
    if (cfg->threads > 0)
        d->threads = cfg->threads;
    /* our own communicator: its error handler and collectives never mix
     * with the caller's */
    if (MPI_Comm_dup(comm, &d->comm) != MPI_SUCCESS) {
        free(d);
        return MUON_ERR_IO;
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    *out = d;
    return MUON_OK;
}

void muon_dist_free(muon_dist *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->np; i++) {
        free(d->p[i].counts);
        free(d->p[i].displs);
    }
    free(d->p);
    free(d->state);
    free(d->grads);
    free(d->nbufs);
    free(d->nb16s);
    free(d->nwork);
    free(d->work);
    free(d->req);
    free(d->flags);
    muon_backend_free(d->be);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
        MPI_Comm_free(&d->comm);
    free(d);
}

muon_status muon_dist_add_param(muon_dist *d, const char *name, float *w, const float *g,
                                int ndim, const long *shape, muon_role role)
{
    if (!d || !name || !w || !g || !shape)
        return MUON_ERR_NULL;
    if (d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "add_param after finalize");
    if (strlen(name) > MUON__NAME_MAX)
        return dist__fail(d, MUON_ERR_ARG, "parameter name longer than %d bytes", MUON__NAME_MAX);
    if (ndim < 1 || ndim > MUON__MAX_DIMS || (int)role < 0 || role >= MUON_ROLE_COUNT ||
        (role == MUON_ROLE_MATRIX && ndim < 2))
        return dist__fail(d, MUON_ERR_ARG, "parameter '%s': bad ndim or role", name);
    size_t n = 1;
    for (int k = 0; k < ndim; k++)
        if (shape[k] <= 0 || !muon__mul_size((long)n, shape[k], &n))
            return dist__fail(d, MUON_ERR_SIZE, "parameter '%s': bad shape", name);
    if (n > (size_t)0x7fffffff)
        return dist__fail(d, MUON_ERR_SIZE, "parameter '%s': more than 2^31 elements", name);
    for (int i = 0; i < d->np; i++)
        if (!strcmp(d->p[i].name, name))
            return dist__fail(d, MUON_ERR_DUPLICATE, "parameter '%s' registered twice", name);
    if (d->np == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        dist__param *p = realloc(d->p, sizeof *p * (size_t)cap);
        if (!p)
            return MUON_ERR_NOMEM;
        d->p = p;
        d->cap = cap;
    }
    dist__param *p = &d->p[d->np];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->role = role;
    p->rule = muon__choose_rule(d->cfg.algo, role, ndim);
    if (p->rule == MUON__RULE_MUON && ndim > 2)
        return MUON_ERR_UNSUPPORTED; /* expert stacks: one process */
    p->ndim = ndim;
    memcpy(p->shape, shape, sizeof(long) * (size_t)ndim);
    p->rows = shape[0];
    p->cols = (long)(n / (size_t)shape[0]);
    p->n = n;
    p->w = w;
    p->g = g;
    p->cost = p->rule == MUON__RULE_MUON ? muon_ortho_flops(&d->cfg.ortho, p->rows, p->cols)
                                         : 10.0 * (double)n;
    d->np++;
    return MUON_OK;
}

muon_status muon_dist_set_overlap(muon_dist *d, int overlap)
{
    if (!d)
        return MUON_ERR_NULL;
    if (d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "set_overlap after finalize");
    d->overlap = overlap != 0;
    return MUON_OK;
}

muon_status muon_dist_set_gather_bf16(muon_dist *d, int bf16)
{
    if (!d)
        return MUON_ERR_NULL;
    if (d->finalized)
        return dist__fail(d, MUON_ERR_STATE, "set_gather_bf16 after finalize");
    d->gather_bf16 = bf16 != 0;
    return MUON_OK;
}

const char *muon_dist_error(const muon_dist *d)
{
    return d ? d->err : "";
}

int muon_dist_rank(const muon_dist *d)
{
    return d ? d->rank : -1;
}

int muon_dist_size(const muon_dist *d)
{
    return d ? d->size : 0;
}

muon_status muon_dist_get_stats(const muon_dist *d, muon_dist_stats *out)
{
    if (!d || !out)
        return MUON_ERR_NULL;
    *out = d->st;
    return MUON_OK;
}
