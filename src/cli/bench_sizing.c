/* muon bench sizing (being written). */
#include <stdio.h>

#include "cli/bench.h"

int cli_bench_sizing(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "muon bench sizing: not implemented yet\n");
    return 1;
}
