/* The GPT model: parameter table, activation layout, forward and backward.
 * Layers are in layers.c / attention.c / loss.c, initialisation in
 * gpt_init.c; gpt.h documents the memory layout. */
#include "nn/gpt.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "nn/linear_mixed.h"

/* Views of one block's tensors (into the parameters or the gradients). */
typedef struct {
    float *ln1, *ln2, *qkv, *attn_out, *fc, *proj;
} gpt_block;

/* Views of one block's saved activations; each sized for batch*context
 * rows, of which a forward uses the first B*T. */
typedef struct {
    float *h1, *rstd1; /* rmsnorm(x) * ln1 (N, D), 1/rms (N) */
    float *qkv;        /* (N, 3D), q and k rotated */
    float *att;        /* softmax probabilities (B, H, T, T) */
    float *a;          /* attention output before attn_out (N, D) */
    float *xmid;       /* residual after attention (N, D) */
    float *h2, *rstd2; /* rmsnorm(xmid) * ln2 */
    float *pre, *act;  /* fc output and relu^2 of it (N, 4D) */
} gpt_acts;

struct gpt_model {
    gpt_config c;
    int batch;
    int ntensors;
    gpt_tensor *tensors;
    size_t nparams;
    float *params, *grads;
    float *wte, *lnf, *head, *g_wte, *g_lnf, *g_head;
    gpt_block *w, *g; /* per layer */

    /* Activations (one allocation): x[l] is block l's input residual (N, D),
     * x[L] the final one; then per-layer acts, the final norm, logits
     * (overwritten by dlogits), per-row losses, and backward scratch shared
     * by all layers (each layer's backward finishes before the next). */
    float *actmem;
    size_t act_floats;
    float **x;
    gpt_acts *acts;
    float *hf, *rstdf, *logits, *losses;
    float *dres, *dD, *d4, *dqkv, *datt;
    float *rope_cos, *rope_sin;
    int32_t *tokens; /* copy of the last forward's tokens, for the backward */

    int B, T;       /* of the last forward */
    int grad_ready; /* a forward with targets awaits its backward */

    /* mixed precision: the linear layers' bf16 operand scratch */
    muon_precision precision;
    muon_status fwd_status; /* of the last gpt_forward's products */
    nn_mixed_scratch mx;
    void *mxmem;
    size_t mx_bytes;
};

gpt_config gpt_config_default(void)
{
    gpt_config c = {.vocab = 256, .context = 128, .layers = 4, .dim = 128, .heads = 4};
    return c;
}

/* *acc += a * b, failing on overflow. */
static int add_mul(size_t *acc, size_t a, size_t b)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    if (*acc > SIZE_MAX - a * b)
        return 0;
    *acc += a * b;
    return 1;
}

muon_status gpt_config_validate(const gpt_config *c)
{
    if (!c)
        return MUON_ERR_NULL;
    if (c->vocab <= 0 || c->context <= 0 || c->layers <= 0 || c->dim <= 0 || c->heads <= 0)
        return MUON_ERR_SIZE;
    if (c->dim % c->heads != 0 || (c->dim / c->heads) % 2 != 0)
        return MUON_ERR_ARG;
    /* BLAS takes int sizes and leading dimensions (4D is the widest); the
     * byte counts are overflow-checked in gpt_create. */
    if (c->dim > INT_MAX / 4)
        return MUON_ERR_SIZE;
    return MUON_OK;
}

