/* Optimizer state files: save, load and continue bit-identically; every
 * kind of bad file (mismatched parameters, truncated, corrupted, foreign,
 * newer) is refused with nothing changed; a failed save leaves the target
 * intact. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "harness.h"
#include "testutil.h"

#define NP 5
/* A hybrid set: two Muon matrices (one 4-D), an embedding, a head, a vector. */
static const char *const p_names[NP] = {"h.0.fc", "h.0.conv", "wte", "lm_head", "ln_f"};
static const int p_ndim[NP] = {2, 4, 2, 2, 1};
static const long p_shape[NP][4] = {{8, 6}, {4, 3, 2, 2}, {10, 6}, {5, 6}, {6}};
static const muon_role p_role[NP] = {MUON_ROLE_MATRIX, MUON_ROLE_MATRIX, MUON_ROLE_EMBEDDING,
                                     MUON_ROLE_HEAD, MUON_ROLE_VECTOR};

typedef struct {
    float w[NP][60], g[NP][60];
} model;

static size_t numel(int p)
{
    size_t n = 1;
    for (int d = 0; d < p_ndim[p]; d++)
        n *= (size_t)p_shape[p][d];
    return n;
}

static muon_opt_config state_config(muon_algo algo)
{
    muon_opt_config c = muon_opt_config_default();
    c.algo = algo;
    c.lr = 0.02;
    c.adam_lr = 0.01;
    c.threads = 1;
    return c;
}

/* A finalized optimizer over m; NULL on failure. */
static muon_opt *make(model *m, muon_algo algo)
{
    muon_opt_config c = state_config(algo);
    muon_opt *opt;
    if (muon_opt_create(&c, &opt) != MUON_OK)
        return NULL;
    for (int p = 0; p < NP; p++)
        if (muon_opt_add_param(opt, p_names[p], m->w[p], m->g[p], p_ndim[p], p_shape[p],
                               p_role[p], NULL) != MUON_OK ||
            (p == NP - 1 && muon_opt_finalize(opt) != MUON_OK)) {
            muon_opt_free(opt);
            return NULL;
        }
    return opt;
}

static void init_model(model *m)
{
    tu_rng rng;
    tu_seed(&rng, mt_seed);
    memset(m, 0, sizeof *m);
    for (int p = 0; p < NP; p++)
        tu_fill_normal(&rng, m->w[p], numel(p), 0.5);
}

/* Steps k0..k1-1 with gradients that depend only on the step number. */
static muon_status run_steps(muon_opt *opt, model *m, int k0, int k1)
{
    for (int k = k0; k < k1; k++) {
        tu_rng rng;
        tu_seed(&rng, mt_seed + 1000 + (uint64_t)k);
        for (int p = 0; p < NP; p++)
            tu_fill_normal(&rng, m->g[p], numel(p), 1.0);
        muon_status s = muon_opt_step(opt, 1.0 - 0.05 * k);
        if (s != MUON_OK)
            return s;
    }
    return MUON_OK;
}

static int same_weights(const model *a, const model *b)
{
    return memcmp(a->w, b->w, sizeof a->w) == 0;
}

/* A state blob of a hybrid optimizer after 3 steps, and the model then. */
static void *saved_blob(size_t *len, model *at)
{
    init_model(at);
    muon_opt *opt = make(at, MUON_ALGO_MUON);
    if (!opt || run_steps(opt, at, 0, 3) != MUON_OK || muon_opt_serialized_size(opt, len))
        return NULL;
    void *buf = malloc(*len);
    size_t written = 0;
    if (muon_opt_save_buffer(opt, buf, *len, &written) != MUON_OK || written != *len) {
        free(buf);
        buf = NULL;
    }
    muon_opt_free(opt);
    return buf;
}

