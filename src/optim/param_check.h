/* The checks of a parameter's registration that muon_opt_add_param and the
 * CUDA backend's muon_cuda_opt_add_param share (the latter is C++, so this
 * header stands alone). */
#ifndef MUON_PARAM_CHECK_H
#define MUON_PARAM_CHECK_H

#include <stddef.h>

#include "muon.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MUON__NAME_MAX 127 /* bytes, without the terminating NUL */
#define MUON__MAX_DIMS 8

/* A parameter's 2-D view: N-D as (shape[0], the rest), 1-D as (1, n), a
 * 3-D MATRIX param as a stack of batch (shape[1], shape[2]) matrices. */
typedef struct {
    long rows, cols, batch;
    size_t n; /* elements in all */
} muon__param_view;

/* Name (1..MUON__NAME_MAX bytes), weight buffer, role, ndim and shape as
 * muon_opt_add_param documents them; on success the view, else the status
 * with the message (naming the parameter) in msg. */
muon_status muon__param_check(const char *name, const float *w, int ndim, const long *shape,
                              muon_role role, muon__param_view *view, char *msg, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
