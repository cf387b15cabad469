/* muon bench train: training throughput of the GPT (src/nn/gpt.h) with AdamW
 * and with the hybrid Muon (figures 3 and 5 of issue 4): forward + backward +
 * optimizer step on random tokens (no files), tokens/s after warm-up steps,
 * the time split between the three phases, and peak resident memory against
 * the bytes the run accounts for (params + grads + optimizer state +
 * activations). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "nn/gpt.h"

static const cli_flag train_flags[] = {
    {"dim", "D", CLI_VALUE, "model width (default 128)"},
    {"layers", "L", CLI_VALUE, "blocks (default 4)"},
    {"heads", "H", CLI_VALUE, "attention heads; D / H even (default 4)"},
    {"context", "T", CLI_VALUE, "tokens per sequence (default 128)"},
    {"batch", "B", CLI_VALUE, "sequences per step (default 16)"},
    {"vocab", "V", CLI_VALUE, "vocabulary size (default 256, bytes)"},
    {"threads", "N", CLI_VALUE | CLI_REPEAT,
     "threads, repeatable or a list 1,2 (default: OpenBLAS's setting)"},
    {"steps", "S", CLI_VALUE, "steps in all, warm-up included (default 20)"},
    {"warmup", "W", CLI_VALUE, "untimed steps first, < S (default 3)"},
    {"optim", "O", CLI_VALUE, "muon | adamw | both (default both: AdamW, then Muon)"},
    {"seed", "SEED", CLI_VALUE, "seed of the weights and tokens (default 1234)"},
    {"precision", "P", CLI_VALUE, "fp32 | mixed | auto: bf16 operands in the linear layers and NS (default auto)"},
    {"restarts", "LIST", CLI_VALUE, CLI_RESTARTS_HELP},
    {"json", NULL, CLI_SWITCH, "one JSON object per line instead of text"},
};
#define N_TRAIN_FLAGS ((int)(sizeof train_flags / sizeof train_flags[0]))

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: muon bench train [--dim D] [--layers L] [--heads H] [--context T]\n"
            "                        [--batch B] [--threads N[,N...]] [--steps S] [--warmup W]\n"
            "                        [--optim muon|adamw|both] [--precision P] [--restarts LIST]\n"
            "                        [--json]\n\n"
            "Trains the GPT on uniformly random tokens for S steps and reports, over the\n"
            "S - W steps after the warm-up: tokens_per_s = B * T * steps / time, the mean\n"
            "ms per step and its split fwd_ms (forward + loss), bwd_ms (zeroing the\n"
            "gradients + backward) and opt_ms (muon_opt_step). Each optimizer gets a fresh\n"
            "model with the same weights.\n\n"
            "Memory: peak_rss_bytes is VmHWM, the process's peak resident set so far: it\n"
            "includes the binary, libraries and BLAS buffers, and it never goes down, so\n"
            "measure memory with one optimizer and one thread count per process (e.g.\n"
            "--optim muon --threads 2); fresh_process says whether the line was the first\n"
            "measurement of its process. accounted_bytes = params + grads + optimizer state\n"
            "+ activations; rss_ratio = peak_rss_bytes / accounted_bytes.\n\n"
            "flags:\n");
    cli_print_flags(f, train_flags, N_TRAIN_FLAGS);
}

typedef struct {
    gpt_config cfg;
    int batch, steps, warmup, json;
    uint64_t seed;
    muon_ortho_config ortho; /* the Muon matrices': the default's, --precision, --restarts */
} train_bench;

typedef struct {
    double fwd_ms, bwd_ms, opt_ms; /* sums over the timed steps */
    double final_loss;
    double ortho_flops; /* one step's orthogonalizations, as the optimizer counts them */
    size_t params, state_bytes, act_bytes, peak_rss;
} train_result;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void random_tokens(int32_t *x, size_t n, int vocab, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (int32_t)(splitmix(s) % (uint64_t)vocab);
}

static int make_optimizer(gpt_model *m, muon_algo algo, int threads, const train_bench *b,
                          muon_opt **out)
{
    muon_opt_config oc = muon_opt_config_default();
    oc.algo = algo;
    oc.threads = threads;
    oc.ortho = b->ortho;
    muon_opt *opt = NULL;
    muon_status s = muon_opt_create(&oc, &opt);
    float *w = gpt_params(m), *g = gpt_grads(m);
    for (int i = 0; s == MUON_OK && i < gpt_num_tensors(m); i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        s = muon_opt_add_param(opt, t->name, w + t->offset, g + t->offset, t->ndim, t->shape,
                               t->role, NULL);
    }
    if (s == MUON_OK)
        s = muon_opt_finalize(opt);
    if (s != MUON_OK) {
        fprintf(stderr, "muon bench train: optimizer: %s\n",
                opt && muon_opt_error(opt)[0] ? muon_opt_error(opt) : muon_strerror(s));
        muon_opt_free(opt);
        return 1;
    }
    *out = opt;
    return 0;
}

