/* llm.c token shards (data_shard_read): a shard that reads holds exactly
 * the tokens its size says, each a uint16. */
#include <stdlib.h>

#include "data/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[DATA_ERR_LEN];
    int32_t *ids = NULL;
    size_t n = 0;
    if (data_shard_read(fz_file(0, data, size), &ids, &n, err) == 0) {
        if (n == 0 || size != DATA_SHARD_HEADER_INTS * 4 + 2 * n)
            fz_fail("a shard's token count does not match its size");
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] > 65535 ||
                ids[i] != (data[1024 + 2 * i] | data[1024 + 2 * i + 1] << 8))
                fz_fail("a shard token is not the uint16 stored");
        free(ids);
    }
    return 0;
}
