/* The orthogonalization written from docs/algorithms.md 1a/1b/1d in double
 * precision with plain loops, independently of src/ortho/, and the fp32
 * tolerances the tests derive from it.
 *
 * Tolerances come from a rounding-error model run in double, not from
 * figures measured on one CPU: the same iteration is run a second time with
 * every product C = A B (inner length k) perturbed by u sqrt(k) r_ij
 * ||a_i|| ||b_j|| and every other result by u r |c| (r uniform in [-1, 1],
 * u = 2^-24), which is the size a k-term float32 sum errs by in any order of
 * summation (Higham and Mary's probabilistic bound). The model's deviation
 * from the exact run carries the iteration's own amplification (condition,
 * large first coefficients, Gram NS's squared spectrum, restarts), so the
 * tolerance grows where the computation is sensitive and stays tight where
 * it is not. REF_SAFETY covers the model's randomness and the constant of
 * the bound. */
#ifndef MUON_TEST_REF_ORTHO_H
#define MUON_TEST_REF_ORTHO_H

#include "muon.h"
#include "testutil.h"

#define REF_U32 (1.0 / 16777216.0) /* float32 unit roundoff, 2^-24 */
#define REF_U16 (1.0 / 512.0)      /* bfloat16 unit roundoff, 2^-9 */
#define REF_SAFETY 8.0

typedef struct {
    int deg;
    double q[6]; /* p(A) = sum q[j] A^j */
} ref_poly;

void ref_taylor(int k, ref_poly *p);
void ref_step_poly(muon_coeffs coeffs, int taylor_k, int t, ref_poly *p);

/* Rounding model of a run: NULL for exact double arithmetic. u is the unit
 * roundoff of the results; operand_u (0 for none) rounds every product's
 * operands first, as bf16 operands do, in the steps before bf16_until. */
typedef struct {
    tu_rng rng;
    double u, operand_u;
    int bf16_until;
} ref_noise;

/* NS (gram = 0) or Gram NS (gram = 1) of cfg (coefficients, steps, safety,
 * eps, AOL, restarts; the method and precision fields are ignored) on a
 * rows x cols float matrix, into out (rows x cols, double). */
void ref_ortho(const muon_ortho_config *cfg, int gram, const float *in, long rows, long cols,
               ref_noise *noise, double *out);
/* The plain NS reference of the older tests: polar-express safety 1.01. */
void ref_ns(const float *in, long rows, long cols, muon_coeffs coeffs, int taylor_k, int steps,
            int aol, double *out);

/* Max-abs tolerance of an fp32 result of cfg against exact (the exact NS
 * result, e.g. from ref_ortho with noise NULL): REF_SAFETY times the
 * model's deviation, for the method cfg names (for AUTO, the larger of NS's
 * and Gram NS's: whichever the library picks), with bf16 operands in the
 * steps that cfg's mixed precision runs in bf16 (for AUTO precision too,
 * whose choice may be mixed). */
double ref_ortho_tol(const muon_ortho_config *cfg, const float *in, long rows, long cols,
                     const double *exact);

#endif
