/* bf16 operands, fp32 results: the products of the "mixed" precision.
 *
 * bf16 keeps fp32's exponent and 8 bits of mantissa. A product with bf16
 * operands and fp32 accumulation runs on the AMX tile units where the CPU
 * has them (3-5x this machine's fp32 SGEMM rate, docs/ortho.md), through
 * oneDNN's matmul. Elsewhere the same numbers are computed by widening the
 * operands back to fp32 and calling SGEMM: slower, same rounding of the
 * inputs, so results agree to fp32 accumulation order. */
#ifndef MUON_BF16_H
#define MUON_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "muon.h"

typedef uint16_t muon__bf16;

/* dst[i] = src[i] rounded to nearest even bf16 (NaN stays NaN). */
void muon__to_bf16(muon__bf16 *dst, const float *src, size_t n);
/* Widen back to fp32 (exact). */
void muon__from_bf16(float *dst, const muon__bf16 *src, size_t n);

/* Row-major C (m x n, fp32, leading dimension ldc) = alpha op(A) op(B) +
 * beta C, with A and B bf16 and contiguous: op(A) is m x k (A stored k x m
 * when ta), op(B) is k x n (B stored n x k when tb). Runs on OpenBLAS's
 * thread count, or one thread inside an OpenMP parallel region. Returns
 * MUON_ERR_NOMEM only on the fallback path, when its fp32 copies cannot
 * be allocated; C is then untouched. */
muon_status muon__gemm_bf16(int ta, int tb, long m, long n, long k, float alpha, const muon__bf16 *A,
                            const muon__bf16 *B, float beta, float *C, long ldc);

/* 1 when bf16 products run on a native kernel (AMX or AVX512-BF16 through
 * oneDNN), 0 when they use the fp32 fallback. MUON_BF16=emulate in the
 * environment forces the fallback. */
int muon__bf16_native(void);

#endif
