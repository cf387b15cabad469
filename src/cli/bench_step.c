/* muon bench step: one full hybrid optimizer step (muon_opt_config_default:
 * Muon for the hidden matrices, AdamW for embeddings and vectors) over the
 * parameter shapes of a model (figure 2 of issue 4). Weights with standard
 * deviation 0.02, gradients 1, uniform from a fixed seed (a Gaussian fill
 * of the 250M floats took a third of the run's time); the gradients stay the same across
 * steps (the cost does not depend on their values). Median over repeats
 * after warm-up steps. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

static const cli_flag step_flags[] = {
    {"model", "NAME", CLI_VALUE, "gpt2-small | gpt2-tiny (default gpt2-small)"},
    {"threads", "N", CLI_VALUE | CLI_REPEAT,
     "optimizer threads, repeatable or a list 1,2 (default: OpenBLAS's setting)"},
    {"repeats", "R", CLI_VALUE, "timed steps, >= 1 (default 5)"},
    {"warmup", "W", CLI_VALUE, "untimed steps first, >= 0 (default 1)"},
    {"seed", "SEED", CLI_VALUE, "seed of weights and gradients (default 1234)"},
    {"precision", "P", CLI_VALUE, "fp32 | mixed | auto: bf16 products but the last two NS steps (default auto)"},
    {"restarts", "LIST", CLI_VALUE, CLI_RESTARTS_HELP},
    {"json", NULL, CLI_SWITCH, "one JSON object per line instead of text"},
};
#define N_STEP_FLAGS ((int)(sizeof step_flags / sizeof step_flags[0]))

static void step_usage(FILE *f)
{
    fprintf(f,
            "usage: muon bench step [--model gpt2-small] [--threads N[,N...]] [--repeats R]\n"
            "                       [--warmup W] [--precision P] [--restarts LIST] [--json]\n\n"
            "Times one muon_opt_step of the default hybrid optimizer (Muon for the hidden\n"
            "matrices, AdamW for the rest) over every parameter of the model: median of R\n"
            "steps after W warm-up steps. gflops = the orthogonalization flops of the Muon\n"
            "matrices (muon_ortho_flops) / step time, so it counts the optimizer's main work\n"
            "only. The optimizer is created anew for each thread count.\n\n"
            "flags:\n");
    cli_print_flags(f, step_flags, N_STEP_FLAGS);
}

typedef struct {
    const char *model;
    const bench_tensor *t;
    int nt;
    float *w, *g; /* all tensors back to back */
    int repeats, warmup;
    int json;
    muon_ortho_config ortho; /* the Muon matrices': the default's, --precision, --restarts */
} step_bench;

typedef struct {
    size_t params, muon_params;
    int muon_tensors;
    double muon_flops, ms;
    size_t state_bytes;
} step_result;

static int run_step(void *ctx)
{
    muon_opt *opt = ctx;
    muon_status s = muon_opt_step(opt, 1.0);
    if (s != MUON_OK) {
        fprintf(stderr, "muon bench step: %s\n", muon_opt_error(opt));
        return 1;
    }
    return 0;
}

static int opt_fail(muon_opt *opt, muon_status s)
{
    fprintf(stderr, "muon bench step: optimizer: %s\n",
            opt && muon_opt_error(opt)[0] ? muon_opt_error(opt) : muon_strerror(s));
    muon_opt_free(opt);
    return 1;
}

