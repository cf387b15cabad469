/* .npy reading and writing for 2-D float matrices (see npy.h for the rules).
 * The header is a Python dict literal; it is parsed here by a small strict
 * recursive-descent parser rather than pattern matching, so a malformed
 * header is an error with a reason instead of a silent misread. */
#ifndef _POSIX_C_SOURCE /* fileno, clock_gettime: POSIX, whatever the build defines */
#define _POSIX_C_SOURCE 200809L
#endif
#include "io/npy.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
/* Headers beyond this are not something numpy writes for a 2-D array;
 * refusing them bounds the allocation a hostile file can cause. */
#define NPY_MAX_HEADER (1u << 20)

typedef struct {
    int itemsize; /* 4 or 8 */
    int fortran;
    long rows, cols;
    size_t data_bytes;
} npy_info;

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ header parse */

typedef struct {
    const char *p, *end;
    char *err;
    size_t cap;
} hparser;

static void skip_ws(hparser *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int expect_char(hparser *h, char c, const char *what)
{
    skip_ws(h);
    if (h->p >= h->end || *h->p != c) {
        set_err(h->err, h->cap, "bad .npy header: expected '%c' %s", c, what);
        return 0;
    }
    h->p++;
    return 1;
}

/* A quoted Python string without escapes (numpy never writes any). */
static int parse_string(hparser *h, char *out, size_t cap, const char *what)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) {
        set_err(h->err, h->cap, "bad .npy header: %s is not a quoted string", what);
        return 0;
    }
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || (unsigned char)*h->p < 0x20 || n + 1 >= cap) {
            set_err(h->err, h->cap, "bad .npy header: unsupported or overlong %s", what);
            return 0;
        }
        out[n++] = *h->p++;
    }
    if (h->p >= h->end) {
        set_err(h->err, h->cap, "bad .npy header: unterminated string in %s", what);
        return 0;
    }
    h->p++;
    out[n] = 0;
    return 1;
}

static int parse_bool(hparser *h, int *out)
{
    skip_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && !memcmp(h->p, "True", 4)) {
        h->p += 4;
        *out = 1;
    } else if (left >= 5 && !memcmp(h->p, "False", 5)) {
        h->p += 5;
        *out = 0;
    } else {
        set_err(h->err, h->cap, "bad .npy header: fortran_order must be True or False");
        return 0;
    }
    /* "Truex" is an identifier, not a bool */
    if (h->p < h->end && (((*h->p | 32) >= 'a' && (*h->p | 32) <= 'z') || *h->p == '_' ||
                         (*h->p >= '0' && *h->p <= '9'))) {
        set_err(h->err, h->cap, "bad .npy header: fortran_order must be True or False");
        return 0;
    }
    return 1;
}

/* A Python tuple of non-negative integers: (), (n,), (a, b), (a, b,) ... */
static int parse_shape(hparser *h, long *dims, int maxdims, int *ndim)
{
    if (!expect_char(h, '(', "to open the shape tuple"))
        return 0;
    int n = 0, trailing_comma = 0;
    for (;;) {
        skip_ws(h);
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            break;
        }
        if (h->p >= h->end || *h->p < '0' || *h->p > '9') {
            const char *s = h->p;
            while (h->p < h->end && *h->p != ',' && *h->p != ')' && h->p - s < 20)
                h->p++;
            set_err(h->err, h->cap,
                    "bad .npy header: shape entry '%.*s' is not a non-negative integer",
                    (int)(h->p - s), s);
            return 0;
        }
        long v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            int d = *h->p++ - '0';
            if (v > (LONG_MAX - d) / 10) {
                set_err(h->err, h->cap, "bad .npy header: shape entry too large");
                return 0;
            }
            v = v * 10 + d;
        }
        if (n < maxdims)
            dims[n] = v;
        n++;
        trailing_comma = 0;
        skip_ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            trailing_comma = 1;
        } else if (h->p < h->end && *h->p == ')') {
            h->p++;
            break;
        } else {
            set_err(h->err, h->cap, "bad .npy header: expected ',' or ')' in shape");
            return 0;
        }
    }
    if (n == 1 && !trailing_comma) {
        /* (5) is the integer 5 in Python, not a tuple */
        set_err(h->err, h->cap, "bad .npy header: shape is not a tuple");
        return 0;
    }
    *ndim = n;
    return 1;
}