/* One optimizer at one thread count, in a model of its own. */
static int measure(const train_bench *b, muon_algo algo, int threads, train_result *r)
{
    memset(r, 0, sizeof *r);
    bench_set_threads(threads);
    gpt_model *m = NULL;
    muon_status s = gpt_create(&b->cfg, b->batch, &m);
    if (s == MUON_OK)
        s = gpt_set_precision(m, b->ortho.precision);
    if (s != MUON_OK) {
        fprintf(stderr, "muon bench train: model: %s\n", muon_strerror(s));
        return 1;
    }
    gpt_init_params(m, b->seed);
    muon_opt *opt = NULL;
    if (make_optimizer(m, algo, threads, b, &opt)) {
        gpt_free(m);
        return 1;
    }
    const size_t n = (size_t)b->batch * (size_t)b->cfg.context;
    int32_t *tok = malloc(sizeof(int32_t) * (n + 1));
    if (!tok) {
        fprintf(stderr, "muon bench train: out of memory\n");
        muon_opt_free(opt);
        gpt_free(m);
        return 1;
    }
    uint64_t rng = b->seed + 1;
    double loss_sum = 0;
    int rc = 0, loss_n = 0;
    for (int step = 0; step < b->steps && !rc; step++) {
        /* a random stream: targets are the inputs shifted by one */
        random_tokens(tok, n + 1, b->cfg.vocab, &rng);
        double t0 = bench_now_ms();
        float loss = gpt_forward(m, tok, tok + 1, b->batch, b->cfg.context);
        double t1 = bench_now_ms();
        gpt_zero_grad(m);
        s = isfinite(loss) ? gpt_backward(m) : MUON_ERR_NONFINITE;
        double t2 = bench_now_ms();
        if (s == MUON_OK)
            s = muon_opt_step(opt, 1.0);
        double t3 = bench_now_ms();
        if (s != MUON_OK) {
            fprintf(stderr, "muon bench train: step %d: %s\n", step + 1,
                    !isfinite(loss) ? "the loss is not finite" : muon_opt_error(opt));
            rc = 1;
        } else if (step >= b->warmup) {
            r->fwd_ms += t1 - t0;
            r->bwd_ms += t2 - t1;
            r->opt_ms += t3 - t2;
            loss_sum += loss;
            loss_n++;
        }
    }
    r->final_loss = loss_n ? loss_sum / loss_n : NAN;
    r->params = gpt_num_params(m);
    r->state_bytes = muon_opt_state_bytes(opt);
    r->ortho_flops = muon_opt_ortho_flops(opt);
    r->act_bytes = gpt_activation_bytes(m);
    r->peak_rss = bench_peak_rss_bytes(); /* before anything is freed */
    free(tok);
    muon_opt_free(opt);
    gpt_free(m);
    return rc;
}

static int report(const train_bench *b, muon_algo algo, int threads, const train_result *r,
                  int fresh)
{
    const int timed = b->steps - b->warmup;
    const double total = r->fwd_ms + r->bwd_ms + r->opt_ms;
    const double tps = total > 0 ? (double)b->batch * b->cfg.context * timed / (total * 1e-3) : 0;
    const size_t accounted = 2 * r->params * sizeof(float) + r->state_bytes + r->act_bytes;
    const double ratio = accounted ? (double)r->peak_rss / (double)accounted : 0;
    const char *name = algo == MUON_ALGO_MUON ? "muon" : "adamw";
    if (!b->json) {
        printf("D %d L %d H %d T %d B %d  threads %d  %-5s %10.0f tokens/s  %8.2f ms/step"
               " (fwd %.2f, bwd %.2f, opt %.2f)  peak RSS %.1f MiB = %.2f x accounted"
               " %.1f MiB%s\n",
               b->cfg.dim, b->cfg.layers, b->cfg.heads, b->cfg.context, b->batch, threads, name,
               tps, total / timed, r->fwd_ms / timed, r->bwd_ms / timed, r->opt_ms / timed,
               (double)r->peak_rss / 1048576.0, ratio, (double)accounted / 1048576.0,
               fresh ? "" : " (RSS peak shared with earlier runs of this process)");
        fflush(stdout);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "train");
    cJSON_AddStringToObject(o, "optim", name);
    cJSON_AddNumberToObject(o, "tokens_per_s", tps);
    cJSON_AddNumberToObject(o, "dim", b->cfg.dim);
    cJSON_AddNumberToObject(o, "layers", b->cfg.layers);
    cJSON_AddNumberToObject(o, "heads", b->cfg.heads);
    cJSON_AddNumberToObject(o, "context", b->cfg.context);
    cJSON_AddNumberToObject(o, "batch", b->batch);
    cJSON_AddNumberToObject(o, "vocab", b->cfg.vocab);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddStringToObject(o, "precision", muon_precision_name(b->ortho.precision));
    char rs[64];
    cJSON_AddStringToObject(o, "restarts",
                            muon_gram_restarts_name(b->ortho.gram_restarts, rs, sizeof rs));
    cJSON_AddNumberToObject(o, "steps", timed);
    cJSON_AddNumberToObject(o, "warmup", b->warmup);
    cJSON_AddNumberToObject(o, "ms", total / timed);
    cJSON_AddNumberToObject(o, "fwd_ms", r->fwd_ms / timed);
    cJSON_AddNumberToObject(o, "bwd_ms", r->bwd_ms / timed);
    cJSON_AddNumberToObject(o, "opt_ms", r->opt_ms / timed);
    cJSON_AddNumberToObject(o, "final_loss", r->final_loss);
    cJSON_AddNumberToObject(o, "params", (double)r->params);
    cJSON_AddNumberToObject(o, "param_bytes", (double)(r->params * sizeof(float)));
    cJSON_AddNumberToObject(o, "grad_bytes", (double)(r->params * sizeof(float)));
    cJSON_AddNumberToObject(o, "opt_state_bytes", (double)r->state_bytes);
    cJSON_AddNumberToObject(o, "ortho_gflop", r->ortho_flops * 1e-9);
    cJSON_AddNumberToObject(o, "act_bytes", (double)r->act_bytes);
    cJSON_AddNumberToObject(o, "accounted_bytes", (double)accounted);
    cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)r->peak_rss);
    cJSON_AddNumberToObject(o, "rss_ratio", ratio);
    cJSON_AddBoolToObject(o, "fresh_process", fresh);
    return bench_emit_json(o);
}

