/* The training loop: outputs, bit-identical resume, and bad input that must
 * fail cleanly and leave existing files intact. Small models, a few steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"
#include "testutil.h"
#include "train/compare.h"
#include "train/train.h"

/* A few KB of text with structure a tiny model can pick up. */
static void write_corpus(const char *path, int repeats)
{
    static const char line[] = "the quick brown fox jumps over the lazy dog. 0123456789\n";
    size_t n = (sizeof line - 1) * (size_t)repeats;
    char *buf = malloc(n);
    for (int i = 0; i < repeats; i++)
        memcpy(buf + (size_t)i * (sizeof line - 1), line, sizeof line - 1);
    tu_write_file(path, buf, n);
    free(buf);
}

static train_config tiny_config(const char *data, const char *out)
{
    train_config c = train_config_default();
    snprintf(c.data, sizeof c.data, "%s", data);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", out);
    c.model.layers = 1;
    c.model.dim = 16;
    c.model.heads = 2;
    c.model.context = 16;
    c.batch = 4;
    c.steps = 12;
    c.warmup = 2;
    c.eval_every = 4;
    c.eval_batches = 2;
    c.threads = 2;
    c.progress = TRAIN_PROGRESS_QUIET;
    return c;
}

static int file_exists(const char *dir, const char *name)
{
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && st.st_size > 0;
}

static int count_lines(const char *path)
{
    size_t len;
    char *s = tu_read_file(path, &len);
    int n = 0;
    for (size_t i = 0; s && i < len; i++)
        n += s[i] == '\n';
    free(s);
    return n;
}

TEST(train_writes_metrics_checkpoint_and_plot)
{
    const char *dir = tu_tmpdir();
    char data[256], out[256], metrics[300], err[TRAIN_ERR_LEN];
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    write_corpus(data, 60);
    train_config c = tiny_config(data, out);
    train_result r;
    int rc = train_run(&c, NULL, &r, err, sizeof err);
    if (rc)
        printf("    %s\n", err);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(r.steps_done, 12);
    ASSERT_EQ_INT(r.n_evals, 3); /* steps 4, 8, 12 */
    ASSERT(isfinite(r.final_val_loss) && r.final_val_loss < log(256.0));
    ASSERT(r.opt_state_bytes > 0 && r.tokens_per_s > 0);
    train_result_free(&r);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    ASSERT_EQ_INT(count_lines(metrics), 12);
    ASSERT(file_exists(out, "checkpoint.bin"));
    ASSERT(file_exists(out, "loss.svg"));
    char *m = tu_read_file(metrics, NULL);
    int ok = m && strstr(m, "\"step\":1,") && strstr(m, "\"val_loss\"") &&
             strstr(m, "\"tokens_per_s\"") && strstr(m, "\"lr\"");
    free(m);
    ASSERT(ok);
}

/* --steps 12 --stop-at 6, then --resume, equals --steps 12 in one run. */
static void resume_case(muon_algo algo)
{
    const char *dir = tu_tmpdir();
    char data[256], one[256], two[256], ck[300], err[TRAIN_ERR_LEN];
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(one, sizeof one, "%s/one", dir);
    snprintf(two, sizeof two, "%s/two", dir);
    write_corpus(data, 60);
    train_config c = tiny_config(data, one);
    c.optim = algo;
    c.schedule = MUON_SCHED_COSINE;
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 0);
    snprintf(c.out_dir, sizeof c.out_dir, "%s", two);
    c.stop_at = 6;
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 0);
    c.stop_at = 0;
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", two);
    int rc = train_run(&c, ck, NULL, err, sizeof err);
    if (rc)
        printf("    %s\n", err);
    ASSERT_EQ_INT(rc, 0);
    train_ckpt a, b;
    char pa[300];
    snprintf(pa, sizeof pa, "%s/checkpoint.bin", one);
    ASSERT_EQ_INT(train_ckpt_load(pa, &a, err, sizeof err), 0);
    ASSERT_EQ_INT(train_ckpt_load(ck, &b, err, sizeof err), 0);
    int same = a.n_params == b.n_params && a.step == 12 && b.step == 12 &&
               !memcmp(a.params, b.params, a.n_params * sizeof(float)) &&
               a.opt_state_len == b.opt_state_len &&
               !memcmp(a.opt_state, b.opt_state, a.opt_state_len);
    train_ckpt_free(&a);
    train_ckpt_free(&b);
    ASSERT(same);
    /* the losses of every step agree too (tokens/s differs, so compare the
     * step and loss fields line by line) */
    char ma[300], mb[300];
    snprintf(ma, sizeof ma, "%s/metrics.jsonl", one);
    snprintf(mb, sizeof mb, "%s/metrics.jsonl", two);
    char *x = tu_read_file(ma, NULL), *y = tu_read_file(mb, NULL);
    int lines_equal = x && y;
    for (char *p = x, *q = y; lines_equal && *p && *q;) {
        char *tp = strstr(p, ",\"tokens_per_s\""), *tq = strstr(q, ",\"tokens_per_s\"");
        lines_equal = tp && tq && (tp - p) == (tq - q) && !memcmp(p, q, (size_t)(tp - p));
        p = strchr(p, '\n');
        q = strchr(q, '\n');
        if (!p || !q)
            break;
        p++;
        q++;
    }
    free(x);
    free(y);
    ASSERT(lines_equal);
    ASSERT_EQ_INT(count_lines(mb), 12);
}

