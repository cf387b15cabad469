/*
 * muon_cuda.h - libmuon's CUDA backend (build/libmuon_cuda.so, built when
 * nvcc is found; docs/cuda.md). The same orthogonalization and the same
 * hybrid Muon / AdamW update as the CPU library, on device pointers:
 *
 *     muon_cuda *ctx;
 *     if (muon_cuda_create(0, &ctx) != MUON_OK)
 *         fprintf(stderr, "%s\n", muon_cuda_last_error());     // e.g. no device
 *     muon_cuda_set_stream(ctx, torch_current_stream);         // optional
 *     muon_opt_config cfg = muon_opt_config_default();
 *     muon_cuda_opt *opt;
 *     muon_cuda_opt_create(ctx, &cfg, &opt);
 *     muon_cuda_opt_add_param(opt, "h.0.qkv", dW, dG, 2, shape, MUON_ROLE_MATRIX, NULL);
 *     muon_cuda_opt_finalize(opt);            // device state and workspace, zeroed
 *     for (...) { backward(); muon_cuda_opt_step(opt, schedule(step)); }
 *
 * Conventions are muon.h's: every call returns a muon_status and the
 * library never prints or exits. A CUDA or cuBLAS failure becomes
 * MUON_ERR_NOMEM (out of device memory), MUON_ERR_UNSUPPORTED (no usable
 * device or driver, no kernel for the GPU) or MUON_ERR_STATE (any other
 * device error), with the CUDA text in the context's message. Matrices are
 * row-major float32 (PyTorch's layout). A context and everything made from
 * it serve one host thread at a time. The calling thread's current CUDA
 * device is left as it was.
 */
#ifndef MUON_CUDA_H
#define MUON_CUDA_H

#include "muon.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Usable devices; 0 without a driver or a device, never an error. */
int muon_cuda_device_count(void);

typedef struct muon_cuda muon_cuda;

/* A context on one device: its cuBLAS handles, its streams, its workspace.
 * No device (or a bad index): MUON_ERR_UNSUPPORTED, and
 * muon_cuda_last_error() says why. */
muon_status muon_cuda_create(int device, muon_cuda **out);
void muon_cuda_free(muon_cuda *c);
/* This thread's message of the last muon_cuda_create / muon_cuda_opt_create
 * that failed (thread-local); "" when none has. */
const char *muon_cuda_last_error(void);
/* The message of the last failed call on c, "" after a success. */
const char *muon_cuda_error(const muon_cuda *c);

/* The caller's stream (a cudaStream_t, e.g. PyTorch's current stream; NULL:
 * the legacy default stream): work of later calls is ordered after what
 * was queued on it, and what the caller queues on it afterwards is ordered
 * after that work. The context's own streams fork from it and join back
 * into it before each call returns. */
muon_status muon_cuda_set_stream(muon_cuda *c, void *stream);
/* Wait on the host until the caller's stream has finished. */
muon_status muon_cuda_synchronize(muon_cuda *c);

/* Orthogonalize `batch` row-major rows x cols matrices stored one after the
 * other (device pointers; in may equal out), each on its own, as
 * muon_orthogonalize does: the same config (method auto | ns | gram-ns,
 * coefficients, steps, safety, eps, Gram NS restarts; precision fp32 |
 * mixed, auto = mixed on the GPU). svd and AOL: MUON_ERR_UNSUPPORTED.
 * NaN or Inf in any matrix: MUON_ERR_NONFINITE, out untouched. The call
 * waits for the finiteness check (one 4-byte copy to the host), then queues
 * the rest and returns: synchronize before reading out on the host. */
muon_status muon_cuda_orthogonalize(muon_cuda *c, const muon_ortho_config *cfg, const float *in,
                                    float *out, long batch, long rows, long cols);

typedef struct muon_cuda_opt muon_cuda_opt;

/* cfg->algo MUON_ALGO_MUON (the hybrid) or MUON_ALGO_ADAMW; other
 * algorithms, spectrum_power != 0, and an svd / AOL ortho config:
 * MUON_ERR_UNSUPPORTED. The config is checked before c, so its status
 * comes without a device. The optimizer keeps c, which must outlive it. */
muon_status muon_cuda_opt_create(muon_cuda *c, const muon_opt_config *cfg, muon_cuda_opt **out);
void muon_cuda_opt_free(muon_cuda_opt *o);
/* As muon_opt_add_param, with device pointers; a 3-D MATRIX param is a
 * stack of shape[0] matrices of shape[1] x shape[2]. g may be NULL until
 * muon_cuda_opt_set_buffers. */
muon_status muon_cuda_opt_add_param(muon_cuda_opt *o, const char *name, float *w, const float *g,
                                    int ndim, const long *shape, muon_role role, int *index);
/* New weight / gradient device buffers of the registered size for
 * parameter index; NULL keeps the current one. */
muon_status muon_cuda_opt_set_buffers(muon_cuda_opt *o, int index, float *w, const float *g);
/* Allocates the state (zeroed) and the workspace on the device. */
muon_status muon_cuda_opt_finalize(muon_cuda_opt *o);
/* One update with learning rates cfg lr * lr_mult and adam_lr * lr_mult,
 * as muon_opt_step: a parameter whose gradient holds NaN or Inf is not
 * updated (weights and state unchanged), the others are, and the call
 * returns MUON_ERR_NONFINITE with their names in muon_cuda_opt_error.
 * Held parameters (muon_cuda_opt_hold_param) are left as they are. A
 * matrix of more than INT_MAX rows or columns (cuBLAS's int sizes) is
 * refused at finalize with MUON_ERR_SIZE.
 * Returns after the step's work is queued and its one 4-bytes-per-
 * parameter flag copy has arrived, so the caller's stream is then idle. */
muon_status muon_cuda_opt_step(muon_cuda_opt *o, double lr_mult);
muon_status muon_cuda_opt_set_lr(muon_cuda_opt *o, double lr, double adam_lr);
const char *muon_cuda_opt_error(const muon_cuda_opt *o);
/* Device pointers of parameter index's state, as the CPU optimizer keeps
 * it: the Muon rule has count 1 (bufs[0] = momentum M), AdamW count 2
 * (bufs[0] = m, bufs[1] = v); *steps = updates applied (AdamW's bias
 * correction). bufs holds room for 2; any output may be NULL. After
 * finalize. */
muon_status muon_cuda_opt_param_state(muon_cuda_opt *o, int index, float **bufs, int *count,
                                      long *steps);
muon_status muon_cuda_opt_set_param_steps(muon_cuda_opt *o, int index, long steps);
/* As muon_opt_hold_param: hold = 1: the following steps leave parameter
 * index exactly as it is (weights, state, step count; its gradient may be
 * NULL and is not read), as PyTorch does for a parameter without a
 * gradient; hold = 0 returns it to the steps. Before or after finalize;
 * takes effect at the next step. */
muon_status muon_cuda_opt_hold_param(muon_cuda_opt *o, int index, int hold);
/* 1: the Muon rule, 0: AdamW, -1: no such parameter. */
int muon_cuda_opt_uses_muon(const muon_cuda_opt *o, int index);
/* Registered parameters (0 for NULL). */
int muon_cuda_opt_num_params(const muon_cuda_opt *o);

#ifdef __cplusplus
}
#endif
#endif /* MUON_CUDA_H */
