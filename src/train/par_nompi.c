/* The trainer's MPI part in a build without MPI: --dist is refused before
 * anything else runs (train_par_available), so nothing below is reached. */
#include "train/par.h"

int train_par_available(void)
{
    return 0;
}

int train_par_mode_valid(const char *name)
{
    (void)name;
    return -1;
}

int train_par_begin(char *err, size_t errcap)
{
    (void)err;
    (void)errcap;
    return -1;
}

void train_par_end(void) {}

int train_par_rank(void)
{
    return 0;
}

int train_par_size(void)
{
    return 1;
}

int train_par_default_threads(int cores)
{
    return cores;
}

int train_par_opt_create(const muon_opt_config *oc, const char *mode, int overlap, int bf16,
                         gpt_model *m, train_par_opt **out, char *err, size_t errcap)
{
    (void)oc;
    (void)mode;
    (void)overlap;
    (void)bf16;
    (void)m;
    (void)err;
    (void)errcap;
    *out = NULL;
    return -1;
}

void train_par_opt_free(train_par_opt *o)
{
    (void)o;
}

muon_status train_par_opt_step(train_par_opt *o, double lr_mult)
{
    (void)o;
    (void)lr_mult;
    return MUON_ERR_UNSUPPORTED;
}

const char *train_par_opt_error(const train_par_opt *o)
{
    (void)o;
    return "built without MPI";
}

muon_status train_par_opt_save(train_par_opt *o, void **blob, size_t *len)
{
    (void)o;
    *blob = NULL;
    *len = 0;
    return MUON_ERR_UNSUPPORTED;
}

muon_status train_par_opt_load(train_par_opt *o, const void *blob, size_t len)
{
    (void)o;
    (void)blob;
    (void)len;
    return MUON_ERR_UNSUPPORTED;
}

void train_par_opt_stats(const train_par_opt *o, size_t *state_bytes, size_t *comm_bytes,
                         double *comm_s)
{
    (void)o;
    *state_bytes = *comm_bytes = 0;
    *comm_s = 0;
}

void train_par_sum(double *v, int n)
{
    (void)v;
    (void)n;
}

int train_par_agree(int rc, int *rc0)
{
    *rc0 = rc;
    return rc;
}

void train_par_abort(int code)
{
    (void)code;
}

void train_par_watchdog_start(double seconds)
{
    (void)seconds;
}

void train_par_heartbeat(void) {}

void train_par_watchdog_stop(void) {}
