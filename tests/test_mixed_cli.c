/* --precision through the command line ($MUON_BUILD/muon run as a process):
 * refusals that leave existing files alone, `muon ortho --precision mixed`
 * against fp32, the library and the emulated bf16 path, and `muon train
 * --precision mixed` with its checkpoint carrying the setting through a
 * resume. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "harness.h"
#include "io/npy.h"
#include "ref_ortho.h"
#include "testutil.h"
#include "train/train.h"

/* "muon ARGS" with every '@' in ARGS replaced by dir and ENV (may be "")
 * before it; returns the exit code, *out gets stdout+stderr (or NULL). */
static int muon_in(const char *env, const char *dir, const char *args, char **out)
{
    char cmd[8192];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "%s '%s/muon' ", env, tu_build_dir());
    for (const char *p = args; *p && n + strlen(dir) + 2 < sizeof cmd; p++)
        n += (size_t)(*p == '@' ? snprintf(cmd + n, sizeof cmd - n, "%s", dir)
                                : snprintf(cmd + n, sizeof cmd - n, "%c", *p));
    char *text = NULL;
    int rc = tu_run(cmd, &text);
    if (out)
        *out = text;
    else
        free(text);
    return rc;
}

static int built(void)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/muon", tu_build_dir());
    return stat(p, &st) == 0;
}

static int exists(const char *dir, const char *name)
{
    char p[700];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

/* Exit code want, a message containing word, and dir/keep (when given)
 * still holding text. */
static int refused(const char *dir, const char *args, int want, const char *word,
                   const char *keep, const char *text)
{
    char *out = NULL;
    int rc = muon_in("", dir, args, &out);
    int ok = rc == want && out && strstr(out, word);
    if (!ok)
        printf("    muon %s\n    exit %d (want %d): %s    (want '%s')\n", args, rc, want,
               out ? out : "", word);
    free(out);
    if (keep) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", dir, keep);
        size_t len = 0;
        char *now = tu_read_file(p, &len);
        if (!now || len != strlen(text) || memcmp(now, text, len)) {
            printf("    muon %s: %s was modified\n", args, keep);
            ok = 0;
        }
        free(now);
    }
    return ok;
}

TEST(cli_precision_refusals_keep_files)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    char p[700], err[256];
    float g[8 * 12];
    tu_rng r;
    tu_seed(&r, mt_seed);
    tu_fill_normal(&r, g, 8 * 12, 1.0);
    snprintf(p, sizeof p, "%s/G.npy", d);
    ASSERT_OK(npy_write_f32(p, g, 8, 12, err, sizeof err));
    static const char sentinel[] = "an earlier result, must survive\n";
    snprintf(p, sizeof p, "%s/O.npy", d);
    ASSERT(tu_write_file(p, sentinel, sizeof sentinel - 1) == 0);
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(tu_write_file(p, "abc abd abe\n", 12) == 0);
    static const struct {
        const char *args, *word;
    } ortho_cases[] = {
        {"ortho --in @/G.npy --out @/O.npy --precision bogus",
         "--precision must be fp32, mixed or auto; got 'bogus'"},
        {"ortho --in @/G.npy --out @/O.npy --precision=", "--precision must be fp32, mixed or auto"},
        {"ortho --in @/G.npy --out @/O.npy --precision MIXED", "got 'MIXED'"},
        {"ortho --in @/G.npy --out @/O.npy --precision mixed --method svd", "--method svd"},
        {"ortho --in @/G.npy --out @/O.npy --method svd --precision mixed", "--method svd"},
        {"ortho --in @/G.npy --out @/O.npy --precision mixed --precision fp32", "more than once"},
        {"ortho --in @/G.npy --out @/O.npy --precision", "--precision needs a value"},
    };
    for (size_t i = 0; i < sizeof ortho_cases / sizeof ortho_cases[0]; i++)
        ASSERT(refused(d, ortho_cases[i].args, 2, ortho_cases[i].word, "O.npy", sentinel));
    /* the trainer and the benches: refused before any work or file */
    static const struct {
        const char *args, *word;
    } other_cases[] = {
        {"train --data @/text.txt --out @/run --precision bf16",
         "--precision must be fp32, mixed or auto, got 'bf16'"},
        {"train --data @/text.txt --out @/run --precision mixed --ortho-method svd",
         "--ortho-method svd"},
        {"compare --data @/text.txt --out @/run --precision half", "got 'half'"},
        {"bench ortho --shape 8x8 --precision fp16", "--precision must be fp32, mixed or auto"},
        {"bench ortho --shape 8x8 --precision mixed --method svd", "--method svd"},
        {"bench step --precision fp16", "--precision must be fp32, mixed or auto, got 'fp16'"},
        {"bench train --precision fp16", "--precision must be fp32, mixed or auto, got 'fp16'"},
        /* --restarts goes through the same path */
        {"train --data @/text.txt --out @/run --restarts 0", "--restarts must be none or steps"},
        {"train --data @/text.txt --out @/run --ns-steps 3 --restarts 3", "between 1 and 2"},
        {"train --data @/text.txt --out @/run --ortho-method ns --restarts 2", "not method ns"},
        {"compare --data @/text.txt --out @/run --restarts x", "got 'x'"},
    };
    for (size_t i = 0; i < sizeof other_cases / sizeof other_cases[0]; i++)
        ASSERT(refused(d, other_cases[i].args, 2, other_cases[i].word, NULL, NULL));
    ASSERT(!exists(d, "run"));
}

