/* .npy reading and writing: round trips, hand-built headers of every
 * accepted kind, and every malformed case we can think of (each must give
 * an error with a message, no crash, and outputs left untouched). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "io/npy.h"
#include "testutil.h"

/* Build a .npy image: magic, version major.0, the header text padded with
 * spaces + '\n' to a multiple of 64, then len data bytes. Returns the size. */
static size_t build_npy(unsigned char *out, int major, const char *dict, const void *data,
                        size_t len)
{
    size_t lb = major == 1 ? 2 : 4, pre = 8 + lb, hl = strlen(dict) + 1;
    size_t total = (pre + hl + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    size_t h = total - pre;
    for (size_t b = 0; b < lb; b++)
        out[8 + b] = (unsigned char)(h >> (8 * b));
    memset(out + pre, ' ', h);
    memcpy(out + pre, dict, strlen(dict));
    out[total - 1] = '\n';
    if (len)
        memcpy(out + total, data, len);
    return total + len;
}

static const char *write_tmp(const char *name, const void *bytes, size_t len)
{
    static char paths[8][256];
    static int k;
    char *p = paths[k++ % 8];
    snprintf(p, 256, "%s/%s", tu_tmpdir(), name);
    if (tu_write_file(p, bytes, len) != 0)
        return NULL;
    return p;
}

TEST(npy_round_trip_bitwise)
{
    tu_rng rng;
    tu_seed(&rng, mt_seed + 1);
    long rows = 7, cols = 13;
    float x[7 * 13];
    tu_fill_normal(&rng, x, 7 * 13, 1.0);
    x[0] = -0.0f;
    x[1] = 1e-40f; /* subnormal survives */
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/x.npy", tu_tmpdir());
    ASSERT_OK(npy_write_f32(path, x, rows, cols, err, sizeof err));

    size_t len;
    unsigned char *raw = tu_read_file(path, &len);
    ASSERT(raw != NULL);
    /* numpy's layout: v1.0, data 64-byte aligned, header ends in '\n' */
    ASSERT(!memcmp(raw, "\x93NUMPY\x01\x00", 8));
    size_t hl = (size_t)raw[8] | (size_t)raw[9] << 8;
    ASSERT_EQ_INT((10 + hl) % 64, 0);
    ASSERT_EQ_INT(raw[10 + hl - 1], '\n');
    ASSERT_EQ_INT(len, 10 + hl + sizeof x);
    ASSERT(strstr((char *)raw + 10, "'shape': (7, 13)") != NULL);
    ASSERT(strstr((char *)raw + 10, "'descr': '<f4'") != NULL);
    free(raw);

    float *y = NULL;
    long r = 0, c = 0;
    ASSERT_OK(npy_read_f32(path, &y, &r, &c, err, sizeof err));
    ASSERT_EQ_INT(r, rows);
    ASSERT_EQ_INT(c, cols);
    ASSERT(!memcmp(x, y, sizeof x));
    free(y);
}

TEST(npy_reads_float64_v1)
{
    double d[6] = {1.0, -2.5, 0.1, 1e-3, 3.0e38, 1.0 / 3.0};
    unsigned char buf[256];
    size_t n = build_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                         d, sizeof d);
    const char *p = write_tmp("d.npy", buf, n);
    ASSERT(p != NULL);
    float *x = NULL;
    long r, c;
    char err[256];
    ASSERT_OK(npy_read_f32(p, &x, &r, &c, err, sizeof err));
    ASSERT_EQ_INT(r, 2);
    ASSERT_EQ_INT(c, 3);
    for (int i = 0; i < 6; i++)
        ASSERT(x[i] == (float)d[i]);
    free(x);
}

