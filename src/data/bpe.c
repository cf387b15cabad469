/* GPT-2 byte-level BPE: loading encoder.json + vocab.bpe, and encoding.
 *
 * GPT-2 stores every token as a string of "byte characters": each byte maps
 * to one printable Unicode character (bytes_to_unicode in encoder.py). We
 * undo that mapping at load time, so inside the tokenizer a token is its raw
 * bytes and a merge is a pair of token ids -> (rank, merged id). Encoding a
 * pre-tokenized piece starts from one id per byte and applies merges lowest
 * rank first with a heap. That gives exactly encoder.py's result because the
 * load checks the property that makes it so: every merge uses only tokens
 * produced by earlier merges (or single bytes) and produces a new token, so
 * merging rank r never creates a pair of rank <= r. */
#include "data/bpe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "data/dutil.h"
#include "muon.h"

#define BYTE_CHARS 324 /* byte characters are U+0021..U+0143 */
#define EMPTY_KEY UINT64_MAX

struct tok_bpe {
    int n_vocab;
    uint32_t *start, *len; /* token id -> its bytes in pool */
    char *pool;
    int32_t byte_id[256];
    /* merges: open addressing keyed by (left id << 32 | right id) */
    uint64_t *mkey;
    int32_t *mrank, *mres;
    size_t mmask;
};

/* ---- byte <-> character mapping (encoder.py's bytes_to_unicode) ---- */

static void byte_char_tables(uint32_t b2u[256], int u2b[BYTE_CHARS])
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        b2u[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
    }
    for (int c = 0; c < BYTE_CHARS; c++)
        u2b[c] = -1;
    for (int b = 0; b < 256; b++)
        u2b[b2u[b]] = b;
}

/* UTF-8 of byte characters -> raw bytes (out has room for n bytes).
 * Returns the byte count, or -1 if some character is not a byte character. */
static long unmap_token(const char *s, size_t n, const int u2b[BYTE_CHARS], char *out)
{
    size_t i = 0;
    long m = 0;
    while (i < n) {
        uint32_t cp;
        /* a tiny UTF-8 decoder suffices: byte characters are < U+0800 */
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            cp = c, i += 1;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < n && ((unsigned char)s[i + 1] & 0xC0) == 0x80) {
            cp = ((uint32_t)(c & 0x1F) << 6) | ((unsigned char)s[i + 1] & 0x3Fu), i += 2;
        } else {
            return -1;
        }
        if (cp >= BYTE_CHARS || u2b[cp] < 0)
            return -1;
        out[m++] = (char)u2b[cp];
    }
    return m;
}

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return mix64(h);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

/* token string -> id table used while loading */
typedef struct {
    int32_t *slot;
    size_t mask;
} str_map;

static int32_t str_find(const str_map *m, const tok_bpe *b, const char *s, size_t n)
{
    size_t i = hash_bytes(s, n) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        int32_t id = m->slot[i];
        if (id < 0)
            return -1;
        if (b->len[id] == n && memcmp(b->pool + b->start[id], s, n) == 0)
            return id;
    }
}

/* insert id (its bytes are in b); returns the id already there, or -1 */
static int32_t str_insert(str_map *m, const tok_bpe *b, int32_t id)
{
    const char *s = b->pool + b->start[id];
    size_t n = b->len[id];
    size_t i = hash_bytes(s, n) & m->mask;
    for (;; i = (i + 1) & m->mask) {
        int32_t other = m->slot[i];
        if (other < 0) {
            m->slot[i] = id;
            return -1;
        }
        if (b->len[other] == n && memcmp(b->pool + b->start[other], s, n) == 0)
            return other;
    }
}

static uint64_t pair_key(int32_t a, int32_t bb)
{
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)bb;
}

/* slot of the merge (a, b): its own slot when present, else a free one */
static size_t merge_slot(const tok_bpe *b, int32_t l, int32_t r)
{
    uint64_t key = pair_key(l, r);
    size_t i = mix64(key) & b->mmask;
    while (b->mkey[i] != EMPTY_KEY && b->mkey[i] != key)
        i = (i + 1) & b->mmask;
    return i;
}

void tok_bpe_free(tok_bpe *b)
{
    if (!b)
        return;
    free(b->start);
    free(b->len);
    free(b->pool);
    free(b->mkey);
    free(b->mrank);
    free(b->mres);
    free(b);
}

/* ---- loading encoder.json ---- */

