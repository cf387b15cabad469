/* `muon bench` sub-benchmarks and the helpers they share (docs/bench.md).
 *
 * Each sub-bench is `int cli_bench_NAME(int argc, char **argv)` with argv[0]
 * its name, listed in cmd_bench.c's table, returning 0 / 1 / 2 like every
 * command. With --json each prints one JSON object per line, every object
 * carrying "bench": NAME, so the lines of several benches can be
 * concatenated and told apart. */
#ifndef MUON_CLI_BENCH_H
#define MUON_CLI_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "cli/args.h"
#include "muon.h"

int cli_bench_ortho(int argc, char **argv);  /* bench_ortho.c */
int cli_bench_step(int argc, char **argv);   /* bench_step.c */
int cli_bench_train(int argc, char **argv);  /* bench_train.c */
int cli_bench_sgemm(int argc, char **argv);  /* bench_sgemm.c */
int cli_bench_sizing(int argc, char **argv); /* bench_sizing.c */
int cli_bench_backend(int argc, char **argv); /* bench_backend.c */
int cli_bench_dist(int argc, char **argv);    /* bench_dist.c */
int cli_bench_collectives(int argc, char **argv); /* bench_collectives_mpi.c (or _nompi) */

/* ------------------------------------------------------------- helpers */

/* Monotonic wall clock in milliseconds. */
double bench_now_ms(void);

/* Standard normal values from a splitmix64 stream seeded with seed (Box-
 * Muller), times scale. The sequence does not depend on the thread count:
 * the array is cut into fixed chunks, each with its own derived seed, and
 * the chunks are filled in parallel (the inputs of the big benches are
 * hundreds of millions of floats). */
void bench_fill_normal(float *x, size_t n, uint64_t seed, double scale);

/* Uniform values with mean 0 and standard deviation scale, chunked like
 * bench_fill_normal but about 20x cheaper: for the big inputs whose values
 * do not change the cost (bench step's hundreds of millions of floats). */
void bench_fill_uniform(float *x, size_t n, uint64_t seed, double scale);

/* Median of n > 0 values (sorts t in place). */
double bench_median(double *t, int n);

/* A timed operation: returns 0, or nonzero after printing a message. */
typedef int (*bench_fn)(void *ctx);
/* Runs fn `warmup` times untimed, then `repeats` (>= 1) times timed, and
 * stores the median in *ms. Returns 0, or fn's nonzero code (or 1 when out
 * of memory, after a message naming prog). */
int bench_time(const char *prog, bench_fn fn, void *ctx, int warmup, int repeats, double *ms);

/* --threads as a list (each in 1..1024). Default when absent: OpenBLAS's
 * current thread count. *threads is malloc'd. Returns 0, 1 (no memory, a
 * message printed) or 2 (usage message printed). */
int bench_thread_list(cli_args *a, int **threads, int *n);

/* A list flag of integers in [min, max]; def (n_def values) when absent.
 * *out is malloc'd. Returns 0, 1 or 2 like bench_thread_list. */
int bench_long_list(cli_args *a, const char *flag, long min, long max, const long *def,
                    int n_def, long **out, int *n);

/* "RxC" with both sizes in 1..2^20 and the product <= 2^31; 0 or 2. */
int bench_parse_shape(const cli_args *a, const char *flag, const char *text, long *rows,
                      long *cols);

/* BLAS and OpenMP thread counts of the process, both set to n. */
void bench_set_threads(int n);

/* Peak resident set size of this program so far, in bytes (VmHWM, else
 * getrusage's ru_maxrss): never decreasing, and it includes the binary,
 * the libraries and BLAS's buffers. 0 when unavailable. */
size_t bench_peak_rss_bytes(void);

/* Print o (NULL allowed: cJSON ran out of memory) as one unformatted JSON
 * line on stdout, flush, and delete it. Returns 0, or 1 after a message. */
int bench_emit_json(cJSON *o);

/* The two SGEMMs the project calls: OpenBLAS's cblas_sgemm, and oneDNN's
 * dnnl_sgemm (the linear layers, Gram NS's general products). */
typedef enum { BENCH_OPENBLAS, BENCH_ONEDNN } bench_lib;
const char *bench_lib_name(bench_lib lib);

/* Median ms of lib's SGEMM C (m x n) = A (m x k) op(B) on N(0, 1) inputs,
 * op(B) = B^T (B n x k, the layers' x W^T) when trans_b, else B (k x n).
 * Threads as set by the caller (bench_set_threads sets both libraries').
 * Returns 0 or 1 after a message. */
int bench_gemm_time(const char *prog, bench_lib lib, long m, long n, long k, int trans_b,
                    int warmup, int repeats, double *ms);

/* --------------------------------------------------- model shape lists */

typedef struct {
    char name[48];
    int ndim;      /* 1 or 2 */
    long shape[2]; /* PyTorch layout: (out_features, in_features) */
    muon_role role;
} bench_tensor;

/* The trainable tensors of a named model, in PyTorch's parameter order:
 * "gpt2-small" (124M, GPT-2 small with the LM head tied to wte, the same list
 * as bench/gpt2_small_shapes.json) or "gpt2-tiny" (the same structure at
 * width 64, 2 layers, vocabulary 512, context 128: for tests). Returns a
 * malloc'd array and its length, or NULL with *n = 0 for an unknown name
 * or no memory (tell them apart with bench_model_known). */
bench_tensor *bench_model_shapes(const char *model, int *n);
int bench_model_known(const char *model);
/* "gpt2-small, gpt2-tiny": for messages. */
const char *bench_model_names(void);

/* ------------------------------------------- distributed (bench dist) */

/* Shapes for the plan (bench_dist_models.c): "gpt" (this project's model
 * with vocab, dim, layers), "llama2-7b", "moonlight-16b-a3b", or a name of
 * bench_model_shapes. NULL for an unknown name or no memory. */
bench_tensor *bench_dist_shapes(const char *model, long vocab, long dim, long layers, int *n);
const char *bench_dist_model_names(void);

/* One mode measured on this run's ranks (bench_dist_mpi.c): rank 0's
 * figures per step, median step of `repeats` after one warm-up. */
typedef struct {
    int ranks;
    double step_ms, comm_ms;
    size_t comm_bytes, state_bytes;
} bench_dist_measured;
/* Start MPI if this build has it: 0 with rank and size, -1 without MPI. */
int bench_dist_begin(int *rank, int *size);
void bench_dist_end(void);
/* 0, or 1 after a message. */
int bench_dist_measure(const bench_tensor *t, int nt, const char *mode, int bf16, int overlap,
                       int repeats, bench_dist_measured *out);

#endif
