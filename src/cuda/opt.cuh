/* Internals of the CUDA optimizer (opt.cu: registration and state;
 * step.cu: the update; opt_kernels.cu: its fused elementwise kernels).
 *
 * Muon parameters are grouped by matrix shape (rows, cols): each group's
 * matrices (a 3-D stack gives several) are one batch, orthogonalized with
 * one strided-batched cuBLAS call per product, on one of the context's
 * streams. Every other parameter is AdamW, updated by one multi-tensor
 * kernel. The device tables below tell the kernels where each tensor is;
 * they are uploaded at finalize and again after set_buffers. */
#ifndef MUON_CUDA_OPT_CUH
#define MUON_CUDA_OPT_CUH

#include "cuda/internal.cuh"
#include "optim/param_check.h"

/* elements per block of the multi-tensor kernels */
#define MUON__CUDA_TCHUNK ((long)1 << 16)

/* One matrix of a Muon group: matrix e of a stack points e * rows * cols
 * into the parameter's buffers. */
typedef struct {
    const float *g;
    float *m, *w;
    int param;
} muon__cuda_slot;

/* One elementwise tensor (AdamW's, or any gradient for the check). hold:
 * the parameter is held out of steps (muon_cuda_opt_hold_param): its
 * gradient is not read (it may be NULL) and the check flags it 2. */
typedef struct {
    float *w;
    const float *g;
    float *m, *v;
    long n;
    int param, hold;
} muon__cuda_tensor;

/* Block k of a multi-tensor kernel: elements [lo, lo + TCHUNK) of tensor t. */
typedef struct {
    int t;
    long lo;
} muon__cuda_chunk;

/* AdamW's per-parameter coefficients of this step (bias correction from
 * the parameter's own step count), as src/optim/adamw.c computes them. */
typedef struct {
    float step_size, inv_sqrt_bc2, decay, unused;
} muon__cuda_acoef;

typedef struct {
    char name[MUON__NAME_MAX + 1];
    muon_role role;
    int muon; /* 1: the Muon rule, 0: AdamW */
    int ndim;
    long shape[MUON__MAX_DIMS];
    long batch, rows, cols; /* the 2-D view of one matrix, as src/optim/opt.c */
    size_t n;
    float *w;
    const float *g;
    float *buf[2];
    long steps;
    int hold;   /* 1: steps leave it as it is (muon_cuda_opt_hold_param) */
    int group;  /* Muon: its group; AdamW: its index among the AdamW tensors */
    long slot0; /* Muon: its first slot in the group */
} muon__cuda_param;

typedef struct {
    long rows, cols, slots;
    muon_ortho_config oc; /* resolved for the GPU */
    double scale;         /* muon_scale_factor(rows, cols) */
    double cost;          /* flops of one step, for the stream assignment */
    int stream;
    long slot_off; /* its slots in the device slot table */
} muon__cuda_group;

struct muon_cuda_opt {
    muon_cuda *ctx;
    muon_opt_config cfg;
    muon__cuda_param *params;
    int n_params, cap_params;
    int finalized, dirty; /* dirty: the device tables lag set_buffers */
    muon__cuda_group *groups;
    int n_groups, n_streams, n_adam;
    long n_slots;
    int n_achunks, n_gchunks;
    /* device */
    float *state;
    void *tables; /* slots, AdamW tensors, all tensors, chunks, coefs, flags */
    muon__cuda_slot *d_slots;
    muon__cuda_tensor *d_adam, *d_all;
    muon__cuda_chunk *d_achunks, *d_gchunks;
    muon__cuda_acoef *d_acoef;
    int *d_flags;
    void *work[MUON__CUDA_STREAMS];
    /* host */
    muon__cuda_slot *h_slots;
    muon__cuda_tensor *h_adam, *h_all;
    muon__cuda_acoef *h_acoef; /* pinned */
    int *h_flags;              /* pinned */
    char err[MUON__CUDA_ERR_CAP];
};

muon_status muon__cuda_opt_fail(muon_cuda_opt *o, muon_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fill the host tables from the parameters' current pointers and copy them
 * to the device on the caller's stream. */
muon_status muon__cuda_opt_upload(muon_cuda_opt *o);

/* ---- opt_kernels.cu */
/* flags[param] = 1 for every tensor whose gradient holds NaN or Inf, 2 for
 * every held one (its gradient not read); the flags must be zero before.
 * Every later kernel skips a parameter whose flag is not zero. */
muon_status muon__cuda_check_grads(muon_cuda *c, cudaStream_t s, const muon__cuda_tensor *t,
                                   const muon__cuda_chunk *chunks, int n_chunks, int *flags);
/* For each slot not flagged: M = mu M + G; N = G + mu M (Nesterov) or M,
 * N into n (slot s at s * per) with its sum of squares' partials; a
 * flagged slot gets N = 0 and keeps M. */
muon_status muon__cuda_momentum(muon_cuda *c, cudaStream_t s, const muon__cuda_slot *slots,
                                long n_slots, long per, float mu, int nesterov, const int *flags,
                                float *n, double *partials, int nchunk);
/* W = decay W - step O for each slot not flagged (O slot s at s * per). */
muon_status muon__cuda_muon_apply(muon_cuda *c, cudaStream_t s, const muon__cuda_slot *slots,
                                  long n_slots, long per, float decay, float step, const int *flags,
                                  const float *o);
/* AdamW on every tensor not flagged, one kernel for all of them. */
muon_status muon__cuda_adamw(muon_cuda *c, cudaStream_t s, const muon__cuda_tensor *t,
                             const muon__cuda_chunk *chunks, int n_chunks,
                             const muon__cuda_acoef *coef, float b1, float a1, float b2, float a2,
                             float eps, const int *flags);

#endif
