/* The built-in corpus of the GPT experiments and the token streams (exp.h).
 * Invented words (syllables from a small alphabet), Zipf-distributed, each
 * with a few preferred successors: structure at the character, word and
 * phrase level for a small model to learn, made in milliseconds from a
 * seed, so every experiment runs from a fresh build with no download. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exp/exp.h"
#include "exp/linalg.h"

#define N_WORDS 400
#define N_NEXT 6
#define CORPUS_BYTES ((size_t)600000)

/* A Zipf(1) draw from 0..n-1 by inverting the harmonic CDF. */
static int zipf(exp_rng *s, const double *cdf, int n)
{
    double u = exp_uniform(s) * cdf[n - 1];
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

char *exp_corpus(size_t bytes, uint64_t seed, size_t *len)
{
    static const char *const cons[] = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r",
                                       "s", "t", "v", "z", "th", "sh"};
    static const char *const vow[] = {"a", "e", "i", "o", "u", "ai", "ou"};
    char words[N_WORDS][16];
    int next[N_WORDS][N_NEXT];
    double cdf[N_WORDS], ncdf[N_NEXT];
    exp_rng s;
    exp_rng_seed(&s, seed);
    for (int w = 0; w < N_WORDS; w++) {
        int syl = 1 + (int)(exp_uniform(&s) * 3), n = 0;
        for (int k = 0; k < syl; k++)
            n += snprintf(words[w] + n, sizeof words[w] - (size_t)n, "%s%s",
                          cons[(size_t)(exp_uniform(&s) * 16)], vow[(size_t)(exp_uniform(&s) * 7)]);
        cdf[w] = (w ? cdf[w - 1] : 0) + 1.0 / (w + 1);
        for (int k = 0; k < N_NEXT; k++)
            next[w][k] = (int)(exp_uniform(&s) * N_WORDS);
    }
    for (int k = 0; k < N_NEXT; k++)
        ncdf[k] = (k ? ncdf[k - 1] : 0) + 1.0 / (k + 1);
    char *out = malloc(bytes + 64);
    if (!out)
        return NULL;
    size_t n = 0;
    int w = zipf(&s, cdf, N_WORDS);
    while (n < bytes) {
        int words_left = 4 + (int)(exp_uniform(&s) * 10);
        for (int k = 0; k < words_left && n < bytes; k++) {
            const char *t = words[w];
            if (k == 0 && n + 1 < bytes) {
                out[n++] = (char)(t[0] - 'a' + 'A');
                t++;
            }
            size_t l = strlen(t);
            if (n + l + 2 >= bytes)
                break;
            memcpy(out + n, t, l);
            n += l;
            out[n++] = k + 1 < words_left ? ' ' : '.';
            w = exp_uniform(&s) < 0.75 ? next[w][zipf(&s, ncdf, N_NEXT)] : zipf(&s, cdf, N_WORDS);
        }
        if (n < bytes)
            out[n++] = exp_uniform(&s) < 0.3 ? '\n' : ' ';
    }
    out[n] = 0;
    *len = n;
    return out;
}

int exp_data_load(exp_ctx *x, exp_data *d)
{
    memset(d, 0, sizeof *d);
    if (x->data) {
        tok_tokenizer tok;
        tok_init_byte(&tok);
        data_set ds;
        char derr[DATA_ERR_LEN];
        int rc = data_load(x->data, &tok, DATA_VAL_FRACTION, &ds, derr);
        tok_free(&tok);
        if (rc)
            return exp_fail(x, "%s", derr);
        /* keep one allocation: the two streams copied side by side */
        size_t nt = ds.train.n, nv = ds.val.n;
        d->owned = malloc((nt + nv) * sizeof(int32_t));
        if (d->owned) {
            memcpy(d->owned, ds.train.ids, nt * sizeof(int32_t));
            memcpy(d->owned + nt, ds.val.ids, nv * sizeof(int32_t));
        }
        snprintf(d->desc, sizeof d->desc, "%s (bytes)", x->data);
        data_set_free(&ds);
        if (!d->owned)
            return exp_fail(x, "out of memory");
        d->train = (data_tokens){d->owned, nt};
        d->val = (data_tokens){d->owned + nt, nv};
        return 0;
    }
    size_t len;
    char *text = exp_corpus(CORPUS_BYTES, 20251204, &len);
    if (!text || !(d->owned = malloc(len * sizeof(int32_t)))) {
        free(text);
        return exp_fail(x, "out of memory");
    }
    for (size_t i = 0; i < len; i++)
        d->owned[i] = (unsigned char)text[i];
    free(text);
    size_t nt = data_split_point(len, DATA_VAL_FRACTION);
    d->train = (data_tokens){d->owned, nt};
    d->val = (data_tokens){d->owned + nt, len - nt};
    snprintf(d->desc, sizeof d->desc, "the built-in synthetic corpus (%zu bytes)", len);
    return 0;
}

void exp_data_free(exp_data *d)
{
    free(d->owned);
    memset(d, 0, sizeof *d);
}
