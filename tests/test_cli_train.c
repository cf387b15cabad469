/* `muon train`, `muon compare`, `muon sample` and `muon ckpt-diff` end to
 * end: the built command ($MUON_BUILD/muon) is run as a process on a corpus
 * the test writes, and its files, stdout, stderr and exit codes are checked.
 * The library-level loop has its own tests (test_train.c); these check what
 * a user sees, including that bad input never touches existing files.
 * Models are tiny (1 layer, width 16, context 16, batch 4) so every run
 * takes a fraction of a second. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cJSON.h>

#include "harness.h"
#include "testutil.h"
#include "train/train.h"

#define TINY "--layers 1 --dim 16 --heads 2 --context 16 --batch 4 --quiet"

static const char *muon_bin(void)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/muon", tu_build_dir());
    return path;
}

static int have_muon(void)
{
    struct stat st;
    return stat(muon_bin(), &st) == 0;
}

/* Where run_cli keeps stdout and stderr: never inside a directory a test
 * checks for intactness. */
static const char *log_dir(void)
{
    static char d[128]; /* a copy: tu_tmpdir reuses its buffers */
    if (!d[0])
        snprintf(d, sizeof d, "%s", tu_tmpdir());
    return d;
}

/* Copy tmpl to buf with every '@' replaced by dir. */
static const char *expand(const char *tmpl, const char *dir, char *buf, size_t cap)
{
    size_t n = 0, dl = strlen(dir);
    for (const char *p = tmpl; *p && n + dl + 1 < cap; p++) {
        if (*p == '@') {
            memcpy(buf + n, dir, dl);
            n += dl;
        } else
            buf[n++] = *p;
    }
    buf[n] = 0;
    return buf;
}

/* Run "muon ARGS" (ARGS with '@' -> dir); returns the exit code. stdout and
 * stderr are kept apart: *out (length *out_len) and *err are malloc'd
 * copies when the pointers are not NULL. */
static int run_cli(const char *dir, const char *args, char **out, size_t *out_len, char **err)
{
    char a[4096], cmd[8192], po[600], pe[600];
    snprintf(po, sizeof po, "%s/stdout", log_dir());
    snprintf(pe, sizeof pe, "%s/stderr", log_dir());
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s' 2>'%s'", muon_bin(), expand(args, dir, a, sizeof a),
             po, pe);
    int rc = tu_run(cmd, NULL);
    size_t len = 0;
    char *o = tu_read_file(po, &len), *e = tu_read_file(pe, NULL);
    if (out)
        *out = o;
    else
        free(o);
    if (out_len)
        *out_len = len;
    if (err)
        *err = e;
    else
        free(e);
    return rc;
}

/* Run and require exit 0; prints the command's stderr when it fails. */
static int run_ok(const char *dir, const char *args)
{
    char *e = NULL;
    int rc = run_cli(dir, args, NULL, NULL, &e);
    if (rc != 0)
        printf("    muon %s\n    exit %d: %s\n", args, rc, e ? e : "");
    free(e);
    return rc;
}

/* A few KB of text with structure a tiny model picks up quickly. */
static int write_corpus(const char *path, int repeats)
{
    static const char line[] = "the quick brown fox jumps over the lazy dog. 0123456789\n";
    size_t ll = sizeof line - 1, n = ll * (size_t)repeats;
    char *buf = malloc(n);
    for (int i = 0; i < repeats; i++)
        memcpy(buf + (size_t)i * ll, line, ll);
    int rc = tu_write_file(path, buf, n);
    free(buf);
    return rc;
}

static char *read_in(const char *dir, const char *name, size_t *len)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return tu_read_file(p, len);
}

/* ---- metrics.jsonl ---- */

typedef struct {
    long step;
    double train_loss, lr, tokens_per_s, val_loss; /* val_loss NAN when absent */
} metric_row;

/* Parse every line with cJSON; returns the row count, or -1 (with a
 * message) when a line is not an object with the required fields. */
