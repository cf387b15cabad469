/* Internals of the optimizer object shared by the files of src/optim/.
 *
 * Each parameter carries an update rule, chosen from the algorithm and the
 * parameter's role when it is registered. The driver (step.c) dispatches on
 * the rule; each rule lives in its own file (muon.c, adamw.c). A new variant
 * (SCALE, Fanions, MuonAll, a switch from AdamW to Muon) adds a rule, an
 * entry in muon__rule_table and a case in the dispatch; the state file
 * already records the rule and buffer count per parameter. */
#ifndef MUON_OPTIM_H
#define MUON_OPTIM_H

#include <stddef.h>

#include "backend/backend.h"
#include "base/internal.h"

#define MUON__NAME_MAX 127 /* bytes, without the terminating NUL */
#define MUON__MAX_DIMS 8
#define MUON__MAX_BUFFERS 2 /* state buffers per parameter */

typedef enum {
    MUON__RULE_MUON = 0, /* momentum, orthogonalize, scaled update (ALGORITHMS.md 2) */
    MUON__RULE_ADAMW,    /* AdamW with per-parameter bias correction (3) */
    MUON__RULE_COUNT
} muon__rule;

typedef struct {
    const char *name;  /* as written in error messages */
    int n_buffers;     /* state buffers of n floats each */
    int needs_ortho;   /* 1: needs an N buffer + ortho workspace per thread */
} muon__rule_info;

extern const muon__rule_info muon__rule_table[MUON__RULE_COUNT];

typedef struct {
    char name[MUON__NAME_MAX + 1];
    muon_role role;
    muon__rule rule;
    int ndim;
    long shape[MUON__MAX_DIMS];
    long rows, cols; /* the 2-D view: (shape[0], product of the rest) */
    size_t n;        /* rows * cols */
    float *w;
    const float *g;
    float *buf[MUON__MAX_BUFFERS]; /* into muon_opt.state, after finalize */
    long steps;
    int skipped;
    double cost;         /* orthogonalization flops (Muon rule), else 10 n */
    muon_status status;  /* result of this parameter in the current step */
} muon__param;

/* How a step spreads its work, decided once at finalize. */
typedef struct {
    int *alone;   /* Muon params run one at a time with threaded BLAS */
    int n_alone;
    int *shared;  /* params spread over OpenMP threads, BLAS single-threaded,
                   * largest first */
    int n_shared;
    int shared_threads; /* OpenMP threads for the shared phase */
    int *wide;    /* big elementwise params: OpenMP over their elements */
    int n_wide;
} muon__plan;

struct muon_opt {
    muon_opt_config cfg;
    int threads; /* resolved cfg.threads */
    muon__param *params;
    int n_params, cap_params;
    int finalized;
    float *state; /* one allocation for every state buffer */
    size_t state_floats;
    void **work;  /* one workspace per thread: N buffer, then ortho workspace */
    size_t *work_bytes;
    muon__plan plan;
    muon_backend_kind backend_kind; /* chosen before finalize */
    muon__backend be;               /* built at finalize */
    char err[512];
};

/* The rule a parameter gets from the algorithm and its role. */
muon__rule muon__choose_rule(muon_algo algo, muon_role role);

/* Record a message in opt->err (opt may be const for save paths: the error
 * text is the one mutable part of a const optimizer) and return s. */
muon_status muon__opt_fail(const muon_opt *opt, muon_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void muon__opt_ok(const muon_opt *opt);

/* Multiple of 16 floats (64 bytes) at or above n. */
static inline size_t muon__round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* Muon rule for one parameter (muon.c), lr the multiplied learning rate.
 * work (64-byte aligned, work_bytes long) holds N in its first
 * muon__round16(p->n) floats and the ortho workspace after them; the
 * products run on the optimizer's backend and `threads` threads. A
 * non-finite gradient makes N non-finite, which the orthogonalization
 * refuses (MUON_ERR_NONFINITE) before anything is written: weights and
 * momentum change only when it returns MUON_OK. */
muon_status muon__muon_update(const muon_opt *opt, muon__param *p, double lr, int threads,
                              void *work, size_t work_bytes);

/* AdamW coefficients for one step of one parameter (adamw.c). */
typedef struct {
    float b1, one_minus_b1, b2, one_minus_b2;
    float decay;     /* 1 - lr * weight_decay */
    float step_size; /* lr / (1 - b1^t) */
    float inv_sqrt_bc2; /* 1 / sqrt(1 - b2^t) */
    float eps;
} muon__adamw_coef;

void muon__adamw_coef_init(const muon_opt_config *cfg, long step_t, double lr,
                           muon__adamw_coef *c);
/* Update elements [lo, hi) of p with AdamW; caller has checked the gradient. */
void muon__adamw_range(const muon__adamw_coef *c, muon__param *p, size_t lo, size_t hi);

#endif
