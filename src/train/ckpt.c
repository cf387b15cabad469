/* Checkpoint container. Layout (little-endian):
 *   "MUONCKPT" | u32 version | u32 n_sections |
 *   n x { u32 tag | u64 length | bytes } | u32 crc32 of everything before
 * Reading checks every length against the file size before trusting it. */
#include "train/ckpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "io/crc32.h"

static int put(FILE *f, const void *p, size_t n, uLong *crc)
{
    *crc = crc32(*crc, p, (uInt)n);
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int put_big(FILE *f, const unsigned char *p, size_t n, uLong *crc)
{
    while (n > 0) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        if (put(f, p, k, crc))
            return -1;
        p += k;
        n -= k;
    }
    return 0;
}

int ckpt_write(const char *path, const ckpt_section *s, int n, char *err, size_t errcap)
{
    if (n < 0 || n > CKPT_MAX_SECTIONS) {
        snprintf(err, errcap, "checkpoint: %d sections (at most %d)", n, CKPT_MAX_SECTIONS);
        return -1;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errcap, "checkpoint path too long: %s", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errcap, "cannot write checkpoint %s: %s", tmp, strerror(errno));
        return -1;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    uint32_t version = CKPT_VERSION, count = (uint32_t)n;
    int bad = put(f, CKPT_MAGIC, 8, &crc) || put(f, &version, 4, &crc) || put(f, &count, 4, &crc);
    for (int i = 0; i < n && !bad; i++)
        bad = put(f, &s[i].tag, 4, &crc) || put(f, &s[i].len, 8, &crc) ||
              put_big(f, s[i].data, (size_t)s[i].len, &crc);
    uint32_t c32 = (uint32_t)crc;
    bad = bad || fwrite(&c32, 4, 1, f) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (fclose(f) != 0)
        bad = 1;
    if (bad || rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot write checkpoint %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int ckpt_read(const char *path, ckpt_file *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errcap, "cannot open checkpoint %s: %s", path, strerror(errno));
        return -1;
    }
    long size = (fseek(f, 0, SEEK_END) == 0) ? ftell(f) : -1;
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errcap, "cannot read checkpoint %s (not a regular file?)", path);
        fclose(f);
        return -1;
    }
    unsigned char *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf) {
        snprintf(err, errcap, "out of memory reading checkpoint %s (%ld bytes)", path, size);
        fclose(f);
        return -1;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        snprintf(err, errcap, "cannot read checkpoint %s", path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    size_t len = (size_t)size;
    const char *why = NULL;
    uint32_t version = 0, count = 0, crc_stored = 0;
    if (len < 20 || memcmp(buf, CKPT_MAGIC, 8) != 0)
        why = "not a muon checkpoint (bad magic or too short)";
    if (!why) {
        memcpy(&version, buf + 8, 4);
        memcpy(&count, buf + 12, 4);
        memcpy(&crc_stored, buf + len - 4, 4);
        if (version != CKPT_VERSION)
            why = "unsupported checkpoint version";
        else if (io_crc32(0, buf, len - 4) != crc_stored)
            why = "checksum mismatch: the file is truncated or corrupted";
        else if (count > CKPT_MAX_SECTIONS)
            why = "too many sections";
    }
    size_t pos = 16;
    for (uint32_t i = 0; !why && i < count; i++) {
        uint64_t slen;
        if (len - 4 - pos < 12) {
            why = "truncated section header";
            break;
        }
        memcpy(&out->sec[i].tag, buf + pos, 4);
        memcpy(&slen, buf + pos + 4, 8);
        pos += 12;
        if (slen > len - 4 - pos) {
            why = "section runs past the end of the file";
            break;
        }
        out->sec[i].len = slen;
        out->sec[i].data = buf + pos;
        pos += (size_t)slen;
    }
    if (!why && pos != len - 4)
        why = "trailing bytes after the last section";
    if (why) {
        if (version > CKPT_VERSION && version != 0 && !memcmp(buf, CKPT_MAGIC, 8))
            snprintf(err, errcap, "checkpoint %s: version %u is newer than this program (%u)",
                     path, version, CKPT_VERSION);
        else
            snprintf(err, errcap, "checkpoint %s: %s", path, why);
        free(buf);
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->buf = buf;
    out->len = len;
    out->n = (int)count;
    return 0;
}

const ckpt_section *ckpt_find(const ckpt_file *f, uint32_t tag)
{
    for (int i = 0; i < f->n; i++)
        if (f->sec[i].tag == tag)
            return &f->sec[i];
    return NULL;
}

void ckpt_close(ckpt_file *f)
{
    free(f->buf);
    memset(f, 0, sizeof *f);
}
