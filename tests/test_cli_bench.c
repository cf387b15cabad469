/* `muon bench step|train|sgemm|sizing` end to end on tiny sizes (the built
 * command run as a process, its JSON lines parsed with cJSON), the GPT-2
 * shape lists against an independent count and the PyTorch peer's list,
 * and the bench helpers. No timing assertions: only that the numbers are
 * there, positive and consistent with each other. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <omp.h>

#include "cli/bench.h"
#include "harness.h"
#include "nn/gpt.h"
#include "testutil.h"

static const char *muon_bin(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/muon", tu_build_dir());
    return path;
}

static int have_muon(void)
{
    FILE *f = fopen(muon_bin(), "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Run "muon ARGS" with stdout only in *out (stderr goes to *err when not
 * NULL); returns the exit code. */
static int run_muon(const char *args, char **out, char **err)
{
    static const char *dir;
    if (!dir)
        dir = tu_tmpdir();
    char cmd[4096], errpath[600];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>'%s'", muon_bin(), args, errpath);
    int rc = tu_run(cmd, out);
    size_t len;
    char *e = tu_read_file(errpath, &len);
    remove(errpath);
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

/* Every line of text parsed as a JSON object; NULL entries for lines that
 * are not. Returns the count (at most cap). */
static int parse_lines(const char *text, cJSON **objs, int cap)
{
    int n = 0;
    for (const char *p = text; p && *p && n < cap;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = malloc(len + 1);
        memcpy(line, p, len);
        line[len] = 0;
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            printf("    not a JSON object: %s\n", line);
            cJSON_Delete(o);
            o = NULL;
        }
        objs[n++] = o;
        free(line);
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

static void free_lines(cJSON **objs, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(objs[i]);
}

/* 1 when o has every key, numbers finite and >= 0, "bench" == bench. */
static int has_keys(const cJSON *o, const char *bench, const char *const *num, int nnum,
                    const char *const *str, int nstr)
{
    if (!o)
        return 0;
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "bench");
    if (!cJSON_IsString(b) || strcmp(b->valuestring, bench)) {
        printf("    \"bench\" is not \"%s\"\n", bench);
        return 0;
    }
    for (int i = 0; i < nnum; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, num[i]);
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || !isfinite(v->valuedouble)) {
            printf("    key \"%s\": missing, not a number or negative\n", num[i]);
            return 0;
        }
    }
    for (int i = 0; i < nstr; i++)
        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, str[i]))) {
            printf("    key \"%s\": missing or not a string\n", str[i]);
            return 0;
        }
    return 1;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static size_t numel(const bench_tensor *t) { return (size_t)t->shape[0] * (t->ndim == 2 ? (size_t)t->shape[1] : 1); }

/* ------------------------------------------------------- shape lists */

TEST(bench_gpt2_small_shapes_count)
{
    int n = 0;
    bench_tensor *t = bench_model_shapes("gpt2-small", &n);
    ASSERT(t != NULL);
    ASSERT_EQ_INT(n, 2 + 12 * 12 + 2);
    size_t total = 0, matrix = 0;
    int n_matrix = 0;
    for (int i = 0; i < n; i++) {
        total += numel(&t[i]);
        if (t[i].role == MUON_ROLE_MATRIX) {
            matrix += numel(&t[i]);
            n_matrix++;
        }
        /* 1-D tensors are vectors (AdamW); every matrix is 2-D */
        ASSERT(t[i].ndim == 2 || t[i].role == MUON_ROLE_VECTOR);
    }
    /* GPT-2 small with the head tied to wte: V d + C d + L (12 d^2 + 13 d) + 2 d */
    const size_t V = 50257, C = 1024, d = 768, L = 12;
    ASSERT_EQ_INT(total, V * d + C * d + L * (12 * d * d + 13 * d) + 2 * d);
    ASSERT_EQ_INT(total, 124439808);
    ASSERT_EQ_INT(n_matrix, 48);
    ASSERT_EQ_INT(matrix, L * 12 * d * d);
    ASSERT(!strcmp(t[0].name, "wte") && t[0].role == MUON_ROLE_EMBEDDING);
    ASSERT(!strcmp(t[1].name, "wpe") && t[1].role == MUON_ROLE_EMBEDDING);
    ASSERT(!strcmp(t[4].name, "h.0.attn.c_attn.weight") && t[4].shape[0] == 2304 &&
           t[4].shape[1] == 768);
    ASSERT(!strcmp(t[n - 1].name, "ln_f.bias"));
    free(t);

    ASSERT(bench_model_known("gpt2-tiny"));
    ASSERT(!bench_model_known("gpt2-huge"));
    ASSERT(bench_model_shapes("gpt2-huge", &n) == NULL);
    ASSERT_EQ_INT(n, 0);
}

