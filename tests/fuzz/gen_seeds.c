/* The seed corpora of the fuzz targets, made by the project's own writers:
 * gen_seeds DIR writes DIR/NAME/seed-K for every target NAME. Seeds of
 * targets whose first byte is a mode byte (fuzz_ckpt, fuzz_optstate,
 * fuzz_text, fuzz_cli) carry one for each mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "fuzz.h"
#include "io/npy.h"
#include "train/ckpt.h"
#include "train/train.h"

static const char *out_dir;
static int n_written;

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fz_fail(path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)n + 1);
    if (!p || fread(p, 1, (size_t)n, f) != (size_t)n)
        fz_fail(path);
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* DIR/target/seed-K: the mode byte (when mode >= 0) and then len bytes. */
static void seed(const char *target, int mode, const void *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/seed-%d", out_dir, target, n_written++);
    FILE *f = fopen(path, "wb");
    unsigned char m = (unsigned char)mode;
    if (!f || (mode >= 0 && fwrite(&m, 1, 1, f) != 1) || (len && fwrite(p, 1, len, f) != len) ||
        fclose(f) != 0)
        fz_fail(path);
}

/* A file written by one of the project's writers, as a seed. */
static void seed_file(const char *target, int mode, const char *path)
{
    size_t len;
    void *p = slurp(path, &len);
    seed(target, mode, p, len);
    free(p);
    remove(path);
}

static void npy_seeds(const char *tmp)
{
    char path[4096], err[256];
    float x[12];
    for (int i = 0; i < 12; i++)
        x[i] = (float)i - 5.5f;
    snprintf(path, sizeof path, "%s/x.npy", tmp);
    long shapes[][2] = {{3, 4}, {1, 1}, {12, 1}};
    for (int s = 0; s < 3; s++) {
        if (npy_write_f32(path, x, shapes[s][0], shapes[s][1], err, sizeof err) != MUON_OK)
            fz_fail(err);
        seed_file("npy", -1, path);
    }
    /* the header forms numpy writes that npy_write_f32 does not: version
     * 2.0, float64, Fortran order */
    static const char hdr[] = "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }\n";
    unsigned char buf[12 + sizeof hdr + 48];
    size_t hl = sizeof hdr - 1;
    memcpy(buf, "\x93NUMPY\x02\x00", 8);
    buf[8] = (unsigned char)hl, buf[9] = buf[10] = buf[11] = 0;
    memcpy(buf + 12, hdr, hl);
    double d[6] = {1, -2, 3.5, 1e-3, 0, 7};
    memcpy(buf + 12 + hl, d, sizeof d);
    seed("npy", -1, buf, 12 + hl + sizeof d);
}

static void ckpt_seeds(const char *tmp)
{
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/c.bin", tmp);
    train_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = train_config_default();
    snprintf(ck.cfg.data, sizeof ck.cfg.data, "data.txt");
    ck.cfg.model = (gpt_config){.vocab = 8, .context = 4, .layers = 1, .dim = 4, .heads = 1};
    ck.step = 3;
    ck.wall_s = 1.5;
    ck.n_params = gpt_config_num_params(&ck.cfg.model);
    ck.params = calloc(ck.n_params, sizeof(float));
    muon_opt *opt = fz_make_opt(0);
    fz_step_opt(opt);
    muon_opt_serialized_size(opt, &ck.opt_state_len);
    ck.opt_state = malloc(ck.opt_state_len);
    if (!ck.params || !ck.opt_state ||
        muon_opt_save_buffer(opt, ck.opt_state, ck.opt_state_len, NULL) != MUON_OK)
        fz_fail("building the checkpoint seed");
    for (int mode = 0; mode < 2; mode++) {
        if (train_ckpt_save(path, &ck, err, sizeof err))
            fz_fail(err);
        seed_file("ckpt", mode, path);
    }
    /* the bare container: no sections, and two small ones */
    ckpt_section s[2] = {{CKPT_TAG('A', 'B', 'C', 'D'), "xyz", 3},
                         {CKPT_TAG('C', 'O', 'N', 'F'), "{}", 2}};
    for (int n = 0; n <= 2; n += 2) {
        if (ckpt_write(path, s, n, err, sizeof err))
            fz_fail(err);
        seed_file("ckpt", 1, path);
    }
    muon_opt_free(opt);
    free(ck.params);
    free(ck.opt_state);
}

