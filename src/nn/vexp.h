/* A vectorizable single-precision exp for the softmax loops (attention and
 * cross-entropy). libm's expf is a call per element and never vectorizes;
 * this one is branch-free straight-line arithmetic, so a loop calling it
 * under `#pragma omp simd` runs 16 lanes at a time with AVX-512.
 *
 * Method (Cephes expf): x = n ln2 + r with n = round(x / ln2) and |r| <=
 * ln2 / 2 (ln2 split in two parts so r is exact to float precision), exp(r)
 * by a degree-7 polynomial (1 + r + r^2 P(r)), and 2^n put straight into the
 * exponent bits. Maximum relative error about 2e-7 (checked against exp in
 * double by tests/test_nn.c). Below -86.64 (results under 2^-125, where the
 * scale 2^(n-1) would leave the normal range) the result is 0, above 88.72
 * it is +inf; NaN stays NaN. Softmax arguments are <= 0, so neither limit
 * matters there beyond flushing probabilities < 1e-37 to 0.
 */
#ifndef MUON_NN_VEXP_H
#define MUON_NN_VEXP_H

#include <math.h>
#include <stdint.h>

#define NN_EXP_LO (-86.64f) /* about ln(2^-125) */
#define NN_EXP_HI 88.72283f    /* ln(FLT_MAX) */

static inline float nn_expf(float x)
{
    /* clamp with comparisons that let NaN through */
    float xc = x < NN_EXP_LO ? NN_EXP_LO : x;
    xc = xc > NN_EXP_HI ? NN_EXP_HI : xc;
    /* round to nearest by adding and removing 1.5 * 2^23 (no libm call, so
     * the loop vectorizes; the compiler may not fold it without
     * -ffast-math, which the build does not use) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* 2^(n-1) as float bits, then * 2: n in [-125, 128], so the exponent
     * field n + 126 stays in [1, 254] even at the top clamp (n = 128) */
    int32_t e = (int32_t)n + 126;
    union {
        uint32_t u;
        float f;
    } scale = {(uint32_t)e << 23}; /* type punning through a union is C11 */
    float y = p * scale.f * 2.0f;
    y = x < NN_EXP_LO ? 0.0f : y;
    y = x > NN_EXP_HI ? INFINITY : y;
    return y;
}

#endif