static int load_metrics(const char *dir, metric_row *rows, int cap)
{
    char *text = read_in(dir, "metrics.jsonl", NULL);
    if (!text) {
        printf("    %s/metrics.jsonl missing\n", dir);
        return -1;
    }
    int n = 0;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl) {
            printf("    metrics.jsonl: last line has no newline\n");
            n = -1;
            break;
        }
        *nl = 0;
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step"),
                    *l = cJSON_GetObjectItemCaseSensitive(o, "train_loss"),
                    *r = cJSON_GetObjectItemCaseSensitive(o, "lr"),
                    *t = cJSON_GetObjectItemCaseSensitive(o, "tokens_per_s"),
                    *v = cJSON_GetObjectItemCaseSensitive(o, "val_loss");
        int good = cJSON_IsObject(o) && cJSON_IsNumber(s) && cJSON_IsNumber(l) &&
                   cJSON_IsNumber(r) && cJSON_IsNumber(t) && (!v || cJSON_IsNumber(v)) && n < cap;
        if (good)
            rows[n++] = (metric_row){(long)s->valuedouble, l->valuedouble, r->valuedouble,
                                     t->valuedouble, v ? v->valuedouble : NAN};
        cJSON_Delete(o);
        if (!good) {
            printf("    metrics.jsonl: bad line '%s'\n", line);
            n = -1;
            break;
        }
        line = nl + 1;
    }
    free(text);
    return n;
}

/* "max_abs_diff X" from ckpt-diff's output; -1 when absent. */
static double diff_value(const char *out)
{
    const char *p = out ? strstr(out, "max_abs_diff ") : NULL;
    double d;
    return p && sscanf(p, "max_abs_diff %lf", &d) == 1 ? d : -1;
}

/* ---- files that must stay intact ---- */

typedef struct {
    const char *dir;
    int n;
    const char *names[4];
    char *data[4];
    size_t len[4];
} dir_snapshot;

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void snapshot_take(dir_snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        s->data[i] = read_in(s->dir, s->names[i], &s->len[i]);
}

/* The directory holds exactly the snapshot's files, byte for byte (so no
 * new file, and no leftover temporary file either). */
static int snapshot_intact(const dir_snapshot *s)
{
    if (count_entries(s->dir) != s->n) {
        printf("    %s now has %d entries, expected %d\n", s->dir, count_entries(s->dir), s->n);
        return 0;
    }
    for (int i = 0; i < s->n; i++) {
        size_t len;
        char *now = read_in(s->dir, s->names[i], &len);
        int same = now && s->data[i] && len == s->len[i] && !memcmp(now, s->data[i], len);
        free(now);
        if (!same) {
            printf("    %s/%s changed\n", s->dir, s->names[i]);
            return 0;
        }
    }
    return 1;
}

static void snapshot_free(dir_snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
}

/* ---- train ---- */

TEST(cli_train_writes_metrics_checkpoint_and_plot)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    char *out = NULL;
    int rc = run_cli(d, "train --data @/text.txt --out @/run " TINY
                        " --steps 6 --warmup 1 --eval-every 4 --threads 1",
                     &out, NULL, NULL);
    int said_done = out && strstr(out, "done: 6 steps") != NULL;
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(said_done);

    char run[600];
    snprintf(run, sizeof run, "%s/run", d);
    metric_row m[16];
    int n = load_metrics(run, m, 16);
    ASSERT_EQ_INT(n, 6);
    for (int i = 0; i < n; i++) {
        ASSERT_EQ_INT(m[i].step, i + 1);
        ASSERT(isfinite(m[i].train_loss) && m[i].train_loss > 0);
        ASSERT(m[i].lr >= 0 && m[i].lr <= TRAIN_DEFAULT_MUON_LR); /* the default rate, scheduled */
        ASSERT(m[i].tokens_per_s > 0);
        /* validation on eval steps (4) and at the last step (6) only */
        int eval = m[i].step % 4 == 0 || m[i].step == 6;
        ASSERT_EQ_INT(!isnan(m[i].val_loss), eval);
    }
    ASSERT_NEAR(m[0].train_loss, log(256.0), 1e-4); /* zero head: exactly ln V */
    ASSERT(m[5].val_loss < log(256.0));

    size_t len;
    char *ck = read_in(run, "checkpoint.bin", &len);
    int is_ckpt = ck && len > 100 && !memcmp(ck, "MUONCKPT", 8);
    free(ck);
    ASSERT(is_ckpt);
    char *svg = read_in(run, "loss.svg", NULL);
    int is_svg = svg && !strncmp(svg, "<svg", 4) && strstr(svg, "</svg>");
    free(svg);
    ASSERT(is_svg);
    ASSERT_EQ_INT(count_entries(run), 3); /* no temporary files left */
}

