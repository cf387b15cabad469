/* muon bench: a table of sub-benchmarks (docs/bench.md). Adding one is a
 * file src/cli/bench_NAME.c with `int cli_bench_NAME(int argc, char **argv)`
 * (argv[0] is the sub-bench's name), its declaration in bench.h and one row
 * in `benches` below. Each prints human-readable lines, or with --json one
 * JSON object per line carrying "bench": NAME, and returns 0 / 1 / 2 like a
 * command. */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} bench_entry;

static const bench_entry benches[] = {
    {"ortho", cli_bench_ortho, "orthogonalization time, GFLOP/s and error per shape"},
    {"step", cli_bench_step, "one hybrid optimizer step over a model's parameter shapes"},
    {"train", cli_bench_train, "GPT training throughput (tokens/s), phase split and memory"},
    {"sgemm", cli_bench_sgemm, "the machine's own SGEMM rate (GFLOP/s)"},
    {"sizing", cli_bench_sizing, "GEMM and orthogonalization GFLOP/s against model width"},
    {"backend", cli_bench_backend, "the backend table chosen for this machine (nothing timed)"},
    {"dist", cli_bench_dist, "distributed Muon: memory and traffic per rank, plan and measured"},
    {"collectives", cli_bench_collectives, "MPI collectives' bandwidth and latency (under mpirun)"},
};
#define N_BENCHES ((int)(sizeof benches / sizeof benches[0]))

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: muon bench <name> [flags]    (muon bench <name> --help for its flags)\n\n"
               "benchmarks:\n");
    for (int i = 0; i < N_BENCHES; i++)
        fprintf(f, "  %-8s %s\n", benches[i].name, benches[i].help);
    fprintf(f, "\nWith --json every benchmark prints one JSON object per line.\n");
}

int cli_bench(int argc, char **argv)
{
    if (argc < 2) {
        bench_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        bench_usage(stdout);
        return 0;
    }
    for (int i = 0; i < N_BENCHES; i++)
        if (!strcmp(benches[i].name, argv[1]))
            return benches[i].run(argc - 1, argv + 1);
    fprintf(stderr, "muon bench: unknown benchmark '%s' (see 'muon bench --help')\n", argv[1]);
    return 2;
}