static int load_encoder(tok_bpe *b, const char *path, const int u2b[BYTE_CHARS], str_map *map,
                        char *err)
{
    char *text;
    size_t text_len;
    int rc = data_read_whole(path, "encoder.json", &text, &text_len, err);
    if (rc)
        return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root || end != text + text_len) {
        size_t at = end ? (size_t)(end - text) : 0;
        data_errf(err, "encoder.json %s: malformed JSON near byte %zu", path, at);
        cJSON_Delete(root);
        free(text);
        return MUON_ERR_FORMAT;
    }
    rc = MUON_ERR_NOMEM;
    int n = cJSON_GetArraySize(root);
    if (!cJSON_IsObject(root) || n < 256) {
        data_errf(err, "encoder.json %s: expected an object of at least 256 tokens", path);
        rc = MUON_ERR_FORMAT;
        goto done;
    }
    b->n_vocab = n;
    b->start = calloc((size_t)n, sizeof *b->start);
    b->len = calloc((size_t)n, sizeof *b->len);
    b->pool = malloc(text_len + 1); /* raw bytes are never longer than their JSON */
    map->mask = pow2_at_least(2 * (size_t)n) - 1;
    map->slot = malloc((map->mask + 1) * sizeof *map->slot);
    unsigned char *seen = calloc((size_t)n, 1);
    if (!b->start || !b->len || !b->pool || !map->slot || !seen) {
        data_errf(err, "out of memory loading encoder.json %s", path);
        free(seen);
        goto done;
    }
    memset(map->slot, 0xff, (map->mask + 1) * sizeof *map->slot);
    size_t used = 0;
    rc = MUON_ERR_FORMAT;
    for (cJSON *it = root->child; it; it = it->next) {
        double v = it->valuedouble;
        if (!cJSON_IsNumber(it) || !(v >= 0 && v < n) || v != floor(v)) {
            if (cJSON_IsNumber(it))
                data_errf(err, "encoder.json %s: token \"%.40s\" has id %g; ids must be the "
                          "integers 0..%d", path, it->string, v, n - 1);
            else
                data_errf(err, "encoder.json %s: token \"%.40s\" has a value that is not a "
                          "number", path, it->string);
            goto bad;
        }
        int id = (int)v;
        if (seen[id]) {
            data_errf(err, "encoder.json %s: id %d is used twice (\"%.40s\")", path, id,
                      it->string);
            goto bad;
        }
        seen[id] = 1;
        long m = unmap_token(it->string, strlen(it->string), u2b, b->pool + used);
        if (m <= 0) {
            data_errf(err, "encoder.json %s: key \"%.40s\" is not a GPT-2 byte-level token",
                      path, it->string);
            goto bad;
        }
        b->start[id] = (uint32_t)used;
        b->len[id] = (uint32_t)m;
        used += (size_t)m;
        int32_t other = str_insert(map, b, id);
        if (other >= 0) {
            data_errf(err, "encoder.json %s: ids %d and %d are the same token \"%.40s\"", path,
                      (int)other, id, it->string);
            goto bad;
        }
    }
    for (int c = 0; c < 256; c++) {
        char byte = (char)c;
        b->byte_id[c] = str_find(map, b, &byte, 1);
        if (b->byte_id[c] < 0) {
            data_errf(err, "encoder.json %s: no token for byte 0x%02X", path, c);
            goto bad;
        }
    }
    rc = MUON_OK;
bad:
    free(seen);
done:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---- loading vocab.bpe ---- */

static int add_merge(tok_bpe *b, const str_map *map, const int u2b[BYTE_CHARS],
                     unsigned char *produced, const char *line, size_t n, int rank, int lineno,
                     const char *path, char *scratch, char *err)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp || sp == line || sp == line + n - 1 || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - line))) {
        data_errf(err, "vocab.bpe %s: line %d \"%.*s\" is not two tokens separated by one space",
                  path, lineno, (int)(n < 60 ? n : 60), line);
        return MUON_ERR_FORMAT;
    }
    size_t nl = (size_t)(sp - line), nr = n - nl - 1;
    long bl = unmap_token(line, nl, u2b, scratch);
    long br = bl < 0 ? -1 : unmap_token(sp + 1, nr, u2b, scratch + bl);
    if (bl < 0 || br < 0) {
        data_errf(err, "vocab.bpe %s: line %d \"%.*s\" has a character that is not a GPT-2 "
                  "byte character", path, lineno, (int)(n < 60 ? n : 60), line);
        return MUON_ERR_FORMAT;
    }
    int32_t l = str_find(map, b, scratch, (size_t)bl);
    int32_t r = str_find(map, b, scratch + bl, (size_t)br);
    int32_t res = str_find(map, b, scratch, (size_t)(bl + br));
    const char *missing = l < 0 ? "its left token" : r < 0 ? "its right token"
                          : res < 0 ? "the merged token" : NULL;
    if (missing) {
        data_errf(err, "vocab.bpe %s: line %d \"%.*s\": %s is not in encoder.json", path,
                  lineno, (int)(n < 60 ? n : 60), line, missing);
        return MUON_ERR_FORMAT;
    }
    if (!produced[l] || !produced[r]) {
        data_errf(err, "vocab.bpe %s: line %d \"%.*s\" uses a token no earlier merge produces",
                  path, lineno, (int)(n < 60 ? n : 60), line);
        return MUON_ERR_FORMAT;
    }
    if (produced[res]) {
        data_errf(err, "vocab.bpe %s: line %d \"%.*s\" produces a token an earlier merge "
                  "already produced", path, lineno, (int)(n < 60 ? n : 60), line);
        return MUON_ERR_FORMAT;
    }
    size_t slot = merge_slot(b, l, r);
    /* a repeated pair would produce a repeated token, caught just above */
    b->mkey[slot] = pair_key(l, r);
    b->mrank[slot] = rank;
    b->mres[slot] = res;
    produced[res] = 1;
    return MUON_OK;
}

