/* `muon bench dist`: optimizer memory and bytes sent per rank per step of
 * the three distributed modes, from a model's shapes and the formulas of
 * docs/distributed.md, for rank counts this machine cannot reach; beside
 * them the same figures measured on this run's ranks (run it under
 * `mpirun -np P`; without mpirun it measures one rank). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

static const cli_flag dist_flags[] = {
    {"model", "NAME", CLI_VALUE, "gpt | gpt2-small | llama2-7b | moonlight-16b-a3b (default gpt)"},
    {"dim", "D", CLI_VALUE, "gpt: width (default 128)"},
    {"layers", "L", CLI_VALUE, "gpt: blocks (default 4)"},
    {"vocab", "V", CLI_VALUE, "gpt: vocabulary (default 256)"},
    {"ranks", "LIST", CLI_VALUE | CLI_REPEAT, "rank counts of the plan (default 1,2,3,4,8,...,1024)"},
    {"gather", "P", CLI_VALUE, "zero1's all-gather of the Muon input: fp32 | bf16 (default fp32)"},
    {"repeats", "R", CLI_VALUE, "measured steps per mode (default 5)"},
    {"no-measure", NULL, CLI_SWITCH, "the plan only"},
    {"no-overlap", NULL, CLI_SWITCH, "measure with every collective waited for at once"},
    {"json", NULL, CLI_SWITCH, "one JSON object per line"},
};
#define N_FLAGS ((int)(sizeof dist_flags / sizeof dist_flags[0]))

static const char *const modes[3] = {"ddp", "zero1", "owner"};

typedef struct {
    double state, comm, gflop; /* per rank: bytes, bytes per step, NS GFLOP per step */
} plan;

static size_t numel(const bench_tensor *t)
{
    return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
}

static size_t block0(size_t n, int P)
{
    return n / (size_t)P + (n % (size_t)P ? 1 : 0);
}

/* Rank 0's figures (OWNER: the most loaded rank's state and NS work, as
 * assigned by muon_dist: costliest first to the least loaded rank). */
static int make_plan(const bench_tensor *t, int nt, int P, int mode, int bf16, plan *out,
                     plan *adamw)
{
    muon_ortho_config oc = muon_ortho_config_default();
    memset(out, 0, sizeof *out);
    memset(adamw, 0, sizeof *adamw);
    double *cost = NULL, *load = NULL, *state = NULL, *flop = NULL;
    int *order = NULL;
    if (mode == 2) {
        cost = malloc(sizeof(double) * (size_t)nt);
        order = malloc(sizeof(int) * (size_t)nt);
        load = calloc((size_t)P, sizeof(double));
        state = calloc((size_t)P, sizeof(double));
        flop = calloc((size_t)P, sizeof(double));
        if (!cost || !order || !load || !state || !flop) {
            free(cost), free(order), free(load), free(state), free(flop);
            return -1;
        }
    }
    for (int i = 0; i < nt; i++) {
        size_t n = numel(&t[i]), b = block0(n, P);
        int muon = t[i].role == MUON_ROLE_MATRIX;
        double f = muon ? muon_ortho_flops(&oc, t[i].shape[0], t[i].shape[1]) : 0;
        double nbuf = muon ? 1 : 2, rest = (double)(n - b);
        adamw->state += 2.0 * (double)b * 4;
        adamw->comm += 8 * rest;
        switch (mode) {
        case 0:
            out->state += nbuf * (double)n * 4;
            out->comm += 8 * rest;
            out->gflop += f * 1e-9;
            break;
        case 1:
            out->state += nbuf * (double)b * 4;
            out->comm += (muon ? 8 + (bf16 ? 2 : 4) : 8) * rest;
            out->gflop += f * 1e-9;
            break;
        default:
            cost[i] = muon ? f : 10.0 * (double)n;
            order[i] = i;
            /* rank 0 as a non-owner: a reduce and a broadcast (comm.c) */
            out->comm += 4 * (rest + (double)b) + 4 * rest;
            break;
        }
    }
    if (mode == 2) {
        /* a stable sort by cost, descending, then least-loaded assignment */
        for (int i = 1; i < nt; i++) {
            int x = order[i], j = i;
            while (j > 0 && cost[order[j - 1]] < cost[x]) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = x;
        }
        for (int k = 0; k < nt; k++) {
            int best = 0, i = order[k];
            for (int r = 1; r < P; r++)
                if (load[r] < load[best])
                    best = r;
            load[best] += cost[i];
            size_t n = numel(&t[i]);
            int muon = t[i].role == MUON_ROLE_MATRIX;
            state[best] += (muon ? 1 : 2) * (double)n * 4;
            flop[best] += muon ? cost[i] * 1e-9 : 0;
            if (best == 0) /* the owner sends the scatter half of its broadcast, no reduce block */
                out->comm += 4 * (double)(n - block0(n, P)) - 4 * (double)block0(n, P);
        }
        for (int r = 0; r < P; r++) {
            out->state = state[r] > out->state ? state[r] : out->state;
            out->gflop = flop[r] > out->gflop ? flop[r] : out->gflop;
        }
        free(cost), free(order), free(load), free(state), free(flop);
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: [mpirun -np P] muon bench dist [--model NAME | --dim D --layers L]\n"
               "                       [--ranks LIST] [--gather fp32|bf16] [--json]\n\n"
               "Per rank: optimizer state, bytes sent per step and orthogonalization work of\n"
               "ddp, zero1 and owner, from the model's shapes (docs/distributed.md), against\n"
               "ZeRO-1 AdamW; and, measured on this run's P ranks, the same for one step of\n"
               "muon_dist on random gradients (step and MPI time, rank 0).\n\nflags:\n");
    cli_print_flags(f, dist_flags, N_FLAGS);
}

