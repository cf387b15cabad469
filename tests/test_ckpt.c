/* The checkpoint container: round trip, and every kind of damage refused. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"
#include "train/ckpt.h"
#include "train/train.h"

static void two_sections(const char *path)
{
    static const char conf[] = "{\"dim\":8}";
    static const float w[4] = {1, 2, 3, 4};
    ckpt_section s[2] = {{CKPT_TAG('C', 'O', 'N', 'F'), conf, sizeof conf},
                         {CKPT_TAG('P', 'A', 'R', 'M'), w, sizeof w}};
    char err[256];
    if (ckpt_write(path, s, 2, err, sizeof err) != 0)
        fprintf(stderr, "%s\n", err);
}

TEST(ckpt_round_trip)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/c.bin", tu_tmpdir());
    two_sections(path);
    ckpt_file f;
    ASSERT_EQ_INT(ckpt_read(path, &f, err, sizeof err), 0);
    const ckpt_section *p = ckpt_find(&f, CKPT_TAG('P', 'A', 'R', 'M'));
    float w3 = 0; /* sections are not aligned: copy out */
    if (p && p->len == 16)
        memcpy(&w3, (const char *)p->data + 12, sizeof w3);
    int ok = p && p->len == 16 && w3 == 4.0f &&
             ckpt_find(&f, CKPT_TAG('C', 'O', 'N', 'F')) && !ckpt_find(&f, CKPT_TAG('X', 'X', 'X', 'X'));
    ckpt_close(&f);
    ASSERT(ok);
}

TEST(ckpt_rejects_truncated_corrupted_foreign)
{
    const char *dir = tu_tmpdir();
    char path[256], bad[256], err[256];
    snprintf(path, sizeof path, "%s/c.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    two_sections(path);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len);
    ASSERT(buf != NULL);
    ckpt_file f;
    int failures = 0;
    for (size_t cut = 0; cut < len; cut += 3) { /* every truncation */
        tu_write_file(bad, buf, cut);
        failures += ckpt_read(bad, &f, err, sizeof err) != 0;
    }
    ASSERT_EQ_INT(failures, (int)((len + 2) / 3));
    for (size_t i = 0; i < len; i += 5) { /* every flipped byte */
        buf[i] ^= 0x40;
        tu_write_file(bad, buf, len);
        buf[i] ^= 0x40;
        if (ckpt_read(bad, &f, err, sizeof err) == 0) {
            ckpt_close(&f);
            free(buf);
            ASSERT(!"a corrupted checkpoint was accepted");
        }
    }
    free(buf);
    tu_write_file(bad, "PK\3\4 this is a zip file, not ours at all", 40);
    ASSERT_EQ_INT(ckpt_read(bad, &f, err, sizeof err), -1);
    ASSERT(strstr(err, "not a muon checkpoint") != NULL);
    ASSERT_EQ_INT(ckpt_read("/nonexistent/c.bin", &f, err, sizeof err), -1);
}

TEST(ckpt_failed_write_keeps_existing_file)
{
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/keep.bin", tu_tmpdir());
    ASSERT_EQ_INT(tu_write_file(path, "old contents", 12), 0);
    ckpt_section s = {1, "x", 1};
    /* too many sections is refused before anything is written */
    ASSERT_EQ_INT(ckpt_write(path, &s, CKPT_MAX_SECTIONS + 1, err, sizeof err), -1);
    size_t len;
    char *got = tu_read_file(path, &len);
    int same = got && len == 12 && !memcmp(got, "old contents", 12);
    free(got);
    ASSERT(same);
}

/* A stored model shape whose parameter count times 4 bytes wraps around
 * 64 bits to a small size (here 3 * 2^62 + 131072 parameters: 512 KiB)
 * must be refused, not loaded with a parameter array far shorter than the
 * count it claims. Found by reading train_ckpt_load while writing its fuzz
 * target. */
TEST(ckpt_refuses_a_parameter_count_that_wraps)
{
    train_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = train_config_default();
    snprintf(ck.cfg.data, sizeof ck.cfg.data, "x.txt");
    ck.cfg.model = (gpt_config){.vocab = 21758065, .context = 1, .layers = 67108751,
                                .dim = 131072, .heads = 1};
    size_t n = gpt_config_num_params(&ck.cfg.model);
    ASSERT(n > ((size_t)1 << 62)); /* the shape this case needs */
    ck.n_params = n;
    ck.params = calloc(131072, sizeof(float));
    static unsigned char opts[4];
    ck.opt_state = opts;
    ck.opt_state_len = sizeof opts;
    char path[256], err[256];
    snprintf(path, sizeof path, "%s/wrap.bin", tu_tmpdir());
    ASSERT(ck.params != NULL);
    /* n * 4 bytes written as the PARM length wraps to 512 KiB: exactly what
     * a crafted file would hold */
    int rc = train_ckpt_save(path, &ck, err, sizeof err);
    free(ck.params);
    ASSERT_EQ_INT(rc, 0);
    train_ckpt back;
    rc = train_ckpt_load(path, &back, err, sizeof err);
    if (rc == 0)
        train_ckpt_free(&back);
    ASSERT_EQ_INT(rc, -1);
    ASSERT(strstr(err, "too large") != NULL);
}
