/* `muon ortho` and `muon bench ortho` end to end: the built command is run
 * as a process ($MUON_BUILD/muon) and its files and output are checked
 * against the library called directly and the double-precision references. */
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "harness.h"
#include "io/npy.h"
#include "testutil.h"

static const char *muon_bin(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/muon", tu_build_dir());
    return path;
}

/* Run "muon ARGS"; returns the exit code, *out gets stdout+stderr. */
static int run_muon(const char *args, char **out)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s", muon_bin(), args);
    return tu_run(cmd, out);
}

static int have_muon(void)
{
    FILE *f = fopen(muon_bin(), "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Write a rows x cols matrix with condition number cond to dir/name. */
static int write_input(const char *path, long rows, long cols, double cond, uint64_t seed,
                       float **keep)
{
    tu_rng rng;
    tu_seed(&rng, seed);
    float *g = malloc(sizeof(float) * (size_t)(rows * cols));
    tu_matrix_with_cond(&rng, g, rows, cols, cond);
    char err[256];
    int rc = npy_write_f32(path, g, rows, cols, err, sizeof err) == MUON_OK ? 0 : -1;
    if (keep)
        *keep = g;
    else
        free(g);
    return rc;
}

/* The library called directly on one BLAS thread, as `muon ... --threads 1`
 * or a single-threaded BLAS runs it. */
static muon_status ortho_one_thread(const muon_ortho_config *cfg, const float *g, float *o,
                                    long rows, long cols)
{
    int old = muon_get_blas_threads();
    muon_set_blas_threads(1);
    muon_status s = muon_orthogonalize(cfg, g, o, rows, cols, NULL, 0);
    muon_set_blas_threads(old);
    return s;
}

/* max |s_i - 1| over o's singular values (the test's own SVD), or -1. */
static double max_sv_dev(const float *o, long rows, long cols)
{
    long k = rows < cols ? rows : cols;
    double *sv = malloc(sizeof(double) * (size_t)k), dev = 0;
    if (tu_singular_values(o, rows, cols, sv) != 0)
        dev = -1;
    for (long i = 0; dev >= 0 && i < k; i++)
        dev = fabs(sv[i] - 1.0) > dev ? fabs(sv[i] - 1.0) : dev;
    free(sv);
    return dev;
}

TEST(cli_ortho_matches_library_bitwise)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *dir = tu_tmpdir();
    char in[256], out[256], args[1024];
    snprintf(in, sizeof in, "%s/G.npy", dir);
    snprintf(out, sizeof out, "%s/O.npy", dir);
    long rows = 48, cols = 80;
    float *g;
    ASSERT(write_input(in, rows, cols, 10.0, mt_seed + 1, &g) == 0);

    struct {
        const char *method, *coeffs;
        int steps;
        double tol; /* measured deviation x ~1.5; keller's fixed coefficients only
                     * bring s into about [0.68, 1.13], never to 1 */
        const char *restarts;
        unsigned bits;
    } cases[] = {{"ns", "polar-express", 5, 0.2, NULL, 0},
                 {"gram-ns", "polar-express", 7, 1e-3, NULL, 0},
                 {"auto", "keller", 6, 0.4, NULL, 0},
                 {"auto", "quintic5", 5, 0.05, NULL, 0},
                 {"gram-ns", "polar-express", 5, 0.2, "none", MUON_GRAM_NO_RESTARTS},
                 {"auto", "polar-express", 6, 0.2, "2,4", (1u << 2) | (1u << 4)}};
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        char rs[64] = "";
        if (cases[k].restarts)
            snprintf(rs, sizeof rs, " --restarts %s", cases[k].restarts);
        snprintf(args, sizeof args,
                 "ortho --in '%s' --out '%s' --method %s --coeffs %s --steps %d --threads 1%s",
                 in, out, cases[k].method, cases[k].coeffs, cases[k].steps, rs);
        char *text = NULL;
        int rc = run_muon(args, &text);
        if (rc != 0)
            printf("    %s\n", text);
        free(text);
        ASSERT_EQ_INT(rc, 0);

        float *o = NULL;
        long r, c;
        char err[256];
        ASSERT_OK(npy_read_f32(out, &o, &r, &c, err, sizeof err));
        ASSERT_EQ_INT(r, rows);
        ASSERT_EQ_INT(c, cols);

        muon_ortho_config cfg = muon_ortho_config_default();
        ASSERT_OK(muon_ortho_method_parse(cases[k].method, &cfg.method));
        ASSERT_OK(muon_coeffs_parse(cases[k].coeffs, &cfg));
        cfg.steps = cases[k].steps;
        cfg.gram_restarts = cases[k].bits;
        float *want = malloc(sizeof(float) * (size_t)(rows * cols));
        ASSERT_OK(ortho_one_thread(&cfg, g, want, rows, cols));
        int same = !memcmp(o, want, sizeof(float) * (size_t)(rows * cols));
        if (!same)
            printf("    method %s: max diff %.3g\n", cases[k].method,
                   tu_max_abs_diff_ff(o, want, (size_t)(rows * cols)));
        ASSERT(same);

        /* and it is orthogonal: cond 10 is within reach of these steps */
        double dev = max_sv_dev(o, rows, cols);
        ASSERT(dev >= 0);
        if (dev > cases[k].tol)
            printf("    %s %s %d steps\n", cases[k].method, cases[k].coeffs, cases[k].steps);
        ASSERT_LE(dev, cases[k].tol);
        free(o);
        free(want);
    }
    free(g);
}