static int load_merges(tok_bpe *b, const char *path, const int u2b[BYTE_CHARS],
                       const str_map *map, char *err)
{
    char *text;
    size_t len;
    int rc = data_read_whole(path, "vocab.bpe", &text, &len, err);
    if (rc)
        return rc;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    b->mmask = pow2_at_least(2 * lines) - 1;
    b->mkey = malloc((b->mmask + 1) * sizeof *b->mkey);
    b->mrank = malloc((b->mmask + 1) * sizeof *b->mrank);
    b->mres = malloc((b->mmask + 1) * sizeof *b->mres);
    unsigned char *produced = calloc((size_t)b->n_vocab, 1);
    char *scratch = malloc(len + 1);
    if (!b->mkey || !b->mrank || !b->mres || !produced || !scratch) {
        data_errf(err, "out of memory loading vocab.bpe %s", path);
        rc = MUON_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i <= b->mmask; i++)
        b->mkey[i] = EMPTY_KEY;
    for (int c = 0; c < 256; c++)
        produced[b->byte_id[c]] = 1;
    rc = MUON_ERR_FORMAT;
    int lineno = 0, rank = 0;
    size_t p = 0;
    while (p < len) {
        const char *nlp = memchr(text + p, '\n', len - p);
        size_t e = nlp ? (size_t)(nlp - text) : len, n = e - p;
        const char *line = text + p;
        p = nlp ? e + 1 : len;
        lineno++;
        if (n && line[n - 1] == '\r')
            n--;
        if (lineno == 1) {
            if (n != 13 || memcmp(line, "#version: 0.2", 13) != 0) {
                data_errf(err, "vocab.bpe %s: first line is \"%.*s\"; expected \"#version: 0.2\"",
                          path, (int)(n < 40 ? n : 40), line);
                goto done;
            }
            continue;
        }
        if (n == 0) {
            /* blank lines may only close the file */
            size_t q = p;
            while (q < len && (text[q] == '\n' || text[q] == '\r'))
                q++;
            if (q == len)
                break;
            data_errf(err, "vocab.bpe %s: line %d is empty", path, lineno);
            goto done;
        }
        if (add_merge(b, map, u2b, produced, line, n, rank, lineno, path, scratch, err))
            goto done;
        rank++;
    }
    if (lineno == 0) {
        data_errf(err, "vocab.bpe %s is empty; expected \"#version: 0.2\" and merges", path);
        goto done;
    }
    rc = MUON_OK;
done:
    free(produced);
    free(scratch);
    free(text);
    return rc;
}

int tok_bpe_load(const char *encoder_json, const char *vocab_bpe, tok_bpe **out,
                 int *vocab_size, int *eot_id, char *err)
{
    uint32_t b2u[256];
    int u2b[BYTE_CHARS];
    byte_char_tables(b2u, u2b);
    tok_bpe *b = calloc(1, sizeof *b);
    str_map map = {NULL, 0};
    if (!b) {
        data_errf(err, "out of memory loading GPT-2 BPE");
        return MUON_ERR_NOMEM;
    }
    int rc = load_encoder(b, encoder_json, u2b, &map, err);
    if (!rc)
        rc = load_merges(b, vocab_bpe, u2b, &map, err);
    if (rc) {
        free(map.slot);
        tok_bpe_free(b);
        return rc;
    }
    *eot_id = str_find(&map, b, "<|endoftext|>", 13);
    free(map.slot);
    *vocab_size = b->n_vocab;
    *out = b;
    return MUON_OK;
}

void tok_bpe_token(const tok_bpe *b, int32_t id, const char **bytes, size_t *len)
{
    *bytes = b->pool + b->start[id];
    *len = b->len[id];
}

/* ---- encoding ---- */

typedef struct {
    int32_t rank, pos, left, right;
} heap_entry;

typedef struct {
    const tok_bpe *b;
    int32_t *sym, *nxt, *prv;
    heap_entry *heap;
    size_t cap, hn;
    int32_t **ids;
    size_t *n, *ids_cap;
} encode_ctx;

