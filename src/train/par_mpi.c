/* The trainer's MPI part: the process group on MPI_COMM_WORLD and the
 * distributed optimizer of libmuon_dist over the model's tensors. */
#include <stdio.h>
#include <stdlib.h>

#include "muon_dist.h"
#include "train/par.h"

struct train_par_opt {
    muon_dist *d;
};

int train_par_available(void)
{
    return 1;
}

int train_par_mode_valid(const char *name)
{
    muon_dist_mode m;
    return muon_dist_mode_parse(name, &m) == MUON_OK ? 0 : -1;
}

int train_par_begin(char *err, size_t errcap)
{
    int done = 0;
    MPI_Initialized(&done);
    if (!done && MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        snprintf(err, errcap, "MPI_Init failed");
        return -1;
    }
    return 0;
}

void train_par_end(void)
{
    int done = 0;
    MPI_Finalized(&done);
    if (!done)
        MPI_Finalize();
}

int train_par_rank(void)
{
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int train_par_size(void)
{
    int n = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

int train_par_default_threads(int cores)
{
    MPI_Comm host;
    int local = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host) ==
        MPI_SUCCESS) {
        MPI_Comm_size(host, &local);
        MPI_Comm_free(&host);
    }
    int t = cores / (local > 0 ? local : 1);
    return t > 0 ? t : 1;
}

int train_par_opt_create(const muon_opt_config *oc, const char *mode, int overlap, int bf16,
                         gpt_model *m, train_par_opt **out, char *err, size_t errcap)
{
    *out = NULL;
    muon_dist_mode dm;
    if (muon_dist_mode_parse(mode, &dm) != MUON_OK) {
        snprintf(err, errcap, "--dist must be ddp, zero1 or owner, got '%s'", mode);
        return -1;
    }
    train_par_opt *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    muon_status s = muon_dist_create(oc, dm, MPI_COMM_WORLD, &o->d);
    if (s == MUON_OK)
        s = muon_dist_set_overlap(o->d, overlap);
    if (s == MUON_OK)
        s = muon_dist_set_gather_bf16(o->d, bf16);
    float *w = gpt_params(m), *g = gpt_grads(m);
    for (int i = 0; s == MUON_OK && i < gpt_num_tensors(m); i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        s = muon_dist_add_param(o->d, t->name, w + t->offset, g + t->offset, t->ndim, t->shape,
                                t->role);
    }
    if (s == MUON_OK)
        s = muon_dist_finalize(o->d);
    if (s != MUON_OK) {
        snprintf(err, errcap, "distributed optimizer: %s",
                 o->d && muon_dist_error(o->d)[0] ? muon_dist_error(o->d) : muon_strerror(s));
        train_par_opt_free(o);
        return -1;
    }
    *out = o;
    return 0;
}

void train_par_opt_free(train_par_opt *o)
{
    if (!o)
        return;
    muon_dist_free(o->d);
    free(o);
}

muon_status train_par_opt_step(train_par_opt *o, double lr_mult)
{
    return muon_dist_step(o->d, lr_mult);
}

const char *train_par_opt_error(const train_par_opt *o)
{
    return muon_dist_error(o->d);
}

muon_status train_par_opt_save(train_par_opt *o, void **blob, size_t *len)
{
    return muon_dist_save_alloc(o->d, 0, blob, len);
}

muon_status train_par_opt_load(train_par_opt *o, const void *blob, size_t len)
{
    return muon_dist_load_buffer(o->d, blob, len);
}

void train_par_opt_stats(const train_par_opt *o, size_t *state_bytes, size_t *comm_bytes,
                         double *comm_s)
{
    muon_dist_stats st;
    muon_dist_get_stats(o->d, &st);
    *state_bytes = st.state_bytes;
    *comm_bytes = st.comm_bytes;
    *comm_s = st.comm_s;
}

void train_par_sum(double *v, int n)
{
    MPI_Allreduce(MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int train_par_agree(int rc, int *rc0)
{
    int all = rc;
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    *rc0 = rc;
    MPI_Bcast(rc0, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return all;
}

void train_par_abort(int code)
{
    MPI_Abort(MPI_COMM_WORLD, code);
}
