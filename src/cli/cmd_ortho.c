/* muon ortho: read a matrix from .npy, orthogonalize it, write float32 .npy. */
#ifndef _POSIX_C_SOURCE /* fileno, clock_gettime: POSIX, whatever the build defines */
#define _POSIX_C_SOURCE 200809L
#endif
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "io/npy.h"

static const cli_flag flags[] = {
    {"in", "PATH", CLI_VALUE, "input matrix: 2-D .npy, float32 or float64 (required)"},
    {"out", "PATH", CLI_VALUE, "output: float32 .npy, written whole or not at all (required)"},
    {"method", "M", CLI_VALUE, "auto | ns | gram-ns | svd (default auto)"},
    {"coeffs", "C", CLI_VALUE, "polar-express | keller | quintic5 | taylor-K, K=1..5"
                               " (default polar-express)"},
    {"steps", "Q", CLI_VALUE, "iterations, >= 1 (default 5; ignored by svd)"},
    {"aol", NULL, CLI_SWITCH, "AOL rescaling instead of Frobenius normalization"},
    {"precision", "P", CLI_VALUE, "fp32 | mixed | auto: bf16 products but the last two steps (default auto)"},
    {"restarts", "LIST", CLI_VALUE, CLI_RESTARTS_HELP},
    {"threads", "N", CLI_VALUE, "BLAS threads, 0 = all cores (default: OpenBLAS's setting)"},
};
#define N_FLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: muon ortho --in G.npy --out O.npy [--method M] [--coeffs C] [--steps Q]\n"
               "                  [--aol] [--precision P] [--restarts LIST] [--threads N]\n\n"
               "Writes O ~ polar(G) = U V^T for G = U S V^T. --out may equal --in: the\n"
               "output goes to a temporary file renamed into place.\n\nflags:\n");
    cli_print_flags(f, flags, N_FLAGS);
}

/* --restarts into the config. Gram NS only: with ns or svd it would be
 * ignored, so it is refused instead. */
int cli_get_restarts(const cli_args *a, muon_ortho_config *c)
{
    const char *s = cli_get_str(a, "restarts", NULL);
    if (!s)
        return 0;
    if (c->method == MUON_ORTHO_NS || c->method == MUON_ORTHO_SVD)
        return cli_usage_error(a, "--restarts applies to gram-ns (or auto), not method %s",
                               muon_ortho_method_name(c->method));
    int steps = c->steps > 0 ? c->steps : 5;
    if (muon_gram_restarts_parse(s, steps, &c->gram_restarts) != MUON_OK)
        return cli_usage_error(a,
                               "--restarts must be none or steps between 1 and %d separated "
                               "by commas (restart before those steps); got '%s'",
                               (steps < 32 ? steps : 32) - 1, s);
    return 0;
}

int cli_ortho_config_from_args(const cli_args *a, muon_ortho_config *cfg)
{
    muon_ortho_config c = muon_ortho_config_default();
    const char *m = cli_get_str(a, "method", NULL);
    if (m && muon_ortho_method_parse(m, &c.method) != MUON_OK)
        return cli_usage_error(a, "--method must be one of auto, ns, gram-ns, svd; got '%s'", m);
    const char *co = cli_get_str(a, "coeffs", NULL);
    if (co && muon_coeffs_parse(co, &c) != MUON_OK)
        return cli_usage_error(a,
                               "--coeffs must be one of polar-express, keller, quintic5, "
                               "taylor-K (K = 1..5); got '%s'",
                               co);
    long steps;
    if (cli_get_long(a, "steps", 5, 1, LONG_MAX, &steps))
        return 2;
    if (steps > 100000) /* an int; and more is surely a typo */
        return cli_usage_error(a, "--steps must be at most 100000, got '%ld'", steps);
    c.steps = (int)steps;
    c.aol = cli_count(a, "aol") > 0;
    const char *pr = cli_get_str(a, "precision", NULL);
    if (pr && muon_precision_parse(pr, &c.precision) != MUON_OK)
        return cli_usage_error(a, "--precision must be fp32, mixed or auto; got '%s'", pr);
    if (c.precision == MUON_PRECISION_MIXED && c.method == MUON_ORTHO_SVD)
        return cli_usage_error(a, "--precision mixed has no steps to run with --method svd");
    int rc = cli_get_restarts(a, &c);
    if (rc)
        return rc;
    if (muon_ortho_config_validate(&c) != MUON_OK)
        return cli_usage_error(a, "this combination of orthogonalization options is invalid");
    *cfg = c;
    return 0;
}

int cli_get_precision(const cli_args *a, muon_precision *out)
{
    const char *s = cli_get_str(a, "precision", NULL);
    if (s && muon_precision_parse(s, out) != MUON_OK)
        return cli_usage_error(a, "--precision must be fp32, mixed or auto, got '%s'", s);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

int cli_ortho(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon ortho", flags, N_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    const char *in = NULL, *out = NULL;
    muon_ortho_config cfg;
    int threads = -1;
    if ((rc = cli_require_str(&a, "in", &in)) || (rc = cli_require_str(&a, "out", &out)) ||
        (rc = cli_ortho_config_from_args(&a, &cfg)) ||
        (rc = cli_get_int(&a, "threads", -1, 0, 4096, &threads))) {
        cli_args_free(&a);
        return rc;
    }
    if (cli_count(&a, "threads"))
        muon_set_blas_threads(threads);

    char err[256];
    float *g = NULL;
    long rows = 0, cols = 0;
    muon_status s = npy_read_f32(in, &g, &rows, &cols, err, sizeof err);
    if (s != MUON_OK) {
        fprintf(stderr, "muon ortho: %s: %s\n", in, err);
        cli_args_free(&a);
        return 1;
    }
    float *o = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    rc = 1;
    if (!o) {
        fprintf(stderr, "muon ortho: %s: out of memory for the output\n", in);
        goto done;
    }
    double t0 = now_ms();
    s = muon_orthogonalize(&cfg, g, o, rows, cols, NULL, 0);
    double ms = now_ms() - t0;
    if (s != MUON_OK) {
        fprintf(stderr, "muon ortho: %s: %s (%s)\n", in,
                s == MUON_ERR_NONFINITE ? "the matrix holds NaN or Inf" : muon_strerror(s),
                muon_status_name(s));
        goto done;
    }
    if ((s = npy_write_f32(out, o, rows, cols, err, sizeof err)) != MUON_OK) {
        fprintf(stderr, "muon ortho: %s: %s\n", out, err);
        goto done;
    }
    char cname[32], how[64];
    muon_ortho_config ran = cfg;
    muon_ortho_resolve(NULL, &cfg, rows, cols, &ran);
    if (cfg.method == MUON_ORTHO_SVD)
        snprintf(how, sizeof how, "exact polar factor");
    else
        snprintf(how, sizeof how, "coeffs %s, %d steps%s%s",
                 muon_coeffs_name(&cfg, cname, sizeof cname), cfg.steps, cfg.aol ? ", aol" : "",
                 ran.precision == MUON_PRECISION_MIXED ? ", mixed" : "");
    printf("wrote %s: %ld x %ld float32, method %s, %s, %.1f ms\n", out, rows, cols,
           muon_ortho_method_name(ran.method), how, ms);
    rc = 0;
done:
    free(g);
    free(o);
    cli_args_free(&a);
    return rc;
}
