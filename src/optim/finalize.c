/* muon_opt_finalize: lay out the state buffers, decide how a step spreads
 * its parameters over threads (the plan), and size one workspace per
 * thread, so that the step itself never allocates. */
#include <stdlib.h>
#include <string.h>

#include "optim/optim.h"

/* An elementwise (AdamW) parameter at least this big is split over threads
 * by elements; smaller ones are whole tasks. */
#define WIDE_MIN_ELEMS ((size_t)1 << 16)
/* Work (in flops) worth waking one more thread for: a parallel region costs
 * microseconds on an idle machine but up to a scheduler time slice on a
 * busy one, so tiny steps stay on one thread. */
#define MIN_COST_PER_THREAD 2e6

typedef struct {
    double key;
    int idx;
} keyed;

/* Largest key first; ties by registration order so the plan is stable. */
static int by_key_desc(const void *pa, const void *pb)
{
    const keyed *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return (a->idx > b->idx) - (a->idx < b->idx);
}


static void release(muon_opt *opt)
{
    if (opt->work)
        for (int t = 0; t < opt->threads; t++)
            free(opt->work[t]);
    free(opt->work);
    free(opt->work_bytes);
    free(opt->plan.alone);
    free(opt->plan.shared);
    free(opt->plan.wide);
    free(opt->state);
    opt->work = NULL;
    opt->work_bytes = NULL;
    memset(&opt->plan, 0, sizeof opt->plan);
    opt->state = NULL;
}

static muon_status layout_state(muon_opt *opt)
{
    size_t total = 0;
    for (int i = 0; i < opt->n_params; i++) {
        const muon__param *p = &opt->params[i];
        size_t per = muon__round16(p->n);
        for (int b = 0; b < muon__rule_table[p->rule].n_buffers; b++) {
            if (total > ((size_t)-1) / sizeof(float) / 2 - per)
                return muon__opt_fail(opt, MUON_ERR_SIZE, "optimizer state size overflows");
            total += per;
        }
    }
    opt->state = muon__aligned_alloc(total * sizeof(float));
    if (!opt->state)
        return muon__opt_fail(opt, MUON_ERR_NOMEM, "cannot allocate %zu bytes of optimizer state",
                              total * sizeof(float));
    memset(opt->state, 0, total * sizeof(float));
    opt->state_floats = total;
    size_t off = 0;
    for (int i = 0; i < opt->n_params; i++) {
        muon__param *p = &opt->params[i];
        for (int b = 0; b < muon__rule_table[p->rule].n_buffers; b++) {
            p->buf[b] = opt->state + off;
            off += muon__round16(p->n);
        }
    }
    return MUON_OK;
}

/* Muon params whose orthogonalization is more than one thread's fair share
 * of the total run alone with every thread inside BLAS; the rest are whole
 * tasks for OpenMP threads with single-threaded BLAS, largest first (the
 * dynamic schedule then balances well). Big elementwise params are split
 * by elements instead. */
static muon_status make_plan(muon_opt *opt)
{
    int np = opt->n_params, T = opt->threads;
    keyed *ortho = malloc(sizeof(keyed) * (size_t)(np + 1));
    keyed *elem = malloc(sizeof(keyed) * (size_t)(np + 1));
    opt->plan.alone = malloc(sizeof(int) * (size_t)(np + 1));
    opt->plan.shared = malloc(sizeof(int) * (size_t)(np + 1));
    opt->plan.wide = malloc(sizeof(int) * (size_t)(np + 1));
    if (!ortho || !elem || !opt->plan.alone || !opt->plan.shared || !opt->plan.wide) {
        free(ortho);
        free(elem);
        return muon__opt_fail(opt, MUON_ERR_NOMEM, "out of memory in finalize");
    }
    int no = 0, ne = 0;
    double total = 0;
    for (int i = 0; i < np; i++) {
        const muon__param *p = &opt->params[i];
        if (muon__rule_table[p->rule].needs_ortho) {
            ortho[no++] = (keyed){p->cost, i};
            total += p->cost;
        } else {
            elem[ne++] = (keyed){p->cost, i};
        }
    }
    qsort(ortho, (size_t)no, sizeof *ortho, by_key_desc);
    qsort(elem, (size_t)ne, sizeof *elem, by_key_desc);
    muon__plan *pl = &opt->plan;
    int k = 0;
    for (; k < no && T > 1 && ortho[k].key > total / T; k++) {
        total -= ortho[k].key;
        pl->alone[pl->n_alone++] = ortho[k].idx;
    }
    for (; k < no; k++)
        pl->shared[pl->n_shared++] = ortho[k].idx;
    double shared_cost = total;
    for (k = 0; k < ne; k++) {
        const muon__param *p = &opt->params[elem[k].idx];
        if (T > 1 && muon__rule_table[p->rule].elementwise && p->n >= WIDE_MIN_ELEMS) {
            pl->wide[pl->n_wide++] = elem[k].idx;
        } else {
            pl->shared[pl->n_shared++] = elem[k].idx;
            shared_cost += elem[k].key;
        }
    }
    double useful = shared_cost / MIN_COST_PER_THREAD;
    pl->shared_threads = T < pl->n_shared ? T : pl->n_shared;
    if (useful < pl->shared_threads)
        pl->shared_threads = useful < 1 ? 1 : (int)useful;
    free(ortho);
    free(elem);
    return MUON_OK;
}