TEST(state_resume_bit_identical_file)
{
    const char *dir = tu_tmpdir();
    char path[256];
    snprintf(path, sizeof path, "%s/opt.state", dir);
    for (int algo = 0; algo < MUON_ALGO_COUNT; algo++) {
        model a, b;
        init_model(&a);
        muon_opt *oa = make(&a, (muon_algo)algo);
        ASSERT(oa != NULL);
        ASSERT_OK(run_steps(oa, &a, 0, 3));
        ASSERT_OK(muon_opt_save(oa, path));
        size_t want, got;
        ASSERT_OK(muon_opt_serialized_size(oa, &want));
        void *file = tu_read_file(path, &got);
        ASSERT(file != NULL);
        free(file);
        ASSERT_EQ_INT(got, want);
        b = a; /* the weights are the caller's: a checkpoint has them */
        ASSERT_OK(run_steps(oa, &a, 3, 6));

        muon_opt *ob = make(&b, (muon_algo)algo);
        ASSERT(ob != NULL);
        ASSERT_OK(muon_opt_load(ob, path));
        ASSERT(strcmp(muon_opt_error(ob), "") == 0);
        muon_param_info info;
        ASSERT_OK(muon_opt_param_info(ob, 2, &info));
        ASSERT_EQ_INT(info.steps, 3);
        ASSERT_OK(run_steps(ob, &b, 3, 6));
        ASSERT(same_weights(&a, &b));
        ASSERT_EQ_INT(muon_opt_state_bytes(oa), muon_opt_state_bytes(ob));
        muon_opt_free(oa);
        muon_opt_free(ob);
    }
    /* without the load, the run differs: the check can fail */
    model a, b;
    init_model(&a);
    muon_opt *oa = make(&a, MUON_ALGO_MUON);
    ASSERT_OK(run_steps(oa, &a, 0, 3));
    b = a;
    ASSERT_OK(run_steps(oa, &a, 3, 6));
    muon_opt *ob = make(&b, MUON_ALGO_MUON);
    ASSERT_OK(run_steps(ob, &b, 3, 6));
    ASSERT(!same_weights(&a, &b));
    muon_opt_free(oa);
    muon_opt_free(ob);
}

TEST(state_resume_bit_identical_buffer)
{
    model at, a, b;
    size_t len;
    void *blob = saved_blob(&len, &at);
    ASSERT(blob != NULL);
    a = at;
    b = at;
    /* the uninterrupted run: the same 3 steps then 3 more */
    init_model(&a);
    muon_opt *oa = make(&a, MUON_ALGO_MUON);
    ASSERT_OK(run_steps(oa, &a, 0, 3));
    ASSERT(same_weights(&a, &at));
    ASSERT_OK(run_steps(oa, &a, 3, 6));
    muon_opt *ob = make(&b, MUON_ALGO_MUON);
    ASSERT_OK(muon_opt_load_buffer(ob, blob, len));
    ASSERT_OK(run_steps(ob, &b, 3, 6));
    ASSERT(same_weights(&a, &b));
    /* save -> load -> save reproduces the blob byte for byte */
    muon_opt *oc = make(&b, MUON_ALGO_MUON);
    ASSERT_OK(muon_opt_load_buffer(oc, blob, len));
    void *again = malloc(len);
    size_t w2;
    ASSERT_OK(muon_opt_save_buffer(oc, again, len, &w2));
    ASSERT_EQ_INT(w2, len);
    ASSERT(memcmp(blob, again, len) == 0);
    /* a buffer one byte short is refused */
    ASSERT_STATUS(muon_opt_save_buffer(oc, again, len - 1, &w2), MUON_ERR_SIZE);
    ASSERT_STATUS(muon_opt_save_buffer(oc, NULL, len, &w2), MUON_ERR_NULL);
    free(again);
    free(blob);
    muon_opt_free(oa);
    muon_opt_free(ob);
    muon_opt_free(oc);
}

/* Loads blob into a fresh optimizer (its params built by build()) expecting
 * `want`, then checks the optimizer is unchanged: continuing it gives the
 * same weights as a twin that never saw the load. Returns 0 when all held. */
typedef muon_opt *(*builder)(model *m);

static int load_refused(builder build, const void *blob, size_t len, muon_status want,
                        const char *must_name)
{
    model a, b;
    init_model(&a);
    b = a;
    muon_opt *oa = build(&a), *ob = build(&b);
    int bad = !oa || !ob;
    /* give both some state first, so "unchanged" is not just "zero" */
    if (!bad)
        bad = run_steps(oa, &a, 0, 2) != MUON_OK || run_steps(ob, &b, 0, 2) != MUON_OK;
    if (!bad) {
        muon_status s = muon_opt_load_buffer(oa, blob, len);
        if (s != want) {
            printf("    load returned %s, expected %s (%s)\n", muon_status_name(s),
                   muon_status_name(want), muon_opt_error(oa));
            bad = 1;
        } else if (must_name && !strstr(muon_opt_error(oa), must_name)) {
            printf("    message '%s' does not name '%s'\n", muon_opt_error(oa), must_name);
            bad = 1;
        }
    }
    if (!bad)
        bad = run_steps(oa, &a, 2, 4) != MUON_OK || run_steps(ob, &b, 2, 4) != MUON_OK ||
              !same_weights(&a, &b);
    muon_opt_free(oa);
    muon_opt_free(ob);
    return bad;
}