static void add_tensor(gpt_model *m, const char *name, int ndim, long r, long cols,
                       muon_role role, size_t *off)
{
    gpt_tensor *t = &m->tensors[m->ntensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = r;
    t->shape[1] = ndim == 2 ? cols : 0;
    t->numel = (size_t)r * (size_t)(ndim == 2 ? cols : 1);
    t->offset = *off;
    t->role = role;
    *off += t->numel;
}

/* 2 V D + L (2 D + 12 D^2) + D parameters; 0 on overflow (D <= INT_MAX / 4,
 * so D * D fits a 64-bit size_t). */
static size_t count_params(const gpt_config *c)
{
    size_t V = (size_t)c->vocab, D = (size_t)c->dim, L = (size_t)c->layers, total = 0;
    if (!add_mul(&total, 2 * V, D) || !add_mul(&total, L, 2 * D) ||
        !add_mul(&total, L * 12, D * D) || !add_mul(&total, 1, D))
        return 0;
    return total;
}

size_t gpt_config_num_params(const gpt_config *c)
{
    return gpt_config_validate(c) == MUON_OK ? count_params(c) : 0;
}

/* The table of docs/model.md, in its order; returns the parameter count. */
static size_t build_table(gpt_model *m)
{
    const gpt_config *c = &m->c;
    size_t off = 0;
    char name[GPT_NAME_MAX];
    long d = c->dim, v = c->vocab;
    add_tensor(m, "wte", 2, v, d, MUON_ROLE_EMBEDDING, &off);
    for (int l = 0; l < c->layers; l++) {
        snprintf(name, sizeof name, "h.%d.ln1", l);
        add_tensor(m, name, 1, d, 0, MUON_ROLE_VECTOR, &off);
        snprintf(name, sizeof name, "h.%d.ln2", l);
        add_tensor(m, name, 1, d, 0, MUON_ROLE_VECTOR, &off);
        snprintf(name, sizeof name, "h.%d.qkv", l);
        add_tensor(m, name, 2, 3 * d, d, MUON_ROLE_MATRIX, &off);
        snprintf(name, sizeof name, "h.%d.attn_out", l);
        add_tensor(m, name, 2, d, d, MUON_ROLE_MATRIX, &off);
        snprintf(name, sizeof name, "h.%d.fc", l);
        add_tensor(m, name, 2, 4 * d, d, MUON_ROLE_MATRIX, &off);
        snprintf(name, sizeof name, "h.%d.proj", l);
        add_tensor(m, name, 2, d, 4 * d, MUON_ROLE_MATRIX, &off);
    }
    add_tensor(m, "lnf", 1, d, 0, MUON_ROLE_VECTOR, &off);
    add_tensor(m, "head", 2, v, d, MUON_ROLE_HEAD, &off);
    return off;
}

static void bind_views(gpt_model *m, float *base, float **wte, float **lnf, float **head,
                       gpt_block *blk)
{
    const gpt_tensor *t = m->tensors;
    *wte = base + t[0].offset;
    for (int l = 0; l < m->c.layers; l++, t += 6) {
        blk[l].ln1 = base + t[1].offset;
        blk[l].ln2 = base + t[2].offset;
        blk[l].qkv = base + t[3].offset;
        blk[l].attn_out = base + t[4].offset;
        blk[l].fc = base + t[5].offset;
        blk[l].proj = base + t[6].offset;
    }
    *lnf = base + t[1].offset;
    *head = base + t[2].offset;
}

/* Carves activation buffers out of one allocation. With base == NULL it only
 * counts (overflow-checked); each buffer starts on a 64-byte boundary. */
typedef struct {
    float *base;
    size_t used;
    int ok;
} carver;

static float *carve(carver *cv, size_t a, size_t b)
{
    size_t n = 0;
    if (!cv->ok || !add_mul(&n, a, b) || n > SIZE_MAX - 16 || cv->used > SIZE_MAX - (n + 15)) {
        cv->ok = 0;
        return NULL;
    }
    float *p = cv->base ? cv->base + cv->used : NULL;
    cv->used += (n + 15) / 16 * 16;
    return p;
}

static void layout_acts(gpt_model *m, carver *cv)
{
    const gpt_config *c = &m->c;
    size_t N = (size_t)m->batch * (size_t)c->context, D = (size_t)c->dim;
    size_t T = (size_t)c->context, BH = (size_t)m->batch * (size_t)c->heads, TT = T * T;
    for (int l = 0; l <= c->layers; l++)
        m->x[l] = carve(cv, N, D);
    for (int l = 0; l < c->layers; l++) {
        gpt_acts *a = &m->acts[l];
        a->h1 = carve(cv, N, D);
        a->rstd1 = carve(cv, N, 1);
        a->qkv = carve(cv, N, 3 * D);
        a->att = carve(cv, BH, TT);
        a->a = carve(cv, N, D);
        a->xmid = carve(cv, N, D);
        a->h2 = carve(cv, N, D);
        a->rstd2 = carve(cv, N, 1);
        a->pre = carve(cv, N, 4 * D);
        a->act = carve(cv, N, 4 * D);
    }
    m->hf = carve(cv, N, D);
    m->rstdf = carve(cv, N, 1);
    m->logits = carve(cv, N, (size_t)c->vocab);
    m->losses = carve(cv, N, 1);
    m->dres = carve(cv, N, D);
    m->dD = carve(cv, N, D);
    m->d4 = carve(cv, N, 4 * D);
    m->dqkv = carve(cv, N, 3 * D);
    m->datt = carve(cv, BH, TT);
    m->rope_cos = carve(cv, T, D / (size_t)c->heads / 2);
    m->rope_sin = carve(cv, T, D / (size_t)c->heads / 2);
    /* int32 tokens share the float allocation (same size and alignment) */
    m->tokens = (int32_t *)carve(cv, N, 1);
}

static float *alloc_floats(size_t n)
{
    void *p = NULL;
    if (n > SIZE_MAX / sizeof(float) || posix_memalign(&p, 64, n * sizeof(float)) != 0)
        return NULL;
    return p;
}

muon_status gpt_create(const gpt_config *c, int batch, gpt_model **out)
{
    if (!out)
        return MUON_ERR_NULL;
    *out = NULL;
    muon_status s = gpt_config_validate(c);
    if (s != MUON_OK)
        return s;
    if (batch <= 0 || (long long)batch * c->context > INT_MAX ||
        (long long)batch * c->heads > INT_MAX)
        return MUON_ERR_SIZE;
    if (count_params(c) == 0)
        return MUON_ERR_SIZE;
    gpt_model *m = calloc(1, sizeof *m);
    if (!m)
        return MUON_ERR_NOMEM;
    m->c = *c;
    m->batch = batch;
    m->tensors = calloc((size_t)c->layers * 6 + 3, sizeof *m->tensors);
    m->w = calloc((size_t)c->layers, sizeof *m->w);
    m->g = calloc((size_t)c->layers, sizeof *m->g);
    m->x = calloc((size_t)c->layers + 1, sizeof *m->x);
    m->acts = calloc((size_t)c->layers, sizeof *m->acts);
    if (!m->tensors || !m->w || !m->g || !m->x || !m->acts) {
        gpt_free(m);
        return MUON_ERR_NOMEM;
    }
    m->nparams = build_table(m);
    carver cv = {NULL, 0, 1};
    layout_acts(m, &cv);
    if (!cv.ok) {
        gpt_free(m);
        return MUON_ERR_SIZE;
    }
    m->act_floats = cv.used;
    m->params = alloc_floats(m->nparams);
    m->grads = alloc_floats(m->nparams);
    m->actmem = alloc_floats(m->act_floats);
    if (!m->params || !m->grads || !m->actmem) {
        gpt_free(m);
        return MUON_ERR_NOMEM;
    }
    memset(m->params, 0, m->nparams * sizeof(float));
    memset(m->grads, 0, m->nparams * sizeof(float));
    cv = (carver){m->actmem, 0, 1};
    layout_acts(m, &cv);
    bind_views(m, m->params, &m->wte, &m->lnf, &m->head, m->w);
    bind_views(m, m->grads, &m->g_wte, &m->g_lnf, &m->g_head, m->g);
    nn_rope_tables(m->rope_cos, m->rope_sin, c->context, c->dim / c->heads);
    *out = m;
    return MUON_OK;
}

void gpt_free(gpt_model *m)
{
    if (!m)
        return;
    free(m->tensors);
    free(m->w);
    free(m->g);
    free(m->x);
    free(m->acts);
    free(m->params);
    free(m->grads);
    free(m->actmem);
    free(m->mxmem);
    free(m);
}

muon_status gpt_set_precision(gpt_model *m, muon_precision p)
{
    if (!m)
        return MUON_ERR_NULL;
    if ((int)p < 0 || p >= MUON_PRECISION_COUNT)
        return MUON_ERR_ARG;
    p = muon_backend_layer_precision(NULL, p); /* AUTO: what this machine runs faster */
    if (p == MUON_PRECISION_MIXED && !m->mxmem) {
        size_t N = (size_t)m->batch * (size_t)m->c.context, D = (size_t)m->c.dim;
        size_t V = (size_t)m->c.vocab, widest = V > 4 * D ? V : 4 * D;
        size_t na, nb, nw;
        nn_mixed_sizes(N, 4 * D, widest, widest * D, &na, &nb, &nw);
        /* sizes were checked against the activations, which are larger */
        size_t bytes = (na + nb + nw) * sizeof(muon_bf16) + 3 * 64;
        void *mem = malloc(bytes);
        if (!mem)
            return MUON_ERR_NOMEM;
        char *q = mem;
        m->mx.a = (muon_bf16 *)q;
        q += (na * sizeof(muon_bf16) + 63) & ~(size_t)63;
        m->mx.b = (muon_bf16 *)q;
        q += (nb * sizeof(muon_bf16) + 63) & ~(size_t)63;
        m->mx.w = (muon_bf16 *)q;
        m->mx.na = na;
        m->mx.nb = nb;
        m->mx.nw = nw;
        m->mxmem = mem;
        m->mx_bytes = bytes;
    }
    m->precision = p;
    return MUON_OK;
}

muon_precision gpt_get_precision(const gpt_model *m) { return m->precision; }
muon_status gpt_forward_status(const gpt_model *m) { return m ? m->fwd_status : MUON_ERR_NULL; }

/* The linear layer at the model's precision; the fp32 one cannot fail. */
static muon_status linear_fwd(gpt_model *m, float *y, const float *x, const float *W, int N, int in,
                              int out, int add)
{
    if (m->precision == MUON_PRECISION_MIXED)
        return nn_linear_forward_mixed(&m->mx, y, x, W, N, in, out, add);
    nn_linear_forward(y, x, W, N, in, out, add);
    return MUON_OK;
}

static muon_status linear_bwd(gpt_model *m, float *dx, float *dW, const float *dy, const float *x,
                              const float *W, int N, int in, int out)
{
    if (m->precision == MUON_PRECISION_MIXED)
        return nn_linear_backward_mixed(&m->mx, dx, dW, dy, x, W, N, in, out);
    nn_linear_backward(dx, dW, dy, x, W, N, in, out);
    return MUON_OK;
}

const gpt_config *gpt_get_config(const gpt_model *m) { return &m->c; }
int gpt_batch_capacity(const gpt_model *m) { return m->batch; }
size_t gpt_num_params(const gpt_model *m) { return m->nparams; }
float *gpt_params(gpt_model *m) { return m->params; }
float *gpt_grads(gpt_model *m) { return m->grads; }
int gpt_num_tensors(const gpt_model *m) { return m->ntensors; }
const float *gpt_logits(const gpt_model *m) { return m->logits; }
size_t gpt_activation_bytes(const gpt_model *m)
{
    return m->act_floats * sizeof(float) + m->mx_bytes;
}

const gpt_tensor *gpt_tensor_at(const gpt_model *m, int i)
{
    return i >= 0 && i < m->ntensors ? &m->tensors[i] : NULL;
}

int gpt_find_tensor(const gpt_model *m, const char *name)
{
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            return i;
    return -1;
}

void gpt_zero_grad(gpt_model *m)
{
    memset(m->grads, 0, m->nparams * sizeof(float));
}

static int ids_in_range(const int32_t *ids, size_t n, int V)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= ids[i] < 0 || ids[i] >= V;
    return !bad;
}