static int heap_less(const heap_entry *x, const heap_entry *y)
{
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(encode_ctx *c, heap_entry e)
{
    size_t i = c->hn++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&e, &c->heap[parent]))
            break;
        c->heap[i] = c->heap[parent];
        i = parent;
    }
    c->heap[i] = e;
}

static heap_entry heap_pop(encode_ctx *c)
{
    heap_entry top = c->heap[0], last = c->heap[--c->hn];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= c->hn)
            break;
        if (k + 1 < c->hn && heap_less(&c->heap[k + 1], &c->heap[k]))
            k++;
        if (!heap_less(&c->heap[k], &last))
            break;
        c->heap[i] = c->heap[k];
        i = k;
    }
    if (c->hn)
        c->heap[i] = last;
    return top;
}

/* push the pair starting at symbol position pos if it is a merge */
static void push_pair(encode_ctx *c, int32_t pos)
{
    if (pos < 0 || c->nxt[pos] < 0)
        return;
    const tok_bpe *b = c->b;
    int32_t l = c->sym[pos], r = c->sym[c->nxt[pos]];
    size_t slot = merge_slot(b, l, r);
    if (b->mkey[slot] == EMPTY_KEY)
        return;
    heap_entry e = {b->mrank[slot], pos, l, r};
    heap_push(c, e);
}

static int append_id(encode_ctx *c, int32_t id)
{
    if (*c->n == *c->ids_cap) {
        size_t cap = *c->ids_cap ? 2 * *c->ids_cap : 1024;
        int32_t *p = realloc(*c->ids, cap * sizeof *p);
        if (!p)
            return MUON_ERR_NOMEM;
        *c->ids = p;
        *c->ids_cap = cap;
    }
    (*c->ids)[(*c->n)++] = id;
    return MUON_OK;
}

static int reserve(encode_ctx *c, size_t n)
{
    if (n <= c->cap)
        return MUON_OK;
    size_t cap = pow2_at_least(n);
    int32_t *s = realloc(c->sym, cap * sizeof *s);
    if (s)
        c->sym = s;
    int32_t *nx = realloc(c->nxt, cap * sizeof *nx);
    if (nx)
        c->nxt = nx;
    int32_t *pv = realloc(c->prv, cap * sizeof *pv);
    if (pv)
        c->prv = pv;
    /* each merge pushes at most two pairs on top of the first n - 1 */
    heap_entry *h = realloc(c->heap, 3 * cap * sizeof *h);
    if (h)
        c->heap = h;
    if (!s || !nx || !pv || !h)
        return MUON_ERR_NOMEM;
    c->cap = cap;
    return MUON_OK;
}

static int encode_piece(const char *piece, size_t n, void *ctx)
{
    encode_ctx *c = ctx;
    const tok_bpe *b = c->b;
    if (n == 1)
        return append_id(c, b->byte_id[(unsigned char)piece[0]]);
    if (n > INT32_MAX / 4)
        return MUON_ERR_SIZE;
    int rc = reserve(c, n);
    if (rc)
        return rc;
    int32_t m = (int32_t)n;
    for (int32_t i = 0; i < m; i++) {
        c->sym[i] = b->byte_id[(unsigned char)piece[i]];
        c->prv[i] = i - 1;
        c->nxt[i] = i + 1 < m ? i + 1 : -1;
    }
    c->hn = 0;
    for (int32_t i = 0; i + 1 < m; i++)
        push_pair(c, i);
    while (c->hn) {
        heap_entry e = heap_pop(c);
        int32_t r = c->nxt[e.pos];
        /* stale: the left symbol was merged away or changed, or its right
         * neighbour changed (which happens only if the left one changed) */
        if (c->sym[e.pos] != e.left || r < 0 || c->sym[r] != e.right)
            continue;
        c->sym[e.pos] = b->mres[merge_slot(b, e.left, e.right)];
        c->sym[r] = -1; /* never equals a heap entry's left id */
        c->nxt[e.pos] = c->nxt[r];
        if (c->nxt[r] >= 0)
            c->prv[c->nxt[r]] = e.pos;
        push_pair(c, c->prv[e.pos]);
        push_pair(c, e.pos);
    }
    for (int32_t i = 0; i >= 0; i = c->nxt[i]) {
        rc = append_id(c, c->sym[i]);
        if (rc)
            return rc;
    }
    return MUON_OK;
}

int tok_bpe_encode(const tok_bpe *b, const char *text, size_t len, int32_t **ids, size_t *n,
                   size_t *cap)
{
    encode_ctx c = {.b = b, .ids = ids, .n = n, .ids_cap = cap};
    int rc = tok_gpt2_pretokenize(text, len, encode_piece, &c);
    free(c.sym);
    free(c.nxt);
    free(c.prv);
    free(c.heap);
    return rc;
}
