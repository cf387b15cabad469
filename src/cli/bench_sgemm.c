/* muon bench sgemm (being written). */
#include <stdio.h>

#include "cli/bench.h"

int cli_bench_sgemm(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "muon bench sgemm: not implemented yet\n");
    return 1;
}
