/* Optimizer state as a versioned, checksummed, little-endian blob; the byte
 * layout is in docs/state-format.md. Writing streams through a sink (memory,
 * file, or a counter); reading takes the whole blob in memory and validates
 * all of it before changing anything. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "optim/optim.h"

#define STATE_MAGIC "MUONSTAT"
#define STATE_VERSION 1u
#define HEADER_BYTES 32u
#define CRC_BYTES 4u

static int host_is_le(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* ------------------------------------------------------------- writing */

typedef struct {
    unsigned char *buf; /* memory sink, or NULL */
    FILE *f;            /* file sink, or NULL; neither: count bytes only */
    size_t len;
    uint32_t crc;
    int failed;
} sink;

static void put(sink *s, const void *p, size_t n)
{
    if (s->buf || s->f)
        s->crc = muon__crc32(s->crc, p, n);
    if (s->f) {
        if (!s->failed && fwrite(p, 1, n, s->f) != n)
            s->failed = 1;
    } else if (s->buf) {
        memcpy(s->buf + s->len, p, n);
    }
    s->len += n;
}

static void put_u32(sink *s, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put(s, b, 4);
}

static void put_u64(sink *s, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    put(s, b, 8);
}

static void put_f32s(sink *s, const float *x, size_t n)
{
    if (host_is_le() || !(s->buf || s->f)) {
        put(s, x, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(s, u);
    }
}

/* Everything but the trailing CRC; total is the whole blob's length. */
static void write_body(const muon_opt *opt, sink *s, uint64_t total)
{
    put(s, STATE_MAGIC, 8);
    put_u32(s, STATE_VERSION);
    put_u32(s, (uint32_t)opt->cfg.algo);
    put_u32(s, (uint32_t)opt->n_params);
    put_u32(s, 0); /* flags, reserved */
    put_u64(s, total);
    for (int i = 0; i < opt->n_params; i++) {
        const muon__param *p = &opt->params[i];
        size_t len = strlen(p->name);
        put_u32(s, (uint32_t)len);
        put(s, p->name, len);
        put_u32(s, (uint32_t)p->rule);
        put_u32(s, (uint32_t)p->role);
        put_u32(s, (uint32_t)p->ndim);
        for (int d = 0; d < p->ndim; d++)
            put_u64(s, (uint64_t)p->shape[d]);
        put_u64(s, (uint64_t)p->steps);
        int nb = muon__rule_table[p->rule].n_buffers;
        put_u32(s, (uint32_t)nb);
        for (int b = 0; b < nb; b++)
            put_f32s(s, p->buf[b], p->n);
    }
}

static muon_status check_saveable(const muon_opt *opt)
{
    if (!opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "save before muon_opt_finalize: no state yet");
    return MUON_OK;
}

muon_status muon_opt_serialized_size(const muon_opt *opt, size_t *bytes)
{
    if (!opt || !bytes)
        return MUON_ERR_NULL;
    muon_status st = check_saveable(opt);
    if (st != MUON_OK)
        return st;
    sink s = {0};
    write_body(opt, &s, 0);
    *bytes = s.len + CRC_BYTES;
    muon__opt_ok(opt);
    return MUON_OK;
}

/* The CRC goes out raw: it is not part of what it covers. */
static void put_crc(sink *s)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(s->crc >> (8 * i));
    if (s->f) {
        if (!s->failed && fwrite(b, 1, 4, s->f) != 4)
            s->failed = 1;
    } else if (s->buf) {
        memcpy(s->buf + s->len, b, 4);
    }
    s->len += 4;
}