/* ---- muon ortho ---- */

static float *read_out(const char *dir, const char *name, long rows, long cols)
{
    char p[700], err[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    float *o = NULL;
    long r = 0, c = 0;
    if (npy_read_f32(p, &o, &r, &c, err, sizeof err) != MUON_OK || r != rows || c != cols) {
        printf("    %s: %s (%ld x %ld)\n", p, err, r, c);
        free(o);
        return NULL;
    }
    return o;
}

static double sv_err(const float *x, long rows, long cols)
{
    double s[96], e = 0; /* min(rows, cols) <= 96 here */
    if (tu_singular_values(x, rows, cols, s) != 0)
        return INFINITY;
    for (long i = 0; i < (rows < cols ? rows : cols); i++)
        e = fabs(s[i] - 1) > e ? fabs(s[i] - 1) : e;
    return e;
}

/* ||a - b|| / ||b|| (Frobenius), through the shared rms */
static double rel_diff(const float *a, const float *b, size_t n)
{
    float *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = a[i] - b[i];
    double r = tu_rms(d, n) / tu_rms(b, n);
    free(d);
    return r;
}

TEST(cli_ortho_mixed_against_fp32_library_and_emulation)
{
    if (!built())
        SKIP("muon not built");
    enum { ROWS = 96, COLS = 160 };
    const size_t n = ROWS * COLS;
    const char *d = tu_tmpdir();
    char p[700], err[256];
    tu_rng r;
    tu_seed(&r, mt_seed + 1);
    float *g = malloc(n * sizeof *g);
    tu_fill_normal(&r, g, n, 1.0);
    snprintf(p, sizeof p, "%s/G.npy", d);
    ASSERT_OK(npy_write_f32(p, g, ROWS, COLS, err, sizeof err));
    char *out = NULL;
    int rc = muon_in("", d, "ortho --in @/G.npy --out @/mixed.npy --precision mixed --threads 1",
                     &out);
    int says = out && strstr(out, ", mixed,") != NULL;
    if (rc || !says)
        printf("    %s", out ? out : "");
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(says);
    ASSERT_EQ_INT(muon_in("", d, "ortho --in @/G.npy --out @/fp32.npy --threads 1", NULL), 0);
    ASSERT_EQ_INT(muon_in("MUON_BF16=emulate", d,
                          "ortho --in @/G.npy --out @/emul.npy --precision mixed --threads 1",
                          NULL),
                  0);
    float *o16 = read_out(d, "mixed.npy", ROWS, COLS), *o32 = read_out(d, "fp32.npy", ROWS, COLS);
    float *oem = read_out(d, "emul.npy", ROWS, COLS);
    ASSERT(o16 && o32 && oem);
    double e16 = sv_err(o16, ROWS, COLS), e32 = sv_err(o32, ROWS, COLS),
           eem = sv_err(oem, ROWS, COLS);
    double apart = rel_diff(o16, o32, n), emul_apart = rel_diff(oem, o16, n);
    printf("    ortho err fp32 %.4f mixed %.4f emulated %.4f; mixed vs fp32 %.4f, emulated vs "
           "native %.2g\n",
           e32, e16, eem, apart, emul_apart);
    ASSERT_LE(fabs(e16 - e32), 0.01);
    ASSERT_LE(fabs(eem - e32), 0.01);
    ASSERT(apart > 0); /* the flag took effect */
    /* each within its rounding model's tolerance of the exact result
     * (tests/ref_ortho.h; mixed: bf16 operands in all but the last two
     * steps). Native and emulated bf16 sum the same operands in other
     * orders, and a last-bit difference that moves a value across a bf16
     * rounding boundary carries through the steps, so the two are held
     * to the model, not to each other. */
    muon_ortho_config c32 = muon_ortho_config_default(), c16 = c32;
    c16.precision = MUON_PRECISION_MIXED;
    double *ref = malloc(n * sizeof *ref);
    ref_ortho(&c32, 0, g, ROWS, COLS, NULL, ref);
    double tol32 = ref_ortho_tol(&c32, g, ROWS, COLS, ref),
           tol16 = ref_ortho_tol(&c16, g, ROWS, COLS, ref);
    double d32 = tu_max_abs_diff_fd(o32, ref, n), d16 = tu_max_abs_diff_fd(o16, ref, n),
           dem = tu_max_abs_diff_fd(oem, ref, n);
    printf("    from exact: fp32 %.2g (tol %.2g), mixed %.2g emulated %.2g (tol %.2g)\n", d32,
           tol32, d16, dem, tol16);
    free(ref);
    ASSERT_LE(d32, tol32);
    ASSERT_LE(d16, tol16);
    ASSERT_LE(dem, tol16);
    /* what the library gives on one thread, bit for bit */
    muon_ortho_config c = muon_ortho_config_default();
    c.precision = MUON_PRECISION_MIXED;
    float *lib = malloc(n * sizeof *lib);
    int old = muon_get_blas_threads();
    muon_set_blas_threads(1);
    muon_status st = muon_orthogonalize(&c, g, lib, ROWS, COLS, NULL, 0);
    muon_set_blas_threads(old);
    ASSERT_OK(st);
    ASSERT(memcmp(lib, o16, n * sizeof *lib) == 0);
    free(g);
    free(o16);
    free(o32);
    free(oem);
    free(lib);
}

TEST(cli_bench_ortho_reports_mixed)
{
    if (!built())
        SKIP("muon not built");
    char *out = NULL;
    int rc = muon_in("", "", "bench ortho --shape 64x96 --precision mixed --repeats 1 --threads 1 "
                             "--json",
                     &out);
    cJSON *o = rc == 0 && out ? cJSON_Parse(out) : NULL;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "precision"),
                *e = cJSON_GetObjectItemCaseSensitive(o, "ortho_err");
    int ok = cJSON_IsString(p) && !strcmp(p->valuestring, "mixed") && cJSON_IsNumber(e) &&
             e->valuedouble >= 0 && e->valuedouble < 0.3; /* polar-express, 5 steps */
    if (!ok)
        printf("    exit %d: %s", rc, out ? out : "");
    cJSON_Delete(o);
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(ok);
}

