/* Deterministic, resumable training batches and a fixed validation set.
 * The whole position is (seed, epoch, pos): the window order of an epoch is
 * recomputed from (seed, epoch), so restoring those three numbers gives the
 * same next batches as a run that never stopped. */
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "data/dutil.h"
#include "muon.h"

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* uniform in [0, bound) without modulo bias */
static uint64_t below(uint64_t *s, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do
        r = splitmix64(s);
    while (r >= limit);
    return r % bound;
}

/* Fisher-Yates shuffle of 0..n-1 seeded by (seed, epoch) */
static void epoch_order(uint64_t *order, uint64_t n, uint64_t seed, uint64_t epoch)
{
    uint64_t s = seed;
    s = splitmix64(&s) ^ (epoch * 0xD1B54A32D192ED03ULL);
    for (uint64_t i = 0; i < n; i++)
        order[i] = i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = below(&s, i + 1);
        uint64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static int check_stream(size_t n, int B, int T, const char *name, char *err)
{
    if (B < 1 || T < 1) {
        data_errf(err, "batch size %d and context %d must both be at least 1", B, T);
        return MUON_ERR_ARG;
    }
    if (n < (size_t)T + 1) {
        data_errf(err, "%s has %zu tokens; need at least T+1 = %ld for context %d",
                  name ? name : "data", n, (long)T + 1, T);
        return MUON_ERR_SIZE;
    }
    return MUON_OK;
}

static void copy_window(const int32_t *tokens, uint64_t w, int T, int32_t *in, int32_t *tg)
{
    const int32_t *p = tokens + w * (uint64_t)T;
    memcpy(in, p, (size_t)T * sizeof *in);
    memcpy(tg, p + 1, (size_t)T * sizeof *tg);
}

int data_loader_init(data_loader *L, const int32_t *tokens, size_t n, int B, int T,
                     uint64_t seed, const char *name, char *err)
{
    if (!L || !tokens) {
        data_errf(err, "data_loader_init: NULL argument");
        return MUON_ERR_NULL;
    }
    int rc = check_stream(n, B, T, name, err);
    if (rc)
        return rc;
    uint64_t nw = (uint64_t)(n - 1) / (uint64_t)T;
    uint64_t *order = malloc(nw * sizeof *order);
    if (!order) {
        data_errf(err, "out of memory for the order of %llu windows", (unsigned long long)nw);
        return MUON_ERR_NOMEM;
    }
    epoch_order(order, nw, seed, 0);
    L->tokens = tokens;
    L->n = n;
    L->B = B;
    L->T = T;
    L->st = (data_loader_state){seed, 0, 0, nw, (uint64_t)B, (uint64_t)T};
    L->order = order;
    return MUON_OK;
}

int data_loader_next(data_loader *L, int32_t *inputs, int32_t *targets)
{
    if (!L || !L->order || !inputs || !targets)
        return MUON_ERR_NULL;
    for (int b = 0; b < L->B; b++) {
        if (L->st.pos == L->st.n_windows) {
            L->st.epoch++;
            L->st.pos = 0;
            epoch_order(L->order, L->st.n_windows, L->st.seed, L->st.epoch);
        }
        uint64_t w = L->order[L->st.pos++];
        copy_window(L->tokens, w, L->T, inputs + (size_t)b * (size_t)L->T,
                    targets + (size_t)b * (size_t)L->T);
    }
    return MUON_OK;
}

void data_loader_state_get(const data_loader *L, data_loader_state *st)
{
    *st = L->st;
}

int data_loader_state_set(data_loader *L, const data_loader_state *st, char *err)
{
    if (!L || !L->order || !st) {
        data_errf(err, "data_loader_state_set: NULL argument");
        return MUON_ERR_NULL;
    }
    if (st->n_windows != L->st.n_windows || st->B != L->st.B || st->T != L->st.T) {
        data_errf(err, "saved data position is for %llu windows of batch %llu x context %llu, "
                  "but this data gives %llu windows of %llu x %llu (different data or shape)",
                  (unsigned long long)st->n_windows, (unsigned long long)st->B,
                  (unsigned long long)st->T, (unsigned long long)L->st.n_windows,
                  (unsigned long long)L->st.B, (unsigned long long)L->st.T);
        return MUON_ERR_MISMATCH;
    }
    if (st->pos > st->n_windows) {
        data_errf(err, "saved data position %llu is past the %llu windows of an epoch",
                  (unsigned long long)st->pos, (unsigned long long)st->n_windows);
        return MUON_ERR_MISMATCH;
    }
    L->st = *st;
    epoch_order(L->order, L->st.n_windows, L->st.seed, L->st.epoch);
    return MUON_OK;
}

void data_loader_free(data_loader *L)
{
    if (!L)
        return;
    free(L->order);
    L->order = NULL;
}

int data_val_init(data_val *v, const int32_t *tokens, size_t n, int B, int T, int max_batches,
                  const char *name, char *err)
{
    if (!v || !tokens) {
        data_errf(err, "data_val_init: NULL argument");
        return MUON_ERR_NULL;
    }
    int rc = check_stream(n, B, T, name, err);
    if (rc)
        return rc;
    if (max_batches < 1) {
        data_errf(err, "the number of validation batches must be at least 1, not %d",
                  max_batches);
        return MUON_ERR_ARG;
    }
    uint64_t nw = (uint64_t)(n - 1) / (uint64_t)T;
    uint64_t nb = nw / (uint64_t)B;
    if (nb < 1)
        nb = 1;
    if (nb > (uint64_t)max_batches)
        nb = (uint64_t)max_batches;
    *v = (data_val){tokens, n, nw, B, T, (int)nb};
    return MUON_OK;
}

int data_val_batch(const data_val *v, int b, int32_t *inputs, int32_t *targets)
{
    if (!v || !inputs || !targets)
        return MUON_ERR_NULL;
    if (b < 0 || b >= v->n_batches)
        return MUON_ERR_ARG;
    unsigned __int128 rows = (unsigned __int128)v->n_batches * (unsigned)v->B;
    for (int r = 0; r < v->B; r++) {
        unsigned __int128 k = (unsigned __int128)b * (unsigned)v->B + (unsigned)r;
        uint64_t w = (uint64_t)(k * v->n_windows / rows);
        copy_window(v->tokens, w, v->T, inputs + (size_t)r * (size_t)v->T,
                    targets + (size_t)r * (size_t)v->T);
    }
    return MUON_OK;
}
