/* CRC-32 (IEEE, zlib's) for the trainer's files: checkpoints and the
 * training tokens' fingerprint. */
#ifndef MUON_IO_CRC32_H
#define MUON_IO_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32 of a byte range, continuing from crc (start with 0). */
uint32_t io_crc32(uint32_t crc, const void *data, size_t len);

#endif
