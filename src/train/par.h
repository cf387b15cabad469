/* Data-parallel training over MPI for the trainer: the process group and a
 * distributed optimizer over the model's tensors (libmuon_dist). par_mpi.c
 * implements it when the build found Open MPI; par_nompi.c otherwise,
 * where train_par_available() is 0 and the rest is never called.
 *
 * Every rank runs the same loop on its slice of each global batch; the
 * optimizer sums the ranks' gradients, so the run does not depend on the
 * number of ranks beyond the order of that sum. */
#ifndef MUON_TRAIN_PAR_H
#define MUON_TRAIN_PAR_H

#include <stddef.h>

#include "muon.h"
#include "nn/gpt.h"

typedef struct train_par_opt train_par_opt;

/* 1 when this build can run --dist. */
int train_par_available(void);
/* "ddp", "zero1", "owner": 0 when name is one of them. */
int train_par_mode_valid(const char *name);
/* Start and end MPI (once per process, around the run). 0 or -1 + err. */
int train_par_begin(char *err, size_t errcap);
void train_par_end(void);
int train_par_rank(void);
int train_par_size(void);
/* Threads a rank uses by default: the cores shared by the ranks on its host. */
int train_par_default_threads(int cores);

/* Collective: a distributed optimizer over every tensor of m. */
int train_par_opt_create(const muon_opt_config *oc, const char *mode, int overlap, int bf16,
                         gpt_model *m, train_par_opt **out, char *err, size_t errcap);
void train_par_opt_free(train_par_opt *o);
muon_status train_par_opt_step(train_par_opt *o, double lr_mult);
const char *train_par_opt_error(const train_par_opt *o);
/* Collective: rank 0 gets the whole state (malloc'd) in the single-process
 * format; the others get NULL. */
muon_status train_par_opt_save(train_par_opt *o, void **blob, size_t *len);
muon_status train_par_opt_load(train_par_opt *o, const void *blob, size_t len);
/* Per rank: optimizer state bytes, bytes sent and seconds in MPI in the
 * last step. */
void train_par_opt_stats(const train_par_opt *o, size_t *state_bytes, size_t *comm_bytes,
                         double *comm_s);

/* Collective: v[0..n) summed over the ranks, in place. */
void train_par_sum(double *v, int n);
/* Collective: the largest rc over the ranks, and rank 0's in *rc0. */
int train_par_agree(int rc, int *rc0);
/* End every rank now (a rank cannot go on alone after a failed collective). */
void train_par_abort(int code);
/* A watchdog for a rank or network that stops answering (a stopped process,
 * a lost link: nothing mpirun notices): once started, a rank that goes
 * `seconds` without a heartbeat prints a message naming itself and exits,
 * and mpirun then ends the others. seconds <= 0: none. */
void train_par_watchdog_start(double seconds);
void train_par_heartbeat(void);
void train_par_watchdog_stop(void);

#endif
