/* What bindings need beyond the C caller's API: direct access to a
 * finalized optimizer's state buffers, to show the state in their own
 * framework's form (muon.torch's state_dict) rather than as the serialized
 * blob of state.c, and holding a parameter out of steps (PyTorch leaves a
 * parameter without a gradient untouched). */
#include "optim/optim.h"

muon_status muon_opt_param_state(muon_opt *opt, int index, float **bufs, int *count, long *steps)
{
    if (!opt || !bufs || !count || !steps)
        return MUON_ERR_NULL;
    muon_status s = muon__opt_check_index(opt, index);
    if (s != MUON_OK)
        return s;
    if (!opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "state exists only after finalize");
    const muon__param *p = &opt->params[index];
    int n = muon__rule_table[p->rule].n_buffers;
    for (int k = 0; k < MUON__MAX_BUFFERS; k++)
        bufs[k] = k < n ? p->buf[k] : NULL;
    *count = n;
    *steps = p->steps;
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_set_param_steps(muon_opt *opt, int index, long steps)
{
    if (!opt)
        return MUON_ERR_NULL;
    muon_status s = muon__opt_check_index(opt, index);
    if (s != MUON_OK)
        return s;
    if (steps < 0)
        return muon__opt_fail(opt, MUON_ERR_ARG, "param %s: steps %ld < 0",
                              opt->params[index].name, steps);
    opt->params[index].steps = steps;
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_hold_param(muon_opt *opt, int index, int hold)
{
    if (!opt)
        return MUON_ERR_NULL;
    muon_status s = muon__opt_check_index(opt, index);
    if (s != MUON_OK)
        return s;
    opt->params[index].hold = hold ? 1 : 0;
    muon__opt_ok(opt);
    return MUON_OK;
}
