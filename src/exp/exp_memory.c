#include "exp/exp.h"

int exp_memory(exp_ctx *x)
{
    return exp_fail(x, "not implemented yet");
}