float gpt_forward(gpt_model *m, const int32_t *tokens, const int32_t *targets, int B, int T)
{
    if (!m || !tokens || B < 1 || B > m->batch || T < 1 || T > m->c.context)
        return NAN;
    const gpt_config *c = &m->c;
    int N = B * T, D = c->dim, H = c->heads, hd = D / H, V = c->vocab;
    if (!ids_in_range(tokens, (size_t)N, V) || (targets && !ids_in_range(targets, (size_t)N, V)))
        return NAN;
    m->B = B;
    m->T = T;
    m->grad_ready = 0;
    m->fwd_status = MUON_OK;
    memcpy(m->tokens, tokens, (size_t)N * sizeof *tokens);
    nn_embedding_forward(m->x[0], tokens, m->wte, N, D);
    /* Each rmsnorm also copies its input into the next residual buffer and
     * the branch's output projection adds into that copy: no separate
     * residual pass, no temporary, no zeroing of the product's output. */
    muon_status st = MUON_OK;
    for (int l = 0; l < c->layers && st == MUON_OK; l++) {
        const gpt_block *w = &m->w[l];
        gpt_acts *a = &m->acts[l];
        nn_rmsnorm_forward(a->h1, a->rstd1, m->x[l], w->ln1, N, D, a->xmid);
        st = linear_fwd(m, a->qkv, a->h1, w->qkv, N, D, 3 * D, 0);
        nn_rope_forward(a->qkv, N, T, 3 * D, 2 * H, hd, m->rope_cos, m->rope_sin); /* q and k */
        nn_attention_forward(a->a, a->att, a->qkv, B, T, D, H);
        if (st == MUON_OK)
            st = linear_fwd(m, a->xmid, a->a, w->attn_out, N, D, D, 1);
        nn_rmsnorm_forward(a->h2, a->rstd2, a->xmid, w->ln2, N, D, m->x[l + 1]);
        if (st == MUON_OK)
            st = linear_fwd(m, a->pre, a->h2, w->fc, N, D, 4 * D, 0);
        nn_relu2_forward(a->act, a->pre, (size_t)N * 4 * D);
        if (st == MUON_OK)
            st = linear_fwd(m, m->x[l + 1], a->act, w->proj, N, 4 * D, D, 1);
    }
    nn_rmsnorm_forward(m->hf, m->rstdf, m->x[c->layers], m->lnf, N, D, NULL);
    if (st == MUON_OK)
        st = linear_fwd(m, m->logits, m->hf, m->head, N, D, V, 0);
    m->fwd_status = st;
    if (st != MUON_OK) /* only the mixed path's fallback can fail: no memory */
        return NAN;
    if (!targets)
        return 0.0f;
    m->grad_ready = 1;
    return nn_crossentropy_fused(m->logits, m->losses, targets, N, V, 1.0f / (float)N);
}

