/* The binding-facing calls: muon_opt_param_state gives the buffers the step
 * really uses (checked against AdamW's first-step moments, which have a
 * closed form), writes through it set the state, and a held parameter is
 * left exactly as it was while the others move. */
#include <string.h>

#include "harness.h"

/* A 4x3 matrix (Muon) and a 5-vector (AdamW), their values and gradients
 * filled in, one thread, fp32. */
static muon_opt *make2(float *w0, float *w1, float *g0, float *g1)
{
    for (int i = 0; i < 12; i++) {
        w0[i] = 0.1f * (float)(i % 5) - 0.2f;
        g0[i] = 0.05f * (float)((i * 7) % 11) - 0.25f;
    }
    for (int i = 0; i < 5; i++) {
        w1[i] = 1.0f;
        g1[i] = 0.5f * (float)i - 1.0f;
    }
    muon_opt_config cfg = muon_opt_config_default();
    cfg.threads = 1;
    cfg.ortho.precision = MUON_PRECISION_FP32;
    muon_opt *opt = NULL;
    if (muon_opt_create(&cfg, &opt) != MUON_OK)
        return NULL;
    long s0[2] = {4, 3}, s1[1] = {5};
    if (muon_opt_add_param(opt, "w", w0, g0, 2, s0, MUON_ROLE_MATRIX, NULL) != MUON_OK ||
        muon_opt_add_param(opt, "b", w1, g1, 1, s1, MUON_ROLE_VECTOR, NULL) != MUON_OK ||
        muon_opt_finalize(opt) != MUON_OK) {
        muon_opt_free(opt);
        return NULL;
    }
    return opt;
}

TEST(opt_param_state_is_the_steps_own_state)
{
    float w0[12], w1[5], g0[12], g1[5];
    muon_opt *opt = make2(w0, w1, g0, g1);
    ASSERT(opt);
    float *bufs[2];
    int count = -1;
    long steps = -1;
    ASSERT_EQ_INT(muon_opt_param_state(opt, 0, bufs, &count, &steps), MUON_OK);
    ASSERT_EQ_INT(count, 1);
    ASSERT_EQ_INT(steps, 0);
    ASSERT_EQ_INT(muon_opt_step(opt, 1.0), MUON_OK);
    /* Muon: M = mu * 0 + G */
    ASSERT_EQ_INT(muon_opt_param_state(opt, 0, bufs, &count, &steps), MUON_OK);
    ASSERT_EQ_INT(steps, 1);
    for (int i = 0; i < 12; i++)
        ASSERT_EQ_INT(memcmp(&bufs[0][i], &g0[i], sizeof(float)), 0);
    /* AdamW: m = (1 - b1) g, v = (1 - b2) g^2, each one rounding of the float expression */
    ASSERT_EQ_INT(muon_opt_param_state(opt, 1, bufs, &count, &steps), MUON_OK);
    ASSERT_EQ_INT(count, 2);
    ASSERT_EQ_INT(steps, 1);
    for (int i = 0; i < 5; i++) {
        double g = g1[i];
        ASSERT_NEAR(bufs[0][i], 0.1 * g, 1e-7 * fabs(g) + 1e-30);
        ASSERT_NEAR(bufs[1][i], 0.05 * g * g, 1e-7 * g * g + 1e-30);
    }
    /* writing the state through the pointers: zeroed moments and step 0
     * make the next step a first step again */
    memset(bufs[0], 0, 5 * sizeof(float));
    memset(bufs[1], 0, 5 * sizeof(float));
    ASSERT_EQ_INT(muon_opt_set_param_steps(opt, 1, 0), MUON_OK);
    ASSERT_EQ_INT(muon_opt_step(opt, 1.0), MUON_OK);
    ASSERT_EQ_INT(muon_opt_param_state(opt, 1, bufs, &count, &steps), MUON_OK);
    ASSERT_EQ_INT(steps, 1);
    for (int i = 0; i < 5; i++)
        ASSERT_NEAR(bufs[0][i], 0.1 * g1[i], 1e-7 * fabs(g1[i]) + 1e-30);
    ASSERT_EQ_INT(muon_opt_param_state(opt, 2, bufs, &count, &steps), MUON_ERR_ARG);
    ASSERT_EQ_INT(muon_opt_set_param_steps(opt, 0, -1), MUON_ERR_ARG);
    muon_opt_free(opt);
}

TEST(opt_held_param_is_left_as_it_was)
{
    float w0[12], w1[5], g0[12], g1[5];
    muon_opt *opt = make2(w0, w1, g0, g1);
    ASSERT(opt);
    ASSERT_EQ_INT(muon_opt_step(opt, 1.0), MUON_OK);
    float keep0[12], keep1[5], m0[12];
    memcpy(keep0, w0, sizeof w0);
    memcpy(keep1, w1, sizeof w1);
    float *bufs[2];
    int count;
    long steps;
    ASSERT_EQ_INT(muon_opt_param_state(opt, 0, bufs, &count, &steps), MUON_OK);
    memcpy(m0, bufs[0], sizeof m0);
    ASSERT_EQ_INT(muon_opt_hold_param(opt, 0, 1), MUON_OK);
    ASSERT_EQ_INT(muon_opt_step(opt, 1.0), MUON_OK);
    ASSERT_EQ_INT(memcmp(keep0, w0, sizeof w0), 0);
    ASSERT_EQ_INT(memcmp(m0, bufs[0], sizeof m0), 0);
    ASSERT_EQ_INT(muon_opt_param_state(opt, 0, bufs, &count, &steps), MUON_OK);
    ASSERT_EQ_INT(steps, 1);
    ASSERT(memcmp(keep1, w1, sizeof w1) != 0);
    /* released, it steps again */
    ASSERT_EQ_INT(muon_opt_hold_param(opt, 0, 0), MUON_OK);
    ASSERT_EQ_INT(muon_opt_step(opt, 1.0), MUON_OK);
    ASSERT(memcmp(keep0, w0, sizeof w0) != 0);
    ASSERT_EQ_INT(muon_opt_hold_param(opt, 7, 1), MUON_ERR_ARG);
    muon_opt_free(opt);
}
