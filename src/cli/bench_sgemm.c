/* muon bench sgemm: the machine's own single-precision GEMM rate through the
 * two libraries the project uses (figure 4 of issue 4), on square products
 * and on the two products Newton-Schulz does per step for an m x n matrix
 * (m <= n): the Gram matrix X X^T (m x m, inner size n) and B X (m x n,
 * inner size m). The orthogonalization's GFLOP/s divided by the faster
 * library's rate is the fraction of the hardware it reaches. Both are
 * timed because they need not agree: OpenBLAS runs the kernels of the core
 * it detects or is told (OPENBLAS_CORETYPE), oneDNN those of the widest
 * instruction set it finds, and on an AMD EPYC (Zen 5) with
 * OPENBLAS_CORETYPE=Haswell oneDNN ran 1.9x faster. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <dnnl.h>
#include <omp.h>

#include "cli/bench.h"
#include "cli/cli.h"

typedef struct {
    bench_lib lib;
    long m, n, k;
    int trans_b;
    const float *a, *b;
    float *c;
} gemm_ctx;

const char *bench_lib_name(bench_lib lib)
{
    return lib == BENCH_ONEDNN ? "onednn" : "openblas";
}

static int run_gemm(void *ctx)
{
    const gemm_ctx *g = ctx;
    /* B is n x k when transposed (the layers' x W^T), else k x n */
    const long ldb = g->trans_b ? g->k : g->n;
    if (g->lib == BENCH_ONEDNN) {
        if (dnnl_sgemm('N', g->trans_b ? 'T' : 'N', g->m, g->n, g->k, 1.0f, g->a, g->k, g->b,
                       ldb, 0.0f, g->c, g->n) != dnnl_success) {
            fprintf(stderr, "muon bench: oneDNN's sgemm failed on %ld x %ld x %ld\n", g->m,
                    g->n, g->k);
            return 1;
        }
        return 0;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans,
                (int)g->m, (int)g->n, (int)g->k, 1.0f, g->a, (int)g->k, g->b, (int)ldb, 0.0f,
                g->c, (int)g->n);
    return 0;
}

int bench_gemm_time(const char *prog, bench_lib lib, long m, long n, long k, int trans_b,
                    int warmup, int repeats, double *ms)
{
    size_t na = (size_t)m * (size_t)k, nb = (size_t)k * (size_t)n, nc = (size_t)m * (size_t)n;
    gemm_ctx g = {lib, m, n, k, trans_b, NULL, NULL, NULL};
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb),
          *c = malloc(sizeof(float) * nc);
    int rc = 0;
    if (!a || !b || !c) {
        fprintf(stderr, "%s: out of memory for a %ld x %ld x %ld product\n", prog, m, n, k);
        rc = 1;
    } else {
        bench_fill_normal(a, na, 7, 1.0);
        bench_fill_normal(b, nb, 8, 1.0);
        g.a = a;
        g.b = b;
        g.c = c;
        rc = bench_time(prog, run_gemm, &g, warmup, repeats, ms);
    }
    free(a);
    free(b);
    free(c);
    return rc;
}

static const cli_flag sgemm_flags[] = {
    {"sizes", "N", CLI_VALUE | CLI_REPEAT, "square sizes, a list (default 256,512,1024,2048)"},
    {"shape", "RxC", CLI_VALUE | CLI_REPEAT,
     "NS products of an RxC matrix, a list (default 768x3072,1024x4096)"},
    {"threads", "N", CLI_VALUE | CLI_REPEAT,
     "BLAS threads, repeatable or a list 1,2 (default: OpenBLAS's setting)"},
    {"lib", "L", CLI_VALUE | CLI_REPEAT, "openblas | onednn, a list (default both)"},
    {"repeats", "R", CLI_VALUE, "timed runs, >= 1 (default 5)"},
    {"warmup", "W", CLI_VALUE, "untimed runs first, >= 0 (default 1)"},
    {"json", NULL, CLI_SWITCH, "one JSON object per line instead of text"},
};
#define N_SGEMM_FLAGS ((int)(sizeof sgemm_flags / sizeof sgemm_flags[0]))

static void sgemm_usage(FILE *f)
{
    fprintf(f,
            "usage: muon bench sgemm [--sizes N[,N...]] [--shape RxC[,...]] [--threads N[,N...]]\n"
            "                        [--lib L[,L...]] [--repeats R] [--json]\n\n"
            "GFLOP/s = 2 m n k / median time of OpenBLAS's cblas_sgemm and oneDNN's\n"
            "dnnl_sgemm (row-major, beta 0) for:\n"
            "  square  n x n times n x n, for each --sizes value;\n"
            "  gram    X X^T of an m x n matrix (m = min(R, C), n = max): m x m, inner n;\n"
            "  apply   B X, B m x m: m x n, inner m; for each --shape.\n"
            "Giving --sizes or --shape runs only what is given; neither runs both defaults.\n\n"
            "flags:\n");
    cli_print_flags(f, sgemm_flags, N_SGEMM_FLAGS);
}

typedef struct {
    const char *kind;
    long m, n, k;
    int trans_b;
} gemm_case;