static muon_opt *build_same(model *m)
{
    return make(m, MUON_ALGO_MUON);
}

static muon_opt *build_adamw(model *m)
{
    return make(m, MUON_ALGO_ADAMW);
}

/* Like make() but with one parameter changed. */
static int variant;
static muon_opt *build_variant(model *m)
{
    muon_opt_config c = state_config(MUON_ALGO_MUON);
    muon_opt *opt;
    if (muon_opt_create(&c, &opt) != MUON_OK)
        return NULL;
    int np = variant == 2 ? NP - 1 : NP; /* 2: one param fewer */
    for (int p = 0; p < np; p++) {
        const char *name = p_names[p];
        long shape[4];
        memcpy(shape, p_shape[p], sizeof shape);
        muon_role role = p_role[p];
        if (variant == 0 && p == 2)
            name = "tok_emb";
        if (variant == 1 && p == 0)
            shape[0] = 7;
        if (variant == 4 && p == 3)
            role = MUON_ROLE_EMBEDDING;
        if (muon_opt_add_param(opt, name, m->w[p], m->g[p], p_ndim[p], shape, role, NULL)) {
            muon_opt_free(opt);
            return NULL;
        }
    }
    if (variant == 3) { /* one param more */
        long s1[1] = {4};
        if (muon_opt_add_param(opt, "extra.bias", m->w[4] + 10, m->g[4] + 10, 1, s1,
                               MUON_ROLE_VECTOR, NULL)) {
            muon_opt_free(opt);
            return NULL;
        }
    }
    if (muon_opt_finalize(opt) != MUON_OK) {
        muon_opt_free(opt);
        return NULL;
    }
    return opt;
}

TEST(state_mismatch_names_the_parameter)
{
    model at;
    size_t len;
    void *blob = saved_blob(&len, &at);
    ASSERT(blob != NULL);
    /* the control: a matching optimizer loads it and then differs from its twin */
    ASSERT(load_refused(build_same, blob, len, MUON_OK, NULL) != 0);

    variant = 0; /* renamed */
    ASSERT_EQ_INT(load_refused(build_variant, blob, len, MUON_ERR_MISMATCH, "tok_emb"), 0);
    variant = 1; /* shape 7x6 instead of 8x6 */
    ASSERT_EQ_INT(load_refused(build_variant, blob, len, MUON_ERR_MISMATCH, "h.0.fc"), 0);
    model m;
    init_model(&m);
    muon_opt *o = build_variant(&m);
    ASSERT(o != NULL);
    ASSERT_STATUS(muon_opt_load_buffer(o, blob, len), MUON_ERR_MISMATCH);
    ASSERT(strstr(muon_opt_error(o), "saved shape 8x6, registered 7x6") != NULL);
    muon_opt_free(o);
    variant = 2; /* the saved state has one more parameter */
    ASSERT_EQ_INT(load_refused(build_variant, blob, len, MUON_ERR_MISMATCH, "ln_f"), 0);
    variant = 3; /* the optimizer has one more parameter */
    ASSERT_EQ_INT(load_refused(build_variant, blob, len, MUON_ERR_MISMATCH, "extra.bias"), 0);
    variant = 4; /* role changed */
    ASSERT_EQ_INT(load_refused(build_variant, blob, len, MUON_ERR_MISMATCH, "lm_head"), 0);
    /* hybrid state into an all-AdamW optimizer: the first Muon matrix differs */
    ASSERT_EQ_INT(load_refused(build_adamw, blob, len, MUON_ERR_MISMATCH, "h.0.fc"), 0);
    free(blob);

    /* AdamW state whose params all use AdamW either way: still refused by algo */
    muon_opt_config c = state_config(MUON_ALGO_ADAMW);
    muon_opt *oa, *ob;
    float w[6] = {0}, g[6] = {0};
    long s[1] = {6};
    ASSERT_OK(muon_opt_create(&c, &oa));
    ASSERT_OK(muon_opt_add_param(oa, "b", w, g, 1, s, MUON_ROLE_VECTOR, NULL));
    ASSERT_OK(muon_opt_finalize(oa));
    c.algo = MUON_ALGO_MUON;
    ASSERT_OK(muon_opt_create(&c, &ob));
    ASSERT_OK(muon_opt_add_param(ob, "b", w, g, 1, s, MUON_ROLE_VECTOR, NULL));
    ASSERT_OK(muon_opt_finalize(ob));
    unsigned char buf[512];
    size_t n;
    ASSERT_OK(muon_opt_save_buffer(oa, buf, sizeof buf, &n));
    ASSERT_STATUS(muon_opt_load_buffer(ob, buf, n), MUON_ERR_MISMATCH);
    ASSERT(strstr(muon_opt_error(ob), "adamw") != NULL);
    muon_opt_free(oa);
    muon_opt_free(ob);
}

