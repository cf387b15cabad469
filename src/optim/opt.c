/* The optimizer object: creation, parameter registration, buffers, error
 * messages and introspection. The step is in step.c, the plan and the
 * workspaces it needs in finalize.c, the state file in state.c. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "optim/optim.h"
#include "ortho/ortho.h"

const muon__rule_info muon__rule_table[MUON__RULE_COUNT] = {
    [MUON__RULE_MUON] = {"muon", 1, 1, 0},
    [MUON__RULE_ADAMW] = {"adamw", 2, 0, 1},
    [MUON__RULE_SGDM] = {"sgdm", 1, 0, 1},
    [MUON__RULE_SCALE] = {"scale", 0, 0, 0},
    [MUON__RULE_SCALE_MOM] = {"scale-momentum", 1, 0, 0},
    [MUON__RULE_FMUON] = {"fmuon", 1, 1, 0},
    [MUON__RULE_SMUON] = {"smuon", 1, 1, 0},
    [MUON__RULE_FANION_K] = {"fanion-k", 1, 1, 0},
    [MUON__RULE_SIGN] = {"sign", 1, 0, 1},
    /* AdamW's two moments; the first becomes Muon's momentum at the switch */
    [MUON__RULE_ADAMW_MUON] = {"adamw-muon", 2, 1, 0},
};

muon__rule muon__choose_rule(muon_algo algo, muon_role role, int ndim)
{
    int matrix = role == MUON_ROLE_MATRIX;
    switch (algo) {
    case MUON_ALGO_MUON:
        return matrix ? MUON__RULE_MUON : MUON__RULE_ADAMW;
    case MUON_ALGO_SGDM:
        return MUON__RULE_SGDM;
    case MUON_ALGO_SCALE:
        if (role == MUON_ROLE_VECTOR || ndim < 2)
            return MUON__RULE_ADAMW;
        return role == MUON_ROLE_HEAD ? MUON__RULE_SCALE_MOM : MUON__RULE_SCALE;
    case MUON_ALGO_FMUON:
        return matrix ? MUON__RULE_FMUON : MUON__RULE_ADAMW;
    case MUON_ALGO_SMUON:
        return matrix ? MUON__RULE_SMUON : MUON__RULE_ADAMW;
    case MUON_ALGO_FANION_K:
        return matrix ? MUON__RULE_FANION_K : MUON__RULE_ADAMW;
    case MUON_ALGO_MUONALL:
        return role == MUON_ROLE_VECTOR || ndim < 2 ? MUON__RULE_SIGN : MUON__RULE_MUON;
    case MUON_ALGO_ADAMW_MUON:
        return matrix ? MUON__RULE_ADAMW_MUON : MUON__RULE_ADAMW;
    default:
        return MUON__RULE_ADAMW;
    }
}

int muon__orthogonalizes_now(const muon_opt *opt, const muon__param *p)
{
    if (p->rule == MUON__RULE_ADAMW_MUON)
        return p->steps >= opt->cfg.switch_step;
    return muon__rule_table[p->rule].needs_ortho;
}

muon_ortho_config muon__param_ortho(const muon_opt *opt, const muon__param *p)
{
    muon_ortho_config c = opt->cfg.ortho;
    int shaped = opt->cfg.spectrum_power != 0.0 &&
                 (p->rule == MUON__RULE_MUON || p->rule == MUON__RULE_ADAMW_MUON);
    if (p->rule == MUON__RULE_FANION_K || shaped) {
        c = muon_ortho_config_default();
        c.method = MUON_ORTHO_SVD;
    }
    return c;
}

muon_status muon__opt_fail(const muon_opt *opt, muon_status s, const char *fmt, ...)
{
    /* The object is never defined const (muon_opt_create allocates it), so
     * writing its error text through a const handle is well defined. */
    muon_opt *o = (muon_opt *)opt;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
    return s;
}

void muon__opt_ok(const muon_opt *opt)
{
    ((muon_opt *)opt)->err[0] = '\0';
}

