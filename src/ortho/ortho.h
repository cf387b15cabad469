/* ortho.h - internals of the orthogonalization kernels (src/ortho/), shared
 * with the optimizer. Every Newton-Schulz-like step is represented as a
 * polynomial in the Gram matrix A = X X^T: X <- p_t(A) X with
 * p_t(A) = sum_j q_j A^j, so NS triples (a, b, c) are degree 2 and taylor-K
 * is degree K. */
#ifndef MUON_ORTHO_H
#define MUON_ORTHO_H

#include <stddef.h>

#include "backend/backend.h"
#include "muon.h"

#define MUON__POLY_MAX_DEG 5
#define MUON__ORTHO_MAX_STEPS 1000

typedef struct {
    int deg;                          /* 1..MUON__POLY_MAX_DEG */
    double q[MUON__POLY_MAX_DEG + 1]; /* p(A) = sum_{j=0..deg} q[j] A^j */
} muon__poly;

/* muon_orthogonalize on backend be and `threads` threads (one inside a
 * parallel region), with OpenBLAS's count already set to threads by the
 * caller. same_bits = 1 keeps the panels independent of the thread count,
 * so only the libraries' own blocking of a threaded product can change
 * the last bits (0: the fastest split for that count; see ortho.c). */
muon_status muon__orthogonalize(const muon__backend *be, int threads, const muon_ortho_config *cfg,
                                const float *in, float *out, long rows, long cols, void *work,
                                size_t work_bytes, int same_bits);

/* cfg with every "0 selects the default" field replaced by its value and
 * MUON_ORTHO_AUTO resolved for a rows x cols matrix; the precision is left
 * as given (AUTO depends on the backend: muon_ortho_resolve). cfg must be
 * valid. */
muon_ortho_config muon__ortho_resolve(const muon_ortho_config *cfg, long rows, long cols);

/* muon_ortho_flops on backend be (its AUTO precision). */
double muon__ortho_flops_on(const muon__backend *be, const muon_ortho_config *cfg, long rows,
                            long cols);

/* The polynomial of step t (0-based) of a resolved config. */
void muon__ortho_step_poly(const muon_ortho_config *cfg, int t, muon__poly *p);

/* The factor s in X / (||X||_F * s + eps): 1.01 for polar-express, else 1. */
double muon__ortho_norm_factor(const muon_ortho_config *cfg);

/* 1 if Gram NS restarts before step t (t >= 1) under a resolved config. */
int muon__gram_restart_at(const muon_ortho_config *cfg, int t);

/* Taylor-K coefficients expanded into powers of A: q[0..K] (K = 1..5). */
void muon__taylor_poly(int k, muon__poly *p);

/* ---- kernels on the "wide" view: X is m x n with m <= n. A tall input
 * (rows > cols) is used in place as the transpose of a wide matrix: the
 * Gram matrix becomes X^T X and products X S, which equals transposing in
 * and out without the two copies. */
typedef struct {
    long m, n; /* m = min(rows, cols), n = max(rows, cols) */
    int tall;  /* 1 when rows > cols */
    int split;  /* > 1: threads for the kernels' own split (see kernels.c) */
    int panels; /* > 1: SYRKs by this many row panels (see kernels.c) */
    const muon__backend *be; /* the table the products follow */
    int threads;             /* the call's thread count */
} muon__view;

muon__view muon__view_of(long rows, long cols);

/* A (m x m, both triangles) = alpha X X^T (of the wide view) + beta A. */
void muon__gram(const muon__view *v, const float *x, float *a, float alpha);
/* y = s x in the wide view (x S for a tall one); s m x m with both
 * triangles, through muon__sgemm. y must not overlap x. */
void muon__apply_full(const muon__view *v, const float *s, const float *x, float *y);
/* Row-major C (M x N) = A op(B) + beta C, op(B) = B^T when tb: the
 * backend's GEMM, on v->split threads when set, else on v->threads (one
 * thread inside an OpenMP region). */
