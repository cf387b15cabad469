/* The GPT language model the trainer trains (docs/model.md is the spec):
 * decoder-only, pre-norm RMSNorm blocks with a learnable gain, rotary
 * causal multi-head attention, ReLU^2 MLP of width 4D, untied head, no
 * biases, zero-initialised output projections and head.
 *
 *     gpt_config c = gpt_config_default();
 *     gpt_model *m;
 *     if (gpt_create(&c, batch, &m) != MUON_OK) ...;
 *     gpt_init_params(m, seed);
 *     for each tensor i: gpt_tensor_at(m, i) gives name, shape, role and
 *         offset into gpt_params(m) / gpt_grads(m) to register with muon_opt
 *     gpt_zero_grad(m);
 *     float loss = gpt_forward(m, tokens, targets, B, T);
 *     gpt_backward(m);     // gradients now in gpt_grads(m)
 *
 * Memory: the parameters are ONE contiguous float32 allocation holding the
 * tensors in the order of docs/model.md's table, block by block:
 *     wte (V, D)
 *     for l in 0..L-1: h.l.ln1 (D), h.l.ln2 (D), h.l.qkv (3D, D),
 *                      h.l.attn_out (D, D), h.l.fc (4D, D), h.l.proj (D, 4D)
 *     lnf (D), head (V, D)
 * each row-major (PyTorch layout), with no padding, so a checkpoint or a
 * raw dump for the PyTorch mirror is one write and the optimizer can walk
 * it flat. The gradients are a second allocation with the same layout.
 * Activations for (batch, context) are one more allocation sized at
 * creation; forward and backward never allocate.
 *
 * Threads: the caller sets the OpenMP thread count. Everything runs on the
 * OpenMP pool: elementwise loops and attention split rows or heads, and
 * with more than one thread each large matrix product is split by rows of
 * its output into one single-threaded product per thread (layers.c:
 * oneDNN's SGEMM, or OpenBLAS's for weight gradients over 512 rows, chosen
 * by the whole product's shape), so OpenBLAS's own workers stay asleep
 * instead of spinning against the OpenMP threads. With one OpenMP thread a
 * product is one plain call. Results do not depend on the OpenMP thread
 * count (no atomics, row-order reductions, each output element one dot
 * product computed the same way whatever the block); tests/test_nn.c
 * checks 1 against 2 threads.
 */
#ifndef MUON_NN_GPT_H
#define MUON_NN_GPT_H

#include <stddef.h>
#include <stdint.h>

#include "muon.h"

typedef struct {
    int vocab;   /* V */
    int context; /* T, the longest sequence */
    int layers;  /* L */
    int dim;     /* D */
    int heads;   /* H; head size D / H must be even (rotary pairs) */
} gpt_config;

/* V = 256 (bytes), T = 128, L = 4, D = 128, H = 4. */
gpt_config gpt_config_default(void);
/* MUON_ERR_NULL, MUON_ERR_SIZE (a size <= 0 or too large) or MUON_ERR_ARG
 * (D % H != 0 or D / H odd); MUON_OK otherwise. */
muon_status gpt_config_validate(const gpt_config *c);

/* Parameters of a valid config (2 V D + L (2 D + 12 D^2) + D), without
 * creating a model; 0 when c is invalid or the count overflows. */
size_t gpt_config_num_params(const gpt_config *c);

#define GPT_NAME_MAX 32

/* One named view into the parameter (and gradient) buffer. */
typedef struct {
    char name[GPT_NAME_MAX]; /* "wte", "h.0.qkv", "lnf", ... */
    int ndim;                /* 1 or 2 */
    long shape[2];           /* shape[1] unused when ndim == 1 */
    size_t offset;           /* in floats from gpt_params() / gpt_grads() */
    size_t numel;
    muon_role role; /* wte EMBEDDING, head HEAD, ln* VECTOR, block matrices MATRIX */
} gpt_tensor;

typedef struct gpt_model gpt_model;

/* Allocate a model for batches of up to `batch` sequences of up to
 * c->context tokens. Parameters are zero until gpt_init_params. Returns
 * MUON_OK, a validation status, MUON_ERR_SIZE (sizes overflow) or
 * MUON_ERR_NOMEM; *out is NULL on failure. */
muon_status gpt_create(const gpt_config *c, int batch, gpt_model **out);
void gpt_free(gpt_model *m);

const gpt_config *gpt_get_config(const gpt_model *m);
int gpt_batch_capacity(const gpt_model *m);

/* Initialise every parameter as in docs/model.md from `seed`. The generator,
 * so the PyTorch mirror can reproduce it (it may also just load a raw dump
 * of gpt_params()):
 *   splitmix64: s starts at seed; next(): s += 0x9E3779B97F4A7C15;
 *     z = s; z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;
 *     z = (z ^ z >> 27) * 0x94D049BB133111EB; return z ^ z >> 31.
 *   u() = (next() >> 11) * 2^-53, in [0, 1), in double.
 *   normal: u1 = 1 - u(), u2 = u(); sqrt(-2 ln u1) cos(2 pi u2).
 *   uniform(-b, b): b * (2 u() - 1).
 * One stream for the whole model, drawn tensor by tensor in table order and
 * element by element in row-major order; constant tensors (ones, zeros)
 * draw nothing. Values are computed in double and rounded to float. */
void gpt_init_params(gpt_model *m, uint64_t seed);

size_t gpt_num_params(const gpt_model *m);
float *gpt_params(gpt_model *m);
float *gpt_grads(gpt_model *m);
int gpt_num_tensors(const gpt_model *m);
/* NULL when i is out of range. */
const gpt_tensor *gpt_tensor_at(const gpt_model *m, int i);
/* Index of the tensor called name, or -1. */
int gpt_find_tensor(const gpt_model *m, const char *name);

/* Forward pass over B sequences of T tokens (row-major B x T; B <= batch,
 * T <= context). With targets (B x T next tokens) returns the mean
 * cross-entropy over the B*T positions and readies gpt_backward; the logits
 * buffer then holds dlogits. With targets == NULL returns 0 and keeps the
 * logits for gpt_logits(). Returns NAN (and changes nothing) for a NULL
 * model/tokens, B or T out of range, or a token or target outside [0, V). */
float gpt_forward(gpt_model *m, const int32_t *tokens, const int32_t *targets, int B, int T);
/* Why the last gpt_forward returned NaN when a product failed (the mixed
 * layers' MUON_ERR_NOMEM); MUON_OK otherwise, a NaN then being the data's. */
muon_status gpt_forward_status(const gpt_model *m);

/* Logits (B*T, V) of the last forward without targets: row b * T + t
 * predicts the token after position t of sequence b. */
const float *gpt_logits(const gpt_model *m);

/* Set every gradient to zero. */
void gpt_zero_grad(gpt_model *m);
/* Backward of the last forward with targets: ACCUMULATES d(mean loss)/d
 * params into gpt_grads() (zero them first, or sum micro-batches). Consumes
 * that forward: a second call without a new forward returns MUON_ERR_STATE
 * and does nothing. */
muon_status gpt_backward(gpt_model *m);

/* Bytes of activations and backward scratch (for the memory report). */
/* Precision of the linear layers' products: MUON_PRECISION_MIXED rounds
 * their operands to bf16 (fp32 accumulation, fp32 weights, gradients and
 * activations), with scratch for the rounded operands allocated here;
 * attention, norms and the loss stay fp32. Default fp32. */
muon_status gpt_set_precision(gpt_model *m, muon_precision p);
muon_precision gpt_get_precision(const gpt_model *m);

size_t gpt_activation_bytes(const gpt_model *m);

#endif
