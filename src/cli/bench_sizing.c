/* muon bench sizing: GFLOP/s of the products a model of width w does, against
 * w (figure 6 of issue 4), so a user can pick a width the hardware runs
 * well: the layers' GEMMs on a batch of `tokens` rows (x W^T with W w x w,
 * and with W 4w x w, the MLP's; through oneDNN, as the trainer runs its
 * forward products), and the optimizer's orthogonalization of a
 * w x w and a w x 4w matrix (default config: auto method, polar-express, 5
 * steps). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

/* 256..1024 in steps of 64, the multiples of 96 in between (widths with a
 * factor 3, which BLAS blocks differently from powers of two), then 1536 and
 * 2048: every multiple of 32 would double the run for little more to see.
 * About 1.5 min at 2 threads with 3 repeats (docs/bench.md). */
static const long default_widths[] = {256, 288, 320, 384, 448, 480, 512, 576, 640, 672,
                                      704, 768, 832, 864, 896, 960, 1024, 1536, 2048};
#define N_DEFAULT_WIDTHS ((int)(sizeof default_widths / sizeof default_widths[0]))

static const cli_flag sizing_flags[] = {
    {"widths", "W", CLI_VALUE | CLI_REPEAT, "model widths, a list (default 256..1024 in steps of 64, 288,480,672,864, 1536,2048)"},
    {"tokens", "N", CLI_VALUE, "rows of the GEMMs, batch x context (default 2048)"},
    {"threads", "N", CLI_VALUE | CLI_REPEAT,
     "threads, repeatable or a list 1,2 (default: OpenBLAS's setting)"},
    {"repeats", "R", CLI_VALUE, "timed runs of each product, >= 1 (default 3)"},
    {"json", NULL, CLI_SWITCH, "one JSON object per line instead of text"},
};
#define N_SIZING_FLAGS ((int)(sizeof sizing_flags / sizeof sizing_flags[0]))

static void sizing_usage(FILE *f)
{
    fprintf(f,
            "usage: muon bench sizing [--widths W[,W...]] [--tokens N] [--threads N[,N...]]\n"
            "                         [--repeats R] [--json]\n\n"
            "For each width w, the median (after one warm-up) time and GFLOP/s of:\n"
            "  gemm      N x w times (w x w)^T   (attention output; 2 N w^2 flops)\n"
            "  mlp_gemm  N x w times (4w x w)^T  (MLP input; 8 N w^2 flops)\n"
            "  ortho_sq  orthogonalizing w x w   (muon_ortho_flops, default config)\n"
            "  ortho_rect orthogonalizing w x 4w\n"
            "Default widths: 256..1024 step 64, the multiples of 96 between, 1536, 2048.\n\n"
            "flags:\n");
    cli_print_flags(f, sizing_flags, N_SIZING_FLAGS);
}

typedef struct {
    muon_ortho_config cfg;
    const float *g;
    float *o;
    long rows, cols;
    void *work;
    size_t work_bytes;
} ortho_ctx;

static int run_ortho(void *ctx)
{
    const ortho_ctx *c = ctx;
    muon_status s =
        muon_orthogonalize(&c->cfg, c->g, c->o, c->rows, c->cols, c->work, c->work_bytes);
    if (s != MUON_OK) {
        fprintf(stderr, "muon bench sizing: %ld x %ld: %s\n", c->rows, c->cols,
                muon_strerror(s));
        return 1;
    }
    return 0;
}

static int ortho_time(long rows, long cols, int repeats, double *ms, double *gflops)
{
    ortho_ctx c;
    memset(&c, 0, sizeof c);
    c.cfg = muon_ortho_config_default();
    c.rows = rows;
    c.cols = cols;
    size_t n = (size_t)rows * (size_t)cols;
    float *g = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * n);
    int rc = muon_ortho_workspace_size(&c.cfg, rows, cols, &c.work_bytes) != MUON_OK;
    c.work = rc ? NULL : malloc(c.work_bytes ? c.work_bytes : 1);
    if (!g || !o || !c.work) {
        fprintf(stderr, "muon bench sizing: out of memory for %ld x %ld\n", rows, cols);
        rc = 1;
    } else {
        bench_fill_normal(g, n, 42, 1.0);
        c.g = g;
        c.o = o;
        rc = bench_time("muon bench sizing", run_ortho, &c, 1, repeats, ms);
        if (!rc)
            *gflops = muon_ortho_flops(&c.cfg, rows, cols) / (*ms * 1e6);
    }
    free(c.work);
    free(g);
    free(o);
    return rc;
}