muon_status gpt_backward(gpt_model *m)
{
    if (!m)
        return MUON_ERR_NULL;
    if (!m->grad_ready)
        return MUON_ERR_STATE;
    m->grad_ready = 0;
    const gpt_config *c = &m->c;
    int B = m->B, T = m->T, N = B * T, D = c->dim, H = c->heads, hd = D / H, V = c->vocab;
    /* dres is d loss / d residual stream; the residual adds pass it through
     * unchanged, and every rmsnorm backward adds its branch into it. */
    muon_status st = linear_bwd(m, m->dD, m->g_head, m->logits, m->hf, m->head, N, D, V);
    if (st != MUON_OK)
        return st;
    nn_rmsnorm_backward(m->dres, m->g_lnf, m->dD, m->x[c->layers], m->lnf, m->rstdf, N, D, 0);
    for (int l = c->layers - 1; l >= 0; l--) {
        const gpt_block *w = &m->w[l];
        const gpt_block *g = &m->g[l];
        const gpt_acts *a = &m->acts[l];
        if ((st = linear_bwd(m, m->d4, g->proj, m->dres, a->act, w->proj, N, 4 * D, D)))
            return st;
        nn_relu2_backward(m->d4, m->d4, a->pre, (size_t)N * 4 * D);
        if ((st = linear_bwd(m, m->dD, g->fc, m->d4, a->h2, w->fc, N, D, 4 * D)))
            return st;
        nn_rmsnorm_backward(m->dres, g->ln2, m->dD, a->xmid, w->ln2, a->rstd2, N, D, 1);
        if ((st = linear_bwd(m, m->dD, g->attn_out, m->dres, a->a, w->attn_out, N, D, D)))
            return st;
        nn_attention_backward(m->dqkv, m->datt, m->dD, a->qkv, a->att, B, T, D, H);
        nn_rope_backward(m->dqkv, N, T, 3 * D, 2 * H, hd, m->rope_cos, m->rope_sin);
        if ((st = linear_bwd(m, m->dD, g->qkv, m->dqkv, a->h1, w->qkv, N, D, 3 * D)))
            return st;
        nn_rmsnorm_backward(m->dres, g->ln1, m->dD, m->x[l], w->ln1, a->rstd1, N, D, 1);
    }
    nn_embedding_backward(m->g_wte, m->dres, m->tokens, N, D);
    return MUON_OK;
}
