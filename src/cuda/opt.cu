/* opt.cu - the CUDA optimizer object: creation, parameter registration
 * (the checks and 2-D views of src/optim/opt.c), finalize (groups, stream
 * assignment, device state, tables and workspaces), accessors. The step is
 * in step.cu. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/opt.cuh"

muon_status muon__cuda_opt_fail(muon_cuda_opt *o, muon_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
    return s;
}

/* A CUDA failure recorded on the context, copied into the optimizer. */
static muon_status from_ctx(muon_cuda_opt *o, muon_status s)
{
    if (s != MUON_OK)
        snprintf(o->err, sizeof o->err, "%s", o->ctx->err);
    return s;
}

extern "C" muon_status muon_cuda_opt_create(muon_cuda *c, const muon_opt_config *cfg,
                                            muon_cuda_opt **out)
{
    /* the config first: its checks need no device (tests/test_cuda_nodevice.c) */
    if (!cfg || !out) {
        muon__cuda_set_last("muon_cuda_opt_create: %s is NULL", !cfg ? "cfg" : "out");
        return MUON_ERR_NULL;
    }
    muon_status s = muon_opt_config_validate(cfg);
    if (s != MUON_OK) {
        muon__cuda_set_last("muon_cuda_opt_create: config: %s", muon_strerror(s));
        return s;
    }
    if (cfg->algo != MUON_ALGO_MUON && cfg->algo != MUON_ALGO_ADAMW) {
        muon__cuda_set_last("muon_cuda_opt_create: algorithm %s has no GPU path (muon, adamw)",
                            muon_algo_name(cfg->algo));
        return MUON_ERR_UNSUPPORTED;
    }
    muon_ortho_config oc;
    if (cfg->spectrum_power != 0.0 ||
        (cfg->algo == MUON_ALGO_MUON && muon__cuda_ortho_resolve(&cfg->ortho, 2, 2, &oc) != MUON_OK)) {
        muon__cuda_set_last("muon_cuda_opt_create: spectrum_power, svd and AOL have no GPU path");
        return MUON_ERR_UNSUPPORTED;
    }
    if (!c) {
        muon__cuda_set_last("muon_cuda_opt_create: the context is NULL");
        return MUON_ERR_NULL;
    }
    muon_cuda_opt *o = (muon_cuda_opt *)calloc(1, sizeof *o);
    if (!o) {
        muon__cuda_set_last("muon_cuda_opt_create: out of host memory");
        return MUON_ERR_NOMEM;
    }
    o->ctx = c;
    o->cfg = *cfg;
    muon__cuda_set_last("%s", "");
    *out = o;
    return MUON_OK;
}

extern "C" void muon_cuda_opt_free(muon_cuda_opt *o)
{
    if (!o)
        return;
    muon__cuda_dev_guard g;
    int entered = muon__cuda_enter(o->ctx, &g) == MUON_OK;
    if (o->finalized) {
        /* queued steps read these buffers */
        for (int i = 0; i < MUON__CUDA_STREAMS; i++)
            (void)cudaStreamSynchronize(o->ctx->s[i]);
        (void)cudaStreamSynchronize(o->ctx->user);
    }
    for (int i = 0; i < MUON__CUDA_STREAMS; i++)
        if (o->work[i])
            (void)cudaFree(o->work[i]);
    if (o->state)
        (void)cudaFree(o->state);
    if (o->tables)
        (void)cudaFree(o->tables);
    if (o->h_acoef)
        (void)cudaFreeHost(o->h_acoef);
    if (o->h_flags)
        (void)cudaFreeHost(o->h_flags);
    if (entered)
        muon__cuda_leave(&g);
    free(o->h_slots);
    free(o->h_adam);
    free(o->h_all);
    free(o->groups);
    free(o->params);
    free(o);
}

static int overlap(const void *a, const void *b, size_t bytes)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return a && b && x < y + bytes && y < x + bytes;
}

