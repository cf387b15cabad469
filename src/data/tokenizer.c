/* The tokenizer interface: byte-level and GPT-2 BPE behind one struct. */
#include "data/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/bpe.h"
#include "data/dutil.h"
#include "muon.h"

static const char EOT_TEXT[] = "<|endoftext|>";

const char *tok_kind_name(tok_kind k)
{
    return k == TOK_GPT2 ? "gpt2" : "byte";
}

int tok_kind_parse(const char *name, tok_kind *out)
{
    if (name && strcmp(name, "byte") == 0)
        *out = TOK_BYTE;
    else if (name && strcmp(name, "gpt2") == 0)
        *out = TOK_GPT2;
    else
        return MUON_ERR_ARG;
    return MUON_OK;
}

void tok_init_gpt2_ids(tok_tokenizer *t)
{
    t->kind = TOK_GPT2;
    t->vocab_size = TOK_GPT2_VOCAB;
    t->eot_id = TOK_GPT2_VOCAB - 1;
    t->bpe = NULL;
}

void tok_init_byte(tok_tokenizer *t)
{
    t->kind = TOK_BYTE;
    t->vocab_size = 256;
    t->eot_id = -1;
    t->bpe = NULL;
}

int tok_load_gpt2(tok_tokenizer *t, const char *encoder_json, const char *vocab_bpe, char *err)
{
    if (!t || !encoder_json || !vocab_bpe) {
        data_errf(err, "tok_load_gpt2: NULL argument");
        return MUON_ERR_NULL;
    }
    tok_bpe *b;
    int vocab, eot;
    int rc = tok_bpe_load(encoder_json, vocab_bpe, &b, &vocab, &eot, err);
    if (rc)
        return rc;
    t->kind = TOK_GPT2;
    t->vocab_size = vocab;
    t->eot_id = eot;
    t->bpe = b;
    return MUON_OK;
}

int tok_load_gpt2_dir(tok_tokenizer *t, const char *dir, char *err)
{
    char enc[4096], voc[4096];
    if (!dir) {
        data_errf(err, "tok_load_gpt2_dir: NULL directory");
        return MUON_ERR_NULL;
    }
    if (snprintf(enc, sizeof enc, "%s/encoder.json", dir) >= (int)sizeof enc ||
        snprintf(voc, sizeof voc, "%s/vocab.bpe", dir) >= (int)sizeof voc) {
        data_errf(err, "tokenizer directory path is too long: %.200s", dir);
        return MUON_ERR_ARG;
    }
    return tok_load_gpt2(t, enc, voc, err);
}

void tok_free(tok_tokenizer *t)
{
    if (!t)
        return;
    tok_bpe_free(t->bpe);
    t->bpe = NULL;
}

/* first occurrence of the special token in s[0..n), or NULL */
static const char *find_eot(const char *s, size_t n)
{
    size_t k = sizeof EOT_TEXT - 1;
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == '<' && memcmp(s + i, EOT_TEXT, k) == 0)
            return s + i;
    return NULL;
}

static int push_id(int32_t **out, size_t *cnt, size_t *cap, int32_t id)
{
    if (*cnt == *cap) {
        size_t c = *cap ? 2 * *cap : 1024;
        int32_t *q = realloc(*out, c * sizeof *q);
        if (!q)
            return MUON_ERR_NOMEM;
        *out = q;
        *cap = c;
    }
    (*out)[(*cnt)++] = id;
    return MUON_OK;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int allow_special,
               int32_t **ids, size_t *n, char *err)
{
    if (!t || (!text && len) || !ids || !n) {
        data_errf(err, "tok_encode: NULL argument");
        return MUON_ERR_NULL;
    }
    int32_t *out = NULL;
    size_t cnt = 0, cap = 0;
    if (t->kind == TOK_BYTE) {
        if (len) {
            out = malloc(len * sizeof *out);
            if (!out) {
                data_errf(err, "out of memory encoding %zu bytes", len);
                return MUON_ERR_NOMEM;
            }
            for (size_t i = 0; i < len; i++)
                out[i] = (unsigned char)text[i];
        }
        *ids = out;
        *n = len;
        return MUON_OK;
    }
    if (!t->bpe) {
        data_errf(err, "GPT-2 text needs the BPE files: --bpe-dir DIR with encoder.json and "
                  "vocab.bpe (llm.c token shards do not)");
        return MUON_ERR_STATE;
    }
    int rc = MUON_OK;
    const char *p = text, *end = text + len;
    while (!rc && p < end) {
        const char *hit = allow_special && t->eot_id >= 0 ? find_eot(p, (size_t)(end - p)) : NULL;
        const char *stop = hit ? hit : end;
        rc = tok_bpe_encode(t->bpe, p, (size_t)(stop - p), &out, &cnt, &cap);
        if (!rc && hit) {
            rc = push_id(&out, &cnt, &cap, t->eot_id);
            stop += sizeof EOT_TEXT - 1;
        }
        p = stop;
    }
    if (rc) {
        free(out);
        data_errf(err, "%s encoding %zu bytes of text", rc == MUON_ERR_NOMEM ?
                  "out of memory" : "a piece is too long", len);
        return rc;
    }
    *ids = out;
    *n = cnt;
    return MUON_OK;
}

int tok_token_bytes(const tok_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
    static const char all_bytes[256] = {
#define B4(i) (char)(i), (char)((i) + 1), (char)((i) + 2), (char)((i) + 3)
#define B16(i) B4(i), B4((i) + 4), B4((i) + 8), B4((i) + 12)
#define B64(i) B16(i), B16((i) + 16), B16((i) + 32), B16((i) + 48)
        B64(0), B64(64), B64(128), B64(192)
#undef B64
#undef B16
#undef B4
    };
    if (!t || id < 0 || id >= t->vocab_size)
        return MUON_ERR_ARG;
    if (t->kind == TOK_BYTE) {
        *bytes = all_bytes + id;
        *len = 1;
    } else if (!t->bpe) {
        return MUON_ERR_STATE; /* ids only: no text to give */
    } else {
        tok_bpe_token(t->bpe, id, bytes, len);
    }
    return MUON_OK;
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len,
               char *err)
{
    if (!t || (!ids && n) || !text || !len) {
        data_errf(err, "tok_decode: NULL argument");
        return MUON_ERR_NULL;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b;
        size_t k;
        if (t->kind == TOK_GPT2 && !t->bpe) {
            data_errf(err, "GPT-2 token ids cannot be printed without the BPE files "
                      "(--bpe-dir DIR with encoder.json and vocab.bpe)");
            return MUON_ERR_STATE;
        }
        if (tok_token_bytes(t, ids[i], &b, &k)) {
            data_errf(err, "token id %ld at position %zu is outside the vocabulary [0, %d)",
                      (long)ids[i], i, t->vocab_size);
            return MUON_ERR_ARG;
        }
        total += k;
    }
    char *out = malloc(total + 1);
    if (!out) {
        data_errf(err, "out of memory decoding %zu tokens", n);
        return MUON_ERR_NOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const char *b;
        size_t k;
        tok_token_bytes(t, ids[i], &b, &k);
        memcpy(out + at, b, k);
        at += k;
    }
    out[at] = '\0';
    *text = out;
    *len = at;
    return MUON_OK;
}