TEST(cli_ortho_svd_matches_polar_reference)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *dir = tu_tmpdir();
    char in[256], out[256], args[1024];
    snprintf(in, sizeof in, "%s/G.npy", dir);
    snprintf(out, sizeof out, "%s/O.npy", dir);
    long rows = 40, cols = 24; /* tall: exercises the transposed path */
    float *g;
    ASSERT(write_input(in, rows, cols, 100.0, mt_seed + 2, &g) == 0);
    snprintf(args, sizeof args, "ortho --in '%s' --out '%s' --method svd", in, out);
    char *text = NULL;
    int rc = run_muon(args, &text);
    if (rc != 0)
        printf("    %s\n", text);
    free(text);
    ASSERT_EQ_INT(rc, 0);
    float *o = NULL;
    long r, c;
    char err[256];
    ASSERT_OK(npy_read_f32(out, &o, &r, &c, err, sizeof err));
    ASSERT_EQ_INT(r, rows);
    ASSERT_EQ_INT(c, cols);
    double *ref = malloc(sizeof(double) * (size_t)(rows * cols));
    ASSERT(tu_polar_ref(g, rows, cols, ref) == 0);
    ASSERT_LE(tu_max_abs_diff_fd(o, ref, (size_t)(rows * cols)), 1e-4);
    free(ref);
    free(o);
    free(g);
}

/* Writes a sentinel to out, runs args (with %s slots for in and out), and
 * checks the exit code, a word of the message and that out is untouched. */
static int expect_failure(const char *fmt, const char *in, const char *out, int want_rc,
                          const char *want_word)
{
    static const char sentinel[] = "sentinel: must survive a failed run\n";
    if (tu_write_file(out, sentinel, sizeof sentinel - 1) != 0)
        return 0;
    char args[2048];
    snprintf(args, sizeof args, fmt, in, out);
    char *text = NULL;
    int rc = run_muon(args, &text);
    int ok = rc == want_rc && text && strstr(text, want_word);
    if (!ok)
        printf("    muon %s\n    exit %d (want %d), output: %s    (want '%s')\n", args, rc,
               want_rc, text ? text : "(none)", want_word);
    free(text);
    size_t len = 0;
    char *after = tu_read_file(out, &len);
    if (!after || len != sizeof sentinel - 1 || memcmp(after, sentinel, len)) {
        printf("    muon %s: --out was modified\n", args);
        ok = 0;
    }
    free(after);
    return ok;
}

