/* Double-precision references for the Muon family's update rules, written
 * from docs/algorithms.md with plain loops and LAPACK's dgesdd,
 * independently of src/optim/, and the fp32 tolerances derived for them.
 *
 * Elementwise rules: every float operation rounds its result by at most u
 * (2^-24) relative, and one step of each rule has at most 8 of them on the
 * path of an element, so an element's error grows by at most
 * 8 u (|w| + |change of w|) a step, plus its earlier error times the decay
 * (<= 1). REF_FAMILY_ELEM = 16 is that count with a factor 2 to spare.
 *
 * Rules through the SVD: LAPACK's sgesdd is backward stable, its factors
 * are those of N + dN with ||dN||_2 <= u sqrt(k) ||N||_2 (k = max dim, the
 * reduction length), and N itself carries the momentum's rounding,
 * (2 t + 3) u ||N||_F after t steps. A spectral function F(N) = U f(S) V^T
 * moves by at most L ||dN|| with L the largest of f's divided differences
 * |f_i - f_j| / |s_i - s_j|, (f_i + f_j) / (s_i + s_j) and, for a
 * rectangular N, f_i / s_i (Bhatia, Matrix Analysis, ch. X); renormalizing
 * s^p adds p max f / s_min. The tolerance is REF_SAFETY (8) times that. */
#ifndef MUON_TEST_REF_FAMILY_H
#define MUON_TEST_REF_FAMILY_H

#include <stddef.h>

#define REF_FAMILY_ELEM 16.0

/* F(N) = U f(S) V^T for a row-major double N (rows x cols): f = 1 on the
 * top min(k_top, min dim) singular values and 0 after them when power is 0,
 * else f(s_i) = (s_i / s_1)^power scaled to Frobenius norm sqrt(min dim).
 * Writes out (rows x cols) and returns the max-abs tolerance of an fp32
 * result from N's float version after `step` momentum steps (see above),
 * or -1 when the SVD fails. */
double ref_spectral(const double *n, long rows, long cols, long k_top, double power, int step,
                    double *out);

#endif