static void optstate_seeds(void)
{
    for (int adamw = 0; adamw < 2; adamw++) {
        muon_opt *opt = fz_make_opt(adamw);
        for (int steps = 0; steps < 2; steps++) {
            size_t len;
            muon_opt_serialized_size(opt, &len);
            void *buf = malloc(len);
            if (!buf || muon_opt_save_buffer(opt, buf, len, NULL) != MUON_OK)
                fz_fail("muon_opt_save_buffer");
            seed("optstate", 2 * adamw, buf, len);
            seed("optstate", 2 * adamw + 1, buf, len);
            free(buf);
            fz_step_opt(opt);
        }
        muon_opt_free(opt);
    }
}

static void shard_seeds(const char *tmp)
{
    char path[4096], err[DATA_ERR_LEN];
    snprintf(path, sizeof path, "%s/s.bin", tmp);
    static const int32_t ids[] = {50256, 15496, 11, 995, 0, 65535, 198};
    for (size_t n = 1; n <= 7; n += 6) {
        if (data_shard_write(path, ids, n, err))
            fz_fail(err);
        seed_file("shard", -1, path);
    }
}

static void text_seeds(void)
{
    char *enc, *voc;
    fz_tiny_bpe(&enc, &voc);
    size_t ne = strlen(enc), nv = strlen(voc);
    char *both = malloc(ne + nv);
    if (!both)
        fz_fail("out of memory");
    memcpy(both, enc, ne);
    memcpy(both + ne, voc, nv);
    seed("bpe", -1, both, ne + nv);
    free(both);
    free(enc);
    free(voc);
    static const char *const texts[] = {
        "\x80the cat and the hat<|endoftext|>",
        "\x01\x80" "First line\nSecond: they're 12 caf\xc3\xa9s!\n\n  \xe2\x80\x94 end",
        "\x00\x40" "abc\x00" "def\n",
    };
    seed("text", -1, texts[0], strlen(texts[0]));
    seed("text", -1, texts[1], strlen(texts[1]));
    seed("text", -1, texts[2], 10);
}

static void config_seeds(void)
{
    train_config c = train_config_default();
    snprintf(c.data, sizeof c.data, "/usr/share/games/fortunes");
    for (int v = 0; v < 3; v++) {
        if (v == 1) {
            c.optim = MUON_ALGO_ADAMW;
            c.tokenizer = TOK_GPT2;
            snprintf(c.bpe_dir, sizeof c.bpe_dir, "gpt2");
            c.schedule = MUON_SCHED_COSINE;
        }
        if (v == 2) {
            c.ortho.method = MUON_ORTHO_GRAM_NS;
            c.ortho.steps = 6;
            if (muon_gram_restarts_parse("2,4", 6, &c.ortho.gram_restarts) != MUON_OK)
                fz_fail("muon_gram_restarts_parse");
        }
        char *j = train_config_to_json(&c);
        if (!j)
            fz_fail("train_config_to_json");
        seed("config", -1, j, strlen(j));
        free(j);
    }
}

static void cli_seeds(void)
{
    /* argv after the command name, NUL-separated (the literals' own NUL
     * ends the last argument) */
    static const char train[] = "--data\0x.txt\0--out\0runs/a\0--steps\0" "100\0--lr=0.01\0"
                                "--layers\0" "2\0--dim\0" "64\0--heads\0" "4\0--stop-at\0" "50\0"
                                "--restarts\0none\0--quiet";
    static const char compare[] = "--data\0x.txt\0--out\0d\0--lr-grid\0" "0.001,0.004\0"
                                  "--sweep-steps\0" "10\0--schedule\0cosine";
    static const char ortho[] = "--method\0gram-ns\0--restarts\0" "2,4\0--steps\0" "6\0"
                                "--threads\0" "1,2\0--aol\0--coeffs\0taylor-3\0--widths\0"
                                "256,320\0--shape\0" "768x3072,4x4";
    seed("cli", 0, train, sizeof train - 1);
    seed("cli", 1, compare, sizeof compare - 1);
    seed("cli", 2, ortho, sizeof ortho - 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    const char *tmp = fz_tmpdir();
    npy_seeds(tmp);
    ckpt_seeds(tmp);
    optstate_seeds();
    shard_seeds(tmp);
    text_seeds();
    config_seeds();
    cli_seeds();
    printf("gen_seeds: %d seeds in %s\n", n_written, out_dir);
    return 0;
}