/* ---- muon train ---- */

#define TINY "--layers 1 --dim 16 --heads 2 --context 16 --batch 4 --quiet --threads 1"

/* train_loss of each line of dir/run/metrics.jsonl into loss[]; the count. */
static int losses(const char *dir, const char *run, double *loss, int cap)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, run);
    char *text = tu_read_file(p, NULL);
    int n = 0;
    for (char *line = text; line && *line && n < cap;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "train_loss");
        loss[n++] = cJSON_IsNumber(l) ? l->valuedouble : NAN;
        cJSON_Delete(o);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    return n;
}

/* The precision a checkpoint's stored configuration names, by the loader
 * and by the raw JSON text in the file; -1 when they disagree or fail. */
static int ckpt_precision(const char *dir, const char *run)
{
    char p[700], err[256];
    snprintf(p, sizeof p, "%s/%s/checkpoint.bin", dir, run);
    train_ckpt ck;
    if (train_ckpt_load(p, &ck, err, sizeof err)) {
        printf("    %s: %s\n", p, err);
        return -1;
    }
    int loaded = (int)ck.cfg.ortho.precision;
    train_ckpt_free(&ck);
    size_t len = 0;
    char *raw = tu_read_file(p, &len);
    int in_text = -1;
    for (size_t i = 0; raw && i + 20 < len && in_text < 0; i++) {
        if (!memcmp(raw + i, "\"precision\":\"mixed\"", 19))
            in_text = MUON_PRECISION_MIXED;
        else if (!memcmp(raw + i, "\"precision\":\"fp32\"", 18))
            in_text = MUON_PRECISION_FP32;
    }
    free(raw);
    return loaded == in_text ? loaded : -1;
}