typedef struct {
    double gemm_ms, mlp_ms, sq_ms, rect_ms;
    double gemm_gf, mlp_gf, sq_gf, rect_gf;
} sizing_result;

static int measure(long w, long tokens, int repeats, sizing_result *r)
{
    const char *prog = "muon bench sizing";
    int rc = bench_gemm_time(prog, BENCH_ONEDNN, tokens, w, w, 1, 1, repeats, &r->gemm_ms);
    if (!rc)
        rc = bench_gemm_time(prog, BENCH_ONEDNN, tokens, 4 * w, w, 1, 1, repeats,
                             &r->mlp_ms);
    if (!rc)
        rc = ortho_time(w, w, repeats, &r->sq_ms, &r->sq_gf);
    if (!rc)
        rc = ortho_time(w, 4 * w, repeats, &r->rect_ms, &r->rect_gf);
    if (!rc) {
        r->gemm_gf = 2.0 * (double)tokens * (double)w * (double)w / (r->gemm_ms * 1e6);
        r->mlp_gf = 8.0 * (double)tokens * (double)w * (double)w / (r->mlp_ms * 1e6);
    }
    return rc;
}

static int report(long w, long tokens, int threads, int repeats, const sizing_result *r,
                  int json)
{
    if (!json) {
        printf("width %5ld  threads %d:  GFLOP/s  gemm %6.1f  mlp_gemm %6.1f  ortho %ldx%ld"
               " %6.1f  ortho %ldx%ld %6.1f\n",
               w, threads, r->gemm_gf, r->mlp_gf, w, w, r->sq_gf, w, 4 * w, r->rect_gf);
        fflush(stdout);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "sizing");
    cJSON_AddNumberToObject(o, "width", (double)w);
    cJSON_AddNumberToObject(o, "tokens", (double)tokens);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "gemm_ms", r->gemm_ms);
    cJSON_AddNumberToObject(o, "gemm_gflops", r->gemm_gf);
    cJSON_AddNumberToObject(o, "mlp_gemm_ms", r->mlp_ms);
    cJSON_AddNumberToObject(o, "mlp_gemm_gflops", r->mlp_gf);
    cJSON_AddNumberToObject(o, "ortho_sq_ms", r->sq_ms);
    cJSON_AddNumberToObject(o, "ortho_sq_gflops", r->sq_gf);
    cJSON_AddNumberToObject(o, "ortho_rect_ms", r->rect_ms);
    cJSON_AddNumberToObject(o, "ortho_rect_gflops", r->rect_gf);
    cJSON_AddNumberToObject(o, "repeats", repeats);
    return bench_emit_json(o);
}

int cli_bench_sizing(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench sizing", sizing_flags, N_SIZING_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        sizing_usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    long *widths = NULL, tokens = 2048;
    int nwidths = 0, repeats = 3, *threads = NULL, nthreads = 0;
    rc = bench_long_list(&a, "widths", 1, 16384, default_widths, N_DEFAULT_WIDTHS, &widths,
                         &nwidths);
    if (!rc)
        rc = cli_get_long(&a, "tokens", 2048, 1, 1L << 20, &tokens);
    if (!rc)
        rc = cli_get_int(&a, "repeats", 3, 1, 100000, &repeats);
    if (!rc)
        rc = bench_thread_list(&a, &threads, &nthreads);
    const int json = cli_count(&a, "json") > 0;
    const int old_threads = muon_get_blas_threads();
    for (int t = 0; !rc && t < nthreads; t++)
        for (int i = 0; !rc && i < nwidths; i++) {
            sizing_result r;
            bench_set_threads(threads[t]);
            rc = measure(widths[i], tokens, repeats, &r);
            if (!rc)
                rc = report(widths[i], tokens, threads[t], repeats, &r, json);
        }
    muon_set_blas_threads(old_threads);
    free(widths);
    free(threads);
    cli_args_free(&a);
    return rc;
}
