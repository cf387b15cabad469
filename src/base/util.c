/* Small numeric and memory helpers used across the library. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>
#include <zlib.h>

#include "backend/machine.h"
#include "base/internal.h"

int muon__mul_size(long a, long b, size_t *out)
{
    if (a < 0 || b < 0)
        return 0;
    if (a != 0 && (size_t)b > SIZE_MAX / (size_t)a)
        return 0;
    *out = (size_t)a * (size_t)b;
    return 1;
}

int muon__all_finite(const float *x, size_t n)
{
    /* Summing x*0 keeps the loop branch-free and vectorizable: any NaN or
     * Inf turns the sum into NaN. */
    float acc = 0.0f;
    for (size_t i = 0; i < n; i++)
        acc += x[i] * 0.0f;
    return acc == 0.0f;
}

void *muon__aligned_alloc(size_t bytes)
{
    if (bytes == 0)
        bytes = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

uint32_t muon__crc32(uint32_t crc, const void *data, size_t len)
{
    /* zlib's crc32 takes a uInt length: feed it in chunks. */
    const unsigned char *p = data;
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32((uLong)crc, p, n);
        p += n;
        len -= n;
    }
    return crc;
}

void muon_set_blas_threads(int n)
{
    if (n <= 0)
        n = omp_get_num_procs();
    openblas_set_num_threads(n);
}

int muon__openblas_avx512(void)
{
    return muon__machine_get()->openblas_avx512;
}

int muon_get_blas_threads(void)
{
    return openblas_get_num_threads();
}

int muon__name_index(const char *const names[], int n, const char *name)
{
    for (int i = 0; name && i < n; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

const char *muon__name_at(const char *const names[], int n, int i)
{
    return i >= 0 && i < n ? names[i] : "unknown";
}
