#include "exp/exp.h"

int exp_mf(exp_ctx *x)
{
    return exp_fail(x, "not implemented yet");
}
