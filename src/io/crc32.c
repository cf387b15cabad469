#include "io/crc32.h"

#include <zlib.h>

uint32_t io_crc32(uint32_t crc, const void *data, size_t len)
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
