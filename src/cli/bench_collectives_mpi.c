/* `mpirun -np P muon bench collectives`: time and bandwidth of the four
 * collectives distributed Muon uses, for messages from 1 KiB to 256 MiB
 * (the collective microbenchmarks of the ZAYA1 report). Bandwidths follow
 * nccl-tests: algbw = bytes / time, busbw = algbw * the fraction a ring
 * sends ((P-1)/P, twice that for all-reduce, 1 for broadcast), so busbw is
 * comparable across ops and rank counts. A time is the slowest rank's
 * median over the repeats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "cli/bench.h"
#include "cli/cli.h"

static const cli_flag coll_flags[] = {
    {"min-bytes", "B", CLI_VALUE, "smallest message (default 1024)"},
    {"max-bytes", "B", CLI_VALUE, "largest message (default 268435456, 256 MiB)"},
    {"repeats", "R", CLI_VALUE, "timed runs per size (default: 3 to 50, fewer for big messages)"},
    {"json", NULL, CLI_SWITCH, "one JSON object per line"},
};
#define N_FLAGS ((int)(sizeof coll_flags / sizeof coll_flags[0]))

enum { ALLREDUCE, REDUCE_SCATTER, ALLGATHER, BCAST, N_OPS };
static const char *const op_names[N_OPS] = {"allreduce", "reduce_scatter", "allgather", "bcast"};

/* bytes: the whole message (all-reduce's vector, the reduce-scatter's
 * input, the all-gather's output, the broadcast). */
static int run_op(int op, float *a, float *b, size_t floats, int P)
{
    int per = (int)(floats / (size_t)P);
    switch (op) {
    case ALLREDUCE:
        return MPI_Allreduce(a, b, (int)floats, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    case REDUCE_SCATTER:
        return MPI_Reduce_scatter_block(a, b, per, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    case ALLGATHER:
        return MPI_Allgather(a, per, MPI_FLOAT, b, per, MPI_FLOAT, MPI_COMM_WORLD);
    default:
        return MPI_Bcast(a, (int)floats, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
}

static double bus_factor(int op, int P)
{
    if (op == BCAST)
        return 1;
    double f = (double)(P - 1) / P;
    return op == ALLREDUCE ? 2 * f : f;
}

int cli_bench_collectives(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench collectives", coll_flags, N_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        printf("usage: mpirun -np P muon bench collectives [--min-bytes B] [--max-bytes B] "
               "[--json]\n\nflags:\n");
        cli_print_flags(stdout, coll_flags, N_FLAGS);
        cli_args_free(&a);
        return 0;
    }
    long lo = 1024, hi = 256L << 20;
    int repeats = 0, json = cli_count(&a, "json") > 0;
    if ((rc = cli_get_long(&a, "min-bytes", lo, 4, 1L << 31, &lo)) ||
        (rc = cli_get_long(&a, "max-bytes", hi, lo, 1L << 31, &hi)) ||
        (rc = cli_get_int(&a, "repeats", 0, 0, 100000, &repeats))) {
        cli_args_free(&a);
        return rc;
    }
    MPI_Init(NULL, NULL);
    int rank, P;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &P);
    size_t maxf = (size_t)hi / sizeof(float);
    float *x = malloc(maxf * sizeof(float)), *y = malloc(maxf * sizeof(float));
    double *t = malloc(sizeof(double) * 1000);
    int ok = x && y && t, all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!all) {
        if (rank == 0)
            fprintf(stderr, "muon bench collectives: out of memory for %ld-byte messages\n", hi);
        free(x), free(y), free(t);
        MPI_Finalize();
        cli_args_free(&a);
        return 1;
    }
    bench_fill_uniform(x, maxf, 1 + (uint64_t)rank, 1.0);
    if (rank == 0 && !json)
        printf("%d ranks; time = slowest rank's median; busbw as nccl-tests\n"
               "%-15s %12s %10s %12s %12s\n",
               P, "op", "bytes", "time_us", "algbw_GB/s", "busbw_GB/s");
    for (int op = 0; op < N_OPS; op++)
        for (long bytes = lo; bytes <= hi; bytes *= 2) {
            /* a whole number of floats per rank */
            size_t floats = (size_t)bytes / sizeof(float) / (size_t)P * (size_t)P;
            if (floats == 0)
                continue;
            int R = repeats > 0 ? repeats : (int)(((64L << 20) / bytes) > 50 ? 50 : (64L << 20) / bytes);
            R = R < 3 ? 3 : R > 1000 ? 1000 : R;
            run_op(op, x, y, floats, P); /* warm-up */
            for (int k = 0; k < R; k++) {
                MPI_Barrier(MPI_COMM_WORLD);
                double t0 = MPI_Wtime();
                run_op(op, x, y, floats, P);
                t[k] = MPI_Wtime() - t0;
            }
            double med = bench_median(t, R), worst = med;
            MPI_Reduce(&med, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
            if (rank != 0)
                continue;
            double msg = (double)floats * sizeof(float), alg = msg / worst / 1e9;
            double bus = alg * bus_factor(op, P);
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "bench", "collectives");
                cJSON_AddStringToObject(o, "op", op_names[op]);
                cJSON_AddNumberToObject(o, "ranks", P);
                cJSON_AddNumberToObject(o, "bytes", msg);
                cJSON_AddNumberToObject(o, "time_us", worst * 1e6);
                cJSON_AddNumberToObject(o, "algbw_gbs", alg);
                cJSON_AddNumberToObject(o, "busbw_gbs", bus);
                cJSON_AddNumberToObject(o, "repeats", R);
                bench_emit_json(o);
            } else
                printf("%-15s %12.0f %10.1f %12.3f %12.3f\n", op_names[op], msg, worst * 1e6, alg,
                       bus);
        }
    free(x), free(y), free(t);
    MPI_Finalize();
    cli_args_free(&a);
    return 0;
}
