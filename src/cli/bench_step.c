/* muon bench step (being written). */
#include <stdio.h>

#include "cli/bench.h"

int cli_bench_step(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "muon bench step: not implemented yet\n");
    return 1;
}