TEST(bench_gpt2_small_shapes_match_peer_json)
{
    size_t len = 0;
    char *text = tu_read_file("bench/gpt2_small_shapes.json", &len);
    if (!text)
        SKIP("bench/gpt2_small_shapes.json not found (run from the repository root)");
    cJSON *doc = cJSON_Parse(text); /* tu_read_file terminates the text */
    free(text);
    ASSERT(doc != NULL);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "tensors");
    int n = 0;
    bench_tensor *t = bench_model_shapes("gpt2-small", &n);
    int ok = t && cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == n &&
             num(doc, "params") == 124439808.0;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(arr, i);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        ok = !strcmp(str(e, "name"), t[i].name) && !strcmp(str(e, "role"), muon_role_name(t[i].role)) &&
             cJSON_GetArraySize(shape) == t[i].ndim;
        for (int k = 0; ok && k < t[i].ndim; k++)
            ok = cJSON_GetArrayItem(shape, k)->valuedouble == (double)t[i].shape[k];
        if (!ok)
            printf("    tensor %d: C has %s (%ld, %ld) %s\n", i, t[i].name, t[i].shape[0],
                   t[i].shape[1], muon_role_name(t[i].role));
    }
    free(t);
    cJSON_Delete(doc);
    ASSERT(ok);
}

/* ------------------------------------------------------------ helpers */

TEST(bench_fill_normal_independent_of_threads)
{
    const size_t n = 300001; /* several chunks, odd length */
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    ASSERT(a && b);
    int old = omp_get_max_threads();
    omp_set_num_threads(1);
    bench_fill_normal(a, n, 99, 2.0);
    omp_set_num_threads(2);
    bench_fill_normal(b, n, 99, 2.0);
    omp_set_num_threads(old);
    ASSERT(!memcmp(a, b, sizeof(float) * n));
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s += a[i];
        s2 += (double)a[i] * a[i];
    }
    /* mean 0, variance 4: 5 sigma bounds for n = 3e5 */
    ASSERT_NEAR(s / (double)n, 0.0, 5 * 2.0 / sqrt((double)n));
    ASSERT_NEAR(s2 / (double)n, 4.0, 5 * 4.0 * sqrt(2.0 / (double)n));
    bench_fill_normal(b, n, 100, 2.0); /* another seed, other values */
    ASSERT(memcmp(a, b, sizeof(float) * n) != 0);
    free(a);
    free(b);
}

TEST(bench_fill_uniform_moments_and_range)
{
    const size_t n = 200001;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    ASSERT(a && b);
    int old = omp_get_max_threads();
    omp_set_num_threads(1);
    bench_fill_uniform(a, n, 5, 0.5);
    omp_set_num_threads(2);
    bench_fill_uniform(b, n, 5, 0.5);
    omp_set_num_threads(old);
    ASSERT(!memcmp(a, b, sizeof(float) * n));
    double s = 0, s2 = 0, lim = 0.5 * sqrt(3.0) * (1 + 1e-6);
    for (size_t i = 0; i < n; i++) {
        ASSERT(fabs(a[i]) <= lim);
        s += a[i];
        s2 += (double)a[i] * a[i];
    }
    /* mean 0, variance 0.25 (uniform: variance of x^2 is 0.8 sigma^4) */
    ASSERT_NEAR(s / (double)n, 0.0, 5 * 0.5 / sqrt((double)n));
    ASSERT_NEAR(s2 / (double)n, 0.25, 5 * 0.25 * sqrt(0.8 / (double)n));
    free(a);
    free(b);
}