static int parse_descr(hparser *h, const char *descr, int *itemsize)
{
    if (strlen(descr) == 3 && descr[1] == 'f' && (descr[2] == '4' || descr[2] == '8')) {
        if (descr[0] == '<' || descr[0] == '=') {
            *itemsize = descr[2] - '0';
            return 1;
        }
        if (descr[0] == '>') {
            set_err(h->err, h->cap,
                    "unsupported dtype '%s': big-endian floats (save with '<f%c')", descr,
                    descr[2]);
            return 0;
        }
        if (descr[0] == '|') {
            set_err(h->err, h->cap,
                    "unsupported dtype '%s': byte order '|' is only meaningful for 1-byte types",
                    descr);
            return 0;
        }
    }
    set_err(h->err, h->cap, "unsupported dtype '%s': need float32 '<f4' or float64 '<f8'", descr);
    return 0;
}

static muon_status parse_header(const char *text, size_t len, npy_info *info, char *err,
                                size_t cap)
{
    hparser h = {text, text + len, err, cap};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    int itemsize = 0, fortran = 0, ndim = 0;
    long dims[2] = {0, 0};

    if (!expect_char(&h, '{', "at the start of the header dict"))
        return MUON_ERR_FORMAT;
    for (;;) {
        skip_ws(&h);
        if (h.p < h.end && *h.p == '}') {
            h.p++;
            break;
        }
        char key[32];
        if (!parse_string(&h, key, sizeof key, "a header key"))
            return MUON_ERR_FORMAT;
        if (!expect_char(&h, ':', "after a header key"))
            return MUON_ERR_FORMAT;
        if (!strcmp(key, "descr")) {
            char descr[64];
            if (have_descr++ || !parse_string(&h, descr, sizeof descr, "descr"))
                goto dup_or_fail;
            if (!parse_descr(&h, descr, &itemsize))
                return MUON_ERR_FORMAT;
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++ || !parse_bool(&h, &fortran))
                goto dup_or_fail;
        } else if (!strcmp(key, "shape")) {
            if (have_shape++ || !parse_shape(&h, dims, 2, &ndim))
                goto dup_or_fail;
        } else {
            set_err(err, cap, "bad .npy header: unexpected key '%s'", key);
            return MUON_ERR_FORMAT;
        }
        skip_ws(&h);
        if (h.p < h.end && *h.p == ',') {
            h.p++;
            continue;
        }
        if (!expect_char(&h, '}', "or ',' after a header value"))
            return MUON_ERR_FORMAT;
        break;
    }
    skip_ws(&h);
    if (h.p != h.end) {
        set_err(err, cap, "bad .npy header: unexpected text after the header dict");
        return MUON_ERR_FORMAT;
    }
    if (!have_descr || !have_fortran || !have_shape) {
        set_err(err, cap, "bad .npy header: missing key '%s'",
                !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
        return MUON_ERR_FORMAT;
    }
    if (ndim != 2) {
        set_err(err, cap, "expected a 2-D array, the file holds a %d-D one", ndim);
        return MUON_ERR_FORMAT;
    }
    if (dims[0] == 0 || dims[1] == 0) {
        set_err(err, cap, "the array is empty (shape (%ld, %ld))", dims[0], dims[1]);
        return MUON_ERR_FORMAT;
    }
    size_t count;
    if ((size_t)dims[1] > SIZE_MAX / (size_t)dims[0] ||
        (count = (size_t)dims[0] * (size_t)dims[1]) > SIZE_MAX / (size_t)itemsize ||
        count > (size_t)LONG_MAX) {
        set_err(err, cap, "shape (%ld, %ld) is too large", dims[0], dims[1]);
        return MUON_ERR_FORMAT;
    }
    info->itemsize = itemsize;
    info->fortran = fortran;
    info->rows = dims[0];
    info->cols = dims[1];
    info->data_bytes = count * (size_t)itemsize;
    return MUON_OK;

dup_or_fail:
    /* parse_* already wrote a message unless this was a repeated key */
    if (have_descr > 1 || have_fortran > 1 || have_shape > 1)
        set_err(err, cap, "bad .npy header: a key appears twice");
    return MUON_ERR_FORMAT;
}

