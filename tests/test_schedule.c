/* Learning-rate schedules against their definitions written out here. */
#include <math.h>

#include "harness.h"

TEST(schedule_constant_with_warmup)
{
    muon_schedule s = muon_schedule_default();
    s.total_steps = 10;
    s.warmup_steps = 4;
    ASSERT_OK(muon_schedule_validate(&s));
    ASSERT_NEAR(muon_schedule_multiplier(&s, 0), 0.25, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 3), 1.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 9), 1.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 99), 1.0, 1e-12);
}

TEST(schedule_cosine_endpoints_and_midpoint)
{
    muon_schedule s = muon_schedule_default();
    s.kind = MUON_SCHED_COSINE;
    s.total_steps = 11;
    s.min_ratio = 0.1;
    ASSERT_NEAR(muon_schedule_multiplier(&s, 0), 1.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 5), 0.1 + 0.9 * 0.5, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 10), 0.1, 1e-12);
    for (long t = 1; t < 11; t++)
        ASSERT(muon_schedule_multiplier(&s, t) <= muon_schedule_multiplier(&s, t - 1));
}

TEST(schedule_wsd_stable_then_linear_decay)
{
    muon_schedule s = muon_schedule_default();
    s.kind = MUON_SCHED_WSD;
    s.total_steps = 100;
    s.warmup_steps = 10;
    s.decay_frac = 0.2;
    ASSERT_NEAR(muon_schedule_multiplier(&s, 4), 0.5, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 50), 1.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 79), 1.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 80), 1.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 99), 0.0, 1e-12);
    ASSERT_NEAR(muon_schedule_multiplier(&s, 89), 1.0 - 9.0 / 19.0, 1e-12);
}

TEST(schedule_rejects_bad_input)
{
    muon_schedule s = muon_schedule_default();
    muon_schedule_kind k = MUON_SCHED_COSINE;
    ASSERT_STATUS(muon_schedule_validate(NULL), MUON_ERR_NULL);
    s.total_steps = 0;
    ASSERT_STATUS(muon_schedule_validate(&s), MUON_ERR_ARG);
    s.total_steps = 5;
    s.warmup_steps = 6;
    ASSERT_STATUS(muon_schedule_validate(&s), MUON_ERR_ARG);
    s.warmup_steps = 0;
    s.min_ratio = NAN;
    ASSERT_STATUS(muon_schedule_validate(&s), MUON_ERR_ARG);
    ASSERT_STATUS(muon_schedule_parse("linear", &k), MUON_ERR_ARG);
    ASSERT_EQ_INT(k, MUON_SCHED_COSINE);
    ASSERT_OK(muon_schedule_parse("wsd", &k));
    ASSERT_EQ_INT(k, MUON_SCHED_WSD);
}