TEST(bench_median_odd_even)
{
    double odd[] = {5, 1, 3}, even[] = {4, 1, 3, 2}, one[] = {7};
    ASSERT_EQ_INT(bench_median(odd, 3), 3);
    ASSERT_NEAR(bench_median(even, 4), 2.5, 0);
    ASSERT_EQ_INT(bench_median(one, 1), 7);
}

/* ------------------------------------------------------- sub-benches */

TEST(cli_bench_step_json_lines)
{
    if (!have_muon())
        SKIP("build/muon not built");
    char *out = NULL, *err = NULL;
    int rc = run_muon("bench step --model gpt2-tiny --threads 1,2 --repeats 1 --warmup 0 --json",
                      &out, &err);
    if (rc)
        printf("    %s%s", out, err);
    ASSERT_EQ_INT(rc, 0);
    cJSON *o[4] = {0};
    int n = parse_lines(out, o, 4);
    free(out);
    free(err);
    static const char *const nums[] = {"threads", "ms", "params", "muon_params", "adamw_params",
                                       "gflops", "tensors", "muon_tensors", "state_bytes"};
    static const char *const strs[] = {"model"};
    int nt = 0;
    bench_tensor *t = bench_model_shapes("gpt2-tiny", &nt);
    size_t total = 0, matrix = 0;
    for (int i = 0; t && i < nt; i++) {
        total += numel(&t[i]);
        matrix += t[i].role == MUON_ROLE_MATRIX ? numel(&t[i]) : 0;
    }
    free(t);
    int ok = n == 2;
    for (int i = 0; ok && i < n; i++) {
        ok = has_keys(o[i], "step", nums, N_OF(nums), strs, N_OF(strs)) &&
             !strcmp(str(o[i], "model"), "gpt2-tiny") && num(o[i], "threads") == i + 1 &&
             num(o[i], "params") == (double)total && num(o[i], "muon_params") == (double)matrix &&
             num(o[i], "adamw_params") == (double)(total - matrix) &&
             num(o[i], "tensors") == nt && num(o[i], "ms") > 0 && num(o[i], "gflops") > 0 &&
             /* Muon: momentum for the matrices; AdamW: two moments for the rest */
             num(o[i], "state_bytes") == 4.0 * (double)(matrix + 2 * (total - matrix));
    }
    free_lines(o, n);
    ASSERT(ok);
}

