/* coeffs.c - the coefficient sets of the Newton-Schulz family (docs/algorithms.md
 * 1a), their names, and the configuration: defaults, parsing, validation.
 * Every step is handed to the kernels as a polynomial in A = X X^T. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "ortho/ortho.h"

static const double keller_abc[3] = {3.4445, -4.7750, 2.0315};

static const double quintic5_abc[5][3] = {
    {4.0848, -6.8946, 2.9270}, {3.9505, -6.3029, 2.6377}, {3.7418, -5.5913, 2.3037},
    {2.8769, -3.1427, 1.2046}, {2.8366, -3.0525, 1.2012},
};

/* Amsel, Persson, Musco, Gower 2025; rows past the 8th repeat the 8th. */
static const double polar_express_abc[8][3] = {
    {8.28721201814563, -23.595886519098837, 17.300387312530933},
    {4.107059111542203, -2.9478499167379106, 0.5448431082926601},
    {3.9486908534822946, -2.908902115962949, 0.5518191394370137},
    {3.3184196573706015, -2.488488024314874, 0.51004894012372},
    {2.300652019954817, -1.6689039845747493, 0.4188073119525673},
    {1.891301407787398, -1.2679958271945868, 0.37680408948524835},
    {1.8750014808534479, -1.2500016453999487, 0.3750001645474248},
    {1.875, -1.25, 0.375},
};

#define DEFAULT_STEPS 5
#define DEFAULT_SAFETY 1.01
#define DEFAULT_EPS 1e-7
#define POLAR_EXPRESS_NORM 1.01

muon_ortho_config muon_ortho_config_default(void)
{
    muon_ortho_config c;
    memset(&c, 0, sizeof c);
    c.method = MUON_ORTHO_AUTO;
    c.coeffs = MUON_COEFFS_POLAR_EXPRESS;
    c.taylor_k = 2;
    c.steps = DEFAULT_STEPS;
    c.safety = DEFAULT_SAFETY;
    c.eps = DEFAULT_EPS;
    c.aol = 0;
    c.gram_restarts = MUON_GRAM_DEFAULT_RESTARTS;
    c.precision = MUON_PRECISION_AUTO;
    return c;
}

static const char *const method_names[MUON_ORTHO_METHOD_COUNT] = {
    [MUON_ORTHO_AUTO] = "auto",
    [MUON_ORTHO_NS] = "ns",
    [MUON_ORTHO_GRAM_NS] = "gram-ns",
    [MUON_ORTHO_SVD] = "svd",
};

muon_status muon_ortho_method_parse(const char *name, muon_ortho_method *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(method_names, MUON_ORTHO_METHOD_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_ortho_method)i;
    return MUON_OK;
}

const char *muon_ortho_method_name(muon_ortho_method m)
{
    return muon__name_at(method_names, MUON_ORTHO_METHOD_COUNT, (int)m);
}

static const char *const precision_names[MUON_PRECISION_COUNT] = {"fp32", "mixed", "auto"};

muon_status muon_precision_parse(const char *name, muon_precision *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(precision_names, MUON_PRECISION_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_precision)i;
    return MUON_OK;
}

const char *muon_precision_name(muon_precision p)
{
    return muon__name_at(precision_names, MUON_PRECISION_COUNT, (int)p);
}

muon_status muon_coeffs_parse(const char *name, muon_ortho_config *cfg)
{
    if (!name || !cfg)
        return MUON_ERR_NULL;
    if (strcmp(name, "keller") == 0) {
        cfg->coeffs = MUON_COEFFS_KELLER;
    } else if (strcmp(name, "quintic5") == 0) {
        cfg->coeffs = MUON_COEFFS_QUINTIC5;
    } else if (strcmp(name, "polar-express") == 0) {
        cfg->coeffs = MUON_COEFFS_POLAR_EXPRESS;
    } else if (strncmp(name, "taylor-", 7) == 0 && name[7] >= '1' && name[7] <= '5' &&
               name[8] == '\0') {
        cfg->coeffs = MUON_COEFFS_TAYLOR;
        cfg->taylor_k = name[7] - '0';
    } else {
        return MUON_ERR_ARG;
    }
    return MUON_OK;
}

