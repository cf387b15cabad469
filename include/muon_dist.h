/*
 * muon_dist.h - Distributed Muon over MPI (libmuon_dist.a, built when Open
 * MPI is found; libmuon itself never needs MPI). ALGORITHMS.md section 5.
 *
 * Every rank registers the same parameters with full-size weight and
 * gradient buffers, in the same order; a step sums the ranks' gradients
 * (each rank scales its own, e.g. by its share of the global batch), updates
 * the parameters, and leaves identical weights on every rank:
 *
 *     muon_dist *d;
 *     muon_dist_create(&cfg, MUON_DIST_ZERO1, MPI_COMM_WORLD, &d);
 *     muon_dist_add_param(d, "h.0.qkv", W, G, 2, shape, MUON_ROLE_MATRIX);
 *     ...
 *     muon_dist_finalize(d);
 *     for (...) { backward(...); muon_dist_step(d, lr_mult); }
 *
 * Modes:
 *   DDP    all-reduce of gradients; every rank steps every parameter.
 *   ZERO1  Moonlight's Distributed Muon: reduce-scatter of gradients, state
 *          kept as 1/P of each flattened parameter, all-gather of the
 *          Nesterov input for the orthogonalization, update of the local
 *          shard, all-gather of the parameters. Shards may be uneven or empty.
 *   OWNER  whole parameters assigned to ranks, balanced by update cost; the
 *          owner gets the reduced gradient, orthogonalizes once, updates and
 *          broadcasts the parameter.
 * The optimizer state saves in libmuon's single-process format
 * (muon_opt_save_buffer), so a state saved at one rank count loads at any
 * other, and in a plain muon_opt.
 *
 * Communication of one parameter overlaps the computation of another
 * (non-blocking collectives), unless muon_dist_set_overlap(d, 0). The
 * library sets MPI_ERRORS_RETURN on its own duplicate of the communicator:
 * a failed collective returns MUON_ERR_IO with MPI's message in
 * muon_dist_error(), and never exits the process.
 */
#ifndef MUON_DIST_H
#define MUON_DIST_H

#include <mpi.h>

#include "muon.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    MUON_DIST_DDP = 0,
    MUON_DIST_ZERO1,
    MUON_DIST_OWNER,
    MUON_DIST_MODE_COUNT
} muon_dist_mode;

/* Parse "ddp" | "zero1" | "owner". */
muon_status muon_dist_mode_parse(const char *name, muon_dist_mode *out);
const char *muon_dist_mode_name(muon_dist_mode m);

typedef struct muon_dist muon_dist;

/* Collective over comm (duplicated; the caller's communicator is not
 * touched). cfg as for muon_opt_create. */
muon_status muon_dist_create(const muon_opt_config *cfg, muon_dist_mode mode, MPI_Comm comm,
                             muon_dist **out);
void muon_dist_free(muon_dist *d);
/* As muon_opt_add_param, with full-size w and g on every rank. */
muon_status muon_dist_add_param(muon_dist *d, const char *name, float *w, const float *g,
                                int ndim, const long *shape, muon_role role);
/* 1 (default): overlap communication with computation; 0: wait for each
 * collective as soon as it is posted (for measuring what overlap saves).
 * ZERO1: 1 sends the orthogonalization's input as bf16 (Moonlight's 2 bytes
 * per element) instead of fp32. Both before finalize. */
muon_status muon_dist_set_overlap(muon_dist *d, int overlap);
muon_status muon_dist_set_gather_bf16(muon_dist *d, int bf16);
/* Collective: checks that every rank registered the same parameters, sizes
 * the shards, owners and buffers. */
muon_status muon_dist_finalize(muon_dist *d);

/* Collective: one update of every parameter from the sum over ranks of the
 * gradients. A parameter whose summed gradient holds NaN or Inf on any rank
 * is left alone on every rank (MUON_ERR_NONFINITE, names in the error). */
muon_status muon_dist_step(muon_dist *d, double lr_mult);

const char *muon_dist_error(const muon_dist *d);
int muon_dist_rank(const muon_dist *d);
int muon_dist_size(const muon_dist *d);

/* What a rank holds and sends. comm_bytes counts, from the element counts
 * of each collective this rank posts, the bytes it sends under the
 * bandwidth-optimal (ring) algorithms: n - c_r elements for a
 * reduce-scatter or all-gather of n elements of which c_r are this rank's
 * block, twice that for an all-reduce, and for OWNER a reduce or broadcast
 * as a reduce-scatter or all-gather plus the block to or from the root
 * (docs/distributed.md). comm_s is the wall time spent inside MPI calls. */
typedef struct {
    size_t state_bytes;    /* optimizer state on this rank */
    size_t comm_bytes;     /* sent by this rank in the last step */
    double comm_s;         /* seconds inside MPI in the last step */
    size_t total_comm_bytes; /* since creation */
    double total_comm_s;
} muon_dist_stats;
muon_status muon_dist_get_stats(const muon_dist *d, muon_dist_stats *out);

/* The whole optimizer state in muon_opt_save_buffer's format. Collective:
 * only `root` receives it, in *buf (malloc'd; free with free()) and *len. */
muon_status muon_dist_save_alloc(muon_dist *d, int root, void **buf, size_t *len);
/* Load a state saved by muon_dist_save_alloc or muon_opt_save_buffer, at
 * any rank count; every rank passes the same blob. Nothing changes on
 * failure (MUON_ERR_MISMATCH and the like, as muon_opt_load_buffer). */
muon_status muon_dist_load_buffer(muon_dist *d, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* MUON_DIST_H */
