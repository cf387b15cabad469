/* muon_opt_step: the driver. It checks the call, runs every parameter's
 * update rule following the plan made at finalize, and reports refusals.
 *
 * Threads never oversubscribe: phase 1 runs the few Muon matrices that
 * dominate the cost one at a time with BLAS on all threads; phase 2 spreads
 * the remaining parameters over OpenMP threads (dynamic schedule, largest
 * first) with BLAS on one thread; phase 3 splits big elementwise (AdamW)
 * parameters by elements. The kernels get each phase's thread count as an
 * argument; OpenBLAS's count is process-wide (0.3.21 has no per-call
 * one), so it is set before each phase, never inside a parallel region,
 * and restored to the caller's value after it.
 *
 * Determinism: each parameter is updated by exactly one thread (or, in
 * phase 3, each element by one thread with arithmetic that does not depend
 * on the split), so results do not depend on the thread count except where
 * a matrix moves between phases 1 and 2 and BLAS itself rounds differently
 * on a different number of threads. OpenBLAS 0.3.21 splits GEMM over output
 * blocks: its AVX-512 kernels (SkylakeX, Cooperlake) then give identical
 * bits, its Haswell kernels do not (last-bit differences, 1.2e-7 after three
 * steps in tests/test_optim.c). On those kernels a SYRK of m >= 256 goes by
 * 8 panels whatever the thread count (src/ortho/kernels.c), which is exact;
 * smaller matrices run alone only in small steps. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <omp.h>

#include "optim/optim.h"

#define WIDE_CHUNK ((size_t)1 << 14)

typedef struct {
    double muon_lr, adam_lr;
} step_lrs;

static void finish(muon__param *p, muon_status s)
{
    p->status = s;
    if (s == MUON_OK) {
        p->steps++;
        p->skipped = 0;
    } else {
        p->skipped = 1;
    }
}

/* One whole parameter on the calling thread. */
static void run_one(const muon_opt *opt, muon__param *p, const step_lrs *lrs, int threads,
                    void *work, size_t work_bytes)
{
    /* A Muon parameter skips the separate pass over G: a non-finite G
     * makes N non-finite, which muon_orthogonalize refuses
     * (MUON_ERR_NONFINITE) before anything is written, in the pass over N
     * it makes anyway. */
    if (p->hold) {
        p->status = MUON_OK;
        p->skipped = 0;
        return;
    }
    int ortho = muon__orthogonalizes_now(opt, p);
    if (!ortho && !muon__all_finite(p->g, p->n)) {
        finish(p, MUON_ERR_NONFINITE);
        return;
    }
    muon_status s = MUON_OK;
    if (ortho) {
        s = muon__muon_update(opt, p, lrs->muon_lr, threads, work, work_bytes);
        finish(p, s);
        return;
    }
    switch (p->rule) {
    case MUON__RULE_ADAMW:
    case MUON__RULE_ADAMW_MUON: { /* before its switch */
        muon__adamw_coef c;
        muon__adamw_coef_init(&opt->cfg, p->steps + 1, lrs->adam_lr, &c);
        muon__adamw_range(&c, p, 0, p->n);
        break;
    }
    case MUON__RULE_SGDM:
        muon__sgdm_range(opt, p, lrs->muon_lr, 0, p->n);
        break;
    case MUON__RULE_SIGN:
        muon__sign_range(opt, p, lrs->muon_lr, 0, p->n);
        break;
    case MUON__RULE_SCALE:
    case MUON__RULE_SCALE_MOM:
        muon__scale_update(opt, p, lrs->muon_lr);
        break;
    default:
        s = MUON_ERR_UNSUPPORTED;
        break;
    }
    finish(p, s);
}

/* One big elementwise parameter with its elements split over threads. */
static void run_wide(const muon_opt *opt, muon__param *p, const step_lrs *lrs)
{
    const long chunks = (long)((p->n + WIDE_CHUNK - 1) / WIDE_CHUNK);
    const int T = opt->threads;
    if (p->hold) {
        p->status = MUON_OK;
        p->skipped = 0;
        return;
    }
    int ok = 1;
#pragma omp parallel for schedule(static) num_threads(T) reduction(&& : ok)
    for (long c = 0; c < chunks; c++) {
        size_t lo = (size_t)c * WIDE_CHUNK, hi = lo + WIDE_CHUNK < p->n ? lo + WIDE_CHUNK : p->n;
        ok = ok && muon__all_finite(p->g + lo, hi - lo);
    }
    if (!ok) {
        finish(p, MUON_ERR_NONFINITE);
        return;
    }
    switch (p->rule) {
    case MUON__RULE_ADAMW: {
        muon__adamw_coef coef;
        muon__adamw_coef_init(&opt->cfg, p->steps + 1, lrs->adam_lr, &coef);
#pragma omp parallel for schedule(static) num_threads(T)
        for (long c = 0; c < chunks; c++) {
            size_t lo = (size_t)c * WIDE_CHUNK;
            size_t hi = lo + WIDE_CHUNK < p->n ? lo + WIDE_CHUNK : p->n;
            muon__adamw_range(&coef, p, lo, hi);
        }
        finish(p, MUON_OK);
        break;
    }
    case MUON__RULE_SGDM:
    case MUON__RULE_SIGN: {
        void (*range)(const muon_opt *, muon__param *, double, size_t, size_t) =
            p->rule == MUON__RULE_SGDM ? muon__sgdm_range : muon__sign_range;
#pragma omp parallel for schedule(static) num_threads(T)
        for (long c = 0; c < chunks; c++) {
            size_t lo = (size_t)c * WIDE_CHUNK;
            size_t hi = lo + WIDE_CHUNK < p->n ? lo + WIDE_CHUNK : p->n;
            range(opt, p, lrs->muon_lr, lo, hi);
        }
        finish(p, MUON_OK);
        break;
    }
    default:
        finish(p, MUON_ERR_UNSUPPORTED);
        break;
    }
}