const char *muon_coeffs_name(const muon_ortho_config *cfg, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return "";
    const char *name = "unknown";
    if (cfg) {
        switch (cfg->coeffs) {
        case MUON_COEFFS_KELLER:
            name = "keller";
            break;
        case MUON_COEFFS_QUINTIC5:
            name = "quintic5";
            break;
        case MUON_COEFFS_POLAR_EXPRESS:
            name = "polar-express";
            break;
        case MUON_COEFFS_TAYLOR:
            snprintf(buf, cap, "taylor-%d", cfg->taylor_k);
            return buf;
        default:
            break;
        }
    }
    snprintf(buf, cap, "%s", name);
    return buf;
}

muon_status muon_ortho_config_validate(const muon_ortho_config *cfg)
{
    if (!cfg)
        return MUON_ERR_NULL;
    if ((int)cfg->method < 0 || cfg->method >= MUON_ORTHO_METHOD_COUNT)
        return MUON_ERR_ARG;
    if ((int)cfg->coeffs < 0 || cfg->coeffs >= MUON_COEFFS_COUNT)
        return MUON_ERR_ARG;
    if (cfg->coeffs == MUON_COEFFS_TAYLOR && (cfg->taylor_k < 1 || cfg->taylor_k > 5))
        return MUON_ERR_ARG;
    if (cfg->steps < 0 || cfg->steps > MUON__ORTHO_MAX_STEPS)
        return MUON_ERR_ARG;
    /* a safety factor below 1 would push singular values past the range the
     * polar-express polynomials are built for */
    if (!(cfg->safety == 0 || (cfg->safety >= 1 && cfg->safety <= 2)))
        return MUON_ERR_ARG;
    if (!(cfg->eps >= 0 && cfg->eps < 1))
        return MUON_ERR_ARG;
    if (cfg->aol != 0 && cfg->aol != 1)
        return MUON_ERR_ARG;
    /* AOL changes the matrix (diag(s) X); the exact polar factor of the
     * input is what svd promises, so refuse rather than ignore it. */
    if (cfg->aol && cfg->method == MUON_ORTHO_SVD)
        return MUON_ERR_UNSUPPORTED;
    if ((int)cfg->precision < 0 || cfg->precision >= MUON_PRECISION_COUNT)
        return MUON_ERR_ARG;
    /* svd has no steps to run in bf16: refused, as AOL is */
    if (cfg->precision == MUON_PRECISION_MIXED && cfg->method == MUON_ORTHO_SVD)
        return MUON_ERR_UNSUPPORTED;
    return MUON_OK;
}

muon_ortho_config muon__ortho_resolve(const muon_ortho_config *cfg, long rows, long cols)
{
    muon_ortho_config c = *cfg;
    if (c.steps == 0)
        c.steps = DEFAULT_STEPS;
    if (c.safety == 0)
        c.safety = DEFAULT_SAFETY;
    if (c.eps == 0)
        c.eps = DEFAULT_EPS;
    if (c.gram_restarts == 0)
        c.gram_restarts = MUON_GRAM_DEFAULT_RESTARTS;
    if (c.method == MUON_ORTHO_AUTO) {
        long mn = rows < cols ? rows : cols, mx = rows < cols ? cols : rows;
        c.method = (double)mx >= 1.5 * (double)mn ? MUON_ORTHO_GRAM_NS : MUON_ORTHO_NS;
    }
    return c;
}