/* The contract, through the command line: --steps 20 --stop-at 10,
 * then --steps 20 --resume, equals --steps 20 in one run. The warmup (12)
 * spans the interruption and is above steps/5, so a resume that rebuilt
 * the schedule from defaults instead of the checkpoint would show. */
static void resume_contract(int threads)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600], args[1024];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    const char *flags = TINY " --steps 20 --warmup 12 --schedule cosine --eval-every 5";
    snprintf(args, sizeof args, "train --data @/text.txt --out @/one %s --threads %d", flags,
             threads);
    ASSERT_EQ_INT(run_ok(d, args), 0);
    snprintf(args, sizeof args, "train --data @/text.txt --out @/two %s --stop-at 10 --threads %d",
             flags, threads);
    ASSERT_EQ_INT(run_ok(d, args), 0);

    char one[600], two[600];
    snprintf(one, sizeof one, "%s/one", d);
    snprintf(two, sizeof two, "%s/two", d);
    metric_row a[32], b[32];
    ASSERT_EQ_INT(load_metrics(two, b, 32), 10);
    /* interrupted: a checkpoint at step 10 that differs from step 20's */
    char *out = NULL;
    ASSERT_EQ_INT(run_cli(d, "ckpt-diff @/one/checkpoint.bin @/two/checkpoint.bin", &out, NULL,
                          NULL),
                  0);
    double diff = diff_value(out);
    int says_steps = out && strstr(out, "(step 20 vs 10)") != NULL;
    free(out);
    ASSERT(diff > 0);
    ASSERT(says_steps);

    snprintf(args, sizeof args, "train --steps 20 --resume @/two/checkpoint.bin --threads %d --quiet",
             threads);
    ASSERT_EQ_INT(run_ok(d, args), 0);
    ASSERT_EQ_INT(run_cli(d, "ckpt-diff @/one/checkpoint.bin @/two/checkpoint.bin", &out, NULL,
                          NULL),
                  0);
    diff = diff_value(out);
    int identical = out && strstr(out, "bit-identical") && strstr(out, "(step 20 vs 20)");
    if (!identical)
        printf("    ckpt-diff: %s\n", out ? out : "");
    free(out);
    ASSERT(diff == 0);
    ASSERT(identical);

    /* every step's loss, rate and validation loss agree */
    ASSERT_EQ_INT(load_metrics(one, a, 32), 20);
    ASSERT_EQ_INT(load_metrics(two, b, 32), 20);
    for (int i = 0; i < 20; i++) {
        ASSERT_EQ_INT(b[i].step, i + 1);
        if (a[i].train_loss != b[i].train_loss || a[i].lr != b[i].lr)
            printf("    step %d: loss %.6f vs %.6f, lr %g vs %g\n", i + 1, a[i].train_loss,
                   b[i].train_loss, a[i].lr, b[i].lr);
        ASSERT(a[i].train_loss == b[i].train_loss);
        ASSERT(a[i].lr == b[i].lr);
        ASSERT(isnan(a[i].val_loss) == isnan(b[i].val_loss));
        ASSERT(isnan(a[i].val_loss) || a[i].val_loss == b[i].val_loss);
    }
}

TEST(cli_train_resume_equals_one_run_1_thread)
{
    resume_contract(1);
}

TEST(cli_train_resume_equals_one_run_2_threads)
{
    resume_contract(2);
}

/* ---- ckpt-diff ---- */