TEST(cli_bench_train_json_lines)
{
    if (!have_muon())
        SKIP("build/muon not built");
    char *out = NULL, *err = NULL;
    int rc = run_muon("bench train --dim 32 --layers 2 --heads 2 --context 16 --batch 2 "
                      "--steps 3 --warmup 1 --threads 1 --json",
                      &out, &err);
    if (rc)
        printf("    %s%s", out, err);
    ASSERT_EQ_INT(rc, 0);
    cJSON *o[4] = {0};
    int n = parse_lines(out, o, 4);
    free(out);
    free(err);
    static const char *const nums[] = {
        "tokens_per_s", "dim",      "layers",     "heads",           "context",
        "batch",        "threads",  "ms",         "fwd_ms",          "bwd_ms",
        "opt_ms",       "params",   "param_bytes", "grad_bytes",     "opt_state_bytes",
        "act_bytes",    "accounted_bytes", "peak_rss_bytes", "rss_ratio", "steps"};
    static const char *const strs[] = {"optim"};
    gpt_config c = gpt_config_default();
    c.dim = 32;
    c.layers = 2;
    c.heads = 2;
    c.context = 16;
    const double P = (double)gpt_config_num_params(&c);
    const double matrix = 2.0 * 12 * 32 * 32; /* qkv, attn_out, fc, proj per layer */
    int ok = n == 2 && P > 0;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *x = o[i];
        ok = has_keys(x, "train", nums, N_OF(nums), strs, N_OF(strs)) &&
             !strcmp(str(x, "optim"), i == 0 ? "adamw" : "muon") && num(x, "dim") == 32 &&
             num(x, "layers") == 2 && num(x, "context") == 16 && num(x, "batch") == 2 &&
             num(x, "steps") == 2 && num(x, "params") == P && num(x, "tokens_per_s") > 0 &&
             num(x, "peak_rss_bytes") > 0 &&
             cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(x, "fresh_process"));
        if (!ok)
            break;
        /* the phases add up to the step, tokens/s follows from it */
        double ms = num(x, "ms");
        ASSERT_NEAR(num(x, "fwd_ms") + num(x, "bwd_ms") + num(x, "opt_ms"), ms, 1e-9 * ms + 1e-12);
        ASSERT_NEAR(num(x, "tokens_per_s"), 2 * 16 / (ms * 1e-3), 1e-6 * num(x, "tokens_per_s"));
        double state = i == 0 ? 8.0 * P : 4.0 * matrix + 8.0 * (P - matrix);
        ASSERT_EQ_INT(num(x, "opt_state_bytes"), state);
        ASSERT_EQ_INT(num(x, "accounted_bytes"),
                      8.0 * P + num(x, "opt_state_bytes") + num(x, "act_bytes"));
        ASSERT_NEAR(num(x, "rss_ratio"), num(x, "peak_rss_bytes") / num(x, "accounted_bytes"),
                    1e-9);
    }
    int fresh0 = n == 2 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o[0], "fresh_process"));
    int fresh1 = n == 2 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o[1], "fresh_process"));
    free_lines(o, n);
    ASSERT(ok);
    ASSERT(fresh0 && !fresh1);

    /* one optimizer alone, text output */
    rc = run_muon("bench train --dim 16 --layers 1 --heads 2 --context 8 --batch 1 --steps 2 "
                  "--warmup 1 --optim muon --threads 1",
                  &out, &err);
    int text_ok = rc == 0 && strstr(out, "muon") && strstr(out, "tokens/s") && !strstr(out, "adamw");
    if (!text_ok)
        printf("    exit %d: %s%s", rc, out, err);
    free(out);
    free(err);
    ASSERT(text_ok);
}

TEST(cli_bench_sgemm_json_lines)
{
    if (!have_muon())
        SKIP("build/muon not built");
    char *out = NULL, *err = NULL;
    int rc = run_muon("bench sgemm --sizes 32 --shape 48x16 --threads 1 --repeats 1 --json", &out,
                      &err);
    if (rc)
        printf("    %s%s", out, err);
    ASSERT_EQ_INT(rc, 0);
    cJSON *o[8] = {0};
    int n = parse_lines(out, o, 8);
    free(out);
    free(err);
    static const char *const nums[] = {"m", "n", "k", "threads", "ms", "gflops", "repeats"};
    static const char *const strs[] = {"kind", "lib"};
    /* square 32; the Gram product of the 16 x 48 view; B X; each through
     * both libraries */
    static const struct {
        const char *kind;
        double m, n, k;
    } want[] = {{"square", 32, 32, 32}, {"gram", 16, 16, 48}, {"apply", 16, 48, 16}};
    static const char *const libs[] = {"openblas", "onednn"};
    int ok = n == 6;
    for (int i = 0; ok && i < n; i++) {
        int w = i / 2;
        ok = has_keys(o[i], "sgemm", nums, N_OF(nums), strs, N_OF(strs)) &&
             !strcmp(str(o[i], "kind"), want[w].kind) && !strcmp(str(o[i], "lib"), libs[i % 2]) &&
             num(o[i], "m") == want[w].m && num(o[i], "n") == want[w].n &&
             num(o[i], "k") == want[w].k && num(o[i], "ms") > 0 &&
             fabs(num(o[i], "gflops") - 2 * want[w].m * want[w].n * want[w].k /
                                            (num(o[i], "ms") * 1e6)) <= 1e-6 * num(o[i], "gflops");
        if (!ok)
            printf("    line %d: want %s %g x %g x %g through %s\n", i, want[w].kind, want[w].m,
                   want[w].n, want[w].k, libs[i % 2]);
    }
    free_lines(o, n);
    ASSERT(ok);
    /* --lib picks one */
    out = err = NULL;
    rc = run_muon("bench sgemm --sizes 32 --lib onednn --threads 1 --repeats 1 --json", &out, &err);
    n = rc == 0 ? parse_lines(out, o, 8) : 0;
    ok = n == 1 && !strcmp(str(o[0], "lib"), "onednn") && num(o[0], "m") == 32;
    if (!ok)
        printf("    --lib onednn -> %d, %d lines\n    %s%s", rc, n, out, err);
    free(out);
    free(err);
    free_lines(o, n);
    ASSERT(ok);
}