static int parse(cli_args *a, train_bench *b, int *optims)
{
    gpt_config c = gpt_config_default();
    int rc = cli_get_int(a, "dim", c.dim, 1, 1 << 16, &c.dim);
    if (!rc)
        rc = cli_get_int(a, "layers", c.layers, 1, 1024, &c.layers);
    if (!rc)
        rc = cli_get_int(a, "heads", c.heads, 1, 1 << 16, &c.heads);
    if (!rc)
        rc = cli_get_int(a, "context", c.context, 1, 1 << 20, &c.context);
    if (!rc)
        rc = cli_get_int(a, "vocab", c.vocab, 1, 1 << 24, &c.vocab);
    if (!rc)
        rc = cli_get_int(a, "batch", 16, 1, 1 << 20, &b->batch);
    if (!rc)
        rc = cli_get_int(a, "steps", 20, 2, 1000000, &b->steps);
    if (!rc)
        rc = cli_get_int(a, "warmup", 3, 0, 1000000, &b->warmup);
    if (!rc && b->warmup >= b->steps)
        rc = cli_usage_error(a, "--warmup (%d) must be less than --steps (%d)", b->warmup,
                             b->steps);
    if (!rc && gpt_config_validate(&c) != MUON_OK)
        rc = cli_usage_error(a, "--dim %d must be a multiple of --heads %d with an even head"
                                " size (D / H), and the sizes must fit in memory",
                             c.dim, c.heads);
    long seed = 1234;
    if (!rc)
        rc = cli_get_long(a, "seed", 1234, 0, LONG_MAX, &seed);
    const char *o = cli_get_str(a, "optim", "both");
    if (!rc) {
        if (!strcmp(o, "both"))
            *optims = 3;
        else if (!strcmp(o, "adamw"))
            *optims = 1;
        else if (!strcmp(o, "muon"))
            *optims = 2;
        else
            rc = cli_usage_error(a, "--optim must be one of muon, adamw, both, got '%s'", o);
    }
    b->ortho = muon_opt_config_default().ortho;
    if (!rc)
        rc = cli_get_precision(a, &b->ortho.precision);
    if (!rc)
        rc = cli_get_restarts(a, &b->ortho);
    b->cfg = c;
    b->seed = (uint64_t)seed;
    b->json = cli_count(a, "json") > 0;
    return rc;
}

int cli_bench_train(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench train", train_flags, N_TRAIN_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        train_usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    train_bench b;
    memset(&b, 0, sizeof b);
    int optims = 0, *threads = NULL, nthreads = 0;
    rc = parse(&a, &b, &optims);
    if (!rc)
        rc = bench_thread_list(&a, &threads, &nthreads);
    int old_threads = muon_get_blas_threads(), runs = 0;
    for (int t = 0; !rc && t < nthreads; t++)
        for (int k = 0; !rc && k < 2; k++) {
            muon_algo algo = k == 0 ? MUON_ALGO_ADAMW : MUON_ALGO_MUON;
            if (!(optims & (1 << k)))
                continue;
            train_result r;
            rc = measure(&b, algo, threads[t], &r);
            if (!rc)
                rc = report(&b, algo, threads[t], &r, runs++ == 0);
        }
    muon_set_blas_threads(old_threads);
    free(threads);
    cli_args_free(&a);
    return rc;
}