/* Magic, version and header length from the first bytes. *prefix_len gets
 * the offset of the header text (10 or 12). */
static muon_status parse_preamble(const unsigned char *p, size_t avail, size_t *prefix_len,
                                  size_t *header_len, char *err, size_t cap)
{
    if (avail < 8 || memcmp(p, NPY_MAGIC, NPY_MAGIC_LEN) != 0) {
        set_err(err, cap, avail < 8 ? "not a .npy file (too short)"
                                    : "not a .npy file (bad magic)");
        return MUON_ERR_FORMAT;
    }
    int major = p[6], minor = p[7];
    if (major < 1 || major > 3 || minor != 0) {
        set_err(err, cap, "unsupported .npy format version %d.%d (need 1.0, 2.0 or 3.0)", major,
                minor);
        return MUON_ERR_VERSION;
    }
    size_t lb = major == 1 ? 2 : 4;
    if (avail < 8 + lb) {
        set_err(err, cap, "truncated .npy header");
        return MUON_ERR_FORMAT;
    }
    size_t hl = (size_t)p[8] | (size_t)p[9] << 8;
    if (lb == 4)
        hl |= (size_t)p[10] << 16 | (size_t)p[11] << 24;
    if (hl > NPY_MAX_HEADER) {
        set_err(err, cap, "bad .npy header: length %zu is implausibly large", hl);
        return MUON_ERR_FORMAT;
    }
    *prefix_len = 8 + lb;
    *header_len = hl;
    return MUON_OK;
}

/* ------------------------------------------------------------ data convert */

/* Little-endian bytes to float, independent of the host's byte order. */
static void convert(const unsigned char *src, size_t count, int itemsize, float *dst)
{
    if (itemsize == 4) {
        for (size_t i = 0; i < count; i++, src += 4) {
            uint32_t u = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
                         (uint32_t)src[3] << 24;
            float f;
            memcpy(&f, &u, 4);
            dst[i] = f;
        }
    } else {
        for (size_t i = 0; i < count; i++, src += 8) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--)
                u = u << 8 | src[b];
            double d;
            memcpy(&d, &u, 8);
            dst[i] = (float)d;
        }
    }
}

/* In Fortran order x holds the cols x rows row-major transpose. */
static muon_status to_row_major(float **x, long rows, long cols, char *err, size_t cap)
{
    float *t = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!t) {
        set_err(err, cap, "out of memory");
        return MUON_ERR_NOMEM;
    }
    for (long j = 0; j < cols; j++)
        for (long i = 0; i < rows; i++)
            t[i * cols + j] = (*x)[j * rows + i];
    free(*x);
    *x = t;
    return MUON_OK;
}

static muon_status alloc_floats(const npy_info *info, float **out, char *err, size_t cap)
{
    size_t count = info->data_bytes / (size_t)info->itemsize;
    *out = malloc(sizeof(float) * count);
    if (!*out) {
        set_err(err, cap, "out of memory for a %ld x %ld matrix", info->rows, info->cols);
        return MUON_ERR_NOMEM;
    }
    return MUON_OK;
}