TEST(cli_bench_sizing_json_lines)
{
    if (!have_muon())
        SKIP("build/muon not built");
    char *out = NULL, *err = NULL;
    int rc = run_muon("bench sizing --widths 32,64 --tokens 64 --threads 1 --repeats 1 --json",
                      &out, &err);
    if (rc)
        printf("    %s%s", out, err);
    ASSERT_EQ_INT(rc, 0);
    cJSON *o[4] = {0};
    int n = parse_lines(out, o, 4);
    free(out);
    free(err);
    static const char *const nums[] = {
        "width",         "tokens",          "threads",     "gemm_ms",
        "gemm_gflops",   "mlp_gemm_ms",     "mlp_gemm_gflops", "ortho_sq_ms",
        "ortho_sq_gflops", "ortho_rect_ms", "ortho_rect_gflops", "repeats"};
    int ok = n == 2;
    for (int i = 0; ok && i < n; i++)
        ok = has_keys(o[i], "sizing", nums, N_OF(nums), NULL, 0) &&
             num(o[i], "width") == 32 * (i + 1) && num(o[i], "tokens") == 64 &&
             num(o[i], "gemm_gflops") > 0 && num(o[i], "ortho_rect_gflops") > 0;
    free_lines(o, n);
    ASSERT(ok);
}

/* --restarts reaches the optimizer: without restarts Gram NS executes
 * fewer flops, which bench step and bench train report as the optimizer
 * itself counts them (muon_opt_ortho_flops). A loss after a few steps is no
 * proof: both updates may round to the same weights on some CPU. */
static cJSON *one_line(const char *args)
{
    char *out = NULL, *err = NULL;
    int rc = run_muon(args, &out, &err);
    cJSON *o[2] = {0};
    int n = rc == 0 ? parse_lines(out, o, 2) : 0;
    if (rc || n != 1)
        printf("    muon %s -> %d, %d lines\n    %s%s", args, rc, n, out, err);
    free(out);
    free(err);
    if (n != 1) {
        free_lines(o, n);
        return NULL;
    }
    return o[0];
}

TEST(cli_bench_step_and_train_restarts)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *step = "bench step --model gpt2-tiny --threads 1 --repeats 1 --warmup 0 --json";
    const char *train = "bench train --dim 96 --layers 1 --heads 2 --context 16 --batch 2 "
                        "--steps 2 --warmup 1 --threads 1 --optim muon --json";
    char buf[512];
    cJSON *sd = one_line(step);
    snprintf(buf, sizeof buf, "%s --restarts none", step);
    cJSON *sn = one_line(buf);
    cJSON *td = one_line(train);
    snprintf(buf, sizeof buf, "%s --restarts none", train);
    cJSON *tn = one_line(buf);
    int ok = sd && sn && td && tn;
    int named = ok && !strcmp(str(sd, "restarts"), "3") && !strcmp(str(sn, "restarts"), "none") &&
                !strcmp(str(td, "restarts"), "3") && !strcmp(str(tn, "restarts"), "none");
    int fewer = ok && num(sn, "ortho_gflop") < num(sd, "ortho_gflop");
    int fewer_trained = ok && num(tn, "ortho_gflop") > 0 &&
                        num(tn, "ortho_gflop") < num(td, "ortho_gflop");
    cJSON_Delete(sd);
    cJSON_Delete(sn);
    cJSON_Delete(td);
    cJSON_Delete(tn);
    ASSERT(ok);
    ASSERT(named);
    ASSERT(fewer);
    ASSERT(fewer_trained);
}