static void print_row(const char *model, int P, int m, const plan *p, const plan *aw,
                      const bench_dist_measured *me, int json)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "bench", "dist");
        cJSON_AddStringToObject(o, "model", model);
        cJSON_AddNumberToObject(o, "ranks", P);
        cJSON_AddStringToObject(o, "mode", modes[m]);
        cJSON_AddNumberToObject(o, "state_bytes", p->state);
        cJSON_AddNumberToObject(o, "comm_bytes", p->comm);
        cJSON_AddNumberToObject(o, "ortho_gflop", p->gflop);
        cJSON_AddNumberToObject(o, "zero1_adamw_state_bytes", aw->state);
        cJSON_AddNumberToObject(o, "zero1_adamw_comm_bytes", aw->comm);
        if (me) {
            cJSON_AddNumberToObject(o, "measured_state_bytes", (double)me->state_bytes);
            cJSON_AddNumberToObject(o, "measured_comm_bytes", (double)me->comm_bytes);
            cJSON_AddNumberToObject(o, "measured_comm_ms", me->comm_ms);
            cJSON_AddNumberToObject(o, "measured_step_ms", me->step_ms);
        }
        bench_emit_json(o);
        return;
    }
    printf("%5d %-6s %12.4g %12.4g %9.3g %7.3f %7.3f", P, modes[m], p->state / 1e6, p->comm / 1e6,
           p->gflop, aw->state > 0 ? p->state / aw->state : 0,
           aw->comm > 0 ? p->comm / aw->comm : 0);
    if (me)
        printf("   | %10.4g %10.4g %8.2f %8.1f", (double)me->state_bytes / 1e6,
               (double)me->comm_bytes / 1e6, me->comm_ms, me->step_ms);
    printf("\n");
}

int cli_bench_dist(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench dist", dist_flags, N_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    const char *model = cli_get_str(&a, "model", "gpt"), *gather = cli_get_str(&a, "gather", "fp32");
    long dim = 128, layers = 4, vocab = 256, *ranks = NULL;
    int nranks = 0, repeats = 5, json = cli_count(&a, "json") > 0;
    static const long def_ranks[] = {1, 2, 3, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
    if ((rc = cli_get_long(&a, "dim", dim, 2, 1 << 16, &dim)) ||
        (rc = cli_get_long(&a, "layers", layers, 1, 4096, &layers)) ||
        (rc = cli_get_long(&a, "vocab", vocab, 1, 1 << 24, &vocab)) ||
        (rc = cli_get_int(&a, "repeats", repeats, 1, 1000, &repeats)) ||
        (rc = bench_long_list(&a, "ranks", 1, 1 << 20, def_ranks, 12, &ranks, &nranks))) {
        cli_args_free(&a);
        return rc;
    }
    if (strcmp(gather, "fp32") && strcmp(gather, "bf16")) {
        rc = cli_usage_error(&a, "--gather must be fp32 or bf16, got '%s'", gather);
        free(ranks);
        cli_args_free(&a);
        return rc;
    }
    int bf16 = !strcmp(gather, "bf16"), nt = 0;
    bench_tensor *t = bench_dist_shapes(model, vocab, dim, layers, &nt);
    if (!t) {
        rc = cli_usage_error(&a, "unknown --model '%s' (known: %s)", model,
                             bench_dist_model_names());
        free(ranks);
        cli_args_free(&a);
        return rc;
    }
    double params = 0;
    for (int i = 0; i < nt; i++)
        params += (double)numel(&t[i]);
    /* measured: on this run's ranks, when the model fits comfortably */
    int rank = 0, size = 1, mpi = bench_dist_begin(&rank, &size) == 0;
    bench_dist_measured me[3];
    int measured = mpi && !cli_count(&a, "no-measure") && params <= 2e8;
    for (int m = 0; measured && m < 3; m++)
        if (bench_dist_measure(t, nt, modes[m], bf16, !cli_count(&a, "no-overlap"), repeats,
                               &me[m])) {
            rc = 1;
            measured = 0;
        }
    if (rank == 0 && !json) {
        printf("model %s: %d tensors, %.4g M parameters; zero1 gathers the Muon input in %s\n",
               model, nt, params / 1e6, gather);
        printf("per rank (rank 0; owner: the most loaded rank's state and work); ratios against "
               "ZeRO-1 AdamW\n");
        printf("%5s %-6s %12s %12s %9s %7s %7s", "P", "mode", "state_MB", "comm_MB/step",
               "NS_GFLOP", "state/z", "comm/z");
        if (measured)
            printf("   | %10s %10s %8s %8s  (measured, P=%d)", "state_MB", "comm_MB", "comm_ms",
                   "step_ms", size);
        printf("\n");
        if (!mpi)
            printf("(not measured: this build has no MPI)\n");
        else if (!measured && rc == 0)
            printf("(not measured: %s)\n", cli_count(&a, "no-measure") ? "--no-measure"
                                                                         : "over 2e8 parameters");
    }
    for (int k = 0; k < nranks && rank == 0; k++)
        for (int m = 0; m < 3; m++) {
            plan p, aw;
            if (make_plan(t, nt, (int)ranks[k], m, bf16, &p, &aw)) {
                fprintf(stderr, "muon bench dist: out of memory\n");
                rc = 1;
                break;
            }
            print_row(model, (int)ranks[k], m, &p, &aw,
                      measured && ranks[k] == size ? &me[m] : NULL, json);
        }
    if (mpi)
        bench_dist_end();
    free(t);
    free(ranks);
    cli_args_free(&a);
    return rc;
}