extern "C" muon_status muon_cuda_opt_add_param(muon_cuda_opt *o, const char *name, float *w,
                                               const float *g, int ndim, const long *shape,
                                               muon_role role, int *index)
{
    if (!o)
        return MUON_ERR_NULL;
    if (o->finalized)
        return muon__cuda_opt_fail(o, MUON_ERR_STATE, "parameter '%s': added after finalize",
                                   name ? name : "(null)");
    muon__param_view v;
    char msg[256];
    muon_status s = muon__param_check(name, w, ndim, shape, role, &v, msg, sizeof msg);
    if (s != MUON_OK)
        return muon__cuda_opt_fail(o, s, "%s", msg);
    for (int i = 0; i < o->n_params; i++)
        if (strcmp(o->params[i].name, name) == 0)
            return muon__cuda_opt_fail(o, MUON_ERR_DUPLICATE, "parameter '%s' is already "
                                       "registered", name);
    size_t n = v.n;
    if (overlap(w, g, n * sizeof(float)))
        return muon__cuda_opt_fail(o, MUON_ERR_ALIAS, "parameter '%s': weight and gradient "
                                   "buffers overlap", name);
    if (o->n_params == o->cap_params) {
        int cap = o->cap_params ? 2 * o->cap_params : 16;
        void *p = realloc(o->params, (size_t)cap * sizeof *o->params);
        if (!p)
            return muon__cuda_opt_fail(o, MUON_ERR_NOMEM, "parameter '%s': out of memory", name);
        o->params = (muon__cuda_param *)p;
        o->cap_params = cap;
    }
    muon__cuda_param *p = &o->params[o->n_params];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, strlen(name) + 1);
    p->role = role;
    p->muon = o->cfg.algo == MUON_ALGO_MUON && role == MUON_ROLE_MATRIX;
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    p->batch = v.batch;
    p->rows = v.rows;
    p->cols = v.cols;
    p->n = n;
    p->w = w;
    p->g = g;
    if (index)
        *index = o->n_params;
    o->n_params++;
    o->err[0] = '\0';
    return MUON_OK;
}

extern "C" muon_status muon_cuda_opt_set_buffers(muon_cuda_opt *o, int index, float *w,
                                                 const float *g)
{
    if (!o)
        return MUON_ERR_NULL;
    if (index < 0 || index >= o->n_params)
        return muon__cuda_opt_fail(o, MUON_ERR_ARG, "parameter index %d out of range (%d "
                                   "registered)", index, o->n_params);
    muon__cuda_param *p = &o->params[index];
    float *nw = w ? w : p->w;
    const float *ng = g ? g : p->g;
    if (overlap(nw, ng, p->n * sizeof(float)))
        return muon__cuda_opt_fail(o, MUON_ERR_ALIAS, "parameter '%s': weight and gradient "
                                   "buffers overlap", p->name);
    p->w = nw;
    p->g = ng;
    o->dirty = 1;
    o->err[0] = '\0';
    return MUON_OK;
}

