/* Status codes, their names and messages, the version and the log callback:
 * the library's only global state. */
#include <stdarg.h>
#include <stdio.h>

#include "base/internal.h"

static const struct {
    const char *name;
    const char *message;
} status_table[MUON_STATUS_COUNT] = {
    [MUON_OK] = {"MUON_OK", "success"},
    [MUON_ERR_NULL] = {"MUON_ERR_NULL", "a required pointer is NULL"},
    [MUON_ERR_SIZE] = {"MUON_ERR_SIZE", "a size is zero, negative or too large"},
    [MUON_ERR_SHAPE] = {"MUON_ERR_SHAPE", "shape does not match the registered shape"},
    [MUON_ERR_ARG] = {"MUON_ERR_ARG", "invalid argument or option value"},
    [MUON_ERR_NONFINITE] = {"MUON_ERR_NONFINITE", "NaN or Inf in the input; update refused"},
    [MUON_ERR_NOMEM] = {"MUON_ERR_NOMEM", "out of memory"},
    [MUON_ERR_IO] = {"MUON_ERR_IO", "file could not be opened, read or written"},
    [MUON_ERR_FORMAT] = {"MUON_ERR_FORMAT", "file is truncated, malformed or of another kind"},
    [MUON_ERR_CHECKSUM] = {"MUON_ERR_CHECKSUM", "checksum mismatch: file is corrupted"},
    [MUON_ERR_VERSION] = {"MUON_ERR_VERSION", "file format version is not supported"},
    [MUON_ERR_MISMATCH] = {"MUON_ERR_MISMATCH", "saved state does not match the parameters"},
    [MUON_ERR_STATE] = {"MUON_ERR_STATE", "call out of order for the object's state"},
    [MUON_ERR_DUPLICATE] = {"MUON_ERR_DUPLICATE", "a parameter with this name already exists"},
    [MUON_ERR_ALIAS] = {"MUON_ERR_ALIAS", "buffers that must be distinct overlap"},
    [MUON_ERR_WORKSPACE] = {"MUON_ERR_WORKSPACE", "workspace is too small"},
    [MUON_ERR_LAPACK] = {"MUON_ERR_LAPACK", "LAPACK routine failed (SVD did not converge)"},
    [MUON_ERR_UNSUPPORTED] = {"MUON_ERR_UNSUPPORTED", "combination of options is not supported"},
};

const char *muon_strerror(muon_status s)
{
    if ((int)s < 0 || s >= MUON_STATUS_COUNT)
        return "unknown status code";
    return status_table[s].message;
}

const char *muon_status_name(muon_status s)
{
    if ((int)s < 0 || s >= MUON_STATUS_COUNT)
        return "MUON_ERR_UNKNOWN";
    return status_table[s].name;
}

const char *muon_version(void)
{
    return "0.1.0";
}

static muon_log_fn log_fn;
static void *log_user;

void muon_set_log(muon_log_fn fn, void *user)
{
    log_fn = fn;
    log_user = user;
}

void muon__log(const char *fmt, ...)
{
    if (!log_fn)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(log_user, buf);
}
