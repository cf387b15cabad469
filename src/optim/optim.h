/* Internals of the optimizer object shared by the files of src/optim/.
 *
 * Each parameter carries an update rule, chosen from the algorithm and the
 * parameter's role when it is registered. The driver (step.c) dispatches on
 * the rule; each rule family lives in its own file (muon.c for the rules
 * that orthogonalize, adamw.c, sgdm.c for the elementwise momentum rules,
 * scale.c). A new variant adds a rule, an entry in muon__rule_table and a
 * case in the dispatch; the state file records the rule and buffer count
 * per parameter. */
#ifndef MUON_OPTIM_H
#define MUON_OPTIM_H

#include <stddef.h>

#include "backend/backend.h"
#include "base/internal.h"
#include "optim/param_check.h"

#define MUON__MAX_BUFFERS 2 /* state buffers per parameter */
#define MUON__SCALE_HEAD_MOMENTUM 0.9 /* SCALE's head momentum (EMA form) */

/* Section numbers are docs/algorithms.md's. New rules go at the end: the
 * state file stores the number. */
typedef enum {
    MUON__RULE_MUON = 0,   /* momentum, orthogonalize, scaled update (2) */
    MUON__RULE_ADAMW,      /* AdamW with per-parameter bias correction (3) */
    MUON__RULE_SGDM,       /* SGD with momentum (4) */
    MUON__RULE_SCALE,      /* SCALE: rows (embedding: columns) rescaled to RMS 1 */
    MUON__RULE_SCALE_MOM,  /* SCALE on the head: the same on an EMA momentum */
    MUON__RULE_FMUON,      /* alpha O + (1 - alpha) N / ||N||_F */
    MUON__RULE_SMUON,      /* alpha O + (1 - alpha) eta_s sign(N) */
    MUON__RULE_FANION_K,   /* top-k singular directions of N */
    MUON__RULE_SIGN,       /* MuonAll's 1-D params: sign(N) = polar(diag(N)) */
    MUON__RULE_ADAMW_MUON, /* AdamW for switch_step updates, then Muon */
    MUON__RULE_COUNT
} muon__rule;

typedef struct {
    const char *name;  /* as written in error messages and muon_param_info */
    int n_buffers;     /* state buffers of n floats each */
    int needs_ortho;   /* 1: needs an N buffer + ortho workspace per thread */
    int elementwise;   /* 1: elements may be split over threads (run_wide) */
} muon__rule_info;

extern const muon__rule_info muon__rule_table[MUON__RULE_COUNT];

typedef struct {
    char name[MUON__NAME_MAX + 1];
    muon_role role;
    muon__rule rule;
    int ndim;
    long shape[MUON__MAX_DIMS];
    long batch;      /* matrices in a stack: shape[0] of a 3-D MATRIX param, else 1 */
    long rows, cols; /* the 2-D view of one matrix: (shape[0], product of the rest),
                        or (shape[1], shape[2]) of a stack */
    size_t n;        /* batch * rows * cols */
    float *w;
    const float *g;
    float *buf[MUON__MAX_BUFFERS]; /* into muon_opt.state, after finalize */
    long steps;
    int skipped;
    int hold;            /* 1: steps leave it as it is (muon_opt_hold_param) */
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

/* The rule a parameter gets from the algorithm, its role and ndim. */
muon__rule muon__choose_rule(muon_algo algo, muon_role role, int ndim);
/* 1 when p's next update orthogonalizes (Muon-like rules; AdamW-Muon
 * once past switch_step). */
int muon__orthogonalizes_now(const muon_opt *opt, const muon__param *p);
/* The orthogonalization config p's rule runs on one matrix: cfg.ortho, or
 * the exact SVD for Fanion-k and spectrum shaping. */
muon_ortho_config muon__param_ortho(const muon_opt *opt, const muon__param *p);

/* Record a message in opt->err (opt may be const for save paths: the error
 * text is the one mutable part of a const optimizer) and return s. */
muon_status muon__opt_fail(const muon_opt *opt, muon_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void muon__opt_ok(const muon_opt *opt);
/* MUON_OK, or MUON_ERR_ARG with a message when index names no parameter. */
muon_status muon__opt_check_index(const muon_opt *opt, int index);

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

/* Elementwise momentum rules (sgdm.c) on elements [lo, hi); the caller has
 * checked the gradient. lr is the Muon group's multiplied rate. */
void muon__sgdm_range(const muon_opt *opt, muon__param *p, double lr, size_t lo, size_t hi);
void muon__sign_range(const muon_opt *opt, muon__param *p, double lr, size_t lo, size_t hi);

/* SCALE (scale.c) on a whole parameter; the caller has checked the gradient. */
void muon__scale_update(const muon_opt *opt, muon__param *p, double lr);

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