TEST(cli_ckpt_diff_differences_shapes_and_usage)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    ASSERT_EQ_INT(run_ok(d, "train --data @/text.txt --out @/a " TINY
                            " --steps 4 --warmup 1 --threads 1 --seed 1"),
                  0);
    ASSERT_EQ_INT(run_ok(d, "train --data @/text.txt --out @/b " TINY
                            " --steps 4 --warmup 1 --threads 1 --seed 2"),
                  0);
    ASSERT_EQ_INT(run_ok(d, "train --data @/text.txt --out @/wide --layers 1 --dim 32 --heads 2 "
                            "--context 16 --batch 4 --quiet --steps 2 --warmup 1 --threads 1"),
                  0);
    char *out = NULL, *err = NULL;
    /* a checkpoint against itself: 0 */
    ASSERT_EQ_INT(run_cli(d, "ckpt-diff @/a/checkpoint.bin @/a/checkpoint.bin", &out, NULL, NULL),
                  0);
    double self = diff_value(out);
    free(out);
    ASSERT(self == 0);
    /* different seeds: a positive difference, and not "bit-identical" */
    ASSERT_EQ_INT(run_cli(d, "ckpt-diff @/a/checkpoint.bin @/b/checkpoint.bin", &out, NULL, NULL),
                  0);
    double diff = diff_value(out);
    int claims_same = out && strstr(out, "bit-identical") != NULL;
    free(out);
    ASSERT(diff > 0 && isfinite(diff));
    ASSERT(!claims_same);
    /* different model shapes: exit 1, both shapes named, nothing on stdout */
    size_t olen = 1;
    int rc = run_cli(d, "ckpt-diff @/a/checkpoint.bin @/wide/checkpoint.bin", &out, &olen, &err);
    int named = err && strstr(err, "different models") && strstr(err, "D=16") &&
                strstr(err, "D=32");
    free(out);
    free(err);
    ASSERT_EQ_INT(rc, 1);
    ASSERT(named);
    ASSERT_EQ_INT(olen, 0);
    /* a missing file: exit 1 naming it */
    rc = run_cli(d, "ckpt-diff @/a/checkpoint.bin @/nope.bin", NULL, NULL, &err);
    named = err && strstr(err, "nope.bin") != NULL;
    free(err);
    ASSERT_EQ_INT(rc, 1);
    ASSERT(named);
    /* wrong argument counts: usage, exit 2 */
    static const char *const usage_cases[] = {"ckpt-diff", "ckpt-diff @/a/checkpoint.bin",
                                              "ckpt-diff @/a/checkpoint.bin @/a/checkpoint.bin "
                                              "@/b/checkpoint.bin"};
    for (int k = 0; k < 3; k++) {
        rc = run_cli(d, usage_cases[k], NULL, NULL, &err);
        int msg = err && (strstr(err, "usage") || strstr(err, "unexpected argument"));
        if (rc != 2 || !msg)
            printf("    %s: exit %d, stderr '%s'\n", usage_cases[k], rc, err ? err : "");
        free(err);
        ASSERT_EQ_INT(rc, 2);
        ASSERT(msg);
    }
}

/* ---- sample ---- */

TEST(cli_sample_prints_prompt_and_is_deterministic)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    ASSERT_EQ_INT(run_ok(d, "train --data @/text.txt --out @/run " TINY
                            " --steps 20 --warmup 2 --threads 1 --lr 0.02"),
                  0);
    const char *base = "sample --checkpoint @/run/checkpoint.bin --tokens 20 --prompt 'the ' "
                       "--threads 1";
    char args[1024];
    char *s[4] = {0};
    size_t len[4] = {0};
    int rc[4];
    const char *extra[4] = {"--seed 3", "--seed 3", "--seed 4", "--temperature 0 --seed 1"};
    for (int k = 0; k < 4; k++) {
        snprintf(args, sizeof args, "%s %s", base, extra[k]);
        rc[k] = run_cli(d, args, &s[k], &len[k], NULL);
    }
    snprintf(args, sizeof args, "%s --temperature 0 --seed 2", base);
    char *g2 = NULL;
    size_t g2len = 0;
    int rc_g2 = run_cli(d, args, &g2, &g2len, NULL);
    int ok = 1;
    for (int k = 0; k < 4; k++)
        /* byte tokenizer: the prompt, one byte per token, a newline */
        ok = ok && rc[k] == 0 && s[k] && len[k] == 4 + 20 + 1 && !memcmp(s[k], "the ", 4) &&
             s[k][len[k] - 1] == '\n';
    int same_seed = ok && !memcmp(s[0], s[1], len[0]);
    int other_seed = ok && memcmp(s[0], s[2], len[0]) != 0;
    int greedy_same = ok && rc_g2 == 0 && g2len == len[3] && !memcmp(g2, s[3], len[3]);
    if (!ok)
        for (int k = 0; k < 4; k++)
            printf("    %s: exit %d, %zu bytes\n", extra[k], rc[k], len[k]);
    for (int k = 0; k < 4; k++)
        free(s[k]);
    free(g2);
    ASSERT(ok);
    ASSERT(same_seed);
    ASSERT(other_seed);  /* temperature 0.8 on a barely trained model */
    ASSERT(greedy_same); /* temperature 0: the seed plays no part */
}