static const char *size_problem(size_t have, size_t want, char *buf, size_t cap)
{
    if (have < want)
        snprintf(buf, cap, "truncated data: %zu bytes, the header's shape needs %zu", have, want);
    else
        snprintf(buf, cap, "%zu unexpected bytes after the data", have - want);
    return buf;
}

muon_status npy_parse_f32(const void *buf, size_t len, float **data, long *rows, long *cols,
                          char *err, size_t errcap)
{
    if (!buf || !data || !rows || !cols) {
        set_err(err, errcap, "NULL argument");
        return MUON_ERR_NULL;
    }
    const unsigned char *p = buf;
    size_t pre, hl;
    muon_status s = parse_preamble(p, len, &pre, &hl, err, errcap);
    if (s != MUON_OK)
        return s;
    if (len - pre < hl) {
        set_err(err, errcap, "truncated .npy header");
        return MUON_ERR_FORMAT;
    }
    npy_info info;
    if ((s = parse_header((const char *)p + pre, hl, &info, err, errcap)) != MUON_OK)
        return s;
    size_t have = len - pre - hl;
    if (have != info.data_bytes) {
        char msg[128];
        set_err(err, errcap, "%s", size_problem(have, info.data_bytes, msg, sizeof msg));
        return MUON_ERR_FORMAT;
    }
    float *x;
    if ((s = alloc_floats(&info, &x, err, errcap)) != MUON_OK)
        return s;
    convert(p + pre + hl, info.data_bytes / (size_t)info.itemsize, info.itemsize, x);
    if (info.fortran && (s = to_row_major(&x, info.rows, info.cols, err, errcap)) != MUON_OK) {
        free(x);
        return s;
    }
    *data = x;
    *rows = info.rows;
    *cols = info.cols;
    return MUON_OK;
}

/* Reads the data section in chunks, converting as it goes, so a float64
 * file never needs a second full-size buffer. */
static muon_status read_data(FILE *f, const npy_info *info, float *x, char *err, size_t cap)
{
    enum { CHUNK = 1 << 16 };
    unsigned char buf[CHUNK];
    size_t left = info->data_bytes, done = 0;
    while (left > 0) {
        size_t want = left < CHUNK ? left : CHUNK;
        size_t got = fread(buf, 1, want, f);
        if (got != want) {
            if (ferror(f))
                set_err(err, cap, "read error: %s", strerror(errno));
            else {
                char msg[128];
                set_err(err, cap, "%s",
                        size_problem(done + got, info->data_bytes, msg, sizeof msg));
            }
            return ferror(f) ? MUON_ERR_IO : MUON_ERR_FORMAT;
        }
        convert(buf, got / (size_t)info->itemsize, info->itemsize,
                x + done / (size_t)info->itemsize);
        done += got;
        left -= got;
    }
    if (fgetc(f) != EOF) {
        set_err(err, cap, "unexpected bytes after the data");
        return MUON_ERR_FORMAT;
    }
    return MUON_OK;
}