TEST(cli_train_mixed_and_its_resume)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    char p[700];
    snprintf(p, sizeof p, "%s/text.txt", d);
    static const char line[] = "the quick brown fox jumps over the lazy dog. 0123456789\n";
    char corpus[60 * sizeof line];
    for (int i = 0; i < 60; i++)
        memcpy(corpus + i * (sizeof line - 1), line, sizeof line - 1);
    ASSERT(tu_write_file(p, corpus, 60 * (sizeof line - 1)) == 0);
    const char *flags = TINY " --steps 8 --warmup 2 --eval-every 4";
    char args[1024];
    /* AdamW has no orthogonalization: what mixed changes there, the
     * model's products changed */
    static const char *const runs[5][2] = {{"mixed", "--precision mixed"},
                                           {"fp32", "--precision fp32"},
                                           {"half", "--precision mixed --stop-at 4"},
                                           {"amixed", "--optim adamw --precision mixed"},
                                           {"afp32", "--optim adamw --precision fp32"}};
    for (int i = 0; i < 5; i++) {
        snprintf(args, sizeof args, "train --data @/text.txt --out @/%s %s %s", runs[i][0], flags,
                 runs[i][1]);
        char *out = NULL;
        int rc = muon_in("", d, args, &out);
        if (rc)
            printf("    muon %s\n    exit %d: %s", args, rc, out ? out : "");
        free(out);
        ASSERT_EQ_INT(rc, 0);
    }
    for (int opt = 0; opt < 2; opt++) {
        double lm[16], lf[16];
        ASSERT_EQ_INT(losses(d, opt ? "amixed" : "mixed", lm, 16), 8);
        ASSERT_EQ_INT(losses(d, opt ? "afp32" : "fp32", lf, 16), 8);
        printf("    %s: last train loss fp32 %.5f mixed %.5f\n", opt ? "adamw" : "muon", lf[7],
               lm[7]);
        int differs = 0;
        for (int i = 0; i < 8; i++) {
            ASSERT(isfinite(lm[i]) && lm[i] > 0);
            ASSERT_NEAR(lm[i], lf[i], 0.05 * lf[i]);
            differs |= lm[i] != lf[i];
        }
        ASSERT(differs);            /* mixed did run */
        ASSERT(lm[7] < log(256.0)); /* and learned */
    }
    ASSERT_EQ_INT(ckpt_precision(d, "amixed"), MUON_PRECISION_MIXED);
    ASSERT_EQ_INT(ckpt_precision(d, "mixed"), MUON_PRECISION_MIXED);
    ASSERT_EQ_INT(ckpt_precision(d, "fp32"), MUON_PRECISION_FP32);
    ASSERT_EQ_INT(ckpt_precision(d, "half"), MUON_PRECISION_MIXED);
    /* resumed without --precision: mixed from the checkpoint, the same
     * run as the one without interruption */
    ASSERT_EQ_INT(muon_in("", d, "train --steps 8 --resume @/half/checkpoint.bin --quiet "
                                 "--threads 1",
                          NULL),
                  0);
    ASSERT_EQ_INT(ckpt_precision(d, "half"), MUON_PRECISION_MIXED);
    char *out = NULL;
    ASSERT_EQ_INT(muon_in("", d, "ckpt-diff @/mixed/checkpoint.bin @/half/checkpoint.bin", &out),
                  0);
    int same = out && strstr(out, "bit-identical") && strstr(out, "(step 8 vs 8)");
    if (!same)
        printf("    ckpt-diff: %s", out ? out : "");
    free(out);
    ASSERT(same);
    double lh[16], lm[16];
    ASSERT_EQ_INT(losses(d, "half", lh, 16), 8);
    ASSERT_EQ_INT(losses(d, "mixed", lm, 16), 8);
    ASSERT(memcmp(lh, lm, 8 * sizeof *lh) == 0);
}