TEST(cli_sample_bad_checkpoint_fails_cleanly)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    ASSERT_EQ_INT(run_ok(d, "train --data @/text.txt --out @/run " TINY
                            " --steps 2 --warmup 1 --threads 1"),
                  0);
    size_t len;
    char *ck = read_in(d, "run/checkpoint.bin", &len);
    ASSERT(ck && len > 64);
    ck[len / 2] ^= 0x10;
    snprintf(p, sizeof p, "%s/flipped.bin", d);
    tu_write_file(p, ck, len);
    free(ck);
    struct {
        const char *args;
        int code;
        const char *needle;
    } cases[] = {
        {"sample --checkpoint @/missing.bin --tokens 5", 1, "missing.bin"},
        {"sample --checkpoint @/flipped.bin --tokens 5", 1, "corrupted"},
        {"sample --checkpoint @/text.txt --tokens 5", 1, "not a muon checkpoint"},
        {"sample --tokens 5", 2, "--checkpoint"},
        {"sample --checkpoint @/run/checkpoint.bin --temperature -1", 2, "--temperature"},
    };
    for (int k = 0; k < (int)(sizeof cases / sizeof cases[0]); k++) {
        char *out = NULL, *err = NULL;
        size_t olen = 1;
        int rc = run_cli(d, cases[k].args, &out, &olen, &err);
        int msg = err && strstr(err, cases[k].needle) && !strncmp(err, "muon sample: ", 13);
        if (rc != cases[k].code || !msg || olen != 0)
            printf("    %s: exit %d, stdout %zu bytes, stderr '%s'\n", cases[k].args, rc, olen,
                   err ? err : "");
        free(out);
        free(err);
        ASSERT_EQ_INT(rc, cases[k].code);
        ASSERT(msg);
        ASSERT_EQ_INT(olen, 0); /* no partial text */
    }
}

/* ---- compare ---- */

static const cJSON *get_path(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

/* The side's chosen rate is the best of its own sweep, and the sweep
 * covered the whole grid (the fairness rule of train/compare.c). */
static int side_is_fair(const cJSON *root, const char *name)
{
    const cJSON *lr = get_path(root, name, "lr"), *sw = get_path(root, name, "sweep");
    if (!cJSON_IsNumber(lr) || !cJSON_IsArray(sw))
        return 0;
    static const double grid[3] = {0.001, 0.01, 0.1};
    int seen[3] = {0, 0, 0};
    double best = INFINITY, best_lr = -1;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, sw)
    {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(pt, "lr"),
                    *v = cJSON_GetObjectItemCaseSensitive(pt, "val_loss");
        if (!cJSON_IsNumber(l))
            return 0;
        for (int i = 0; i < 3; i++)
            seen[i] |= fabs(l->valuedouble - grid[i]) <= 1e-12;
        if (cJSON_IsNumber(v) && v->valuedouble < best) {
            best = v->valuedouble;
            best_lr = l->valuedouble;
        }
    }
    if (!seen[0] || !seen[1] || !seen[2] || best_lr != lr->valuedouble) {
        printf("    %s: lr %g, best of sweep %g, grid seen %d%d%d\n", name, lr->valuedouble,
               best_lr, seen[0], seen[1], seen[2]);
        return 0;
    }
    return 1;
}