TEST(state_truncated_corrupted_foreign)
{
    model at;
    size_t len;
    unsigned char *blob = saved_blob(&len, &at);
    ASSERT(blob != NULL);
    /* truncated at every length: an error, never a crash, nothing changed */
    model m;
    init_model(&m);
    muon_opt *o = make(&m, MUON_ALGO_MUON);
    ASSERT(o != NULL);
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1); /* exact size, for ASan */
        memcpy(copy, blob, cut);
        muon_status s = muon_opt_load_buffer(o, copy, cut);
        free(copy);
        if (s != MUON_ERR_FORMAT) {
            printf("    cut at %zu: %s\n", cut, muon_status_name(s));
            ASSERT_STATUS(s, MUON_ERR_FORMAT);
        }
    }
    muon_opt_free(o);
    ASSERT_EQ_INT(load_refused(build_same, blob, len / 2, MUON_ERR_FORMAT, NULL), 0);
    ASSERT_EQ_INT(load_refused(build_same, blob, len - 1, MUON_ERR_FORMAT, NULL), 0);

    /* a flipped byte anywhere past the header: checksum */
    unsigned char *copy = malloc(len + 8);
    for (size_t pos = 32; pos < len; pos += 37) {
        memcpy(copy, blob, len);
        copy[pos] ^= 0x10;
        ASSERT_EQ_INT(load_refused(build_same, copy, len, MUON_ERR_CHECKSUM, NULL), 0);
    }
    /* padded: the length in the header no longer matches */
    memcpy(copy, blob, len);
    memset(copy + len, 0, 8);
    ASSERT_EQ_INT(load_refused(build_same, copy, len + 8, MUON_ERR_FORMAT, NULL), 0);
    /* wrong magic */
    memcpy(copy, blob, len);
    copy[0] = 'X';
    ASSERT_EQ_INT(load_refused(build_same, copy, len, MUON_ERR_FORMAT, NULL), 0);
    /* a future version (with a valid checksum, as a newer writer would make) */
    memcpy(copy, blob, len);
    copy[8] = 2;
    uint32_t crc = (uint32_t)crc32(0, copy, (uInt)(len - 4));
    for (int i = 0; i < 4; i++)
        copy[len - 4 + (size_t)i] = (unsigned char)(crc >> (8 * i));
    ASSERT_EQ_INT(load_refused(build_same, copy, len, MUON_ERR_VERSION, NULL), 0);
    /* not a state file at all */
    const char text[] = "hello, this is not an optimizer state file at all";
    ASSERT_EQ_INT(load_refused(build_same, text, sizeof text, MUON_ERR_FORMAT, NULL), 0);
    free(copy);
    free(blob);
}

