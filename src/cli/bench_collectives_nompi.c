/* `muon bench collectives` in a build without MPI. */
#include <stdio.h>

#include "cli/bench.h"

int cli_bench_collectives(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "muon bench collectives: this muon was built without MPI; install "
                    "libopenmpi-dev and openmpi-bin, then rebuild\n");
    return 2;
}