TEST(cli_compare_writes_report_plot_and_summary)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    char *out = NULL;
    int rc = run_cli(d, "compare --data @/text.txt --out @/cmp " TINY
                        " --steps 8 --sweep-steps 2 --lr-grid 0.001,0.01,0.1 --eval-every 4 "
                        "--warmup 1 --threads 1",
                     &out, NULL, NULL);
    int said = out && strstr(out, "speedup") && strstr(out, "report.md");
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(said);

    char cmp[600];
    snprintf(cmp, sizeof cmp, "%s/cmp", d);
    char *md = read_in(cmp, "report.md", NULL);
    int md_ok = md && strstr(md, "| AdamW |") && strstr(md, "Muon") && strstr(md, "**Speedup**");
    free(md);
    ASSERT(md_ok);
    char *svg = read_in(cmp, "compare.svg", NULL);
    int svg_ok = svg && !strncmp(svg, "<svg", 4) && strstr(svg, "</svg>");
    free(svg);
    ASSERT(svg_ok);

    char *js = read_in(cmp, "summary.json", NULL);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    ASSERT(root != NULL);
    const cJSON *aw = get_path(root, "adamw", "final_val_loss"),
                *mu = get_path(root, "muon", "final_val_loss"), *sp = get_path(root, "speedup", NULL);
    int numbers = cJSON_IsNumber(aw) && cJSON_IsNumber(mu) && isfinite(aw->valuedouble) &&
                  isfinite(mu->valuedouble) && aw->valuedouble > 0 && mu->valuedouble > 0 &&
                  aw->valuedouble < log(256.0) && mu->valuedouble < log(256.0);
    int speedup_ok = cJSON_IsNull(sp) || (cJSON_IsNumber(sp) && sp->valuedouble > 0);
    int fair = side_is_fair(root, "adamw") && side_is_fair(root, "muon");
    cJSON_Delete(root);
    ASSERT(numbers);
    ASSERT(speedup_ok);
    ASSERT(fair);

    /* both final runs trained the full budget */
    char sub[700];
    metric_row m[16];
    snprintf(sub, sizeof sub, "%s/adamw", cmp);
    ASSERT_EQ_INT(load_metrics(sub, m, 16), 8);
    snprintf(sub, sizeof sub, "%s/muon", cmp);
    ASSERT_EQ_INT(load_metrics(sub, m, 16), 8);
}

/* ---- bad input ---- */

typedef struct {
    const char *args; /* '@' = the test's directory */
    int code;
    const char *needle; /* in the stderr message */
} bad_case;

static int check_bad_cases(const char *d, const bad_case *cases, int n, const char *prog,
                           dir_snapshot *snaps, int n_snaps)
{
    int ok = 1;
    for (int k = 0; k < n; k++) {
        char *err = NULL, *out = NULL;
        int rc = run_cli(d, cases[k].args, &out, NULL, &err);
        int msg = err && strstr(err, cases[k].needle) && !strncmp(err, prog, strlen(prog));
        int intact = 1;
        for (int i = 0; i < n_snaps; i++)
            intact = snapshot_intact(&snaps[i]) && intact;
        if (rc != cases[k].code || !msg || !intact) {
            printf("    muon %s\n      exit %d (want %d), stderr '%s' (want '%s')%s\n",
                   cases[k].args, rc, cases[k].code, err ? err : "", cases[k].needle,
                   intact ? "" : ", files changed");
            ok = 0;
        }
        free(err);
        free(out);
        if (!intact)
            break; /* every later case would report the same change */
    }
    return ok;
}

TEST(cli_train_bad_input_leaves_files_intact)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *d = tu_tmpdir();
    char p[600];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    snprintf(p, sizeof p, "%s/other.txt", d);
    ASSERT(write_corpus(p, 61) == 0);
    snprintf(p, sizeof p, "%s/empty.txt", d);
    ASSERT(tu_write_file(p, "", 0) == 0);
    snprintf(p, sizeof p, "%s/short.txt", d);
    ASSERT(tu_write_file(p, "shorter than a context", 22) == 0);
    /* a checkpoint interrupted at step 3 of 6, which a resume could use */
    ASSERT_EQ_INT(run_ok(d, "train --data @/text.txt --out @/good " TINY
                            " --steps 6 --warmup 1 --stop-at 3 --threads 1"),
                  0);
    size_t len;
    char *ck = read_in(d, "good/checkpoint.bin", &len);
    ASSERT(ck && len > 64);
    snprintf(p, sizeof p, "%s/truncated.bin", d);
    tu_write_file(p, ck, len - len / 3);
    ck[len / 3] ^= 0x01;
    snprintf(p, sizeof p, "%s/flipped.bin", d);
    tu_write_file(p, ck, len);
    free(ck);
    snprintf(p, sizeof p, "%s/foreign.bin", d);
    tu_write_file(p, "\x89PNG\r\n\x1a\n not a checkpoint at all", 32);
    /* an existing output directory with sentinel files */
    snprintf(p, sizeof p, "%s/out", d);
    mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/out/metrics.jsonl", d);
    tu_write_file(p, "{\"step\":1,\"train_loss\":9}\n", 26);
    snprintf(p, sizeof p, "%s/out/checkpoint.bin", d);
    tu_write_file(p, "sentinel checkpoint", 19);

    char out_dir[600], good_dir[600];
    snprintf(out_dir, sizeof out_dir, "%s/out", d);
    snprintf(good_dir, sizeof good_dir, "%s/good", d);
    dir_snapshot snaps[2] = {{out_dir, 2, {"metrics.jsonl", "checkpoint.bin"}, {0}, {0}},
                             {good_dir, 3, {"metrics.jsonl", "checkpoint.bin", "loss.svg"}, {0},
                              {0}}};
    snapshot_take(&snaps[0]);
    snapshot_take(&snaps[1]);