TEST(state_file_errors)
{
    const char *dir = tu_tmpdir();
    char path[256], tmp[400], missing[300];
    snprintf(path, sizeof path, "%s/opt.state", dir);
    snprintf(missing, sizeof missing, "%s/no/such/dir/opt.state", dir);
    model m;
    init_model(&m);
    muon_opt *o = make(&m, MUON_ALGO_MUON);
    ASSERT(o != NULL);
    ASSERT_OK(run_steps(o, &m, 0, 2));
    ASSERT_STATUS(muon_opt_save(o, missing), MUON_ERR_IO);
    ASSERT(strstr(muon_opt_error(o), "no/such/dir") != NULL);
    ASSERT_STATUS(muon_opt_load(o, missing), MUON_ERR_IO);

    /* an existing file at the target survives a failed save: the temp file
     * cannot be created (a directory is in its way) */
    const char old[] = "previous contents";
    ASSERT_EQ_INT(tu_write_file(path, old, sizeof old), 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ASSERT_EQ_INT(mkdir(tmp, 0700), 0);
    ASSERT_STATUS(muon_opt_save(o, path), MUON_ERR_IO);
    size_t n;
    char *back = tu_read_file(path, &n);
    ASSERT(back != NULL);
    ASSERT_EQ_INT(n, sizeof old);
    ASSERT(memcmp(back, old, n) == 0);
    free(back);
    rmdir(tmp);
    /* the rename fails (the target is a non-empty directory): IO, no temp left */
    char dpath[300], inner[320];
    snprintf(dpath, sizeof dpath, "%s/adir", dir);
    snprintf(inner, sizeof inner, "%s/keep", dpath);
    ASSERT_EQ_INT(mkdir(dpath, 0700), 0);
    ASSERT_EQ_INT(tu_write_file(inner, old, sizeof old), 0);
    ASSERT_STATUS(muon_opt_save(o, dpath), MUON_ERR_IO);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dpath, (long)getpid());
    ASSERT(access(tmp, F_OK) != 0);
    ASSERT(access(inner, F_OK) == 0);
    /* a successful save replaces the old file; loading it works */
    ASSERT_OK(muon_opt_save(o, path));
    ASSERT_OK(muon_opt_load(o, path));
    /* loading a file that is not a state names the path */
    ASSERT_EQ_INT(tu_write_file(path, old, sizeof old), 0);
    ASSERT_STATUS(muon_opt_load(o, path), MUON_ERR_FORMAT);
    ASSERT(strstr(muon_opt_error(o), path) != NULL);
    ASSERT_STATUS(muon_opt_load(o, dir), MUON_ERR_IO); /* a directory */
    muon_opt_free(o);

    /* before finalize there is no state to save or load */
    muon_opt_config c = state_config(MUON_ALGO_MUON);
    ASSERT_OK(muon_opt_create(&c, &o));
    ASSERT_STATUS(muon_opt_save(o, path), MUON_ERR_STATE);
    ASSERT_STATUS(muon_opt_load(o, path), MUON_ERR_STATE);
    ASSERT_STATUS(muon_opt_serialized_size(o, &n), MUON_ERR_STATE);
    ASSERT_STATUS(muon_opt_save(NULL, path), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_save(o, NULL), MUON_ERR_NULL);
    ASSERT_STATUS(muon_opt_load_buffer(o, NULL, 10), MUON_ERR_NULL);
    muon_opt_free(o);
}

/* The layout documented in docs/state-format.md, checked byte by byte on a
 * one-parameter AdamW state. */
TEST(state_layout_matches_doc)
{
    muon_opt_config c = state_config(MUON_ALGO_ADAMW);
    muon_opt *o;
    float w[3] = {1, 2, 3}, g[3] = {0.5f, -1, 2};
    long s[1] = {3};
    ASSERT_OK(muon_opt_create(&c, &o));
    ASSERT_OK(muon_opt_add_param(o, "bias", w, g, 1, s, MUON_ROLE_VECTOR, NULL));
    ASSERT_OK(muon_opt_finalize(o));
    ASSERT_OK(muon_opt_step(o, 1.0));
    unsigned char b[256];
    size_t n;
    ASSERT_OK(muon_opt_save_buffer(o, b, sizeof b, &n));
    /* header 32 + name 4+4 + rule/role/ndim 12 + shape 8 + steps 8 + nbuf 4
     * + 2 x 3 floats 24 + crc 4 */
    ASSERT_EQ_INT(n, 32 + 8 + 12 + 8 + 8 + 4 + 24 + 4);
    ASSERT(memcmp(b, "MUONSTAT", 8) == 0);
    ASSERT_EQ_INT(b[8], 1);                 /* version */
    ASSERT_EQ_INT(b[12], MUON_ALGO_ADAMW);  /* algo */
    ASSERT_EQ_INT(b[16], 1);                /* n_params */
    ASSERT_EQ_INT(b[24], n);                /* total length, u64 LE */
    ASSERT_EQ_INT(b[32], 4);                /* name length */
    ASSERT(memcmp(b + 36, "bias", 4) == 0);
    ASSERT_EQ_INT(b[40], 1);                /* rule: adamw */
    ASSERT_EQ_INT(b[44], MUON_ROLE_VECTOR); /* role */
    ASSERT_EQ_INT(b[48], 1);                /* ndim */
    ASSERT_EQ_INT(b[52], 3);                /* shape[0] */
    ASSERT_EQ_INT(b[60], 1);                /* steps */
    ASSERT_EQ_INT(b[68], 2);                /* buffers */
    float m0;
    memcpy(&m0, b + 72, 4); /* m = (1 - b1) g */
    ASSERT_NEAR(m0, 0.1 * 0.5, 1e-7);
    float v2;
    memcpy(&v2, b + 72 + 12 + 8, 4); /* v[2] = (1 - b2) g^2 */
    ASSERT_NEAR(v2, 0.05 * 4, 1e-7);
    muon_opt_free(o);
}