/* Turn the per-parameter results into a status and a message. */
static muon_status report(muon_opt *opt)
{
    const muon__param *hard = NULL;
    int n_bad = 0;
    for (int i = 0; i < opt->n_params; i++) {
        const muon__param *p = &opt->params[i];
        if (p->status == MUON_ERR_NONFINITE)
            n_bad++;
        else if (p->status != MUON_OK && !hard)
            hard = p;
    }
    if (!hard && n_bad == 0) {
        muon__opt_ok(opt);
        return MUON_OK;
    }
    size_t cap = sizeof opt->err, len = 0;
    int w;
    if (hard)
        w = snprintf(opt->err, cap, "parameter '%s': update failed: %s%s", hard->name,
                     muon_strerror(hard->status), n_bad ? "; " : "");
    else
        w = 0;
    len = w > 0 && (size_t)w < cap ? (size_t)w : strlen(opt->err);
    if (n_bad) {
        w = snprintf(opt->err + len, cap - len, "non-finite gradient, update refused for");
        len += w > 0 && (size_t)w < cap - len ? (size_t)w : 0;
        int listed = 0;
        for (int i = 0; i < opt->n_params; i++) {
            const muon__param *p = &opt->params[i];
            if (p->status != MUON_ERR_NONFINITE)
                continue;
            /* keep room for the ", ... (N more)" tail */
            if (len + strlen(p->name) + 40 >= cap) {
                snprintf(opt->err + len, cap - len, " ... (%d more)", n_bad - listed);
                break;
            }
            w = snprintf(opt->err + len, cap - len, "%s '%s'", listed ? "," : "", p->name);
            len += (size_t)w;
            listed++;
        }
    }
    return hard ? hard->status : MUON_ERR_NONFINITE;
}

muon_status muon_opt_step(muon_opt *opt, double lr_mult)
{
    if (!opt)
        return MUON_ERR_NULL;
    if (!opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "step before muon_opt_finalize");
    if (!isfinite(lr_mult) || lr_mult < 0)
        return muon__opt_fail(opt, MUON_ERR_ARG, "lr_mult must be finite and >= 0 (got %g)",
                              lr_mult);
    for (int i = 0; i < opt->n_params; i++)
        if (!opt->params[i].g && !opt->params[i].hold)
            return muon__opt_fail(opt, MUON_ERR_NULL,
                                  "parameter '%s': gradient is NULL (see muon_opt_set_grad)",
                                  opt->params[i].name);
    const step_lrs lrs = {opt->cfg.lr * lr_mult, opt->cfg.adam_lr * lr_mult};
    if (!isfinite(lrs.muon_lr) || !isfinite(lrs.adam_lr))
        return muon__opt_fail(opt, MUON_ERR_ARG, "lr_mult %g overflows the learning rate", lr_mult);
    const muon__plan *pl = &opt->plan;
    const int T = opt->threads;

    if (pl->n_alone > 0) {
        int old = muon__blas_threads_push(T);
        for (int k = 0; k < pl->n_alone; k++)
            run_one(opt, &opt->params[pl->alone[k]], &lrs, T, opt->work[0], opt->work_bytes[0]);
        muon__blas_threads_pop(old);
    }
    if (pl->n_shared > 0) {
        int nt = pl->shared_threads;
        int old = muon__blas_threads_push(1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
        for (int k = 0; k < pl->n_shared; k++) {
            int t = omp_get_thread_num();
            run_one(opt, &opt->params[pl->shared[k]], &lrs, 1, opt->work[t], opt->work_bytes[t]);
        }
        muon__blas_threads_pop(old);
    }
    for (int k = 0; k < pl->n_wide; k++)
        run_wide(opt, &opt->params[pl->wide[k]], &lrs);
    return report(opt);
}