TEST(cli_ortho_usage_errors_exit_2)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *dir = tu_tmpdir();
    char in[256], out[256];
    snprintf(in, sizeof in, "%s/G.npy", dir);
    snprintf(out, sizeof out, "%s/O.npy", dir);
    ASSERT(write_input(in, 8, 12, 2.0, mt_seed + 3, NULL) == 0);
    struct {
        const char *fmt, *word;
    } cases[] = {
        {"ortho --in '%s' --out '%s' --bogus 3", "unknown flag '--bogus'"},
        {"ortho --in '%s' --out '%s' --step 3", "did you mean --steps"},
        {"ortho --in '%s' --out '%s' --steps 0", "--steps must be an integer >= 1, got '0'"},
        {"ortho --in '%s' --out '%s' --steps abc", "--steps must be an integer >= 1, got 'abc'"},
        {"ortho --in '%s' --out '%s' --steps 5x", "--steps must be an integer"},
        {"ortho --in '%s' --out '%s' --coeffs nonsense", "--coeffs must be one of"},
        {"ortho --in '%s' --out '%s' --coeffs taylor-9", "--coeffs must be one of"},
        {"ortho --in '%s' --out '%s' --method nonsense", "--method must be one of"},
        {"ortho --in '%s' --out '%s' --method=", "--method must be one of"},
        {"ortho --in '%s' --out '%s' --steps 3 --steps 4", "more than once"},
        {"ortho --in '%s' --out '%s' --aol=1", "takes no value"},
        {"ortho%.0s --out '%s'", "--in is required"},
        {"ortho --in '%s' --out", "--out needs a value"},
        {"ortho --in '%s' --steps 3 --out '%s' extra", "unexpected argument 'extra'"},
        {"orthox --in '%s' --out '%s'", "unknown command 'orthox'"},
        {"--frobnicate", "unknown flag '--frobnicate'"},
        {"bench nothing", "unknown benchmark 'nothing'"},
        {"ortho --in '%s' --out '%s' --restarts 0", "--restarts must be none or steps between 1 and 4"},
        {"ortho --in '%s' --out '%s' --restarts 5", "--restarts must be none or steps"},
        {"ortho --in '%s' --out '%s' --steps 3 --restarts 3", "between 1 and 2"},
        {"ortho --in '%s' --out '%s' --restarts 2,x", "got '2,x'"},
        {"ortho --in '%s' --out '%s' --restarts 2,", "got '2,'"},
        {"ortho --in '%s' --out '%s' --method ns --restarts 2", "not method ns"},
        {"bench ortho --shape 8x12 --restarts all", "--restarts must be none or steps"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ASSERT(expect_failure(cases[i].fmt, in, out, 2, cases[i].word));
}

TEST(cli_ortho_runtime_errors_exit_1_and_keep_out)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *dir = tu_tmpdir();
    char in[256], out[256], missing[256];
    snprintf(in, sizeof in, "%s/G.npy", dir);
    snprintf(out, sizeof out, "%s/O.npy", dir);
    snprintf(missing, sizeof missing, "%s/absent.npy", dir);
    const char *fmt = "ortho --in '%s' --out '%s'";
    ASSERT(expect_failure(fmt, missing, out, 1, "absent.npy: cannot open"));

    /* truncated: the last byte cut off */
    ASSERT(write_input(in, 8, 12, 2.0, mt_seed + 4, NULL) == 0);
    size_t len;
    char *bytes = tu_read_file(in, &len);
    ASSERT(bytes != NULL);
    ASSERT(tu_write_file(in, bytes, len - 1) == 0);
    ASSERT(expect_failure(fmt, in, out, 1, "G.npy: truncated"));
    /* not a .npy at all */
    ASSERT(tu_write_file(in, "hello world, not numpy", 22) == 0);
    ASSERT(expect_failure(fmt, in, out, 1, "G.npy: not a .npy file"));
    /* a NaN in the matrix */
    float *g = (float *)(void *)(bytes + len - 12 * 8 * sizeof(float));
    g[5] = NAN;
    ASSERT(tu_write_file(in, bytes, len) == 0);
    ASSERT(expect_failure(fmt, in, out, 1, "NaN"));
    free(bytes);
    /* output into a directory that does not exist */
    char bad_out[300];
    ASSERT(write_input(in, 8, 12, 2.0, mt_seed + 5, NULL) == 0);
    snprintf(bad_out, sizeof bad_out, "%s/no/such/dir/O.npy", dir);
    char *text = NULL;
    char args[1024];
    snprintf(args, sizeof args, "ortho --in '%s' --out '%s'", in, bad_out);
    ASSERT_EQ_INT(run_muon(args, &text), 1);
    ASSERT(strstr(text, "O.npy: ") != NULL);
    free(text);
}

