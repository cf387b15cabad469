/* `muon bench dist` in a build without MPI: the plan only. */
#include "cli/bench.h"

int bench_dist_begin(int *rank, int *size)
{
    *rank = 0;
    *size = 1;
    return -1;
}

void bench_dist_end(void) {}

int bench_dist_measure(const bench_tensor *t, int nt, const char *mode, int bf16, int overlap,
                       int repeats, bench_dist_measured *out)
{
    (void)t;
    (void)nt;
    (void)mode;
    (void)bf16;
    (void)overlap;
    (void)repeats;
    (void)out;
    return 1;
}
