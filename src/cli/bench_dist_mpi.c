/* `muon bench dist`'s measured figures: one muon_dist per mode over the
 * model's shapes with random weights and gradients, on MPI_COMM_WORLD. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/bench.h"
#include "muon_dist.h"

static int started_mpi;

int bench_dist_begin(int *rank, int *size)
{
    int done = 0;
    MPI_Initialized(&done);
    if (!done) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
            return -1;
        started_mpi = 1;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return 0;
}

void bench_dist_end(void)
{
    if (started_mpi)
        MPI_Finalize();
    started_mpi = 0;
}

int bench_dist_measure(const bench_tensor *t, int nt, const char *mode, int bf16, int overlap,
                       int repeats, bench_dist_measured *out)
{
    size_t total = 0;
    for (int i = 0; i < nt; i++)
        total += (size_t)t[i].shape[0] * (size_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
    float *w = malloc(total * sizeof(float)), *g = malloc(total * sizeof(float));
    double *ms = malloc(sizeof(double) * (size_t)repeats);
    muon_dist *d = NULL;
    muon_dist_mode dm;
    muon_opt_config oc = muon_opt_config_default();
    /* the cores of the host shared by its ranks, as the trainer does */
    MPI_Comm host;
    int local = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host) ==
        MPI_SUCCESS) {
        MPI_Comm_size(host, &local);
        MPI_Comm_free(&host);
    }
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    oc.threads = cores / local > 0 ? cores / local : 1;
    bench_set_threads(oc.threads);
    muon_status s = w && g && ms ? muon_dist_mode_parse(mode, &dm) : MUON_ERR_NOMEM;
    if (s == MUON_OK) {
        bench_fill_uniform(w, total, 1, 0.02);
        bench_fill_uniform(g, total, 2, 1.0);
        s = muon_dist_create(&oc, dm, MPI_COMM_WORLD, &d);
    }
    if (s == MUON_OK && (s = muon_dist_set_gather_bf16(d, bf16 && dm == MUON_DIST_ZERO1)) == MUON_OK)
        s = muon_dist_set_overlap(d, overlap);
    size_t off = 0;
    for (int i = 0; s == MUON_OK && i < nt; i++) {
        s = muon_dist_add_param(d, t[i].name, w + off, g + off, t[i].ndim, t[i].shape, t[i].role);
        off += (size_t)t[i].shape[0] * (size_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
    }
    if (s == MUON_OK)
        s = muon_dist_finalize(d);
    muon_dist_stats st = {0};
    for (int k = -1; s == MUON_OK && k < repeats; k++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = bench_now_ms();
        s = muon_dist_step(d, 1.0);
        if (k >= 0)
            ms[k] = bench_now_ms() - t0;
    }
    int rc = 0;
    if (s != MUON_OK) {
        fprintf(stderr, "muon bench dist: %s: %s\n", mode,
                d && muon_dist_error(d)[0] ? muon_dist_error(d) : muon_strerror(s));
        rc = 1;
    } else {
        muon_dist_get_stats(d, &st);
        out->ranks = muon_dist_size(d);
        out->step_ms = bench_median(ms, repeats);
        out->comm_ms = st.comm_s * 1e3;
        out->comm_bytes = st.comm_bytes;
        out->state_bytes = st.state_bytes;
    }
    muon_dist_free(d);
    free(w);
    free(g);
    free(ms);
    return rc;
}
