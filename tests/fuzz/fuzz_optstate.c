/* Optimizer state (muon_opt_load_buffer) against an optimizer with three
 * registered parameters (fuzz.h). Input byte 0 picks the optimizer (bit 1:
 * AdamW, else the hybrid) and, with bit 0 set, the target writes the
 * correct total length and CRC-32 into the rest before loading, so the
 * records behind those checks get fuzzed too. A blob that loads must save
 * again and load back. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/crc32.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static muon_opt *opts[2];
    if (size < 1)
        return 0;
    int fix = data[0] & 1, adamw = (data[0] >> 1) & 1;
    data++, size--;
    if (!opts[adamw])
        opts[adamw] = fz_make_opt(adamw);
    muon_opt *opt = opts[adamw];
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (fix && size >= 36) {
        uint64_t total = size;
        for (int i = 0; i < 8; i++)
            buf[24 + i] = (uint8_t)(total >> (8 * i));
        uint32_t c = io_crc32(0, buf, size - 4);
        for (int i = 0; i < 4; i++)
            buf[size - 4 + (size_t)i] = (uint8_t)(c >> (8 * i));
    }
    if (muon_opt_load_buffer(opt, buf, size) == MUON_OK) {
        size_t need, wrote;
        if (muon_opt_serialized_size(opt, &need) != MUON_OK || need != size)
            fz_fail("a loaded state does not save to the same size");
        uint8_t *again = malloc(need);
        if (!again || muon_opt_save_buffer(opt, again, need, &wrote) != MUON_OK ||
            muon_opt_load_buffer(opt, again, wrote) != MUON_OK)
            fz_fail("a loaded state does not save and load back");
        free(again);
    } else if (!muon_opt_error(opt)[0]) {
        fz_fail("a refused state leaves no message");
    }
    free(buf);
    return 0;
}
