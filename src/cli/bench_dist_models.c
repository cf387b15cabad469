/* Parameter shape lists for `muon bench dist`'s plan: this project's GPT at
 * any width and depth, and published models up to billions of parameters,
 * among them Moonlight-16B-A3B's mixture of experts. Shapes only: nothing
 * is allocated, so the plan covers models this machine cannot hold. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

typedef struct {
    bench_tensor *t;
    int n, cap;
} list;

static int add(list *l, muon_role role, long r, long c, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int add(list *l, muon_role role, long r, long c, const char *fmt, ...)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        bench_tensor *t = realloc(l->t, sizeof *t * (size_t)cap);
        if (!t)
            return -1;
        l->t = t;
        l->cap = cap;
    }
    bench_tensor *x = &l->t[l->n++];
    memset(x, 0, sizeof *x);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->name, sizeof x->name, fmt, ap);
    va_end(ap);
    x->ndim = c > 0 ? 2 : 1;
    x->shape[0] = r;
    x->shape[1] = c > 0 ? c : 0;
    x->role = role;
    return 0;
}

/* docs/model.md's GPT: wte, per block ln1 ln2 qkv attn_out fc proj, lnf, head. */
static int gpt_shapes(list *l, long V, long D, long L)
{
    int bad = add(l, MUON_ROLE_EMBEDDING, V, D, "wte");
    for (long i = 0; i < L; i++) {
        bad |= add(l, MUON_ROLE_VECTOR, D, 0, "h.%ld.ln1", i);
        bad |= add(l, MUON_ROLE_VECTOR, D, 0, "h.%ld.ln2", i);
        bad |= add(l, MUON_ROLE_MATRIX, 3 * D, D, "h.%ld.qkv", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, D, "h.%ld.attn_out", i);
        bad |= add(l, MUON_ROLE_MATRIX, 4 * D, D, "h.%ld.fc", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, 4 * D, "h.%ld.proj", i);
    }
    bad |= add(l, MUON_ROLE_VECTOR, D, 0, "lnf");
    bad |= add(l, MUON_ROLE_HEAD, V, D, "head");
    return bad;
}

/* A SwiGLU MLP of width F: gate and up (F, D), down (D, F). */
static int swiglu(list *l, const char *p, long D, long F)
{
    int bad = add(l, MUON_ROLE_MATRIX, F, D, "%s.gate", p);
    bad |= add(l, MUON_ROLE_MATRIX, F, D, "%s.up", p);
    bad |= add(l, MUON_ROLE_MATRIX, D, F, "%s.down", p);
    return bad;
}

/* Llama-2 7B: 32 blocks of width 4096, MLP 11008, vocabulary 32000. */
static int llama7b_shapes(list *l)
{
    const long D = 4096, V = 32000;
    int bad = add(l, MUON_ROLE_EMBEDDING, V, D, "embed");
    for (int i = 0; i < 32; i++) {
        char p[32];
        snprintf(p, sizeof p, "l%d.mlp", i);
        bad |= add(l, MUON_ROLE_VECTOR, D, 0, "l%d.norm1", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, D, "l%d.q", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, D, "l%d.k", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, D, "l%d.v", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, D, "l%d.o", i);
        bad |= add(l, MUON_ROLE_VECTOR, D, 0, "l%d.norm2", i);
        bad |= swiglu(l, p, D, 11008);
    }
    bad |= add(l, MUON_ROLE_VECTOR, D, 0, "norm");
    bad |= add(l, MUON_ROLE_HEAD, V, D, "head");
    return bad;
}

/* Moonlight-16B-A3B (DeepSeek-V3's architecture): width 2048, 27 blocks,
 * multi-head latent attention with 16 heads (no query compression, KV
 * rank 512, head sizes 128 + 64 rotary for q/k and 128 for v); block 0
 * has a dense SwiGLU MLP of width 11264, the others 64 routed experts and
 * 2 shared ones of width 1408 with a 64-way router; vocabulary 163840,
 * untied head. Each expert's matrices are separate Muon matrices. */
static int moonlight_shapes(list *l)
{
    const long D = 2048, V = 163840, H = 16, NOPE = 128, ROPE = 64, VH = 128, KV = 512;
    int bad = add(l, MUON_ROLE_EMBEDDING, V, D, "embed");
    for (int i = 0; i < 27; i++) {
        char p[48];
        bad |= add(l, MUON_ROLE_VECTOR, D, 0, "l%d.input_norm", i);
        bad |= add(l, MUON_ROLE_MATRIX, H * (NOPE + ROPE), D, "l%d.q_proj", i);
        bad |= add(l, MUON_ROLE_MATRIX, KV + ROPE, D, "l%d.kv_a_proj", i);
        bad |= add(l, MUON_ROLE_VECTOR, KV, 0, "l%d.kv_a_norm", i);
        bad |= add(l, MUON_ROLE_MATRIX, H * (NOPE + VH), KV, "l%d.kv_b_proj", i);
        bad |= add(l, MUON_ROLE_MATRIX, D, H * VH, "l%d.o_proj", i);
        bad |= add(l, MUON_ROLE_VECTOR, D, 0, "l%d.post_norm", i);
        if (i == 0) {
            snprintf(p, sizeof p, "l%d.mlp", i);
            bad |= swiglu(l, p, D, 11264);
            continue;
        }
        bad |= add(l, MUON_ROLE_MATRIX, 64, D, "l%d.router", i);
        snprintf(p, sizeof p, "l%d.shared", i);
        bad |= swiglu(l, p, D, 2 * 1408);
        for (int e = 0; e < 64; e++) {
            snprintf(p, sizeof p, "l%d.expert%d", i, e);
            bad |= swiglu(l, p, D, 1408);
        }
    }
    bad |= add(l, MUON_ROLE_VECTOR, D, 0, "norm");
    bad |= add(l, MUON_ROLE_HEAD, V, D, "head");
    return bad;
}

const char *bench_dist_model_names(void)
{
    return "gpt (--dim/--layers/--vocab), gpt2-small, llama2-7b, moonlight-16b-a3b";
}

bench_tensor *bench_dist_shapes(const char *model, long vocab, long dim, long layers, int *n)
{
    list l = {NULL, 0, 0};
    int bad;
    *n = 0;
    if (!strcmp(model, "gpt"))
        bad = gpt_shapes(&l, vocab, dim, layers);
    else if (!strcmp(model, "llama2-7b"))
        bad = llama7b_shapes(&l);
    else if (!strcmp(model, "moonlight-16b-a3b"))
        bad = moonlight_shapes(&l);
    else if (bench_model_known(model))
        return bench_model_shapes(model, n);
    else
        return NULL;
    if (bad) {
        free(l.t);
        return NULL;
    }
    *n = l.n;
    return l.t;
}
