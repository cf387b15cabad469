/* Text input (data_read_text) and the tokenizers' encode/decode. Input byte
 * 0, bit 0, picks a directory of two files (the rest of the input cut where
 * byte 1 says) over a single file. The text read must be what the files
 * hold (in the directory: the files without a NUL byte, sorted, each ending
 * in a newline); the byte tokenizer, the tiny GPT-2 BPE of fuzz.h and the
 * pre-tokenizer must all give the text back exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "data/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    const char *text;
    size_t at;
} piece_walk;

static int next_piece(const char *piece, size_t n, void *ctx)
{
    piece_walk *w = ctx;
    if (n == 0 || piece != w->text + w->at)
        fz_fail("pre-tokenizer pieces are empty or not consecutive");
    w->at += n;
    return 0;
}

/* What data_read_text must return for a directory holding a and b.txt. */
static size_t expected_dir_text(const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                                char *out)
{
    size_t n = 0;
    const uint8_t *part[2] = {a, b};
    size_t len[2] = {na, nb};
    for (int i = 0; i < 2; i++) {
        if (len[i] == 0 || memchr(part[i], 0, len[i]))
            continue;
        memcpy(out + n, part[i], len[i]);
        n += len[i];
        if (part[i][len[i] - 1] != '\n')
            out[n++] = '\n';
    }
    return n;
}

static void write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        fz_fail("cannot write a file of the fuzz directory");
}

static tok_tokenizer *tiny_gpt2(void)
{
    static tok_tokenizer t;
    static int loaded;
    if (!loaded) {
        char *enc, *voc, err[TOK_ERR_LEN];
        fz_tiny_bpe(&enc, &voc);
        if (tok_load_gpt2(&t, fz_file(1, enc, strlen(enc)), fz_file(2, voc, strlen(voc)), err))
            fz_fail(err);
        free(enc);
        free(voc);
        loaded = 1;
    }
    return &t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int as_dir = data[0] & 1;
    size_t cut = (size_t)data[1] * (size - 2) / 255;
    data += 2, size -= 2;
    char err[DATA_ERR_LEN], *text = NULL, *want = NULL;
    size_t len = 0, want_len = size;
    int n_files = 0;
    const char *path;
    if (as_dir) {
        static char dir[4200];
        if (!dir[0]) {
            snprintf(dir, sizeof dir, "%s/text", fz_tmpdir());
            if (mkdir(dir, 0700) != 0)
                fz_fail("cannot make the fuzz directory");
        }
        write_file(dir, "a", data, cut);
        write_file(dir, "b.txt", data + cut, size - cut);
        want = malloc(size + 2);
        want_len = expected_dir_text(data, cut, data + cut, size - cut, want);
        path = dir;
    } else {
        path = fz_file(0, data, size);
    }
    int rc = data_read_text(path, &text, &len, &n_files, err);
    if (rc == 0) {
        if (len != want_len || memcmp(text, as_dir ? want : (const char *)data, len) != 0 ||
            text[len] != 0)
            fz_fail("data_read_text did not return the files' text");
        tok_tokenizer byte;
        tok_init_byte(&byte);
        fz_check_round_trip(&byte, text, len, 0);
        fz_check_round_trip(tiny_gpt2(), text, len, 0);
        fz_check_round_trip(tiny_gpt2(), text, len, 1);
        piece_walk w = {text, 0};
        tok_gpt2_pretokenize(text, len, next_piece, &w);
        if (w.at != len)
            fz_fail("pre-tokenizer pieces do not cover the text");
        free(text);
    } else if (want_len != 0) {
        fz_fail("data_read_text refused text it should read");
    }
    free(want);
    /* arbitrary ids: decoded exactly when every one is a byte */
    int32_t ids[64];
    size_t n = size / 4 < 64 ? size / 4 : 64;
    int in_range = 1;
    memcpy(ids, data, 4 * n);
    for (size_t i = 0; i < n; i++)
        in_range = in_range && ids[i] >= 0 && ids[i] < 256;
    tok_tokenizer byte;
    tok_init_byte(&byte);
    char *back = NULL;
    if ((tok_decode(&byte, ids, n, &back, &len, err) == 0) != in_range)
        fz_fail("tok_decode's verdict on ids is wrong");
    free(back);
    return 0;
}