muon_status muon_opt_create(const muon_opt_config *cfg, muon_opt **out)
{
    if (!cfg || !out)
        return MUON_ERR_NULL;
    muon_status s = muon_opt_config_validate(cfg);
    if (s != MUON_OK)
        return s;
    muon_opt *o = calloc(1, sizeof *o);
    if (!o)
        return MUON_ERR_NOMEM;
    o->cfg = *cfg;
    o->threads = cfg->threads > 0 ? cfg->threads : omp_get_num_procs();
    if (o->threads < 1)
        o->threads = 1;
    *out = o;
    return MUON_OK;
}

void muon_opt_free(muon_opt *opt)
{
    if (!opt)
        return;
    if (opt->work)
        for (int t = 0; t < opt->threads; t++)
            free(opt->work[t]);
    free(opt->work);
    free(opt->work_bytes);
    free(opt->plan.alone);
    free(opt->plan.shared);
    free(opt->plan.wide);
    free(opt->state);
    free(opt->params);
    free(opt);
}

static int ranges_overlap(const void *a, size_t an, const void *b, size_t bn)
{
    uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + bn && b0 < a0 + an;
}

/* Check w and g (either may be NULL) against the parameter's size. */
static muon_status check_alias(const muon_opt *opt, const char *name, const float *w,
                               const float *g, size_t n)
{
    if (w && g && ranges_overlap(w, n * sizeof(float), g, n * sizeof(float)))
        return muon__opt_fail(opt, MUON_ERR_ALIAS,
                              "parameter '%s': weight and gradient buffers overlap", name);
    return MUON_OK;
}

muon_status muon__opt_check_index(const muon_opt *opt, int index)
{
    if (index < 0 || index >= opt->n_params)
        return muon__opt_fail(opt, MUON_ERR_ARG, "parameter index %d out of range (%d registered)",
                              index, opt->n_params);
    return MUON_OK;
}