TEST(train_resume_is_bit_identical_muon)
{
    resume_case(MUON_ALGO_MUON);
}

TEST(train_resume_is_bit_identical_adamw)
{
    resume_case(MUON_ALGO_ADAMW);
}

TEST(train_bad_data_fails_cleanly)
{
    const char *dir = tu_tmpdir();
    char data[256], out[256], err[TRAIN_ERR_LEN];
    snprintf(out, sizeof out, "%s/run", dir);
    train_config c = tiny_config("/nonexistent/data.txt", out);
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 1);
    ASSERT(strstr(err, "/nonexistent/data.txt") != NULL);
    snprintf(data, sizeof data, "%s/empty.txt", dir);
    tu_write_file(data, "", 0);
    c = tiny_config(data, out);
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 1);
    ASSERT(strstr(err, "empty") != NULL);
    snprintf(data, sizeof data, "%s/short.txt", dir);
    tu_write_file(data, "too short", 9);
    c = tiny_config(data, out);
    ASSERT(train_run(&c, NULL, NULL, err, sizeof err) != 0);
    struct stat st;
    ASSERT(stat(out, &st) != 0); /* nothing was created */
}

TEST(train_bad_checkpoints_leave_files_intact)
{
    const char *dir = tu_tmpdir();
    char data[256], out[256], ck[300], metrics[300], bad[300], err[TRAIN_ERR_LEN];
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    write_corpus(data, 60);
    train_config c = tiny_config(data, out);
    c.stop_at = 4;
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 0);
    snprintf(ck, sizeof ck, "%s/checkpoint.bin", out);
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", out);
    size_t ck_len, m_len;
    char *ck0 = tu_read_file(ck, &ck_len), *m0 = tu_read_file(metrics, &m_len);
    ASSERT(ck0 && m0);
    c.stop_at = 0;
    /* truncated, corrupted and foreign checkpoints */
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    tu_write_file(bad, ck0, ck_len / 2);
    int r1 = train_run(&c, bad, NULL, err, sizeof err);
    ck0[ck_len / 3] ^= 1;
    tu_write_file(bad, ck0, ck_len);
    ck0[ck_len / 3] ^= 1;
    int r2 = train_run(&c, bad, NULL, err, sizeof err);
    tu_write_file(bad, "\x89PNG\r\n\x1a\n not a checkpoint", 25);
    int r3 = train_run(&c, bad, NULL, err, sizeof err);
    /* a checkpoint of a different model shape */
    train_config wide = c;
    wide.model.dim = 32;
    int r4 = train_run(&wide, ck, NULL, err, sizeof err);
    int clash = strstr(err, "different") != NULL;
    /* different data */
    char other[256];
    snprintf(other, sizeof other, "%s/other.txt", dir);
    write_corpus(other, 61);
    train_config od = c;
    snprintf(od.data, sizeof od.data, "%s", other);
    int r5 = train_run(&od, ck, NULL, err, sizeof err);
    /* a different precision or orthogonalization: the resume would no
     * longer continue the same run */
    train_config mixed = c;
    mixed.ortho.precision = MUON_PRECISION_MIXED;
    int r6 = train_run(&mixed, ck, NULL, err, sizeof err);
    int names_precision = strstr(err, "--precision") != NULL;
    train_config steps = c;
    steps.ortho.steps = 3;
    int r7 = train_run(&steps, ck, NULL, err, sizeof err);
    train_config norestart = c;
    norestart.ortho.gram_restarts = MUON_GRAM_NO_RESTARTS;
    int r8 = train_run(&norestart, ck, NULL, err, sizeof err);
    int names_restarts = strstr(err, "--restarts") != NULL;
    /* the default spelled out is the same setting */
    train_config explicit_default = c;
    explicit_default.ortho.gram_restarts = MUON_GRAM_DEFAULT_RESTARTS;
    explicit_default.steps = 1; /* below the checkpoint's step: refused for that alone */
    train_run(&explicit_default, ck, NULL, err, sizeof err);
    int only_steps = strstr(err, "--steps") != NULL && !strstr(err, "orthogonalization");
    size_t l1, l2;
    char *ck1 = tu_read_file(ck, &l1), *m1 = tu_read_file(metrics, &l2);
    int intact = ck1 && m1 && l1 == ck_len && l2 == m_len && !memcmp(ck0, ck1, l1) &&
                 !memcmp(m0, m1, l2);
    free(ck0);
    free(m0);
    free(ck1);
    free(m1);
    ASSERT_EQ_INT(r1, 1);
    ASSERT_EQ_INT(r2, 1);
    ASSERT_EQ_INT(r3, 1);
    ASSERT_EQ_INT(r4, 2);
    ASSERT(clash);
    ASSERT_EQ_INT(r5, 1);
    ASSERT_EQ_INT(r6, 2);
    ASSERT(names_precision);
    ASSERT_EQ_INT(r7, 2);
    ASSERT_EQ_INT(r8, 2);
    ASSERT(names_restarts);
    ASSERT(only_steps);
    ASSERT(intact);
}