void muon__sgemm(const muon__view *v, int tb, long M, long N, long K, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc);
/* Copy the upper triangle of a row-major m x m matrix into the lower. */
void muon__mirror_upper(float *a, long m);
/* a += alpha b on the upper triangle (b may be NULL: nothing added; b's
 * lower triangle is not read), then the mirror. */
void muon__mirror_upper_add(float *a, const float *b, float alpha, long m);
/* s = c0 I + sum_{j>=1} q_j A^j (both triangles), A symmetric, full and
 * m x m (v->m). t is scratch of m x m floats, needed only when
 * p->deg >= 3. */
void muon__poly_eval(const muon__view *v, const muon__poly *p, double c0, const float *a, float *s,
                     float *t);
/* Flops muon__poly_eval executes. */
double muon__poly_eval_flops(const muon__poly *p, long m);

/* The fp32 iterations of a resolved NS or Gram NS config, steps t0 ..
 * steps-1, on a normalized X in the wide view. X is in x0; every X product
 * alternates between x0 and other, and the last one lands in out, which
 * must be x0 or other: x0 == out exactly when muon__iter_x_products() is
 * even (counting the bf16 steps before t0). mm[] holds
 * muon__iter_mm_buffers() scratch m x m matrices; when have_a0 is set
 * (only with t0 == 0), mm[0] already holds X0 X0^T (both triangles), as
 * AOL leaves it. */
void muon__ns_run(const muon_ortho_config *cfg, const muon__view *v, int t0, float *x0,
                  float *other, float *const mm[], int have_a0);
void muon__gram_ns_run(const muon_ortho_config *cfg, const muon__view *v, int t0, float *x0,
                       float *other, float *const mm[], int have_a0);

/* ---- mixed precision (mixed.c) */
/* Leading steps run with bf16 operands: steps - 2 under "mixed", else 0. */
int muon__bf16_steps(const muon_ortho_config *cfg);
/* Floats of workspace the bf16 steps need (0 when there are none). */
size_t muon__bf16_work_floats(const muon_ortho_config *cfg, const muon__view *v);
/* Steps 0 .. muon__bf16_steps()-1 as plain NS with bf16 operands: *cur
 * holds X0 and on return the last product, *nxt the other buffer (they
 * swap once per step). a, s and t are m x m scratch; wb has muon__bf16_work_floats() floats. */
muon_status muon__mixed_run(const muon_ortho_config *cfg, const muon__view *v, float **cur,
                            float **nxt, float *a, float *s, float *t, float *wb);
double muon__mixed_flops(const muon_ortho_config *cfg, const muon__view *v);
/* Flops of either run (level-3 BLAS only), AOL's Gram matrix excluded. */
double muon__iter_flops(const muon_ortho_config *cfg, const muon__view *v, int have_a0);
/* Number of m x m buffers the iterative method needs. */
int muon__iter_mm_buffers(const muon_ortho_config *cfg);
/* Number of X products (m x n results) the method makes: the chain
 * X0 -> X1 -> ... ends in out, so X0 starts in out when this is even. */
int muon__iter_x_products(const muon_ortho_config *cfg);

/* Exact polar factor via sgesdd. work: muon__svd_work_floats() floats
 * (64-byte aligned). Returns MUON_ERR_LAPACK if the SVD fails (out is
 * untouched then). */
muon_status muon__svd_polar(const float *in, float *out, long rows, long cols, float *work);
size_t muon__svd_work_floats(long rows, long cols);
/* U f(S) V^T over the top min(k_top, rank) singular triplets, with
 * f(s) = 1 when power is 0 (Fanion-k; the polar factor for k_top >= rank)
 * and otherwise f(s_i) = (s_i / s_1)^power rescaled so that the result's
 * Frobenius norm is sqrt of the triplets kept (spectrum shaping). Same
 * workspace and failures as muon__svd_polar. */
muon_status muon__svd_shaped(const float *in, float *out, long rows, long cols, float *work,
                             long k_top, double power);
double muon__svd_flops(long rows, long cols);

#endif
