/* .npy: the in-memory parser and the file reader (which reads in chunks and
 * checks the size through fstat) must agree on every input: the same status
 * and, on success, the same matrix. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err1[256], err2[256];
    float *a = NULL, *b = NULL;
    long ra = 0, ca = 0, rb = 0, cb = 0;
    muon_status sa = npy_parse_f32(data, size, &a, &ra, &ca, err1, sizeof err1);
    muon_status sb = npy_read_f32(fz_file(0, data, size), &b, &rb, &cb, err2, sizeof err2);
    if (sa != sb)
        fz_fail("npy_parse_f32 and npy_read_f32 disagree on the status");
    if (sa == MUON_OK) {
        if (ra != rb || ca != cb || ra <= 0 || ca <= 0)
            fz_fail("the two .npy readers disagree on the shape");
        /* bitwise, so that NaNs compare too */
        if (memcmp(a, b, sizeof(float) * (size_t)ra * (size_t)ca) != 0)
            fz_fail("the two .npy readers disagree on the data");
    }
    free(a);
    free(b);
    return 0;
}