TEST(cli_bench_usage_errors_exit_2)
{
    if (!have_muon())
        SKIP("build/muon not built");
    static const struct {
        const char *args, *word;
    } cases[] = {
        {"bench step --model gpt2-huge", "muon bench step: --model must be one of"},
        {"bench step --model gpt2-tiny --repeats 0", "--repeats must be an integer"},
        {"bench step --model gpt2-tiny --threads 0", "--threads must be an integer"},
        {"bench step --bogus", "unknown flag '--bogus'"},
        {"bench train --optim sgd", "muon bench train: --optim must be one of"},
        {"bench train --dim 30 --heads 4", "must be a multiple of --heads"},
        {"bench train --dim 12 --heads 4", "even head size"},
        {"bench train --steps 3 --warmup 3", "--warmup (3) must be less than --steps (3)"},
        {"bench train --dim abc", "--dim must be an integer"},
        {"bench train --batch 1 --batch 2", "more than once"},
        {"bench step --model gpt2-tiny --restarts 9", "--restarts must be none or steps"},
        {"bench train --restarts 2,x", "muon bench train: --restarts must be none or steps"},
        {"bench sgemm --sizes 0", "muon bench sgemm: --sizes must be an integer"},
        {"bench sgemm --shape 8by8", "--shape must be ROWSxCOLS"},
        {"bench sgemm --repeats x", "--repeats must be an integer"},
        {"bench sgemm --lib mkl", "--lib must be one of openblas, onednn (got 'mkl')"},
        {"bench sgemm --lib onednn,onednn", "--lib names 'onednn' twice"},
        {"bench sizing --widths 64,abc", "muon bench sizing: --widths must be an integer"},
        {"bench sizing --tokens 0", "--tokens must be an integer"},
        {"bench sizing extra", "unexpected argument 'extra'"},
        {"bench", "usage: muon bench"},
        {"bench nothing", "unknown benchmark 'nothing'"},
    };
    for (int i = 0; i < N_OF(cases); i++) {
        char *out = NULL, *err = NULL;
        int rc = run_muon(cases[i].args, &out, &err);
        int ok = rc == 2 && err && strstr(err, cases[i].word) && out && !out[0];
        if (!ok)
            printf("    muon %s -> %d\n    stdout: %s\n    stderr: %s    (want '%s')\n",
                   cases[i].args, rc, out ? out : "", err ? err : "", cases[i].word);
        free(out);
        free(err);
        ASSERT(ok);
    }
}

TEST(cli_bench_help_exit_0)
{
    if (!have_muon())
        SKIP("build/muon not built");
    static const struct {
        const char *args, *word;
    } cases[] = {
        {"bench --help", "sizing"},          {"bench step --help", "--model"},
        {"bench train --help", "VmHWM"}, {"bench sgemm --help", "--sizes"},
        {"bench sizing --help", "--widths"}, {"help bench", "train"},
    };
    for (int i = 0; i < N_OF(cases); i++) {
        char *out = NULL;
        int rc = run_muon(cases[i].args, &out, NULL);
        int ok = rc == 0 && out && strstr(out, cases[i].word);
        if (!ok)
            printf("    muon %s -> %d: %s\n", cases[i].args, rc, out ? out : "");
        free(out);
        ASSERT(ok);
    }
}