muon_status muon_opt_save_buffer(const muon_opt *opt, void *buf, size_t cap, size_t *written)
{
    if (!opt || !buf)
        return MUON_ERR_NULL;
    size_t need;
    muon_status st = muon_opt_serialized_size(opt, &need);
    if (st != MUON_OK)
        return st;
    if (cap < need)
        return muon__opt_fail(opt, MUON_ERR_SIZE, "state needs %zu bytes, buffer holds %zu", need,
                              cap);
    sink s = {.buf = buf};
    write_body(opt, &s, need);
    put_crc(&s);
    if (written)
        *written = s.len;
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_save(const muon_opt *opt, const char *path)
{
    if (!opt || !path)
        return MUON_ERR_NULL;
    size_t need;
    muon_status st = muon_opt_serialized_size(opt, &need);
    if (st != MUON_OK)
        return st;
    size_t plen = strlen(path) + 32;
    char *tmp = malloc(plen);
    if (!tmp)
        return muon__opt_fail(opt, MUON_ERR_NOMEM, "out of memory saving '%s'", path);
    snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = muon__opt_fail(opt, MUON_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    sink s = {.f = f};
    write_body(opt, &s, need);
    put_crc(&s);
    int bad = s.failed || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int err = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        unlink(tmp);
        st = muon__opt_fail(opt, MUON_ERR_IO, "cannot write '%s': %s", path, strerror(err));
    } else {
        muon__opt_ok(opt);
    }
    free(tmp);
    return st;
}

/* ------------------------------------------------------------- reading */

typedef struct {
    const unsigned char *p;
    size_t len, pos;
    int short_read;
} reader;

static const unsigned char *take(reader *r, size_t n)
{
    if (r->short_read || n > r->len - r->pos) {
        r->short_read = 1;
        return NULL;
    }
    const unsigned char *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static uint32_t get_u32(reader *r)
{
    const unsigned char *b = take(r, 4);
    uint32_t v = 0;
    for (int i = 0; b && i < 4; i++)
        v |= (uint32_t)b[i] << (8 * i);
    return v;
}

static uint64_t get_u64(reader *r)
{
    const unsigned char *b = take(r, 8);
    uint64_t v = 0;
    for (int i = 0; b && i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static void copy_f32s(float *dst, const unsigned char *src, size_t n)
{
    if (host_is_le()) {
        memcpy(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
}

static void shape_str(char *out, size_t cap, int ndim, const uint64_t *shape)
{
    size_t len = 0;
    out[0] = '\0';
    for (int d = 0; d < ndim && len < cap; d++) {
        int w = snprintf(out + len, cap - len, d ? "x%llu" : "%llu", (unsigned long long)shape[d]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
}

/* One walk over the parameter records: validate (apply == 0) or copy
 * (apply == 1, only after a validating walk succeeded). */
static muon_status walk(muon_opt *opt, const unsigned char *buf, size_t len, uint32_t n_saved,
                        int apply)
{
    reader r = {buf, len - CRC_BYTES, HEADER_BYTES, 0};
    muon_status mismatch = MUON_OK;
    char extra_name[MUON__NAME_MAX + 1] = "";
    for (uint32_t k = 0; k < n_saved; k++) {
        uint32_t nl = get_u32(&r);
        if (r.short_read || nl == 0 || nl > MUON__NAME_MAX)
            return muon__opt_fail(opt, MUON_ERR_FORMAT, "state record %u: bad name length", k);
        const unsigned char *nm = take(&r, nl);
        if (!nm)
            return muon__opt_fail(opt, MUON_ERR_FORMAT, "state record %u: name cut short", k);
        char name[MUON__NAME_MAX + 1];
        memcpy(name, nm, nl);
        name[nl] = '\0';
        uint32_t rule = get_u32(&r), role = get_u32(&r), ndim = get_u32(&r);
        if (r.short_read || rule >= MUON__RULE_COUNT || role >= MUON_ROLE_COUNT || ndim < 1 ||
            ndim > MUON__MAX_DIMS || strlen(name) != nl)
            return muon__opt_fail(opt, MUON_ERR_FORMAT, "state record %u: malformed header", k);
        uint64_t shape[MUON__MAX_DIMS];
        size_t n = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            shape[d] = get_u64(&r);
            if (shape[d] == 0 || shape[d] > (uint64_t)LONG_MAX ||
                !muon__mul_size((long)n, (long)shape[d], &n) || n > len)
                return muon__opt_fail(opt, MUON_ERR_FORMAT, "parameter '%s': bad saved shape",
                                      name);
        }
        uint64_t steps = get_u64(&r);
        uint32_t nb = get_u32(&r);
        if (r.short_read || steps > (uint64_t)LONG_MAX ||
            nb != (uint32_t)muon__rule_table[rule].n_buffers)
            return muon__opt_fail(opt, MUON_ERR_FORMAT, "parameter '%s': malformed record", name);
        const unsigned char *data = take(&r, (size_t)nb * n * sizeof(float));
        if (!data)
            return muon__opt_fail(opt, MUON_ERR_FORMAT, "parameter '%s': buffers cut short", name);

        if (k >= (uint32_t)opt->n_params) {
            if (k == (uint32_t)opt->n_params)
                memcpy(extra_name, name, nl + 1);
            continue;
        }
        muon__param *p = &opt->params[k];
        if (apply) {
            for (uint32_t b = 0; b < nb; b++)
                copy_f32s(p->buf[b], data + (size_t)b * n * sizeof(float), n);
            p->steps = (long)steps;
            p->skipped = 0;
            continue;
        }
        if (mismatch != MUON_OK)
            continue;
        uint64_t reg[MUON__MAX_DIMS];
        int same_shape = (int)ndim == p->ndim;
        for (int d = 0; d < p->ndim; d++) {
            reg[d] = (uint64_t)p->shape[d];
            same_shape = same_shape && (d >= (int)ndim || reg[d] == shape[d]);
        }
        if (strcmp(name, p->name) != 0) {
            mismatch = muon__opt_fail(opt, MUON_ERR_MISMATCH,
                                      "parameter %u: saved '%s', registered '%s'", k, name,
                                      p->name);
        } else if (!same_shape) {
            char a[160], b[160];
            shape_str(a, sizeof a, (int)ndim, shape);
            shape_str(b, sizeof b, p->ndim, reg);
            mismatch = muon__opt_fail(opt, MUON_ERR_MISMATCH,
                                      "parameter '%s': saved shape %s, registered %s", name, a, b);
        } else if (rule != (uint32_t)p->rule || role != (uint32_t)p->role) {
            mismatch = muon__opt_fail(
                opt, MUON_ERR_MISMATCH,
                "parameter '%s': saved as %s with %s, registered as %s with %s", name,
                muon_role_name((muon_role)role), muon__rule_table[rule].name,
                muon_role_name(p->role), muon__rule_table[p->rule].name);
        }
    }
    if (r.pos != r.len)
        return muon__opt_fail(opt, MUON_ERR_FORMAT, "state has %zu unexpected trailing bytes",
                              r.len - r.pos);
    if (apply || mismatch != MUON_OK)
        return mismatch;
    if (n_saved < (uint32_t)opt->n_params)
        return muon__opt_fail(opt, MUON_ERR_MISMATCH,
                              "parameter '%s' is registered but not in the saved state "
                              "(saved %u parameters, registered %d)",
                              opt->params[n_saved].name, n_saved, opt->n_params);
    if (n_saved > (uint32_t)opt->n_params)
        return muon__opt_fail(opt, MUON_ERR_MISMATCH,
                              "saved parameter '%s' is not registered "
                              "(saved %u parameters, registered %d)",
                              extra_name, n_saved, opt->n_params);
    return MUON_OK;
}

static const char *algo_name(uint32_t a)
{
    return a < MUON_ALGO_COUNT ? muon_algo_name((muon_algo)a) : "unknown";
}

muon_status muon_opt_load_buffer(muon_opt *opt, const void *buf, size_t len)
{
    if (!opt || !buf)
        return MUON_ERR_NULL;
    if (!opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "load before muon_opt_finalize");
    const unsigned char *b = buf;
    if (len < 8 || memcmp(b, STATE_MAGIC, 8) != 0)
        return muon__opt_fail(opt, MUON_ERR_FORMAT, "not a muon optimizer state (bad magic)");
    if (len < HEADER_BYTES + CRC_BYTES)
        return muon__opt_fail(opt, MUON_ERR_FORMAT, "state truncated: %zu bytes", len);
    reader r = {b, len, 8, 0};
    uint32_t version = get_u32(&r), algo = get_u32(&r), n_saved = get_u32(&r);
    (void)get_u32(&r); /* flags */
    uint64_t total = get_u64(&r);
    if (version == 0)
        return muon__opt_fail(opt, MUON_ERR_FORMAT, "state format version 0 is invalid");
    if (version > STATE_VERSION)
        return muon__opt_fail(opt, MUON_ERR_VERSION,
                              "state format version %u is newer than this library's %u", version,
                              STATE_VERSION);
    if (total != (uint64_t)len)
        return muon__opt_fail(opt, MUON_ERR_FORMAT,
                              "state truncated or padded: header says %llu bytes, got %zu",
                              (unsigned long long)total, len);
    uint32_t stored = (uint32_t)b[len - 4] | (uint32_t)b[len - 3] << 8 |
                      (uint32_t)b[len - 2] << 16 | (uint32_t)b[len - 1] << 24;
    if (muon__crc32(0, b, len - CRC_BYTES) != stored)
        return muon__opt_fail(opt, MUON_ERR_CHECKSUM, "state checksum mismatch: file is corrupted");
    if (algo >= MUON_ALGO_COUNT)
        return muon__opt_fail(opt, MUON_ERR_FORMAT, "state names unknown algorithm %u", algo);
    muon_status st = walk(opt, b, len, n_saved, 0);
    if (st != MUON_OK)
        return st;
    if (algo != (uint32_t)opt->cfg.algo)
        return muon__opt_fail(opt, MUON_ERR_MISMATCH,
                              "state saved by algorithm %s, this optimizer uses %s",
                              algo_name(algo), algo_name((uint32_t)opt->cfg.algo));
    walk(opt, b, len, n_saved, 1);
    muon__opt_ok(opt);
    return MUON_OK;
}

muon_status muon_opt_load(muon_opt *opt, const char *path)
{
    if (!opt || !path)
        return MUON_ERR_NULL;
    if (!opt->finalized)
        return muon__opt_fail(opt, MUON_ERR_STATE, "load before muon_opt_finalize");
    FILE *f = fopen(path, "rb");
    if (!f)
        return muon__opt_fail(opt, MUON_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    muon_status st = MUON_OK;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? 2 * cap : (size_t)1 << 16;
            unsigned char *nb = realloc(buf, nc);
            if (!nb) {
                st = muon__opt_fail(opt, MUON_ERR_NOMEM, "out of memory reading '%s'", path);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                st = muon__opt_fail(opt, MUON_ERR_IO, "cannot read '%s'", path);
            break;
        }
    }
    fclose(f);
    if (st == MUON_OK) {
        st = muon_opt_load_buffer(opt, buf, len);
        if (st != MUON_OK) {
            /* prefix the path, keeping the message that names the parameter */
            char msg[sizeof opt->err];
            memcpy(msg, opt->err, sizeof msg);
            muon__opt_fail(opt, st, "%.200s: %.300s", path, msg);
        }
    }
    free(buf);
    return st;
}