#define F " --out @/out " TINY " --threads 1"
    static const bad_case cases[] = {
        /* data */
        {"train" F " --steps 6", 2, "--data is required"},
        {"train --data @/nope.txt" F " --steps 6", 1, "nope.txt"},
        {"train --data @/empty.txt" F " --steps 6", 1, "empty"},
        {"train --data @/short.txt" F " --steps 6", 1, "need at least 17"},
        /* checkpoints */
        {"train --data @/text.txt" F " --steps 6 --resume @/truncated.bin", 1, "truncated"},
        {"train --data @/text.txt" F " --steps 6 --resume @/flipped.bin", 1, "corrupted"},
        {"train --data @/text.txt" F " --steps 6 --resume @/foreign.bin", 1,
         "not a muon checkpoint"},
        {"train --data @/text.txt" F " --steps 6 --resume @/text.txt", 1, "not a muon checkpoint"},
        {"train --data @/text.txt" F " --steps 6 --resume @/missing.bin", 1, "missing.bin"},
        /* a checkpoint with contradictory flags (it would write beside itself) */
        {"train --resume @/good/checkpoint.bin --dim 32 --quiet", 2, "different model shape"},
        {"train --resume @/good/checkpoint.bin --layers 2 --quiet", 2, "different model shape"},
        {"train --resume @/good/checkpoint.bin --batch 8 --quiet", 2, "--batch"},
        {"train --resume @/good/checkpoint.bin --optim adamw --quiet", 2, "--optim"},
        {"train --resume @/good/checkpoint.bin --steps 2 --quiet", 2, "--steps"},
        {"train --resume @/good/checkpoint.bin --stop-at 2 --quiet", 2, "nothing to run"},
        {"train --resume @/good/checkpoint.bin --stop-at 3 --quiet", 2, "nothing to run"},
        {"train --resume @/good/checkpoint.bin --data @/other.txt --quiet", 1, "different data"},
        {"train --resume @/good/checkpoint.bin --data @/nope.txt --quiet", 1, "nope.txt"},
        /* flags */
        {"train --data @/text.txt" F " --steps 0", 2, "--steps"},
        {"train --data @/text.txt" F " --steps abc", 2, "'abc'"},
        {"train --data @/text.txt" F " --steps 6 --steps 7", 2, "more than once"},
        {"train --data @/text.txt" F " --steps 6 --optim sgd", 2, "'sgd'"},
        {"train --data @/text.txt" F " --steps 6 --schedule linear", 2, "'linear'"},
        {"train --data @/text.txt --out @/out --layers 1 --dim 16 --heads 3 --context 16 "
         "--batch 4 --quiet --steps 6",
         2, "--heads (3)"},
        {"train --data @/text.txt" F " --steps 6 --stop-at 7", 2, "--stop-at"},
        {"train --data @/text.txt" F " --steps 6 --warmup 7", 2, "--warmup"},
        {"train --data @/text.txt" F " --steps 6 --lr -1", 2, "--lr"},
        {"train --data @/text.txt" F " --steps 6 --lr nan", 2, "--lr"},
        {"train --data @/text.txt" F " --steps 6 --adam-lr 0", 2, "--adam-lr"},
        {"train --data @/text.txt" F " --steps 6 --threads -1", 2, "--threads"},
        {"train --data @/text.txt" F " --steps 6 --coeffs nope", 2, "--coeffs"},
        {"train --data @/text.txt" F " --steps 6 --bogus", 2, "unknown flag '--bogus'"},
        {"train --data @/text.txt" F " --steps 6 stray", 2, "unexpected argument 'stray'"},
        {"train --data @/text.txt" F " --steps 6 --tokenizer gpt2", 2, "--bpe-dir"},
        {"train --data @/text.txt" F " --steps 6 --tokenizer gpt2 --bpe-dir @/nodir", 1,
         "encoder.json"},
        {"train --data @/text.txt" F " --steps 6 --tokenizer sentencepiece", 2, "--tokenizer"},
        /* the output path is a file */
        {"train --data @/text.txt --out @/out/checkpoint.bin " TINY " --steps 6", 1,
         "not a directory"},
    };
    static const bad_case compare_cases[] = {
        {"compare" F " --steps 8", 2, "--data is required"},
        {"compare --data @/empty.txt" F " --steps 8 --sweep-steps 2", 1, "empty"},
        {"compare --data @/text.txt" F " --steps 8 --lr-grid 0.1,0.01", 2, "--lr-grid"},
        {"compare --data @/text.txt" F " --steps 8 --lr-grid 0.1,x", 2, "--lr-grid"},
        {"compare --data @/text.txt" F " --steps 8 --sweep-steps 0", 2, "--sweep-steps"},
        {"compare --data @/text.txt" F " --steps 8 --resume @/good/checkpoint.bin", 2,
         "unknown flag '--resume'"},
    };