TEST(train_config_rejects_contradictions)
{
    char err[TRAIN_ERR_LEN];
    train_config c = tiny_config("x", "y");
    c.stop_at = 13; /* beyond --steps */
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 2);
    c = tiny_config("x", "y");
    c.model.heads = 3; /* 16 % 3 != 0 */
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 2);
    c = tiny_config("x", "y");
    c.lr = -1;
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 2);
    c = tiny_config("x", "y");
    c.warmup = 100;
    ASSERT_EQ_INT(train_run(&c, NULL, NULL, err, sizeof err), 2);
}

TEST(compare_steps_to_reach_interpolates)
{
    long steps[4] = {10, 20, 30, 40};
    double loss[4] = {3.0, 2.0, 1.5, 1.2};
    ASSERT_NEAR(compare_steps_to_reach(steps, loss, 4, 2.0), 20.0, 1e-12);
    ASSERT_NEAR(compare_steps_to_reach(steps, loss, 4, 1.75), 25.0, 1e-12);
    ASSERT_NEAR(compare_steps_to_reach(steps, loss, 4, 5.0), 10.0, 1e-12);
    ASSERT_NEAR(compare_steps_to_reach(steps, loss, 4, 1.0), -1.0, 1e-12);
}

TEST(train_config_json_round_trip)
{
    train_config c = tiny_config("/some/data", "/out");
    c.optim = MUON_ALGO_ADAMW;
    c.seed = 0xFFFFFFFFFFFFFFF1ull;
    c.lr = 0.0123;
    c.schedule = MUON_SCHED_COSINE;
    muon_coeffs_parse("taylor-3", &c.ortho);
    char *j = train_config_to_json(&c);
    train_config d;
    char err[256];
    ASSERT(j != NULL);
    int rc = train_config_from_json(j, strlen(j), &d, err, sizeof err);
    int wrote_restarts = strstr(j, "restarts") != NULL;
    free(j);
    ASSERT_EQ_INT(rc, 0);
    ASSERT(d.seed == c.seed && d.lr == c.lr && d.optim == c.optim && d.schedule == c.schedule);
    ASSERT(d.ortho.coeffs == MUON_COEFFS_TAYLOR && d.ortho.taylor_k == 3);
    ASSERT(d.model.dim == 16 && d.model.heads == 2 && !strcmp(d.data, "/some/data"));
    ASSERT(!wrote_restarts); /* the default is not written */
    ASSERT_EQ_INT(d.ortho.gram_restarts, MUON_GRAM_DEFAULT_RESTARTS);
    /* restarts: a set one comes back; one that the steps cannot hold, or
     * garbage, is refused */
    c.ortho.gram_restarts = (1u << 2) | (1u << 4);
    j = train_config_to_json(&c);
    ASSERT(j && strstr(j, "\"restarts\":\"2,4\""));
    rc = train_config_from_json(j, strlen(j), &d, err, sizeof err);
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(d.ortho.gram_restarts, (1u << 2) | (1u << 4));
    char *at = strstr(j, "\"ns_steps\":5");
    ASSERT(at != NULL);
    at[11] = '4'; /* ns_steps 4: a restart before step 4 no longer exists */
    ASSERT_EQ_INT(train_config_from_json(j, strlen(j), &d, err, sizeof err), -1);
    ASSERT(strstr(err, "restarts") != NULL);
    free(j);
    ASSERT_EQ_INT(train_config_from_json("{\"dim\": 3}", 10, &d, err, sizeof err), -1);
    ASSERT_EQ_INT(train_config_from_json("not json", 8, &d, err, sizeof err), -1);
}

