/* muon bench train (being written). */
#include <stdio.h>

#include "cli/bench.h"

int cli_bench_train(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "muon bench train: not implemented yet\n");
    return 1;
}
