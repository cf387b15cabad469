/* Internals of the distributed optimizer shared by the files of src/dist/.
 *
 * Each parameter has a part this rank updates, elements [lo, lo + cnt) of
 * the flattened parameter, with optimizer state for exactly that part:
 * DDP the whole parameter on every rank, ZERO1 the rank's block of the
 * balanced partition (dist__block), OWNER the whole parameter on its owner
 * and nothing elsewhere. The element arithmetic is the single-process
 * optimizer's (same expressions, same order per element), so with the same
 * summed gradient a rank computes the same bits as muon_opt_step. */
#ifndef MUON_DIST_DIST_H
#define MUON_DIST_DIST_H

#include <stddef.h>

#include "muon_dist.h"
#include "optim/optim.h"

typedef struct {
    char name[MUON__NAME_MAX + 1];
    muon_role role;
    muon__rule rule;
    int ndim;
    long shape[MUON__MAX_DIMS];
    long rows, cols;
    size_t n;
    float *w;
    const float *g;
    size_t lo, cnt;  /* this rank's part */
    int owner;       /* OWNER: the rank that updates it */
    int *counts, *displs; /* ZERO1: every rank's block (MPI's int counts) */
    float *buf[MUON__MAX_BUFFERS]; /* state of the part */
    float *gred;     /* the summed gradient of the part (DDP, OWNER owner: n floats) */
    float *nfull;    /* ZERO1 Muon: the gathered Nesterov input, n floats */
    muon_bf16 *nb16; /* ZERO1 Muon with bf16 gather: n halves */
    long steps;
    int skip;        /* 1: non-finite gradient on some rank this step */
    double cost;
} dist__param;

/* Requests of one step: one slot per parameter and kind. */
enum { DIST__REQ_GRAD = 0, DIST__REQ_N, DIST__REQ_W, DIST__REQ_KINDS };

struct muon_dist {
    muon_opt_config cfg;
    muon_dist_mode mode;
    MPI_Comm comm;
    int rank, size;
    int overlap, gather_bf16;
    int threads;
    dist__param *p;
    int np, cap;
    int finalized;
    float *state;      /* every part's state, one allocation */
    size_t state_floats;
    float *grads;      /* every gred, one allocation */
    float *nbufs;      /* every nfull, one allocation (ZERO1) */
    muon_bf16 *nb16s;
    float *nwork;      /* DDP / OWNER: N of the parameter being updated */
    void *work;        /* orthogonalization workspace */
    size_t work_bytes;
    muon_backend *be;
    MPI_Request *req;  /* np * DIST__REQ_KINDS */
    int *flags;        /* np: non-finite gradient here / anywhere */
    muon_dist_stats st;
    double t_in;       /* start of the current MPI call */
    char err[512];
};

/* Elements of rank r's block when n is split as evenly as possible over
 * P ranks, the first n % P ranks taking one more; and where it starts. */
size_t dist__block(size_t n, int P, int r);
size_t dist__block_start(size_t n, int P, int r);

muon_status dist__fail(muon_dist *d, muon_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An MPI return code as a status, with MPI's message naming `what`. */
muon_status dist__check(muon_dist *d, int mpi_rc, const char *what);

/* Time spent inside MPI: bracket each call. */
void dist__mpi_enter(muon_dist *d);
void dist__mpi_leave(muon_dist *d);
/* Count the bytes this rank sends for a collective over n elements of
 * `elt` bytes (docs/distributed.md). */
void dist__count_rs(muon_dist *d, size_t n, size_t elt); /* reduce-scatter or all-gather */
void dist__count_allreduce(muon_dist *d, size_t n, size_t elt);
void dist__count_reduce(muon_dist *d, size_t n, size_t elt, int root);
void dist__count_bcast(muon_dist *d, size_t n, size_t elt, int root);

/* Parameter i's request of a kind. */
static inline MPI_Request *dist__req(muon_dist *d, int i, int kind)
{
    return &d->req[i * DIST__REQ_KINDS + kind];
}
/* After posting a non-blocking collective (the call opened with
 * dist__mpi_enter): close the timing, check the status, and with overlap
 * off wait for it at once. */
muon_status dist__posted(muon_dist *d, int mpi_rc, MPI_Request *r, const char *what);
/* Wait for one request (no-op for MPI_REQUEST_NULL); progress the others. */
muon_status dist__wait(muon_dist *d, MPI_Request *r, const char *what);
muon_status dist__waitall(muon_dist *d, const char *what);
muon_status dist__progress(muon_dist *d);

/* The single-process arithmetic on a part of cnt elements: momentum and
 * Nesterov input (muon.c), and the scaled update from O. */
void dist__momentum(const muon_opt_config *cfg, float *m, const float *g, float *nb, size_t cnt);
void dist__apply(float *w, const float *o, size_t cnt, float decay, float step);

/* The mode's step body; the caller has screened non-finite gradients. */
muon_status dist__step_ddp(muon_dist *d, double muon_lr, double adam_lr);
muon_status dist__step_zero1(muon_dist *d, double muon_lr, double adam_lr);
muon_status dist__step_owner(muon_dist *d, double muon_lr, double adam_lr);
/* The elementwise update of a part of an AdamW parameter with gradient g. */
void dist__adamw_part(const muon_dist *d, dist__param *p, const float *g, double lr);
/* Orthogonalize N (n floats, in place) and apply it to w[lo, lo + cnt). */
muon_status dist__muon_finish(muon_dist *d, dist__param *p, float *nfull, double lr);

#endif
