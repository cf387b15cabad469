/* muon bench backend: the backend table chosen for this machine (which
 * kernel runs each kind of product, the panels, thresholds and thread
 * split) and the machine it was chosen from; nothing is timed. */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

static const cli_flag backend_flags[] = {
    {"kind", "K", CLI_VALUE, "backend kind: cpu | cpu-ref (default cpu)"},
    {"threads", "N", CLI_VALUE, "threads of the context (default: the number of cores)"},
    {"json", NULL, CLI_SWITCH, "one JSON object instead of text"},
};
#define N_BACKEND_FLAGS ((int)(sizeof backend_flags / sizeof backend_flags[0]))

static void backend_usage(FILE *f)
{
    fprintf(f, "usage: muon bench backend [--kind cpu|cpu-ref] [--threads N] [--json]\n\n"
               "Prints the backend table chosen for this machine: the kernel of each kind of\n"
               "product, the SYRK panels, the thresholds and the thread split, then what the\n"
               "machine reported (docs/backend.md).\n\n"
               "flags:\n");
    cli_print_flags(f, backend_flags, N_BACKEND_FLAGS);
}

/* Shapes whose AUTO resolution the table shows: GPT-2 small's matrices,
 * a larger wide one and one below the bf16 threshold. */
static const long auto_shapes[][2] = {{768, 768}, {768, 3072}, {3072, 768}, {1024, 4096},
                                      {128, 128}};
#define N_AUTO_SHAPES ((int)(sizeof auto_shapes / sizeof auto_shapes[0]))

static muon_ortho_config auto_pick(const muon_backend *be, int i)
{
    muon_ortho_config d = muon_ortho_config_default(), c = d;
    if (muon_ortho_resolve(be, &d, auto_shapes[i][0], auto_shapes[i][1], &c) != MUON_OK)
        c = d;
    return c;
}

static void print_text(const muon_backend *be, const muon_backend_info *b)
{
    printf("backend %s, %d threads\n", muon_backend_kind_name(b->kind), b->threads);
    for (int p = 0; p < MUON_PRODUCT_COUNT; p++)
        printf("  %-22s %s\n", muon_product_name((muon_product)p),
               muon_kernel_name(b->kernel[p]));
    printf("  %-22s %ld\n", "wgrad_min_rows", b->wgrad_min_rows);
    printf("  %-22s %d (m >= %ld)\n", "syrk_panels", b->syrk_panels, b->syrk_panel_min);
    printf("  %-22s %s (%d panels per thread)\n", "split", b->split ? "on" : "off",
           b->split_panels_per_thread);
    printf("  %-22s %.0f\n", "one_thread_flops", b->one_thread_flops);
    printf("  %-22s %ld\n", "rows_per_thread", b->rows_per_thread);
    printf("  %-22s %.0f\n", "bf16_one_thread_flops", b->bf16_one_thread_flops);
    printf("  %-22s %.1f (0: never mixed; m >= %ld)\n", "auto bf16_speedup", b->bf16_speedup,
           b->auto_mixed_min);
    printf("precision auto\n");
    printf("  %-22s %s\n", "model layers",
           muon_precision_name(muon_backend_layer_precision(be, MUON_PRECISION_AUTO)));
    for (int i = 0; i < N_AUTO_SHAPES; i++) {
        muon_ortho_config c = auto_pick(be, i);
        char shape[48];
        snprintf(shape, sizeof shape, "ortho %ldx%ld", auto_shapes[i][0], auto_shapes[i][1]);
        printf("  %-22s %s, %s\n", shape, muon_ortho_method_name(c.method),
               muon_precision_name(c.precision));
    }
    printf("machine\n");
    printf("  %-22s %d\n", "cores", b->cores);
    printf("  %-22s avx2 %d, avx512 %d, avx512_bf16 %d, amx %d\n", "cpu", b->avx2, b->avx512,
           b->avx512_bf16, b->amx);
    printf("  %-22s %s (AVX-512 kernels: %s)\n", "openblas_core", b->openblas_core,
           b->openblas_avx512 ? "yes" : "no");
    printf("  %-22s %s\n", "onednn_isa", b->onednn_isa);
    printf("  %-22s %s\n", "bf16_native", b->bf16_native ? "yes" : "no");
}