TEST(npy_reads_v2_v3_and_spacing_variants)
{
    float v[4] = {1, 2, 3, 4};
    const char *dicts[] = {
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
        "{\"shape\":(2,2),\"descr\":\"<f4\",\"fortran_order\":False}",
        "{'fortran_order': False, 'shape': (2, 2,), 'descr': '=f4'}",
    };
    for (int major = 1; major <= 3; major++)
        for (int k = 0; k < 3; k++) {
            unsigned char buf[256];
            size_t n = build_npy(buf, major, dicts[k], v, sizeof v);
            float *x = NULL;
            long r, c;
            char err[256] = "";
            muon_status s = npy_parse_f32(buf, n, &x, &r, &c, err, sizeof err);
            if (s != MUON_OK)
                printf("    v%d dict %d: %s\n", major, k, err);
            ASSERT_OK(s);
            ASSERT_EQ_INT(r, 2);
            ASSERT_EQ_INT(c, 2);
            ASSERT(!memcmp(x, v, sizeof v));
            free(x);
        }
}

TEST(npy_fortran_order_is_transposed)
{
    /* A = [[1 2 3], [4 5 6]] stored column by column */
    float colmajor[6] = {1, 4, 2, 5, 3, 6}, want[6] = {1, 2, 3, 4, 5, 6};
    unsigned char buf[256];
    size_t n = build_npy(buf, 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                         colmajor, sizeof colmajor);
    const char *p = write_tmp("f.npy", buf, n);
    float *x = NULL;
    long r, c;
    char err[256];
    ASSERT_OK(npy_read_f32(p, &x, &r, &c, err, sizeof err));
    ASSERT_EQ_INT(r, 2);
    ASSERT_EQ_INT(c, 3);
    ASSERT(!memcmp(x, want, sizeof want));
    free(x);
}

/* Each malformed image must fail from memory and from a file, with a
 * message, leaving the outputs untouched. */
static int expect_bad(const unsigned char *buf, size_t n, const char *want_word)
{
    float sentinel_store = 0, *x = &sentinel_store;
    long r = -7, c = -7;
    char err[256] = "";
    muon_status s = npy_parse_f32(buf, n, &x, &r, &c, err, sizeof err);
    if (s == MUON_OK || !err[0] || x != &sentinel_store || r != -7 || c != -7) {
        printf("    memory: status %s, message '%s'\n", muon_status_name(s), err);
        return 0;
    }
    if (want_word && !strstr(err, want_word)) {
        printf("    message '%s' lacks '%s'\n", err, want_word);
        return 0;
    }
    const char *p = write_tmp("bad.npy", buf, n);
    err[0] = 0;
    s = npy_read_f32(p, &x, &r, &c, err, sizeof err);
    if (s == MUON_OK || !err[0] || x != &sentinel_store || r != -7 || c != -7) {
        printf("    file: status %s, message '%s'\n", muon_status_name(s), err);
        return 0;
    }
    if (want_word && !strstr(err, want_word)) {
        printf("    file message '%s' lacks '%s'\n", err, want_word);
        return 0;
    }
    return 1;
}

#define GOOD_DICT "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"

TEST(npy_rejects_bad_magic_and_version)
{
    float v[6] = {0};
    unsigned char buf[256];
    size_t n = build_npy(buf, 1, GOOD_DICT, v, sizeof v);
    buf[1] = 'X';
    ASSERT(expect_bad(buf, n, "magic"));
    n = build_npy(buf, 1, GOOD_DICT, v, sizeof v);
    buf[6] = 4;
    ASSERT(expect_bad(buf, n, "version"));
    n = build_npy(buf, 1, GOOD_DICT, v, sizeof v);
    buf[7] = 1;
    ASSERT(expect_bad(buf, n, "version"));
    ASSERT(expect_bad(buf, 0, NULL));
    ASSERT(expect_bad(buf, 5, NULL));
}

TEST(npy_rejects_truncation_and_trailing_bytes)
{
    float v[7] = {1, 2, 3, 4, 5, 6, 7};
    unsigned char buf[256];
    size_t n = build_npy(buf, 1, GOOD_DICT, v, 6 * sizeof(float));
    ASSERT(expect_bad(buf, 9, "truncated"));      /* inside the length field */
    ASSERT(expect_bad(buf, 30, "truncated"));     /* inside the header */
    ASSERT(expect_bad(buf, n - 1, "truncated"));  /* one data byte short */
    ASSERT(expect_bad(buf, n - 24, "truncated")); /* no data at all */
    n = build_npy(buf, 1, GOOD_DICT, v, sizeof v); /* one float too many */
    ASSERT(expect_bad(buf, n, "after the data"));
    n = build_npy(buf, 2, GOOD_DICT, v, 6 * sizeof(float));
    buf[n++] = 0;
    ASSERT(expect_bad(buf, n, "after the data"));
}