static muon_status read_open(FILE *f, float **data, long *rows, long *cols, char *err,
                             size_t errcap)
{
    unsigned char pre_buf[12];
    size_t got = fread(pre_buf, 1, 8, f);
    size_t pre = 0, hl = 0;
    muon_status s;
    if (got == 8 && pre_buf[6] >= 2 && pre_buf[6] <= 3)
        got += fread(pre_buf + 8, 1, 4, f);
    else if (got == 8)
        got += fread(pre_buf + 8, 1, 2, f);
    if ((s = parse_preamble(pre_buf, got, &pre, &hl, err, errcap)) != MUON_OK)
        return s;
    char *text = malloc(hl + 1);
    if (!text) {
        set_err(err, errcap, "out of memory");
        return MUON_ERR_NOMEM;
    }
    if (fread(text, 1, hl, f) != hl) {
        free(text);
        set_err(err, errcap, "truncated .npy header");
        return MUON_ERR_FORMAT;
    }
    npy_info info;
    s = parse_header(text, hl, &info, err, errcap);
    free(text);
    if (s != MUON_OK)
        return s;
    /* For a regular file, check the size before allocating so a header that
     * claims a huge shape fails fast instead of attempting the allocation. */
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        size_t have = (size_t)st.st_size - pre - hl;
        if ((size_t)st.st_size < pre + hl || have != info.data_bytes) {
            char msg[128];
            set_err(err, errcap, "%s", size_problem(have, info.data_bytes, msg, sizeof msg));
            return MUON_ERR_FORMAT;
        }
    }
    float *x;
    if ((s = alloc_floats(&info, &x, err, errcap)) != MUON_OK)
        return s;
    if ((s = read_data(f, &info, x, err, errcap)) != MUON_OK ||
        (info.fortran && (s = to_row_major(&x, info.rows, info.cols, err, errcap)) != MUON_OK)) {
        free(x);
        return s;
    }
    *data = x;
    *rows = info.rows;
    *cols = info.cols;
    return MUON_OK;
}

muon_status npy_read_f32(const char *path, float **data, long *rows, long *cols, char *err,
                         size_t errcap)
{
    if (!path || !data || !rows || !cols) {
        set_err(err, errcap, "NULL argument");
        return MUON_ERR_NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errcap, "cannot open: %s", strerror(errno));
        return MUON_ERR_IO;
    }
    muon_status s = read_open(f, data, rows, cols, err, errcap);
    fclose(f);
    return s;
}

/* ------------------------------------------------------------------- write */

static int write_floats_le(FILE *f, const float *x, size_t count)
{
    const uint32_t one = 1;
    unsigned char probe;
    memcpy(&probe, &one, 1);
    if (probe == 1) /* little-endian host: the bytes are already right */
        return fwrite(x, sizeof(float), count, f) == count;
    unsigned char buf[4096];
    for (size_t i = 0; i < count;) {
        size_t n = 0;
        for (; i < count && n + 4 <= sizeof buf; i++, n += 4) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            for (int b = 0; b < 4; b++)
                buf[n + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        if (fwrite(buf, 1, n, f) != n)
            return 0;
    }
    return 1;
}

muon_status npy_write_f32(const char *path, const float *data, long rows, long cols, char *err,
                          size_t errcap)
{
    if (!path || !data) {
        set_err(err, errcap, "NULL argument");
        return MUON_ERR_NULL;
    }
    if (rows <= 0 || cols <= 0 || (size_t)cols > SIZE_MAX / sizeof(float) / (size_t)rows) {
        set_err(err, errcap, "invalid shape %ld x %ld", rows, cols);
        return MUON_ERR_SIZE;
    }
    /* Header padded with spaces and a closing newline so data starts at a
     * multiple of 64 bytes, as numpy does. */
    char header[256];
    int hl = snprintf(header, sizeof header,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, %ld), }", rows,
                      cols);
    size_t total = 10 + (size_t)hl + 1;
    size_t padded = (total + 63) / 64 * 64;
    memset(header + hl, ' ', padded - total);
    header[padded - 10 - 1] = '\n';
    size_t header_len = padded - 10;
    unsigned char pre[10];
    memcpy(pre, NPY_MAGIC, NPY_MAGIC_LEN);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(header_len & 0xff);
    pre[9] = (unsigned char)(header_len >> 8);

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        set_err(err, errcap, "out of memory");
        return MUON_ERR_NOMEM;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        set_err(err, errcap, "cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return MUON_ERR_IO;
    }
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(header, 1, header_len, f) == header_len &&
             write_floats_le(f, data, (size_t)rows * (size_t)cols) && fflush(f) == 0;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (ok && rename(tmp, path) != 0) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        remove(tmp);
        set_err(err, errcap, "write failed: %s", strerror(saved));
    }
    free(tmp);
    return ok ? MUON_OK : MUON_ERR_IO;
}