/* Text with some structure to learn: words from a small list in an order
 * given by a fixed LCG. */
static void write_words(const char *path, size_t n)
{
    static const char *const words[] = {"muon", "adam", "matrix", "step", "the", "of",
                                        "orthogonal", "gradient", "loss", "and", "a", "model",
                                        "token", "layer", "is", "to", "rate", "weight"};
    const size_t nw = sizeof words / sizeof words[0];
    char *buf = malloc(n + 16);
    size_t len = 0;
    unsigned long long s = 12345;
    while (len < n) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const char *w = words[(s >> 33) % nw];
        size_t l = strlen(w);
        if (len + l + 1 > n)
            break;
        memcpy(buf + len, w, l);
        len += l;
        buf[len++] = (s >> 20) % 7 == 0 ? '\n' : ' ';
    }
    tu_write_file(path, buf, len);
    free(buf);
}

/* Mixed precision must train as well as fp32: the val loss after a short
 * Muon run stays within a few percent. (A Gram-NS form of the bf16 steps
 * once passed every orthogonality check and still wrecked training.) */
TEST(train_mixed_precision_tracks_fp32)
{
    const char *dir = tu_tmpdir();
    char data[256], out[256], err[TRAIN_ERR_LEN];
    snprintf(data, sizeof data, "%s/words.txt", dir);
    write_words(data, 40000);
    double loss[2];
    for (int p = 0; p < 2; p++) {
        snprintf(out, sizeof out, "%s/run%d", dir, p);
        train_config c = tiny_config(data, out);
        c.model.layers = 2;
        c.model.dim = 64;
        c.model.heads = 4;
        c.model.context = 32;
        c.batch = 8;
        c.steps = 60;
        c.warmup = 5;
        c.eval_every = 60;
        c.eval_batches = 4;
        c.lr = 0.02;
        c.ortho.precision = p ? MUON_PRECISION_MIXED : MUON_PRECISION_FP32;
        train_result r;
        int rc = train_run(&c, NULL, &r, err, sizeof err);
        if (rc)
            printf("    %s\n", err);
        ASSERT_EQ_INT(rc, 0);
        loss[p] = r.final_val_loss;
        train_result_free(&r);
    }
    printf("    val loss fp32 %.4f, mixed %.4f\n", loss[0], loss[1]);
    ASSERT(isfinite(loss[0]) && isfinite(loss[1]));
    ASSERT(loss[0] < 0.6 * log(256.0)); /* it learned something */
    ASSERT(fabs(loss[1] - loss[0]) < 0.05 * loss[0]);
}
