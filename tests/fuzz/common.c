/* The helpers of fuzz.h. */
#define _GNU_SOURCE /* memfd_create */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define N_SLOTS 4

const char *fz_file(int slot, const void *data, size_t len)
{
    static int fds[N_SLOTS] = {-1, -1, -1, -1};
    static char paths[N_SLOTS][64];
    if (slot < 0 || slot >= N_SLOTS)
        fz_fail("fz_file: bad slot");
    if (fds[slot] < 0) {
        fds[slot] = memfd_create("fuzz-input", 0);
        if (fds[slot] < 0)
            fz_fail("memfd_create failed");
        snprintf(paths[slot], sizeof paths[slot], "/proc/self/fd/%d", fds[slot]);
    }
    if (ftruncate(fds[slot], 0) != 0 ||
        (len && pwrite(fds[slot], data, len, 0) != (ssize_t)len))
        fz_fail("cannot write the fuzz input to its memfd");
    return paths[slot];
}

static char tmpdir[4096];

static void remove_tmpdir(void)
{
    char cmd[4200];
    if (tmpdir[0] && snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir) < (int)sizeof cmd &&
        system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", tmpdir);
}

const char *fz_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/muon-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir))
            fz_fail("mkdtemp failed");
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

void fz_fail(const char *what)
{
    fprintf(stderr, "fuzz property violated: %s\n", what);
    abort();
}

void fz_check_round_trip(const tok_tokenizer *t, const char *text, size_t len, int special)
{
    char err[TOK_ERR_LEN];
    int32_t *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    size_t blen = 0;
    if (tok_encode(t, text, len, special, &ids, &n, err) != 0)
        fz_fail("encoding failed");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            fz_fail("an encoded id is outside the vocabulary");
    if (tok_decode(t, ids, n, &back, &blen, err) != 0 || blen != len ||
        (len && memcmp(back, text, len) != 0))
        fz_fail("decode(encode(text)) != text");
    free(ids);
    free(back);
}

/* ---- the optimizer of fuzz_optstate ---- */

static float weights[2][12 + 10 + 3], grads[12 + 10 + 3];

muon_opt *fz_make_opt(int adamw)
{
    muon_opt_config cfg = muon_opt_config_default();
    cfg.algo = adamw ? MUON_ALGO_ADAMW : MUON_ALGO_MUON;
    cfg.threads = 1;
    muon_opt *opt;
    if (muon_opt_create(&cfg, &opt) != MUON_OK)
        fz_fail("muon_opt_create");
    float *w = weights[adamw != 0];
    static const long s_w[] = {4, 3}, s_e[] = {5, 2}, s_b[] = {3};
    if (muon_opt_add_param(opt, "h.0.w", w, grads, 2, s_w, MUON_ROLE_MATRIX, NULL) ||
        muon_opt_add_param(opt, "wte", w + 12, grads + 12, 2, s_e, MUON_ROLE_EMBEDDING, NULL) ||
        muon_opt_add_param(opt, "lnf", w + 22, grads + 22, 1, s_b, MUON_ROLE_VECTOR, NULL) ||
        muon_opt_finalize(opt))
        fz_fail("building the fuzz optimizer");
    return opt;
}

void fz_step_opt(muon_opt *opt)
{
    for (int i = 0; i < 25; i++)
        grads[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    if (muon_opt_step(opt, 1.0) != MUON_OK)
        fz_fail("muon_opt_step");
}

/* ---- the tiny BPE ---- */

/* GPT-2's byte -> character map (encoder.py's bytes_to_unicode). */
static unsigned byte_char(int b)
{
    int n = 0;
    for (int c = 0; c < 256; c++) {
        int printable = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
        if (c == b)
            return printable ? (unsigned)c : (unsigned)(256 + n);
        n += !printable;
    }
    return 0;
}

/* Append the byte characters of s as UTF-8, JSON-escaped when json != 0. */
static size_t put_token(char *out, const char *s, int json)
{
    size_t n = 0;
    for (; *s; s++) {
        unsigned cp = byte_char((unsigned char)*s);
        if (cp < 0x80) {
            if (json && (cp == '"' || cp == '\\'))
                out[n++] = '\\';
            out[n++] = (char)cp;
        } else {
            out[n++] = (char)(0xC0 | (cp >> 6));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return n;
}

void fz_tiny_bpe(char **encoder_json, char **vocab_bpe)
{
    /* each merge joins two earlier tokens into a new one */
    static const char *const merges[][2] = {{"t", "h"}, {"th", "e"}, {" ", "the"}, {"e", "r"},
                                            {"a", "n"}, {"an", "d"}, {" ", "and"}, {"i", "n"},
                                            {"in", "g"}, {"\n", "\n"}};
    enum { N_MERGES = sizeof merges / sizeof merges[0] };
    char *enc = malloc(16384), *voc = malloc(4096);
    if (!enc || !voc)
        fz_fail("out of memory");
    size_t e = 0, v = 0;
    int id = 0;
    enc[e++] = '{';
    for (int b = 0; b < 256; b++) {
        char s[2] = {(char)b, 0};
        if (b == 0) { /* a NUL cannot go through put_token's C string */
            e += (size_t)sprintf(enc + e, "\"\\u0100\": %d, ", id++);
            continue;
        }
        enc[e++] = '"';
        e += put_token(enc + e, s, 1);
        e += (size_t)sprintf(enc + e, "\": %d, ", id++);
    }
    v += (size_t)sprintf(voc, "#version: 0.2\n");
    for (int m = 0; m < N_MERGES; m++) {
        char joined[16];
        snprintf(joined, sizeof joined, "%s%s", merges[m][0], merges[m][1]);
        enc[e++] = '"';
        e += put_token(enc + e, joined, 1);
        e += (size_t)sprintf(enc + e, "\": %d, ", id++);
        v += put_token(voc + v, merges[m][0], 0);
        voc[v++] = ' ';
        v += put_token(voc + v, merges[m][1], 0);
        voc[v++] = '\n';
    }
    e += (size_t)sprintf(enc + e, "\"<|endoftext|>\": %d}", id);
    enc[e] = 0;
    voc[v] = 0;
    *encoder_json = enc;
    *vocab_bpe = voc;
}