/* The validation loss of the last line of dir/run/metrics.jsonl (NaN if none). */
static double last_val_loss(const char *dir, const char *run)
{
    char p[700];
    snprintf(p, sizeof p, "%s/%s/metrics.jsonl", dir, run);
    char *text = tu_read_file(p, NULL);
    double v = NAN;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "val_loss");
        if (cJSON_IsNumber(l))
            v = l->valuedouble;
        cJSON_Delete(o);
        line = nl ? nl + 1 : line + strlen(line);
    }
    free(text);
    return v;
}

/* What lets "auto" pick mixed: a model trained with bf16 operands (in the
 * linear layers and the leading NS steps) reaches the loss fp32 reaches.
 * "The same loss" is measured against the training's own noise: the mean
 * validation loss over three seeds moves by less than the spread fp32's
 * three seeds have among themselves. The corpus is random sentences over
 * a small vocabulary, and the run stops while the loss is still falling,
 * where a damaged update shows. */
TEST(cli_train_mixed_reaches_the_fp32_loss)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    static const char *const words[] = {"the", "a", "king", "queen", "horse", "river",
                                        "stone", "light", "dark", "runs", "sleeps", "sings",
                                        "falls", "over", "under", "near", "with", "slowly"};
    size_t cap = 64 * 1024, len = 0;
    char *corpus = malloc(cap);
    ASSERT(corpus);
    tu_rng r;
    tu_seed(&r, 7);
    while (len + 128 < cap) {
        int n = 3 + (int)(tu_uniform(&r) * 7);
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(corpus + len, cap - len, "%s%s", i ? " " : "",
                                    words[(int)(tu_uniform(&r) * 18)]);
        len += (size_t)snprintf(corpus + len, cap - len, ".\n");
    }
    char p[700];
    snprintf(p, sizeof p, "%s/sentences.txt", d);
    ASSERT(tu_write_file(p, corpus, len) == 0);
    free(corpus);
    double loss[2][3], mean[2] = {0, 0}, lo = INFINITY, hi = -INFINITY;
    for (int prec = 0; prec < 2; prec++)
        for (int seed = 1; seed <= 3; seed++) {
            char args[1024], run[32];
            snprintf(run, sizeof run, "%s%d", prec ? "mixed" : "fp32", seed);
            snprintf(args, sizeof args,
                     "train --data @/sentences.txt --out @/%s --layers 2 --dim 64 --heads 4 "
                     "--context 32 --batch 8 --steps 30 --warmup 5 --eval-every 30 --quiet "
                     "--threads 1 --seed %d --precision %s",
                     run, seed, prec ? "mixed" : "fp32");
            ASSERT_EQ_INT(muon_in("", d, args, NULL), 0);
            double v = last_val_loss(d, run);
            ASSERT(isfinite(v));
            loss[prec][seed - 1] = v;
            mean[prec] += v / 3;
            if (!prec) {
                lo = fmin(lo, v);
                hi = fmax(hi, v);
            }
        }
    printf("    val loss fp32 %.4f %.4f %.4f, mixed %.4f %.4f %.4f: means apart %.4f, "
           "fp32 seeds spread %.4f\n",
           loss[0][0], loss[0][1], loss[0][2], loss[1][0], loss[1][1], loss[1][2],
           fabs(mean[1] - mean[0]), hi - lo);
    ASSERT(loss[1][0] != loss[0][0]); /* mixed did run */
    ASSERT_LE(fabs(mean[1] - mean[0]), hi - lo);
    ASSERT(hi < log(256.0) - 1); /* and both learned */
    ASSERT(mean[1] < log(256.0) - 1);
}
