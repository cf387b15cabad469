/* llm.c token shards: 256 x int32 header (magic 20240520, version 1, token
 * count), then uint16 tokens, all little-endian. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "data/dutil.h"
#include "muon.h"

#define HEADER_BYTES (DATA_SHARD_HEADER_INTS * 4)

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static int32_t get_i32(const unsigned char *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return (int32_t)v;
}

int data_shard_write(const char *path, const int32_t *ids, size_t n, char *err)
{
    if (!path || (!ids && n)) {
        data_errf(err, "data_shard_write: NULL argument");
        return MUON_ERR_NULL;
    }
    if (n > INT32_MAX) {
        data_errf(err, "shard %s: %zu tokens is more than the format's limit of %d", path, n,
                  INT32_MAX);
        return MUON_ERR_ARG;
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] > 65535) {
            data_errf(err, "shard %s: token id %ld at position %zu does not fit in uint16",
                      path, (long)ids[i], i);
            return MUON_ERR_ARG;
        }
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        data_errf(err, "shard path too long: %.200s", path);
        return MUON_ERR_ARG;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        data_errf(err, "cannot write shard %s: %s", tmp, strerror(errno));
        return MUON_ERR_IO;
    }
    unsigned char header[HEADER_BYTES] = {0};
    put_u32(header, DATA_SHARD_MAGIC);
    put_u32(header + 4, DATA_SHARD_VERSION);
    put_u32(header + 8, (uint32_t)n);
    int ok = fwrite(header, 1, sizeof header, f) == sizeof header;
    unsigned char chunk[8192];
    for (size_t i = 0; ok && i < n;) {
        size_t k = 0;
        for (; k < sizeof chunk / 2 && i < n; k++, i++) {
            chunk[2 * k] = (unsigned char)ids[i];
            chunk[2 * k + 1] = (unsigned char)(ids[i] >> 8);
        }
        ok = fwrite(chunk, 2, k, f) == k;
    }
    int saved = errno;
    if (fclose(f) != 0 && ok)
        ok = 0, saved = errno;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            saved = errno;
        data_errf(err, "cannot write shard %s: %s", path, strerror(saved));
        remove(tmp);
        return MUON_ERR_IO;
    }
    return MUON_OK;
}

int data_shard_read(const char *path, int32_t **ids, size_t *n, char *err)
{
    if (!path || !ids || !n) {
        data_errf(err, "data_shard_read: NULL argument");
        return MUON_ERR_NULL;
    }
    char *raw;
    size_t len;
    int rc = data_read_whole(path, "shard", &raw, &len, err);
    if (rc)
        return rc;
    const unsigned char *p = (const unsigned char *)raw;
    int32_t magic = len >= 4 ? get_i32(p) : 0;
    int32_t version = len >= HEADER_BYTES ? get_i32(p + 4) : 0;
    int32_t count = len >= HEADER_BYTES ? get_i32(p + 8) : 0;
    rc = MUON_ERR_FORMAT;
    if (len >= 4 && magic != DATA_SHARD_MAGIC) {
        data_errf(err, "shard %s has magic %ld, not %d: not an llm.c token shard", path,
                  (long)magic, DATA_SHARD_MAGIC);
    } else if (len < HEADER_BYTES) {
        data_errf(err, "shard %s is truncated: %zu bytes, less than the %d-byte header", path,
                  len, HEADER_BYTES);
    } else if (version != DATA_SHARD_VERSION) {
        data_errf(err, "shard %s has version %ld; only version %d (uint16 tokens) is supported",
                  path, (long)version, DATA_SHARD_VERSION);
        rc = MUON_ERR_VERSION;
    } else if (count <= 0) {
        data_errf(err, "shard %s has no tokens (header token count %ld)", path, (long)count);
    } else if (len - HEADER_BYTES != 2 * (size_t)count) {
        data_errf(err, "shard %s: header says %ld tokens (%zu bytes) but the file holds %zu "
                  "bytes of tokens (truncated or corrupted)", path, (long)count,
                  2 * (size_t)count, len - HEADER_BYTES);
    } else {
        rc = MUON_OK;
    }
    if (rc) {
        free(raw);
        return rc;
    }
    int32_t *out = malloc((size_t)count * sizeof *out);
    if (!out) {
        free(raw);
        data_errf(err, "out of memory reading shard %s (%ld tokens)", path, (long)count);
        return MUON_ERR_NOMEM;
    }
    const unsigned char *t = p + HEADER_BYTES;
    for (int32_t i = 0; i < count; i++)
        out[i] = (int32_t)((uint32_t)t[2 * i] | (uint32_t)t[2 * i + 1] << 8);
    free(raw);
    *ids = out;
    *n = (size_t)count;
    return MUON_OK;
}
