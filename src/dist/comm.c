/* Communication bookkeeping: errors, the time spent inside MPI, the bytes
 * each collective sends, and waiting on requests.
 *
 * Bytes are counted from the element counts of each collective under the
 * bandwidth-optimal (ring) algorithms, with c_r this rank's block of the
 * balanced partition of the n elements (dist__block): a reduce-scatter or
 * an all-gather sends n - c_r elements, an all-reduce (one of each) twice
 * that; a reduce to a root is a reduce-scatter then each block sent to the
 * root, a broadcast the root's scatter of the blocks then an all-gather.
 * Which algorithm Open MPI picks may differ; the figure is the model the
 * plan in `muon bench dist` uses too, so measured and planned agree. */
#include <stdio.h>
#include <time.h>

#include "dist/dist.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

muon_status dist__check(muon_dist *d, int mpi_rc, const char *what)
{
    if (mpi_rc == MPI_SUCCESS)
        return MUON_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_rc, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "MPI error %d", mpi_rc);
    return dist__fail(d, MUON_ERR_IO, "rank %d: %s failed: %s", d->rank, what, msg);
}

void dist__mpi_enter(muon_dist *d)
{
    d->t_in = now_s();
}

void dist__mpi_leave(muon_dist *d)
{
    double dt = now_s() - d->t_in;
    d->st.comm_s += dt;
    d->st.total_comm_s += dt;
}

static void add_bytes(muon_dist *d, size_t b)
{
    d->st.comm_bytes += b;
    d->st.total_comm_bytes += b;
}

void dist__count_rs(muon_dist *d, size_t n, size_t elt)
{
    add_bytes(d, (n - dist__block(n, d->size, d->rank)) * elt);
}

void dist__count_allreduce(muon_dist *d, size_t n, size_t elt)
{
    add_bytes(d, 2 * (n - dist__block(n, d->size, d->rank)) * elt);
}

void dist__count_reduce(muon_dist *d, size_t n, size_t elt, int root)
{
    size_t mine = dist__block(n, d->size, d->rank);
    add_bytes(d, (n - mine + (d->rank != root ? mine : 0)) * elt);
}

void dist__count_bcast(muon_dist *d, size_t n, size_t elt, int root)
{
    size_t mine = dist__block(n, d->size, d->rank);
    add_bytes(d, (n - mine + (d->rank == root ? n - mine : 0)) * elt);
}

muon_status dist__posted(muon_dist *d, int mpi_rc, MPI_Request *r, const char *what)
{
    dist__mpi_leave(d);
    muon_status s = dist__check(d, mpi_rc, what);
    if (s != MUON_OK || d->overlap)
        return s;
    return dist__wait(d, r, what);
}

muon_status dist__wait(muon_dist *d, MPI_Request *r, const char *what)
{
    if (*r == MPI_REQUEST_NULL)
        return MUON_OK;
    dist__mpi_enter(d);
    int rc = MPI_Wait(r, MPI_STATUS_IGNORE);
    dist__mpi_leave(d);
    return dist__check(d, rc, what);
}

muon_status dist__waitall(muon_dist *d, const char *what)
{
    dist__mpi_enter(d);
    int rc = MPI_Waitall(d->np * DIST__REQ_KINDS, d->req, MPI_STATUSES_IGNORE);
    dist__mpi_leave(d);
    return dist__check(d, rc, what);
}

/* Open MPI moves a non-blocking collective on only inside MPI calls, so
 * the step calls this between parameters. */
muon_status dist__progress(muon_dist *d)
{
    int flag = 0;
    dist__mpi_enter(d);
    int rc = MPI_Testall(d->np * DIST__REQ_KINDS, d->req, &flag, MPI_STATUSES_IGNORE);
    dist__mpi_leave(d);
    return dist__check(d, rc, "progressing the collectives");
}