/* Same-shape Muon matrices share a group, in order of first appearance. */
static muon_status make_groups(muon_cuda_opt *o)
{
    o->groups = (muon__cuda_group *)calloc((size_t)o->n_params + 1, sizeof *o->groups);
    if (!o->groups)
        return muon__cuda_opt_fail(o, MUON_ERR_NOMEM, "out of host memory");
    for (int i = 0; i < o->n_params; i++) {
        muon__cuda_param *p = &o->params[i];
        if (!p->muon) {
            p->group = o->n_adam++;
            continue;
        }
        int k = 0;
        while (k < o->n_groups && !(o->groups[k].rows == p->rows && o->groups[k].cols == p->cols))
            k++;
        muon__cuda_group *gr = &o->groups[k];
        if (k == o->n_groups) {
            o->n_groups++;
            gr->rows = p->rows;
            gr->cols = p->cols;
            muon_status s = muon__cuda_ortho_resolve(&o->cfg.ortho, p->rows, p->cols, &gr->oc);
            if (s != MUON_OK)
                return muon__cuda_opt_fail(o, s, "parameter '%s': ortho config: %s", p->name,
                                           muon_strerror(s));
            gr->scale = muon_scale_factor(o->cfg.scale, p->rows, p->cols);
        }
        p->group = k;
        p->slot0 = gr->slots;
        gr->slots += p->batch;
        /* cuBLAS takes int dimensions and batch counts, and a group's
         * batch is a grid dimension (at most 2^31 - 1): beyond them the
         * casts in ortho.cu would wrap. The CPU refuses such a matrix too
         * (MUON_ERR_SIZE, src/ortho/ortho.c's check_shape), at its step. */
        if (p->rows > INT_MAX || p->cols > INT_MAX || gr->slots > INT_MAX)
            return muon__cuda_opt_fail(o, MUON_ERR_SIZE, "parameter '%s': %ld x %ld (x %ld in its "
                                       "group) exceeds cuBLAS's int sizes", p->name, p->rows,
                                       p->cols, gr->slots);
    }
    /* largest first onto the least loaded stream */
    double load[MUON__CUDA_STREAMS] = {0};
    int *order = (int *)malloc(((size_t)o->n_groups + 1) * sizeof *order);
    if (!order)
        return muon__cuda_opt_fail(o, MUON_ERR_NOMEM, "out of host memory");
    for (int k = 0; k < o->n_groups; k++) {
        muon__cuda_group *gr = &o->groups[k];
        gr->cost = (double)gr->slots * muon_ortho_flops(&gr->oc, gr->rows, gr->cols);
        order[k] = k;
    }
    for (int a = 1; a < o->n_groups; a++)
        for (int b = a; b > 0 && o->groups[order[b]].cost > o->groups[order[b - 1]].cost; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    long off = 0;
    for (int k = 0; k < o->n_groups; k++)
        o->groups[k].slot_off = off, off += o->groups[k].slots;
    o->n_slots = off;
    o->n_streams = 1;
    for (int a = 0; a < o->n_groups; a++) {
        int best = 0;
        for (int i = 1; i < MUON__CUDA_STREAMS; i++)
            if (load[i] < load[best])
                best = i;
        o->groups[order[a]].stream = best;
        load[best] += o->groups[order[a]].cost;
        if (best + 1 > o->n_streams)
            o->n_streams = best + 1;
    }
    free(order);
    return MUON_OK;
}

static long chunks_of(size_t n)
{
    return (long)((n + (size_t)MUON__CUDA_TCHUNK - 1) / (size_t)MUON__CUDA_TCHUNK);
}

static size_t up(size_t b)
{
    return (b + 255) / 256 * 256;
}

/* The device tables in one allocation; the chunk lists never change, so
 * they are written here once. */
static muon_status make_tables(muon_cuda_opt *o)
{
    muon_cuda *c = o->ctx;
    long na = 0, ng = 0;
    for (int i = 0; i < o->n_params; i++) {
        ng += chunks_of(o->params[i].n);
        if (!o->params[i].muon)
            na += chunks_of(o->params[i].n);
    }
    if (na > 0x7fffffffL || ng > 0x7fffffffL)
        return muon__cuda_opt_fail(o, MUON_ERR_SIZE, "too many elements");
    o->n_achunks = (int)na;
    o->n_gchunks = (int)ng;
    size_t b_slots = up((size_t)o->n_slots * sizeof(muon__cuda_slot));
    size_t b_adam = up((size_t)o->n_adam * sizeof(muon__cuda_tensor));
    size_t b_all = up((size_t)o->n_params * sizeof(muon__cuda_tensor));
    size_t b_ach = up((size_t)na * sizeof(muon__cuda_chunk));
    size_t b_gch = up((size_t)ng * sizeof(muon__cuda_chunk));
    size_t b_coef = up((size_t)o->n_adam * sizeof(muon__cuda_acoef));
    size_t b_flags = up((size_t)o->n_params * sizeof(int));
    MUON__CU(c, cudaMalloc(&o->tables, b_slots + b_adam + b_all + b_ach + b_gch + b_coef + b_flags));
    char *p = (char *)o->tables;
    o->d_slots = (muon__cuda_slot *)p;
    o->d_adam = (muon__cuda_tensor *)(p += b_slots);
    o->d_all = (muon__cuda_tensor *)(p += b_adam);
    o->d_achunks = (muon__cuda_chunk *)(p += b_all);
    o->d_gchunks = (muon__cuda_chunk *)(p += b_ach);
    o->d_acoef = (muon__cuda_acoef *)(p += b_gch);
    o->d_flags = (int *)(p + b_coef);

    muon__cuda_chunk *ach = (muon__cuda_chunk *)malloc((size_t)(na + 1) * sizeof *ach);
    muon__cuda_chunk *gch = (muon__cuda_chunk *)malloc((size_t)(ng + 1) * sizeof *gch);
    if (!ach || !gch) {
        free(ach);
        free(gch);
        return muon__cuda_opt_fail(o, MUON_ERR_NOMEM, "out of host memory");
    }
    long ka = 0, kg = 0;
    for (int i = 0; i < o->n_params; i++) {
        const muon__cuda_param *q = &o->params[i];
        for (long k = 0; k < chunks_of(q->n); k++) {
            gch[kg++] = muon__cuda_chunk{i, k * MUON__CUDA_TCHUNK};
            if (!q->muon)
                ach[ka++] = muon__cuda_chunk{q->group, k * MUON__CUDA_TCHUNK};
        }
    }
    /* on the caller's stream, which finalize synchronizes: a plain
     * cudaMemcpy from pageable memory may return before its DMA has
     * reached the device, queued on the legacy stream that the
     * non-blocking streams do not wait for. Pageable sources are staged
     * before cudaMemcpyAsync returns, so freeing them next is safe. */
    cudaError_t e = cudaMemcpyAsync(o->d_achunks, ach, (size_t)na * sizeof *ach,
                                    cudaMemcpyHostToDevice, c->user);
    if (e == cudaSuccess)
        e = cudaMemcpyAsync(o->d_gchunks, gch, (size_t)ng * sizeof *gch, cudaMemcpyHostToDevice,
                            c->user);
    free(ach);
    free(gch);
    MUON__CU(c, e);
    return MUON_OK;
}

muon_status muon__cuda_opt_upload(muon_cuda_opt *o)
{
    muon_cuda *c = o->ctx;
    for (int i = 0; i < o->n_params; i++) {
        const muon__cuda_param *p = &o->params[i];
        o->h_all[i] = muon__cuda_tensor{p->w, p->g, p->buf[0], p->buf[1], (long)p->n, i, p->hold};
        if (!p->muon) {
            o->h_adam[p->group] = o->h_all[i];
            continue;
        }
        size_t per = (size_t)p->rows * (size_t)p->cols;
        for (long e = 0; e < p->batch; e++)
            o->h_slots[o->groups[p->group].slot_off + p->slot0 + e] = muon__cuda_slot{
                p->g ? p->g + e * per : NULL, p->buf[0] + e * per, p->w + e * per, i};
    }
    /* pageable sources: each copy is staged before the call returns */
    MUON__CU(c, cudaMemcpyAsync(o->d_slots, o->h_slots, (size_t)o->n_slots * sizeof *o->h_slots,
                                cudaMemcpyHostToDevice, c->user));
    MUON__CU(c, cudaMemcpyAsync(o->d_adam, o->h_adam, (size_t)o->n_adam * sizeof *o->h_adam,
                                cudaMemcpyHostToDevice, c->user));
    MUON__CU(c, cudaMemcpyAsync(o->d_all, o->h_all, (size_t)o->n_params * sizeof *o->h_all,
                                cudaMemcpyHostToDevice, c->user));
    o->dirty = 0;
    return MUON_OK;
}

static muon_status finalize(muon_cuda_opt *o)
{
    muon_cuda *c = o->ctx;
    MUON__TRY(make_groups(o));
    size_t state = 0;
    for (int i = 0; i < o->n_params; i++)
        state += (o->params[i].muon ? 1 : 2) * up(o->params[i].n * sizeof(float));
    if (state) {
        MUON__CU(c, cudaMalloc((void **)&o->state, state));
        /* on the caller's stream, which the final synchronize waits for:
         * a plain cudaMemset goes to the legacy stream, which neither a
         * non-blocking caller's stream nor the internal streams (created
         * non-blocking) are ordered after, so the first step could read
         * the state before it is zero */
        MUON__CU(c, cudaMemsetAsync(o->state, 0, state, c->user));
    }
    char *sp = (char *)o->state;
    for (int i = 0; i < o->n_params; i++) {
        muon__cuda_param *p = &o->params[i];
        for (int b = 0; b < (p->muon ? 1 : 2); b++, sp += up(p->n * sizeof(float)))
            p->buf[b] = (float *)sp;
    }
    size_t need[MUON__CUDA_STREAMS] = {0};
    for (int k = 0; k < o->n_groups; k++) {
        const muon__cuda_group *gr = &o->groups[k];
        size_t b = muon__cuda_ortho_layout(NULL, &gr->oc, gr->slots, gr->rows, gr->cols, NULL);
        if (b > need[gr->stream])
            need[gr->stream] = b;
    }
    for (int i = 0; i < MUON__CUDA_STREAMS; i++)
        if (need[i])
            MUON__CU(c, cudaMalloc(&o->work[i], need[i]));
    MUON__TRY(make_tables(o));
    o->h_slots = (muon__cuda_slot *)calloc((size_t)o->n_slots + 1, sizeof *o->h_slots);
    o->h_adam = (muon__cuda_tensor *)calloc((size_t)o->n_adam + 1, sizeof *o->h_adam);
    o->h_all = (muon__cuda_tensor *)calloc((size_t)o->n_params + 1, sizeof *o->h_all);
    if (!o->h_slots || !o->h_adam || !o->h_all)
        return muon__cuda_opt_fail(o, MUON_ERR_NOMEM, "out of host memory");
    MUON__CU(c, cudaMallocHost((void **)&o->h_acoef, ((size_t)o->n_adam + 1) * sizeof *o->h_acoef));
    MUON__CU(c, cudaMallocHost((void **)&o->h_flags, ((size_t)o->n_params + 1) * sizeof(int)));
    MUON__TRY(muon__cuda_opt_upload(o));
    MUON__CU(c, cudaStreamSynchronize(c->user));
    return MUON_OK;
}

extern "C" muon_status muon_cuda_opt_finalize(muon_cuda_opt *o)
{
    if (!o)
        return MUON_ERR_NULL;
    if (o->finalized)
        return muon__cuda_opt_fail(o, MUON_ERR_STATE, "finalize called twice");
    if (o->n_params == 0)
        return muon__cuda_opt_fail(o, MUON_ERR_STATE, "no parameters registered");
    if (o->groups) /* a half-made state: only muon_cuda_opt_free is safe now */
        return muon__cuda_opt_fail(o, MUON_ERR_STATE, "an earlier finalize failed");
    o->err[0] = '\0';
    muon__cuda_dev_guard g;
    muon_status s = from_ctx(o, muon__cuda_enter(o->ctx, &g));
    if (s == MUON_OK) {
        o->ctx->err[0] = '\0';
        s = finalize(o);
        if (s != MUON_OK && o->err[0] == '\0')
            from_ctx(o, s);
    }
    muon__cuda_leave(&g);
    if (s != MUON_OK)
        return s; /* what was allocated is released by muon_cuda_opt_free */
    o->finalized = 1;
    o->err[0] = '\0';
    return MUON_OK;
}

extern "C" muon_status muon_cuda_opt_set_lr(muon_cuda_opt *o, double lr, double adam_lr)
{
    if (!o)
        return MUON_ERR_NULL;
    if (!isfinite(lr) || lr < 0 || !isfinite(adam_lr) || adam_lr < 0)
        return muon__cuda_opt_fail(o, MUON_ERR_ARG, "learning rates must be finite and >= 0 "
                                   "(got %g, %g)", lr, adam_lr);
    o->cfg.lr = lr;
    o->cfg.adam_lr = adam_lr;
    o->err[0] = '\0';
    return MUON_OK;
}

extern "C" const char *muon_cuda_opt_error(const muon_cuda_opt *o)
{
    return o ? o->err : "optimizer is NULL";
}

static muon_status check_index(muon_cuda_opt *o, int index)
{
    if (index < 0 || index >= o->n_params)
        return muon__cuda_opt_fail(o, MUON_ERR_ARG, "parameter index %d out of range (%d "
                                   "registered)", index, o->n_params);
    return MUON_OK;
}

extern "C" muon_status muon_cuda_opt_param_state(muon_cuda_opt *o, int index, float **bufs,
                                                 int *count, long *steps)
{
    if (!o)
        return MUON_ERR_NULL;
    MUON__TRY(check_index(o, index));
    if (!o->finalized)
        return muon__cuda_opt_fail(o, MUON_ERR_STATE, "state before muon_cuda_opt_finalize");
    const muon__cuda_param *p = &o->params[index];
    if (bufs) {
        bufs[0] = p->buf[0];
        bufs[1] = p->muon ? NULL : p->buf[1];
    }
    if (count)
        *count = p->muon ? 1 : 2;
    if (steps)
        *steps = p->steps;
    o->err[0] = '\0';
    return MUON_OK;
}

extern "C" muon_status muon_cuda_opt_set_param_steps(muon_cuda_opt *o, int index, long steps)
{
    if (!o)
        return MUON_ERR_NULL;
    MUON__TRY(check_index(o, index));
    if (steps < 0)
        return muon__cuda_opt_fail(o, MUON_ERR_ARG, "steps must be >= 0 (got %ld)", steps);
    o->params[index].steps = steps;
    o->err[0] = '\0';
    return MUON_OK;
}

extern "C" muon_status muon_cuda_opt_hold_param(muon_cuda_opt *o, int index, int hold)
{
    if (!o)
        return MUON_ERR_NULL;
    MUON__TRY(check_index(o, index));
    o->params[index].hold = hold ? 1 : 0;
    /* the tensor table carries the hold to the gradient check: uploaded
     * again before the next step (before finalize, finalize uploads it) */
    o->dirty = 1;
    o->err[0] = '\0';
    return MUON_OK;
}

extern "C" int muon_cuda_opt_uses_muon(const muon_cuda_opt *o, int index)
{
    if (!o || index < 0 || index >= o->n_params)
        return -1;
    return o->params[index].muon;
}

extern "C" int muon_cuda_opt_num_params(const muon_cuda_opt *o)
{
    return o ? o->n_params : 0;
}
