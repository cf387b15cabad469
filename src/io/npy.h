/* NumPy .npy files holding one 2-D float matrix: the CLI's interchange format.
 *
 * Reading accepts format versions 1.0, 2.0 and 3.0, dtypes '<f4' and '<f8'
 * ('=' is read as '<': the format is little-endian and so is every host we
 * build for), C or Fortran order (Fortran data is transposed into row-major),
 * and returns row-major float32. The header is validated strictly: exactly
 * the keys descr, fortran_order and shape, a 2-tuple of positive integers,
 * and a data section of exactly rows * cols * itemsize bytes (a truncated
 * file and trailing bytes are both errors).
 *
 * Writing produces float32 '<f4', C order, version 1.0, into a temporary
 * file beside the target that is renamed into place, so an existing file is
 * either replaced whole or left untouched.
 *
 * Every function returns MUON_OK or an error status (MUON_ERR_IO: cannot
 * open/read/write; MUON_ERR_FORMAT: malformed or unsupported content;
 * MUON_ERR_NOMEM; MUON_ERR_SIZE; MUON_ERR_NULL) and then writes a one-line
 * message (without the file name: callers prefix it) into err[0..errcap). */
#ifndef MUON_IO_NPY_H
#define MUON_IO_NPY_H

#include <stddef.h>

#include "muon.h"

/* Read a 2-D float32/float64 .npy file. On success *data is a malloc'd
 * rows * cols row-major float32 array owned by the caller (free()). On
 * failure *data, *rows and *cols are left unchanged. */
muon_status npy_read_f32(const char *path, float **data, long *rows, long *cols, char *err,
                         size_t errcap);

/* The same from bytes already in memory (len bytes at buf). */
muon_status npy_parse_f32(const void *buf, size_t len, float **data, long *rows, long *cols,
                          char *err, size_t errcap);

/* Write rows x cols row-major float32 data as a .npy v1.0 file (temporary
 * file + rename; on failure an existing file at path is unchanged). */
muon_status npy_write_f32(const char *path, const float *data, long rows, long cols, char *err,
                          size_t errcap);

#endif