/* One thread count: create, register, finalize, time. */
static int measure(const step_bench *b, int threads, step_result *r)
{
    muon_opt_config oc = muon_opt_config_default();
    oc.threads = threads;
    oc.ortho = b->ortho;
    muon_opt *opt = NULL;
    muon_status s = muon_opt_create(&oc, &opt);
    if (s != MUON_OK)
        return opt_fail(NULL, s);
    memset(r, 0, sizeof *r);
    size_t off = 0;
    for (int i = 0; i < b->nt; i++) {
        const bench_tensor *t = &b->t[i];
        size_t n = (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
        s = muon_opt_add_param(opt, t->name, b->w + off, b->g + off, t->ndim, t->shape,
                               t->role, NULL);
        if (s != MUON_OK)
            return opt_fail(opt, s);
        off += n;
    }
    if ((s = muon_opt_finalize(opt)) != MUON_OK)
        return opt_fail(opt, s);
    /* count what the optimizer actually routes to Muon, not what we asked */
    for (int i = 0; i < muon_opt_num_params(opt); i++) {
        muon_param_info info;
        if ((s = muon_opt_param_info(opt, i, &info)) != MUON_OK)
            return opt_fail(opt, s);
        size_t n = (size_t)info.rows * (size_t)info.cols;
        r->params += n;
        if (info.uses_muon) {
            r->muon_params += n;
            r->muon_tensors++;
        }
    }
    r->muon_flops = muon_opt_ortho_flops(opt);
    r->state_bytes = muon_opt_state_bytes(opt);
    bench_set_threads(threads);
    int rc = bench_time("muon bench step", run_step, opt, b->warmup, b->repeats, &r->ms);
    muon_opt_free(opt);
    return rc;
}

static int report(const step_bench *b, int threads, const step_result *r)
{
    double gflops = r->ms > 0 ? r->muon_flops / (r->ms * 1e6) : 0;
    if (!b->json) {
        printf("%s  threads %d:  %9.2f ms/step (median of %d)  %zu params (%zu in %d Muon"
               " matrices)  %6.1f GFLOP/s orthogonalizing\n",
               b->model, threads, r->ms, b->repeats, r->params, r->muon_params, r->muon_tensors,
               gflops);
        fflush(stdout);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "step");
    cJSON_AddStringToObject(o, "model", b->model);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddStringToObject(o, "precision", muon_precision_name(b->ortho.precision));
    char rs[64];
    cJSON_AddStringToObject(o, "restarts",
                            muon_gram_restarts_name(b->ortho.gram_restarts, rs, sizeof rs));
    cJSON_AddNumberToObject(o, "ms", r->ms);
    cJSON_AddNumberToObject(o, "params", (double)r->params);
    cJSON_AddNumberToObject(o, "muon_params", (double)r->muon_params);
    cJSON_AddNumberToObject(o, "adamw_params", (double)(r->params - r->muon_params));
    cJSON_AddNumberToObject(o, "tensors", b->nt);
    cJSON_AddNumberToObject(o, "muon_tensors", r->muon_tensors);
    cJSON_AddNumberToObject(o, "gflops", gflops);
    cJSON_AddNumberToObject(o, "ortho_gflop", r->muon_flops * 1e-9);
    cJSON_AddNumberToObject(o, "state_bytes", (double)r->state_bytes);
    cJSON_AddNumberToObject(o, "repeats", b->repeats);
    cJSON_AddNumberToObject(o, "warmup", b->warmup);
    return bench_emit_json(o);
}

int cli_bench_step(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench step", step_flags, N_STEP_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        step_usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    step_bench b;
    memset(&b, 0, sizeof b);
    b.model = cli_get_str(&a, "model", "gpt2-small");
    b.json = cli_count(&a, "json") > 0;
    long seed = 1234;
    int *threads = NULL, nthreads = 0;
    if (!bench_model_known(b.model))
        rc = cli_usage_error(&a, "--model must be one of %s, got '%s'", bench_model_names(),
                             b.model);
    if (!rc)
        rc = cli_get_int(&a, "repeats", 5, 1, 100000, &b.repeats);
    if (!rc)
        rc = cli_get_int(&a, "warmup", 1, 0, 100000, &b.warmup);
    if (!rc)
        rc = cli_get_long(&a, "seed", 1234, 0, LONG_MAX, &seed);
    if (!rc)
        rc = bench_thread_list(&a, &threads, &nthreads);
    b.ortho = muon_opt_config_default().ortho;
    if (!rc)
        rc = cli_get_precision(&a, &b.ortho.precision);
    if (!rc)
        rc = cli_get_restarts(&a, &b.ortho);
    bench_tensor *t = NULL;
    if (!rc) {
        t = bench_model_shapes(b.model, &b.nt);
        size_t total = 0;
        for (int i = 0; t && i < b.nt; i++)
            total += (size_t)t[i].shape[0] * (size_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
        b.t = t;
        b.w = t ? malloc(sizeof(float) * total) : NULL;
        b.g = t ? malloc(sizeof(float) * total) : NULL;
        if (!b.w || !b.g) {
            fprintf(stderr, "muon bench step: out of memory for %s (%zu floats x 2)\n",
                    b.model, total);
            rc = 1;
        } else {
            bench_fill_uniform(b.w, total, (uint64_t)seed, 0.02);
            bench_fill_uniform(b.g, total, (uint64_t)seed + 1, 1.0);
        }
    }
    int old_threads = muon_get_blas_threads();
    for (int i = 0; !rc && i < nthreads; i++) {
        step_result r;
        rc = measure(&b, threads[i], &r);
        if (!rc)
            rc = report(&b, threads[i], &r);
    }
    muon_set_blas_threads(old_threads);
    free(b.w);
    free(b.g);
    free(t);
    free(threads);
    cli_args_free(&a);
    return rc;
}
