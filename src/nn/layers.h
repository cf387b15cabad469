/* The transformer's layers as pairs of plain functions on raw float buffers
 * (llm.c style), the building blocks of gpt.c. docs/model.md is the spec.
 *
 * Conventions shared by every layer:
 * - Activations are row-major with one row per token: N = B * T rows, row
 *   n = b * T + t. A "(N, D)" buffer is N rows of D floats.
 * - Weights are PyTorch-layout (out, in) row-major matrices; y = x W^T.
 * - *_backward ACCUMULATES (+=) into parameter gradients (so gradients of
 *   several micro-batches add up until the caller zeroes them). What each
 *   backward does with the INPUT gradient (write or accumulate) is stated on
 *   the function: it follows how gpt.c uses it, so no extra buffer or pass
 *   is needed (e.g. rmsnorm adds into the residual stream's gradient).
 * - Every matrix product goes through cblas_sgemm, split by output rows
 *   over the OpenMP threads (single-threaded BLAS inside) when there are
 *   several; the rest are OpenMP loops over rows whose per-row arithmetic
 *   does not depend on the thread count, so results are bitwise identical
 *   for any number of OpenMP threads.
 * - Sizes are int (as BLAS takes them); gpt.c checks every product fits.
 */
#ifndef MUON_NN_LAYERS_H
#define MUON_NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#define NN_RMSNORM_EPS 1e-6f
#define NN_ROPE_BASE 10000.0
/* Loops over fewer elements than this run on the calling thread only: a
 * parallel region costs more than the work (and much more on a loaded
 * machine). Which thread does a row never changes its result. */
#define NN_PAR_MIN 16384

/* out[n, :] = wte[tokens[n], :]. tokens must be in [0, V) (checked by the
 * caller). */
void nn_embedding_forward(float *out, const int32_t *tokens, const float *wte, int N, int D);
/* dwte[tokens[n], :] += dout[n, :] (accumulates). Parallel over columns so
 * repeated tokens are summed in row order: deterministic, no atomics. */
void nn_embedding_backward(float *dwte, const float *dout, const int32_t *tokens, int N, int D);

/* out = x / sqrt(mean(x^2) + eps) * g per row; rstd[n] = 1 / sqrt(...) is
 * kept for the backward. out must not alias x. copy (NULL for none) gets a
 * copy of x in the same pass: the next residual-stream buffer, which the
 * branch's output projection then adds into (nn_linear_forward with add),
 * so the residual add needs no pass of its own. */
void nn_rmsnorm_forward(float *out, float *rstd, const float *x, const float *g, int N, int D,
                        float *copy);
/* dx += d out/dx when accumulate (x is the residual stream, whose gradient
 * already holds the skip path's), dx = d out/dx otherwise (the first
 * contribution: no zeroing pass); dg += sum over rows of dout * x * rstd. */
void nn_rmsnorm_backward(float *dx, float *dg, const float *dout, const float *x, const float *g,
                         const float *rstd, int N, int D, int accumulate);

/* y (N, out) = x (N, in) W^T with W (out, in); with add, y += x W^T. */
void nn_linear_forward(float *y, const float *x, const float *W, int N, int in, int out, int add);
/* dW += dy^T x; dx = dy W (WRITTEN; dx may be NULL to skip it). */
void nn_linear_backward(float *dx, float *dW, const float *dy, const float *x, const float *W,
                        int N, int in, int out);

/* Rotary tables for positions 0..T-1 and pairs 0..hd/2-1:
 * cos_t[t * hd/2 + i] = cos(t * 10000^(-2i/hd)) (computed in double). */
void nn_rope_tables(float *cos_t, float *sin_t, int T, int hd);
/* Rotates, in place, H heads of hd values in each of N = B * T rows of x;
 * row n starts at x + n * stride and sits at position n % T (q and k are
 * adjacent in a qkv row, so one call with 2H heads rotates both). Pair (i, i +
 * hd/2) ("rotate half"): (x1, x2) -> (x1 c - x2 s, x1 s + x2 c). */
void nn_rope_forward(float *x, int N, int T, int stride, int H, int hd, const float *cos_t,
                     const float *sin_t);
/* The transpose (rotation by -angle), in place on the gradient. */
void nn_rope_backward(float *dx, int N, int T, int stride, int H, int hd, const float *cos_t,
                      const float *sin_t);

/* Causal multi-head self-attention. qkv (B*T, 3D) holds rows [q | k | v]
 * (each D = H * hd, head h at columns h*hd..), q and k already rotated.
 * out (B*T, D) = softmax(q k^T / sqrt(hd) + causal mask) v per (b, h);
 * att (B, H, T, T) keeps the probabilities (upper triangle zero) for the
 * backward. One (b, h) per OpenMP iteration with single-threaded BLAS
 * inside. */
void nn_attention_forward(float *out, float *att, const float *qkv, int B, int T, int D, int H);
/* dqkv (B*T, 3D) is WRITTEN from dout (B*T, D); scratch holds B*H*T*T floats. */
void nn_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv,
                           const float *att, int B, int T, int D, int H);

/* y = relu(x)^2 elementwise; y may alias x. */
void nn_relu2_forward(float *y, const float *x, size_t n);
/* dx = dy * 2 relu(x) (WRITTEN); dx may alias dy. */
void nn_relu2_backward(float *dx, const float *dy, const float *x, size_t n);

/* out = a + b. */
void nn_residual_forward(float *out, const float *a, const float *b, size_t n);
/* da += dout, db += dout (ACCUMULATE). gpt.c needs no call: it keeps one
 * residual-gradient buffer that flows through unchanged. */
void nn_residual_backward(float *da, float *db, const float *dout, size_t n);

/* Fused softmax cross-entropy over N rows of V logits: losses[n] =
 * logsumexp(logits[n]) - logits[n, targets[n]], and logits is OVERWRITTEN by
 * dlogits = (softmax - onehot(target)) * dscale (dscale = 1/N for a mean),
 * in one pass per row. Returns the mean of losses, summed in row order in
 * double (deterministic). targets must be in [0, V). */
float nn_crossentropy_fused(float *logits, float *losses, const int32_t *targets, int N, int V,
                            float dscale);

#endif