void muon__taylor_poly(int k, muon__poly *p)
{
    /* p(l) = sum_s c_s (1 - l)^s with c_s = (2s)! / (4^s (s!)^2);
     * (1 - l)^s = sum_j binom(s, j) (-l)^j. */
    memset(p, 0, sizeof *p);
    p->deg = k;
    double cs = 1.0;
    for (int s = 0; s <= k; s++) {
        if (s > 0)
            cs *= (2.0 * s - 1.0) / (2.0 * s); /* c_s / c_{s-1} */
        double binom = 1.0;
        for (int j = 0; j <= s; j++) {
            if (j > 0)
                binom = binom * (s - j + 1) / j;
            p->q[j] += cs * binom * ((j & 1) ? -1.0 : 1.0);
        }
    }
}

static void triple(muon__poly *p, const double abc[3])
{
    memset(p, 0, sizeof *p);
    p->deg = 2;
    p->q[0] = abc[0];
    p->q[1] = abc[1];
    p->q[2] = abc[2];
}

void muon__ortho_step_poly(const muon_ortho_config *cfg, int t, muon__poly *p)
{
    switch (cfg->coeffs) {
    case MUON_COEFFS_KELLER:
        triple(p, keller_abc);
        break;
    case MUON_COEFFS_QUINTIC5:
        /* (choice) steps past the fifth repeat the fifth triple */
        triple(p, quintic5_abc[t < 5 ? t : 4]);
        break;
    case MUON_COEFFS_TAYLOR:
        muon__taylor_poly(cfg->taylor_k, p);
        break;
    case MUON_COEFFS_POLAR_EXPRESS:
    default:
        triple(p, polar_express_abc[t < 8 ? t : 7]);
        if (t < 7) {
            double f = cfg->safety > 0 ? cfg->safety : DEFAULT_SAFETY;
            p->q[0] /= f;
            p->q[1] /= f * f * f;
            p->q[2] /= f * f * f * f * f;
        }
        break;
    }
}

double muon__ortho_norm_factor(const muon_ortho_config *cfg)
{
    return cfg->coeffs == MUON_COEFFS_POLAR_EXPRESS ? POLAR_EXPRESS_NORM : 1.0;
}

muon_status muon_gram_restarts_parse(const char *text, int steps, unsigned *bits)
{
    if (!text || !bits)
        return MUON_ERR_NULL;
    if (strcmp(text, "none") == 0) {
        *bits = MUON_GRAM_NO_RESTARTS;
        return MUON_OK;
    }
    int top = steps <= 0 ? 5 : steps < 32 ? steps : 32; /* restart steps < top */
    unsigned b = 0;
    const char *p = text;
    for (;;) {
        /* digits only: no sign, space or empty item that strtol would take */
        if (*p < '0' || *p > '9')
            return MUON_ERR_ARG;
        long t = 0;
        while (*p >= '0' && *p <= '9' && t < 1000)
            t = 10 * t + (*p++ - '0');
        if (t < 1 || t >= top || (*p != ',' && *p != '\0'))
            return MUON_ERR_ARG;
        b |= 1u << t;
        if (*p++ == '\0')
            break;
    }
    *bits = b;
    return MUON_OK;
}

const char *muon_gram_restarts_name(unsigned bits, char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return "";
    if (bits == 0)
        bits = MUON_GRAM_DEFAULT_RESTARTS;
    size_t len = 0;
    buf[0] = '\0';
    for (int t = 1; t < 32; t++)
        if (bits >> t & 1u) {
            int w = snprintf(buf + len, cap - len, "%s%d", len ? "," : "", t);
            if (w < 0 || (size_t)w >= cap - len) {
                buf[len] = '\0'; /* truncated: keep the whole items before it */
                break;
            }
            len += (size_t)w;
        }
    if (len == 0)
        snprintf(buf, cap, "none");
    return buf;
}

int muon__gram_restart_at(const muon_ortho_config *cfg, int t)
{
    unsigned bits = cfg->gram_restarts ? cfg->gram_restarts : MUON_GRAM_DEFAULT_RESTARTS;
    /* bit 0 (a restart before the first step) is meaningless: it only marks
     * MUON_GRAM_NO_RESTARTS */
    if (t < 1 || t >= 32)
        return 0;
    return (int)((bits >> t) & 1u);
}