static int report(const gemm_case *g, bench_lib lib, int threads, double ms, int repeats,
                  int json)
{
    double gflops = 2.0 * (double)g->m * (double)g->n * (double)g->k / (ms * 1e6);
    if (!json) {
        printf("sgemm %-6s m %5ld n %5ld k %5ld  %-8s threads %d:  %9.3f ms (median of %d)"
               "  %7.1f GFLOP/s\n",
               g->kind, g->m, g->n, g->k, bench_lib_name(lib), threads, ms, repeats, gflops);
        fflush(stdout);
        return 0;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "bench", "sgemm");
    cJSON_AddStringToObject(o, "kind", g->kind);
    cJSON_AddStringToObject(o, "lib", bench_lib_name(lib));
    cJSON_AddNumberToObject(o, "m", (double)g->m);
    cJSON_AddNumberToObject(o, "n", (double)g->n);
    cJSON_AddNumberToObject(o, "k", (double)g->k);
    cJSON_AddNumberToObject(o, "threads", threads);
    cJSON_AddNumberToObject(o, "ms", ms);
    cJSON_AddNumberToObject(o, "gflops", gflops);
    cJSON_AddNumberToObject(o, "repeats", repeats);
    return bench_emit_json(o);
}

/* The cases to run, from --sizes and --shape. */
static int collect(cli_args *a, gemm_case **out, int *n)
{
    static const long def_sizes[] = {256, 512, 1024, 2048};
    static const char *def_shapes[] = {"768x3072", "1024x4096"};
    const int given = cli_count(a, "sizes") + cli_count(a, "shape") > 0;
    long *sizes = NULL;
    int nsizes = 0, nshapes = 0;
    const char **shapes = NULL;
    int rc = 0;
    if (!given || cli_count(a, "sizes"))
        rc = bench_long_list(a, "sizes", 1, 1L << 15, def_sizes, 4, &sizes, &nsizes);
    if (!rc && cli_get_list(a, "shape", &shapes, &nshapes)) {
        fprintf(stderr, "%s: out of memory\n", a->prog);
        rc = 1;
    }
    if (!rc && !given) {
        shapes = def_shapes;
        nshapes = 2;
    }
    gemm_case *c = rc ? NULL : malloc(sizeof(gemm_case) * (size_t)(nsizes + 2 * nshapes + 1));
    if (!rc && !c) {
        fprintf(stderr, "%s: out of memory\n", a->prog);
        rc = 1;
    }
    int k = 0;
    for (int i = 0; !rc && i < nsizes; i++)
        c[k++] = (gemm_case){"square", sizes[i], sizes[i], sizes[i], 0};
    for (int i = 0; !rc && i < nshapes; i++) {
        long r, cc;
        rc = bench_parse_shape(a, "shape", shapes[i], &r, &cc);
        long m = r < cc ? r : cc, w = r < cc ? cc : r;
        if (!rc) {
            c[k++] = (gemm_case){"gram", m, m, w, 1};
            c[k++] = (gemm_case){"apply", m, w, m, 0};
        }
    }
    free(sizes);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    *n = k;
    return 0;
}

/* --lib as a list of distinct library names; both when absent (the
 * strings belong to a). */
static int lib_list(cli_args *a, bench_lib libs[2], int *n)
{
    const char **txt = NULL;
    int nt = 0;
    if (cli_get_list(a, "lib", &txt, &nt)) {
        fprintf(stderr, "%s: out of memory\n", a->prog);
        return 1;
    }
    if (nt == 0)
        return 0;
    int k = 0, rc = 0;
    for (int i = 0; i < nt && !rc; i++) {
        bench_lib l = BENCH_OPENBLAS;
        if (!strcmp(txt[i], "onednn"))
            l = BENCH_ONEDNN;
        else if (strcmp(txt[i], "openblas"))
            rc = cli_usage_error(a, "--lib must be one of openblas, onednn (got '%s')", txt[i]);
        for (int j = 0; j < k && !rc; j++)
            if (libs[j] == l)
                rc = cli_usage_error(a, "--lib names '%s' twice", txt[i]);
        if (!rc)
            libs[k++] = l;
    }
    if (!rc)
        *n = k;
    return rc;
}

int cli_bench_sgemm(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench sgemm", sgemm_flags, N_SGEMM_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        sgemm_usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    int repeats = 5, warmup = 1, *threads = NULL, nthreads = 0, ncases = 0;
    gemm_case *cases = NULL;
    rc = cli_get_int(&a, "repeats", 5, 1, 100000, &repeats);
    if (!rc)
        rc = cli_get_int(&a, "warmup", 1, 0, 100000, &warmup);
    if (!rc)
        rc = bench_thread_list(&a, &threads, &nthreads);
    if (!rc)
        rc = collect(&a, &cases, &ncases);
    bench_lib libs[2] = {BENCH_OPENBLAS, BENCH_ONEDNN};
    int nlibs = 2;
    if (!rc)
        rc = lib_list(&a, libs, &nlibs);
    const int json = cli_count(&a, "json") > 0;
    const int old_threads = muon_get_blas_threads(), old_omp = omp_get_max_threads();
    for (int i = 0; !rc && i < ncases; i++)
        for (int l = 0; !rc && l < nlibs; l++)
            for (int t = 0; !rc && t < nthreads; t++) {
                double ms = 0;
                bench_set_threads(threads[t]);
                rc = bench_gemm_time(a.prog, libs[l], cases[i].m, cases[i].n, cases[i].k,
                                     cases[i].trans_b, warmup, repeats, &ms);
                if (!rc)
                    rc = report(&cases[i], libs[l], threads[t], ms, repeats, json);
            }
    muon_set_blas_threads(old_threads);
    omp_set_num_threads(old_omp);
    free(cases);
    free(threads);
    cli_args_free(&a);
    return rc;
}