#undef F
    int ok = check_bad_cases(d, cases, (int)(sizeof cases / sizeof cases[0]), "muon train: ",
                             snaps, 2);
    int ok2 = check_bad_cases(d, compare_cases, (int)(sizeof compare_cases / sizeof compare_cases[0]),
                              "muon compare: ", snaps, 2);
    snapshot_free(&snaps[0]);
    snapshot_free(&snaps[1]);
    ASSERT(ok);
    ASSERT(ok2);
}

/* ---- GPT-2 tokens ---- */

/* The GPT-2 files, or NULL. The test's processes share its working
 * directory, so a relative path serves both the run and the sample. */
static const char *gpt2_dir(void)
{
    static char buf[1024];
    const char *env = getenv("MUON_SHARED");
    struct stat st, st2;
    if (env && *env)
        snprintf(buf, sizeof buf, "%s/data/gpt2", env);
    else
        snprintf(buf, sizeof buf, "../shared/data/gpt2");
    char e[1100], v[1100];
    snprintf(e, sizeof e, "%s/encoder.json", buf);
    snprintf(v, sizeof v, "%s/vocab.bpe", buf);
    return stat(e, &st) == 0 && stat(v, &st2) == 0 ? buf : NULL;
}

TEST(cli_train_gpt2_tokenizer)
{
    if (!have_muon())
        SKIP("build/muon not built");
    const char *bpe = gpt2_dir();
    if (!bpe)
        SKIP("../shared/data/gpt2/{encoder.json,vocab.bpe} absent");
    const char *d = tu_tmpdir();
    char p[600], args[2048];
    snprintf(p, sizeof p, "%s/text.txt", d);
    ASSERT(write_corpus(p, 60) == 0);
    snprintf(args, sizeof args,
             "train --data @/text.txt --out @/run --tokenizer gpt2 --bpe-dir '%s' --layers 1 "
             "--dim 16 --heads 2 --context 8 --batch 2 --steps 2 --warmup 1 --eval-batches 1 "
             "--threads 1 --quiet",
             bpe);
    ASSERT_EQ_INT(run_ok(d, args), 0);
    char run[600];
    snprintf(run, sizeof run, "%s/run", d);
    metric_row m[4];
    ASSERT_EQ_INT(load_metrics(run, m, 4), 2);
    /* zero head: the first loss is ln(50257) */
    ASSERT_NEAR(m[0].train_loss, log(50257.0), 1e-3);
    ASSERT(!isnan(m[1].val_loss));
    /* the checkpoint remembers its tokenizer: sample decodes GPT-2 tokens */
    char *out = NULL;
    int rc = run_cli(d, "sample --checkpoint @/run/checkpoint.bin --tokens 3 --prompt Hello "
                        "--threads 1",
                     &out, NULL, NULL);
    int starts = out && !strncmp(out, "Hello", 5);
    free(out);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(starts);
}
