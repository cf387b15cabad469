/* Learning-rate schedules as multipliers of the optimizer's base rates, so
 * one schedule drives both the Muon and the AdamW group. */
#include <math.h>
#include <string.h>

#include "muon.h"
#include "base/internal.h"

static const char *const sched_names[MUON_SCHED_COUNT] = {"constant", "cosine", "wsd"};
static const char *const decay_names[MUON_DECAY_COUNT] = {"linear", "xmodel"};

muon_schedule muon_schedule_default(void)
{
    muon_schedule s = {MUON_SCHED_CONSTANT, 1, 0, 0.0, 0.2, MUON_DECAY_LINEAR};
    return s;
}

muon_status muon_schedule_validate(const muon_schedule *s)
{
    if (!s)
        return MUON_ERR_NULL;
    if ((int)s->kind < 0 || s->kind >= MUON_SCHED_COUNT)
        return MUON_ERR_ARG;
    if (s->total_steps < 1 || s->warmup_steps < 0 || s->warmup_steps > s->total_steps)
        return MUON_ERR_ARG;
    if (!(s->min_ratio >= 0.0 && s->min_ratio <= 1.0))
        return MUON_ERR_ARG;
    if (s->kind == MUON_SCHED_WSD && !(s->decay_frac > 0.0 && s->decay_frac <= 1.0))
        return MUON_ERR_ARG;
    if ((int)s->decay_shape < 0 || s->decay_shape >= MUON_DECAY_COUNT)
        return MUON_ERR_ARG;
    return MUON_OK;
}

muon_status muon_schedule_parse(const char *name, muon_schedule_kind *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(sched_names, MUON_SCHED_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_schedule_kind)i;
    return MUON_OK;
}

const char *muon_schedule_name(muon_schedule_kind k)
{
    return muon__name_at(sched_names, MUON_SCHED_COUNT, (int)k);
}

muon_status muon_decay_shape_parse(const char *name, muon_decay_shape *out)
{
    if (!name || !out)
        return MUON_ERR_NULL;
    int i = muon__name_index(decay_names, MUON_DECAY_COUNT, name);
    if (i < 0)
        return MUON_ERR_ARG;
    *out = (muon_decay_shape)i;
    return MUON_OK;
}

const char *muon_decay_shape_name(muon_decay_shape d)
{
    return muon__name_at(decay_names, MUON_DECAY_COUNT, (int)d);
}

long muon_schedule_decay_start(const muon_schedule *s)
{
    if (!s || s->total_steps < 1)
        return 0;
    if (s->kind != MUON_SCHED_WSD)
        return s->total_steps;
    long decay = (long)ceil(s->decay_frac * (double)s->total_steps);
    long start = s->total_steps - decay;
    return start < s->warmup_steps ? s->warmup_steps : start;
}

double muon_schedule_multiplier(const muon_schedule *s, long step)
{
    if (!s || s->total_steps < 1)
        return 0.0;
    if (step < 0)
        step = 0;
    if (step >= s->total_steps)
        step = s->total_steps - 1;
    /* warmup reaches 1 at step warmup-1, so no step runs at rate 0 */
    if (step < s->warmup_steps)
        return (double)(step + 1) / (double)s->warmup_steps;
    double lo = s->min_ratio;
    switch (s->kind) {
    case MUON_SCHED_COSINE: {
        long span = s->total_steps - s->warmup_steps;
        double t = span > 1 ? (double)(step - s->warmup_steps) / (double)(span - 1) : 1.0;
        return lo + (1.0 - lo) * 0.5 * (1.0 + cos(M_PI * t));
    }
    case MUON_SCHED_WSD: {
        long start = muon_schedule_decay_start(s);
        if (step < start)
            return 1.0;
        long span = s->total_steps - start;
        double t = span > 1 ? (double)(step - start) / (double)(span - 1) : 1.0;
        /* Xmodel-2.5's shape falls fast at first and flattens towards the
         * end; both reach min_ratio at the last step */
        if (s->decay_shape == MUON_DECAY_XMODEL)
            return lo + (2.0 * pow(0.5, t) - 1.0) * (1.0 - lo);
        return 1.0 - (1.0 - lo) * t;
    }
    default:
        return 1.0;
    }
}
