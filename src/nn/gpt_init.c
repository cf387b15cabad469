/* Deterministic parameter initialisation (docs/model.md's table); the exact
 * generator is documented on gpt_init_params in gpt.h so another
 * implementation can reproduce it bit for bit. */
#include "nn/gpt.h"

#include <math.h>
#include <string.h>

#define TWO_PI 6.283185307179586476925

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* [0, 1) with 53 random bits */
static double uniform01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double normal(uint64_t *s)
{
    double u1 = 1.0 - uniform01(s); /* (0, 1]: log is finite */
    double u2 = uniform01(s);
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

void gpt_init_params(gpt_model *m, uint64_t seed)
{
    uint64_t s = seed;
    float *p = gpt_params(m);
    double bound = sqrt(3.0) * 0.5 / sqrt((double)gpt_get_config(m)->dim);
    for (int i = 0; i < gpt_num_tensors(m); i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        float *w = p + t->offset;
        if (t->role == MUON_ROLE_EMBEDDING) {
            for (size_t j = 0; j < t->numel; j++)
                w[j] = (float)normal(&s);
        } else if (t->role == MUON_ROLE_VECTOR) {
            for (size_t j = 0; j < t->numel; j++)
                w[j] = 1.0f;
        } else if (ends_with(t->name, ".qkv") || ends_with(t->name, ".fc")) {
            for (size_t j = 0; j < t->numel; j++)
                w[j] = (float)(bound * (2.0 * uniform01(&s) - 1.0));
        } else { /* attn_out, proj, head: zero-initialised output maps */
            memset(w, 0, t->numel * sizeof(float));
        }
    }
}
