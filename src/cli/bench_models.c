/* Parameter shape lists of the models `muon bench step` steps. Hard-coded
 * so the tool needs no file at run time; tests/test_cli_bench.c checks the
 * GPT-2 small list against bench/gpt2_small_shapes.json (the PyTorch peer's
 * list) when that file is present. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"

typedef struct {
    const char *name;
    long vocab, context, dim, layers;
} gpt2_like;

static const gpt2_like models[] = {
    {"gpt2-small", 50257, 1024, 768, 12},
    {"gpt2-tiny", 512, 128, 64, 2}, /* same structure, small enough for tests */
};
#define N_MODELS ((int)(sizeof models / sizeof models[0]))

static void add(bench_tensor *t, int *n, const char *prefix, const char *name, long r, long c,
                muon_role role)
{
    bench_tensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s%s", prefix, name);
    x->ndim = c > 0 ? 2 : 1;
    x->shape[0] = r;
    x->shape[1] = c > 0 ? c : 0;
    x->role = role;
}

/* GPT-2's trainable tensors in PyTorch (HF transformers) order, weights in
 * nn.Linear layout (out, in); the LM head is tied to wte, so not listed. */
static bench_tensor *gpt2_shapes(const gpt2_like *m, int *n)
{
    const long d = m->dim;
    const int count = 2 + 12 * (int)m->layers + 2;
    bench_tensor *t = calloc((size_t)count, sizeof *t);
    if (!t)
        return NULL;
    *n = 0;
    add(t, n, "", "wte", m->vocab, d, MUON_ROLE_EMBEDDING);
    add(t, n, "", "wpe", m->context, d, MUON_ROLE_EMBEDDING);
    for (long l = 0; l < m->layers; l++) {
        char p[24];
        snprintf(p, sizeof p, "h.%ld.", l);
        add(t, n, p, "ln_1.weight", d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "ln_1.bias", d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "attn.c_attn.weight", 3 * d, d, MUON_ROLE_MATRIX);
        add(t, n, p, "attn.c_attn.bias", 3 * d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "attn.c_proj.weight", d, d, MUON_ROLE_MATRIX);
        add(t, n, p, "attn.c_proj.bias", d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "ln_2.weight", d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "ln_2.bias", d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "mlp.c_fc.weight", 4 * d, d, MUON_ROLE_MATRIX);
        add(t, n, p, "mlp.c_fc.bias", 4 * d, 0, MUON_ROLE_VECTOR);
        add(t, n, p, "mlp.c_proj.weight", d, 4 * d, MUON_ROLE_MATRIX);
        add(t, n, p, "mlp.c_proj.bias", d, 0, MUON_ROLE_VECTOR);
    }
    add(t, n, "", "ln_f.weight", d, 0, MUON_ROLE_VECTOR);
    add(t, n, "", "ln_f.bias", d, 0, MUON_ROLE_VECTOR);
    return t;
}

static const gpt2_like *find(const char *model)
{
    for (int i = 0; model && i < N_MODELS; i++)
        if (!strcmp(models[i].name, model))
            return &models[i];
    return NULL;
}

int bench_model_known(const char *model) { return find(model) != NULL; }

const char *bench_model_names(void) { return "gpt2-small, gpt2-tiny"; }

bench_tensor *bench_model_shapes(const char *model, int *n)
{
    *n = 0;
    const gpt2_like *m = find(model);
    bench_tensor *t = m ? gpt2_shapes(m, n) : NULL;
    if (!t)
        *n = 0;
    return t;
}
