#include "exp/exp.h"

int exp_rms(exp_ctx *x)
{
    return exp_fail(x, "not implemented yet");
}