static cJSON *auto_json(const muon_backend *be, const muon_backend_info *b)
{
    cJSON *o = cJSON_CreateObject(), *shapes = cJSON_CreateArray();
    if (!o || !shapes) {
        cJSON_Delete(o);
        cJSON_Delete(shapes);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "bf16_speedup", b->bf16_speedup);
    cJSON_AddNumberToObject(o, "mixed_min", (double)b->auto_mixed_min);
    cJSON_AddStringToObject(o, "layers",
                            muon_precision_name(muon_backend_layer_precision(be, MUON_PRECISION_AUTO)));
    for (int i = 0; i < N_AUTO_SHAPES; i++) {
        muon_ortho_config c = auto_pick(be, i);
        cJSON *e = cJSON_CreateObject();
        if (!e)
            continue;
        cJSON_AddNumberToObject(e, "rows", (double)auto_shapes[i][0]);
        cJSON_AddNumberToObject(e, "cols", (double)auto_shapes[i][1]);
        cJSON_AddStringToObject(e, "method", muon_ortho_method_name(c.method));
        cJSON_AddStringToObject(e, "precision", muon_precision_name(c.precision));
        cJSON_AddItemToArray(shapes, e);
    }
    cJSON_AddItemToObject(o, "ortho", shapes);
    return o;
}

static cJSON *to_json(const muon_backend *be, const muon_backend_info *b)
{
    cJSON *o = cJSON_CreateObject(), *prod = cJSON_CreateObject(), *m = cJSON_CreateObject();
    cJSON *au = auto_json(be, b);
    if (!o || !prod || !m || !au) {
        cJSON_Delete(o);
        cJSON_Delete(prod);
        cJSON_Delete(m);
        cJSON_Delete(au);
        return NULL;
    }
    cJSON_AddStringToObject(o, "bench", "backend");
    cJSON_AddStringToObject(o, "kind", muon_backend_kind_name(b->kind));
    cJSON_AddNumberToObject(o, "threads", b->threads);
    for (int p = 0; p < MUON_PRODUCT_COUNT; p++)
        cJSON_AddStringToObject(prod, muon_product_name((muon_product)p),
                                muon_kernel_name(b->kernel[p]));
    cJSON_AddItemToObject(o, "products", prod);
    cJSON_AddNumberToObject(o, "wgrad_min_rows", (double)b->wgrad_min_rows);
    cJSON_AddNumberToObject(o, "syrk_panels", b->syrk_panels);
    cJSON_AddNumberToObject(o, "syrk_panel_min", (double)b->syrk_panel_min);
    cJSON_AddBoolToObject(o, "split", b->split);
    cJSON_AddNumberToObject(o, "split_panels_per_thread", b->split_panels_per_thread);
    cJSON_AddNumberToObject(o, "one_thread_flops", b->one_thread_flops);
    cJSON_AddNumberToObject(o, "rows_per_thread", (double)b->rows_per_thread);
    cJSON_AddNumberToObject(o, "bf16_one_thread_flops", b->bf16_one_thread_flops);
    cJSON_AddNumberToObject(m, "cores", b->cores);
    cJSON_AddBoolToObject(m, "avx2", b->avx2);
    cJSON_AddBoolToObject(m, "avx512", b->avx512);
    cJSON_AddBoolToObject(m, "avx512_bf16", b->avx512_bf16);
    cJSON_AddBoolToObject(m, "amx", b->amx);
    cJSON_AddStringToObject(m, "openblas_core", b->openblas_core);
    cJSON_AddBoolToObject(m, "openblas_avx512", b->openblas_avx512);
    cJSON_AddStringToObject(m, "onednn_isa", b->onednn_isa);
    cJSON_AddBoolToObject(m, "bf16_native", b->bf16_native);
    cJSON_AddItemToObject(o, "precision_auto", au);
    cJSON_AddItemToObject(o, "machine", m);
    return o;
}

int cli_bench_backend(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon bench backend", backend_flags, N_BACKEND_FLAGS, 0, argc,
                            argv);
    if (rc)
        return rc;
    if (a.help) {
        backend_usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    muon_backend_kind kind = MUON_BACKEND_CPU;
    const char *kname = cli_get_str(&a, "kind", "cpu");
    int threads = 0;
    if (muon_backend_kind_parse(kname, &kind) != MUON_OK)
        rc = cli_usage_error(&a, "--kind must be cpu or cpu-ref (got '%s')", kname);
    if (!rc)
        rc = cli_get_int(&a, "threads", 0, 0, 1024, &threads);
    muon_backend *be = NULL;
    muon_backend_info info;
    if (!rc && (muon_backend_create(kind, threads, &be) != MUON_OK ||
                muon_backend_info_get(be, &info) != MUON_OK)) {
        fprintf(stderr, "%s: cannot create the backend context\n", a.prog);
        rc = 1;
    }
    if (!rc) {
        if (cli_count(&a, "json") > 0)
            rc = bench_emit_json(to_json(be, &info));
        else
            print_text(be, &info);
    }
    muon_backend_free(be);
    cli_args_free(&a);
    return rc;
}
