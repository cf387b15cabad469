#include "exp/exp.h"

int exp_switch(exp_ctx *x)
{
    return exp_fail(x, "not implemented yet");
}
