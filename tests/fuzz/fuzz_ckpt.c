/* Checkpoints: the container (ckpt_read) and the trainer's reading of it
 * (train_ckpt_load: sections, stored configuration, sizes). The CRC-32 would
 * stop almost every mutation at the first check, so when the first input
 * byte is odd the target writes a correct CRC over the rest before reading;
 * an even first byte fuzzes the file exactly as given. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/crc32.h"
#include "train/ckpt.h"
#include "train/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int fix_crc = data[0] & 1;
    data++, size--;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    if (fix_crc && size >= 4) {
        uint32_t c = io_crc32(0, buf, size - 4);
        memcpy(buf + size - 4, &c, 4);
    }
    const char *path = fz_file(0, buf, size);
    char err[512];
    ckpt_file f;
    if (ckpt_read(path, &f, err, sizeof err) == 0) {
        size_t total = 0;
        for (int i = 0; i < f.n; i++) {
            const ckpt_section *s = ckpt_find(&f, f.sec[i].tag);
            if (!s || (const unsigned char *)s->data < f.buf ||
                (const unsigned char *)s->data + s->len > f.buf + f.len)
                fz_fail("a checkpoint section lies outside the file");
            total += 12 + (size_t)f.sec[i].len;
        }
        if (total + 20 != f.len)
            fz_fail("the sections do not add up to the file");
        ckpt_close(&f);
    }
    train_ckpt ck;
    if (train_ckpt_load(path, &ck, err, sizeof err) == 0) {
        if (ck.n_params != gpt_config_num_params(&ck.cfg.model))
            fz_fail("a loaded checkpoint's parameter count does not match its model");
        /* touch every byte the loader promises */
        volatile float sink = 0;
        for (size_t i = 0; i < ck.n_params; i++)
            sink += ck.params[i];
        (void)sink;
        train_ckpt_free(&ck);
    }
    free(buf);
    return 0;
}