muon_status muon_opt_add_param(muon_opt *opt, const char *name, float *w, const float *g,
                               int ndim, const long *shape, muon_role role, int *index)
{
    if (!opt)
        return MUON_ERR_NULL;
    if (opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "parameter '%s': added after finalize",
                              name ? name : "(null)");
    muon__param_view v;
    char msg[256];
    muon_status s = muon__param_check(name, w, ndim, shape, role, &v, msg, sizeof msg);
    if (s != MUON_OK)
        return muon__opt_fail(opt, s, "%s", msg);
    for (int i = 0; i < opt->n_params; i++)
        if (strcmp(opt->params[i].name, name) == 0)
            return muon__opt_fail(opt, MUON_ERR_DUPLICATE, "parameter '%s' is already registered",
                                  name);
    if ((s = check_alias(opt, name, w, g, v.n)) != MUON_OK)
        return s;
    if (opt->n_params == opt->cap_params) {
        int cap = opt->cap_params ? 2 * opt->cap_params : 16;
        muon__param *p = realloc(opt->params, (size_t)cap * sizeof *p);
        if (!p)
            return muon__opt_fail(opt, MUON_ERR_NOMEM, "parameter '%s': out of memory", name);
        opt->params = p;
        opt->cap_params = cap;
    }
    muon__param *p = &opt->params[opt->n_params];
    memset(p, 0, sizeof *p);
    memcpy(p->name, name, strlen(name) + 1);
    p->role = role;
    p->rule = muon__choose_rule(opt->cfg.algo, role, ndim);
    p->ndim = ndim;
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    p->batch = v.batch;
    p->rows = v.rows;
    p->cols = v.cols;
    p->n = v.n;
    p->w = w;
    p->g = g;
    if (muon__rule_table[p->rule].needs_ortho) {
        muon_ortho_config oc = muon__param_ortho(opt, p);
        p->cost = (double)p->batch * muon_ortho_flops(&oc, p->rows, p->cols);
    } else {
        p->cost = 10.0 * (double)v.n;
    }
    if (index)
        *index = opt->n_params;
    opt->n_params++;
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_set_buffers(muon_opt *opt, int index, float *w, const float *g, int ndim,
                                 const long *shape)
{
    if (!opt)
        return MUON_ERR_NULL;
    muon_status s = muon__opt_check_index(opt, index);
    if (s != MUON_OK)
        return s;
    muon__param *p = &opt->params[index];
    if (!shape)
        return muon__opt_fail(opt, MUON_ERR_NULL, "parameter '%s': shape is NULL", p->name);
    int same = ndim == p->ndim;
    for (int d = 0; same && d < ndim; d++)
        same = shape[d] == p->shape[d];
    if (!same) {
        char a[160] = "", b[160] = "";
        size_t la = 0, lb = 0;
        for (int d = 0; d < ndim && d < MUON__MAX_DIMS && la < sizeof a; d++)
            la += (size_t)snprintf(a + la, sizeof a - la, d ? "x%ld" : "%ld", shape[d]);
        for (int d = 0; d < p->ndim && lb < sizeof b; d++)
            lb += (size_t)snprintf(b + lb, sizeof b - lb, d ? "x%ld" : "%ld", p->shape[d]);
        return muon__opt_fail(opt, MUON_ERR_SHAPE, "parameter '%s': shape %s%s, registered %s",
                              p->name, a, ndim > MUON__MAX_DIMS ? "x..." : "", b);
    }
    float *nw = w ? w : p->w;
    if ((s = check_alias(opt, p->name, nw, g, p->n)) != MUON_OK)
        return s;
    p->w = nw;
    p->g = g;
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_set_grad(muon_opt *opt, int index, const float *g)
{
    if (!opt)
        return MUON_ERR_NULL;
    muon_status s = muon__opt_check_index(opt, index);
    if (s != MUON_OK)
        return s;
    muon__param *p = &opt->params[index];
    if (!g)
        return muon__opt_fail(opt, MUON_ERR_NULL, "parameter '%s': gradient is NULL", p->name);
    if ((s = check_alias(opt, p->name, p->w, g, p->n)) != MUON_OK)
        return s;
    p->g = g;
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_set_lr(muon_opt *opt, double muon_lr, double adam_lr)
{
    if (!opt)
        return MUON_ERR_NULL;
    if (!isfinite(muon_lr) || muon_lr < 0 || !isfinite(adam_lr) || adam_lr < 0)
        return muon__opt_fail(opt, MUON_ERR_ARG,
                              "learning rates must be finite and >= 0 (got %g, %g)", muon_lr,
                              adam_lr);
    opt->cfg.lr = muon_lr;
    opt->cfg.adam_lr = adam_lr;
    muon__opt_ok(opt);
    return MUON_OK;
}

const char *muon_opt_error(const muon_opt *opt)
{
    if (!opt)
        return "optimizer is NULL";
    return opt->err;
}

int muon_opt_num_params(const muon_opt *opt)
{
    return opt ? opt->n_params : 0;
}

muon_status muon_opt_param_info(const muon_opt *opt, int index, muon_param_info *info)
{
    if (!opt || !info)
        return MUON_ERR_NULL;
    if (index < 0 || index >= opt->n_params)
        return MUON_ERR_ARG;
    const muon__param *p = &opt->params[index];
    memset(info, 0, sizeof *info);
    info->name = p->name;
    info->role = p->role;
    info->uses_muon = muon__orthogonalizes_now(opt, p);
    info->ndim = p->ndim;
    memcpy(info->shape, p->shape, sizeof p->shape);
    info->rows = p->rows;
    info->cols = p->cols;
    info->steps = p->steps;
    info->skipped = p->skipped;
    info->batch = p->batch;
    info->rule = p->rule == MUON__RULE_ADAMW_MUON
                     ? muon__rule_table[info->uses_muon ? MUON__RULE_MUON : MUON__RULE_ADAMW].name
                     : muon__rule_table[p->rule].name;
    return MUON_OK;
}

double muon_opt_ortho_flops(const muon_opt *opt)
{
    if (!opt)
        return 0;
    double f = 0;
    for (int i = 0; i < opt->n_params; i++) {
        const muon__param *p = &opt->params[i];
        if (muon__orthogonalizes_now(opt, p)) {
            muon_ortho_config oc = muon__param_ortho(opt, p);
            f += (double)p->batch *
                 muon__ortho_flops_on(opt->finalized ? &opt->be : muon__backend_default(), &oc,
                                      p->rows, p->cols);
        }
    }
    return f;
}

size_t muon_opt_state_bytes(const muon_opt *opt)
{
    if (!opt)
        return 0;
    size_t total = 0;
    for (int i = 0; i < opt->n_params; i++) {
        const muon__param *p = &opt->params[i];
        total += (size_t)muon__rule_table[p->rule].n_buffers * p->n * sizeof(float);
    }
    return total;
}
