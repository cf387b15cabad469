/* Optimizer configuration: defaults (the Moonlight recipe), validation, the
 * names of scale rules and roles, and the scale factor itself. */
#include <math.h>
#include <string.h>

#include "optim/optim.h"

muon_opt_config muon_opt_config_default(void)
{
    muon_opt_config c;
    memset(&c, 0, sizeof c);
    c.algo = MUON_ALGO_MUON;
    c.lr = 1e-3;
    c.momentum = 0.95;
    c.nesterov = 1;
    c.weight_decay = 0.1;
    c.scale = MUON_SCALE_MOONLIGHT;
    c.ortho = muon_ortho_config_default();
    c.adam_lr = 1e-3;
    c.adam_beta1 = 0.9;
    c.adam_beta2 = 0.95;
    c.adam_eps = 1e-8;
    c.adam_weight_decay = 0.1;
    c.threads = 0;
    c.fanion_alpha = 0.5;
    c.sign_scale = 0.01;
    c.fanion_k = 16;
    c.spectrum_power = 0.0;
    c.switch_step = 0;
    return c;
}

static int finite_nonneg(double x)
{
    return isfinite(x) && x >= 0.0;
}

muon_status muon_opt_config_validate(const muon_opt_config *cfg)
{
    if (!cfg)
        return MUON_ERR_NULL;
    if ((int)cfg->algo < 0 || cfg->algo >= MUON_ALGO_COUNT)
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->lr) || !finite_nonneg(cfg->weight_decay))
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->momentum) || cfg->momentum > 1.0)
        return MUON_ERR_ARG;
    if (cfg->nesterov != 0 && cfg->nesterov != 1)
        return MUON_ERR_ARG;
    if ((int)cfg->scale < 0 || cfg->scale >= MUON_SCALE_COUNT)
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->adam_lr) || !finite_nonneg(cfg->adam_weight_decay))
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->adam_beta1) || cfg->adam_beta1 >= 1.0)
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->adam_beta2) || cfg->adam_beta2 >= 1.0)
        return MUON_ERR_ARG;
    /* eps > 0 keeps m / (sqrt(v) + eps) finite when g has been exactly 0 */
    if (!isfinite(cfg->adam_eps) || cfg->adam_eps <= 0.0)
        return MUON_ERR_ARG;
    if (cfg->threads > 4096)
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->fanion_alpha) || cfg->fanion_alpha > 1.0)
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->sign_scale) || cfg->fanion_k < 1 || cfg->switch_step < 0)
        return MUON_ERR_ARG;
    if (!finite_nonneg(cfg->spectrum_power) || cfg->spectrum_power > 8.0)
        return MUON_ERR_ARG;
    /* The ortho settings only matter when some parameter uses Muon, but a
     * bad one is a mistake either way. */
    return muon_ortho_config_validate(&cfg->ortho);
}

static const char *const scale_names[MUON_SCALE_COUNT] = {
    [MUON_SCALE_MOONLIGHT] = "moonlight",
    [MUON_SCALE_KELLER] = "keller",
    [MUON_SCALE_SPECTRAL] = "spectral",
    [MUON_SCALE_NONE] = "none",
};

static const char *const algo_names[MUON_ALGO_COUNT] = {
    [MUON_ALGO_MUON] = "muon",         [MUON_ALGO_ADAMW] = "adamw",
    [MUON_ALGO_SGDM] = "sgdm",         [MUON_ALGO_SCALE] = "scale",
    [MUON_ALGO_FMUON] = "fmuon",       [MUON_ALGO_SMUON] = "smuon",
    [MUON_ALGO_FANION_K] = "fanion-k", [MUON_ALGO_MUONALL] = "muonall",
    [MUON_ALGO_ADAMW_MUON] = "adamw-muon",
};

static const char *const role_names[MUON_ROLE_COUNT] = {
    [MUON_ROLE_MATRIX] = "matrix",
    [MUON_ROLE_EMBEDDING] = "embedding",
    [MUON_ROLE_HEAD] = "head",
    [MUON_ROLE_VECTOR] = "vector",
};

muon_status muon_scale_parse(const char *name, muon_scale_rule *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(scale_names, MUON_SCALE_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_scale_rule)i;
    return MUON_OK;
}

const char *muon_scale_name(muon_scale_rule r)
{
    return muon__name_at(scale_names, MUON_SCALE_COUNT, (int)r);
}

muon_status muon_algo_parse(const char *name, muon_algo *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(algo_names, MUON_ALGO_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_algo)i;
    return MUON_OK;
}

const char *muon_algo_name(muon_algo a)
{
    return muon__name_at(algo_names, MUON_ALGO_COUNT, (int)a);
}

muon_status muon_role_parse(const char *name, muon_role *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(role_names, MUON_ROLE_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_role)i;
    return MUON_OK;
}

const char *muon_role_name(muon_role r)
{
    return muon__name_at(role_names, MUON_ROLE_COUNT, (int)r);
}

/* 0 for an unknown rule or a non-positive size (no valid update has it). */
double muon_scale_factor(muon_scale_rule r, long rows, long cols)
{
    if (rows <= 0 || cols <= 0)
        return 0.0;
    double m = (double)rows, n = (double)cols;
    switch (r) {
    case MUON_SCALE_MOONLIGHT:
        return 0.2 * sqrt(m > n ? m : n);
    case MUON_SCALE_KELLER:
        return sqrt(m / n > 1.0 ? m / n : 1.0);
    case MUON_SCALE_SPECTRAL:
        return sqrt(m / n);
    case MUON_SCALE_NONE:
        return 1.0;
    default:
        return 0.0;
    }
}