/* Workspace 0 serves the "alone" params and a thread of the shared phase;
 * the others only the shared phase, so they are sized over it alone. */
static muon_status make_workspaces(muon_opt *opt)
{
    int T = opt->threads;
    opt->work = calloc((size_t)T, sizeof *opt->work);
    opt->work_bytes = calloc((size_t)T, sizeof *opt->work_bytes);
    if (!opt->work || !opt->work_bytes)
        return muon__opt_fail(opt, MUON_ERR_NOMEM, "out of memory in finalize");
    size_t n_all = 0, n_shared = 0, o_all = 0, o_shared = 0, o_stack = 0;
    int any_shared = 0;
    for (int i = 0; i < opt->n_params; i++) {
        const muon__param *p = &opt->params[i];
        if (!muon__rule_table[p->rule].needs_ortho)
            continue;
        size_t ob = 0;
        muon_ortho_config oc = muon__param_ortho(opt, p);
        muon_status s = muon_ortho_workspace_size(&oc, p->rows, p->cols, &ob);
        if (s != MUON_OK)
            return muon__opt_fail(opt, s, "parameter '%s': no orthogonalization workspace for %ldx%ld",
                                  p->name, p->rows, p->cols);
        int shared = 1;
        for (int a = 0; a < opt->plan.n_alone; a++)
            if (opt->plan.alone[a] == i)
                shared = 0;
        n_all = p->n > n_all ? p->n : n_all;
        o_all = ob > o_all ? ob : o_all;
        if (p->batch > 1 && ob > o_stack)
            o_stack = ob; /* its experts may run on every thread (muon.c) */
        if (shared) {
            any_shared = 1;
            n_shared = p->n > n_shared ? p->n : n_shared;
            o_shared = ob > o_shared ? ob : o_shared;
        }
    }
    if (n_all == 0)
        return MUON_OK; /* no Muon parameter: no workspace */
    for (int t = 0; t < T; t++) {
        if (t > 0 && !o_stack && (!any_shared || t >= opt->plan.shared_threads))
            break;
        /* A parameter of n elements uses the first muon__round16(n) floats for N
         * and the rest for the ortho workspace; both parts are maxima. A
         * stack's experts on thread t > 0 use the whole workspace for theirs. */
        size_t nf = muon__round16(t == 0 ? n_all : n_shared), ob = t == 0 ? o_all : o_shared;
        size_t bytes = nf * sizeof(float) + ob;
        if (t > 0 && bytes < o_stack)
            bytes = o_stack;
        opt->work[t] = muon__aligned_alloc(bytes);
        if (!opt->work[t])
            return muon__opt_fail(opt, MUON_ERR_NOMEM, "cannot allocate a %zu-byte workspace",
                                  bytes);
        opt->work_bytes[t] = bytes;
    }
    return MUON_OK;
}

muon_status muon_opt_finalize(muon_opt *opt)
{
    if (!opt)
        return MUON_ERR_NULL;
    if (opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "optimizer is already finalized");
    muon_status s = muon__backend_init(&opt->be, opt->backend_kind, opt->threads);
    if (s == MUON_OK)
        s = layout_state(opt);
    if (s == MUON_OK)
        s = make_plan(opt);
    if (s == MUON_OK)
        s = make_workspaces(opt);
    if (s != MUON_OK) {
        release(opt);
        return s;
    }
    opt->finalized = 1;
    muon__log("muon_opt: %d params; step plan: %d alone (BLAS on %d threads), %d shared "
              "(%d OpenMP threads, BLAS on 1), %d split by elements",
              opt->n_params, opt->plan.n_alone, opt->threads, opt->plan.n_shared,
              opt->plan.shared_threads, opt->plan.n_wide);
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_set_backend(muon_opt *opt, muon_backend_kind kind)
{
    if (!opt)
        return MUON_ERR_NULL;
    if (opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "the backend is chosen before finalize");
    if ((int)kind < 0 || kind >= MUON_BACKEND_KIND_COUNT)
        return muon__opt_fail(opt, MUON_ERR_ARG, "unknown backend kind %d", (int)kind);
    opt->backend_kind = kind;
    muon__opt_ok(opt);
    return MUON_OK;
}
