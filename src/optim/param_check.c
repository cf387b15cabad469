#include "optim/param_check.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"

static muon_status fail(char *msg, size_t cap, muon_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static muon_status fail(char *msg, size_t cap, muon_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return s;
}

muon_status muon__param_check(const char *name, const float *w, int ndim, const long *shape,
                              muon_role role, muon__param_view *view, char *msg, size_t cap)
{
    if (!name)
        return fail(msg, cap, MUON_ERR_NULL, "parameter name is NULL");
    size_t len = strnlen(name, MUON__NAME_MAX + 1);
    if (len == 0)
        return fail(msg, cap, MUON_ERR_ARG, "parameter name is empty");
    if (len > MUON__NAME_MAX)
        return fail(msg, cap, MUON_ERR_ARG, "parameter '%.40s...': name longer than %d bytes",
                    name, MUON__NAME_MAX);
    if (!w || !shape)
        return fail(msg, cap, MUON_ERR_NULL, "parameter '%s': %s is NULL", name,
                    !w ? "weight buffer" : "shape");
    if ((int)role < 0 || role >= MUON_ROLE_COUNT)
        return fail(msg, cap, MUON_ERR_ARG, "parameter '%s': unknown role %d", name, (int)role);
    if (ndim < 1 || ndim > MUON__MAX_DIMS)
        return fail(msg, cap, MUON_ERR_SIZE, "parameter '%s': ndim %d is not in 1..%d", name,
                    ndim, MUON__MAX_DIMS);
    size_t total = 1, rest = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0)
            return fail(msg, cap, MUON_ERR_SIZE, "parameter '%s': dimension %d is %ld", name, d,
                        shape[d]);
        if (!muon__mul_size((long)total, shape[d], &total) || total > (size_t)LONG_MAX / 16)
            return fail(msg, cap, MUON_ERR_SIZE, "parameter '%s': size overflows", name);
        if (d > 0)
            rest *= (size_t)shape[d];
    }
    if (role == MUON_ROLE_MATRIX && ndim < 2)
        return fail(msg, cap, MUON_ERR_ARG,
                    "parameter '%s': role matrix needs at least 2 dimensions, got %d", name, ndim);
    view->n = total;
    view->batch = 1;
    view->rows = ndim == 1 ? 1 : shape[0];
    view->cols = ndim == 1 ? shape[0] : (long)rest;
    if (role == MUON_ROLE_MATRIX && ndim == 3) {
        view->batch = shape[0];
        view->rows = shape[1];
        view->cols = shape[2];
    }
    return MUON_OK;
}