TEST(cli_help_and_version_exit_0)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *ok_cases[][2] = {
        {"--help", "ortho"},          {"help", "bench"},
        {"help ortho", "--coeffs"},   {"ortho --help", "--steps"},
        {"bench --help", "ortho"},    {"bench ortho --help", "--shape"},
        {"--version", "muon 0."},
    };
    for (size_t i = 0; i < sizeof ok_cases / sizeof ok_cases[0]; i++) {
        char *text = NULL;
        int rc = run_muon(ok_cases[i][0], &text);
        if (rc != 0 || !strstr(text, ok_cases[i][1]))
            printf("    muon %s -> %d: %s\n", ok_cases[i][0], rc, text);
        ASSERT_EQ_INT(rc, 0);
        ASSERT(strstr(text, ok_cases[i][1]) != NULL);
        free(text);
    }
    char *text = NULL;
    ASSERT_EQ_INT(run_muon("", &text), 2); /* no command: usage on stderr */
    ASSERT(strstr(text, "usage") != NULL);
    free(text);
}

/* Every line is a JSON object with the documented keys; returns the count. */
static int check_json_lines(const char *text, const char *want_method, double max_err)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char *line = malloc(len + 1);
        memcpy(line, p, len);
        line[len] = 0;
        cJSON *o = cJSON_Parse(line);
        int ok = o != NULL;
        const char *str_keys[] = {"shape", "method", "coeffs"};
        const char *num_keys[] = {"steps", "threads", "ms", "gflops", "ortho_err"};
        for (int k = 0; ok && k < 3; k++)
            ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, str_keys[k]));
        for (int k = 0; ok && k < 5; k++)
            ok = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, num_keys[k]));
        if (ok) {
            double ms = cJSON_GetObjectItemCaseSensitive(o, "ms")->valuedouble;
            double gf = cJSON_GetObjectItemCaseSensitive(o, "gflops")->valuedouble;
            double err = cJSON_GetObjectItemCaseSensitive(o, "ortho_err")->valuedouble;
            const char *m = cJSON_GetObjectItemCaseSensitive(o, "method")->valuestring;
            const char *co = cJSON_GetObjectItemCaseSensitive(o, "coeffs")->valuestring;
            ok = ms > 0 && gf > 0 && err >= 0 && err <= max_err &&
                 !strcmp(co, "polar-express") &&
                 cJSON_GetObjectItemCaseSensitive(o, "steps")->valuedouble == 5 &&
                 cJSON_GetObjectItemCaseSensitive(o, "threads")->valuedouble >= 1 &&
                 (want_method ? !strcmp(m, want_method)
                              : (!strcmp(m, "ns") || !strcmp(m, "gram-ns")));
        }
        if (!ok) {
            printf("    bad JSON line: %s\n", line);
            n = -1000;
        }
        cJSON_Delete(o);
        free(line);
        n++;
        p += len + (nl ? 1 : 0);
    }
    return n;
}