TEST(npy_rejects_wrong_dtypes)
{
    float v[6] = {0};
    unsigned char buf[256];
    const char *bad[] = {
        "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 3), }",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }",
    };
    for (int i = 0; i < 6; i++) {
        size_t n = build_npy(buf, 1, bad[i], v, sizeof v);
        if (!expect_bad(buf, n, i < 5 ? "dtype" : NULL)) {
            printf("    case %d: %s\n", i, bad[i]);
            ASSERT(0);
        }
    }
}

TEST(npy_rejects_bad_shapes)
{
    float v[24] = {0};
    unsigned char buf[512];
    struct {
        const char *dict;
        size_t data;
        const char *word;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 96, "3-D"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 24, "1-D"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "0-D"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", 24, "tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (a, 3), }", 24, "integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", 24, "integer"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3.0), }", 24, NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", 24, NULL},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, "empty"},
        /* overflow: the product, and a single entry beyond long */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", 24,
         "large"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 24,
         "large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 1), }",
         24, "large"},
        /* a plausible but unbacked huge shape must not be allocated */
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 100000), }", 24,
         "truncated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = build_npy(buf, 1, bad[i].dict, v, bad[i].data);
        if (!expect_bad(buf, n, bad[i].word)) {
            printf("    case %zu: %s\n", i, bad[i].dict);
            ASSERT(0);
        }
    }
}

TEST(npy_rejects_bad_dicts)
{
    float v[6] = {0};
    unsigned char buf[256];
    const char *bad[] = {
        "{'descr': '<f4', 'fortran_order': false, 'shape': (2, 3), }", /* not Python */
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }",
        "{'descr': '<f4', 'shape': (2, 3), }",                        /* missing key */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", /* extra key */
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) ",  /* unclosed */
        "'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}",   /* no brace */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x", /* junk after */
        "{'descr': '<f4 , 'fortran_order': False, 'shape': (2, 3)}",  /* bad quote */
        "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}",   /* no comma */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = build_npy(buf, 1, bad[i], v, sizeof v);
        if (!expect_bad(buf, n, NULL)) {
            printf("    case %zu: %s\n", i, bad[i]);
            ASSERT(0);
        }
    }
    /* a NUL byte inside the header */
    size_t n = build_npy(buf, 1, GOOD_DICT, v, sizeof v);
    buf[20] = 0;
    ASSERT(expect_bad(buf, n, NULL));
}

TEST(npy_missing_file_and_unwritable_target)
{
    char err[256] = "";
    float *x = NULL;
    long r, c;
    ASSERT_STATUS(npy_read_f32("/nonexistent/dir/g.npy", &x, &r, &c, err, sizeof err),
                  MUON_ERR_IO);
    ASSERT(strstr(err, "No such file") != NULL);
    float v[2] = {1, 2};
    err[0] = 0;
    ASSERT_STATUS(npy_write_f32("/nonexistent/dir/o.npy", v, 1, 2, err, sizeof err), MUON_ERR_IO);
    ASSERT(err[0] != 0);
    ASSERT_STATUS(npy_write_f32("x.npy", v, 0, 2, err, sizeof err), MUON_ERR_SIZE);
}

TEST(npy_write_replaces_whole_file)
{
    /* overwrite a longer file: the result must be exactly the new file */
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/o.npy", tu_tmpdir());
    float big[64] = {0}, small[2] = {5, 6};
    ASSERT_OK(npy_write_f32(path, big, 8, 8, err, sizeof err));
    ASSERT_OK(npy_write_f32(path, small, 1, 2, err, sizeof err));
    float *x = NULL;
    long r, c;
    ASSERT_OK(npy_read_f32(path, &x, &r, &c, err, sizeof err));
    ASSERT_EQ_INT(r * c, 2);
    ASSERT(x[0] == 5 && x[1] == 6);
    free(x);
}
