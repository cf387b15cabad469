/* Helpers shared inside libmuon. Names use the muon__ prefix and are not
 * exported from libmuon.so (see src/libmuon.map). */
#ifndef MUON_INTERNAL_H
#define MUON_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "muon.h"

/* Send a formatted message to the caller's log callback, if any. */
void muon__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* a * b without overflow into *out; 0 on overflow or negative input. */
int muon__mul_size(long a, long b, size_t *out);

/* 1 if every one of the n floats is finite. */
int muon__all_finite(const float *x, size_t n);

/* CRC-32 (IEEE) of a byte range, continuing from crc (start with 0). */
uint32_t muon__crc32(uint32_t crc, const void *data, size_t len);

/* For the *_parse / *_name functions of the public enums: the index of
 * name in names[0..n) (-1 when absent or NULL), and names[i] ("unknown"
 * when i is out of range). */
int muon__name_index(const char *const names[], int n, const char *name);
const char *muon__name_at(const char *const names[], int n, int i);

/* 1 when OpenBLAS runs its AVX-512 kernels (the machine description,
 * src/backend/machine.h). */
int muon__openblas_avx512(void);

/* 64-byte aligned allocation (free with free()). NULL on failure. */
void *muon__aligned_alloc(size_t bytes);

#endif