TEST(cli_bench_ortho_json_lines)
{
    if (!have_muon())
        SKIP("build/muon not built");
    char *text = NULL;
    int rc = run_muon("bench ortho --shape 64x128 --json --repeats 2", &text);
    if (rc != 0)
        printf("    %s\n", text);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(check_json_lines(text, NULL, 1.0), 1);
    ASSERT(strstr(text, "\"shape\":\"64x128\"") != NULL);
    free(text);

    /* two shapes x two thread counts, a fixed method; svd is exact */
    rc = run_muon("bench ortho --shape 32x16,16x32 --threads 1 --threads 2 --method svd "
                  "--repeats 1 --json",
                  &text);
    if (rc != 0)
        printf("    %s\n", text);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(check_json_lines(text, "svd", 1e-4), 4);
    ASSERT(strstr(text, "\"shape\":\"16x32\"") != NULL);
    ASSERT(strstr(text, "\"threads\":2") != NULL);
    free(text);

    /* the human output says which method it picked and why */
    rc = run_muon("bench ortho --shape 24x40 --repeats 1", &text);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(strstr(text, "picked") != NULL && strstr(text, "GFLOP/s") != NULL);
    free(text);

    const char *bad[] = {"bench ortho --shape 64by128", "bench ortho --shape 0x5",
                         "bench ortho --shape 8x8 --threads 0", "bench ortho --json",
                         "bench ortho --shape 8x8 --repeats -1"};
    for (int i = 0; i < 5; i++) {
        rc = run_muon(bad[i], &text);
        if (rc != 2)
            printf("    muon %s -> %d: %s\n", bad[i], rc, text);
        ASSERT_EQ_INT(rc, 2);
        ASSERT(strstr(text, "muon bench ortho: ") != NULL);
        free(text);
    }
}

/* The ortho_err of the first JSON line of text, or -1. */
static double json_ortho_err(const char *text, char *shape, size_t cap)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "ortho_err");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "shape");
    double err = cJSON_IsNumber(e) ? e->valuedouble : -1.0;
    snprintf(shape, cap, "%s", cJSON_IsString(s) ? s->valuestring : "");
    cJSON_Delete(o);
    return err;
}

/* --input times the file's matrix: its error is that of the library's
 * output on the same matrix (test SVD), far from a Gaussian's. */
TEST(cli_bench_ortho_input_file)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *dir = tu_tmpdir();
    char in[256], args[1024], shape[64];
    snprintf(in, sizeof in, "%s/B.npy", dir);
    long rows = 40, cols = 64;
    float *g;
    ASSERT(write_input(in, rows, cols, 1e3, mt_seed + 7, &g) == 0);

    muon_ortho_config cfg = muon_ortho_config_default();
    cfg.method = MUON_ORTHO_NS;
    float *o = malloc(sizeof(float) * (size_t)(rows * cols));
    ASSERT_OK(ortho_one_thread(&cfg, g, o, rows, cols));
    double want = max_sv_dev(o, rows, cols);
    ASSERT(want >= 0);

    char *text = NULL;
    snprintf(args, sizeof args, "bench ortho --input '%s' --method ns --threads 1 --repeats 1 --json",
             in);
    int rc = run_muon(args, &text);
    if (rc != 0)
        printf("    %s\n", text);
    ASSERT_EQ_INT(rc, 0);
    double got = json_ortho_err(text, shape, sizeof shape);
    free(text);
    ASSERT(strcmp(shape, "40x64") == 0);
    ASSERT_NEAR(got, want, 1e-6);

    /* the seeded Gaussian of the same shape ends far more orthogonal */
    rc = run_muon("bench ortho --shape 40x64 --method ns --threads 1 --repeats 1 --json", &text);
    ASSERT_EQ_INT(rc, 0);
    double gauss = json_ortho_err(text, shape, sizeof shape);
    free(text);
    ASSERT(gauss >= 0 && fabs(gauss - got) > 0.05);

    /* refusals: clear message, exit code, and the input file as it was
     * (expect_failure also guards a second file) */
    char guard[256];
    snprintf(guard, sizeof guard, "%s/guard.txt", dir);
    ASSERT(expect_failure("bench ortho --input '%s' --shape 8x8%.0s", in, guard, 2,
                          "--input and --shape exclude each other"));
    ASSERT(expect_failure("bench ortho --input '%s' --seed 3%.0s", in, guard, 2,
                          "--seed only applies to the Gaussian input"));
    ASSERT(expect_failure("bench ortho --input '%s/absent.npy'%.0s", dir, guard, 1,
                          "absent.npy: cannot open"));
    float *back = NULL;
    long br = 0, bc = 0;
    char err[256];
    ASSERT_OK(npy_read_f32(in, &back, &br, &bc, err, sizeof err));
    int same = br == rows && bc == cols && !memcmp(back, g, sizeof(float) * (size_t)(rows * cols));
    free(back);
    ASSERT(same);
    free(o);
    free(g);
}
