/* Tokenizers, text and shard input, the train/val split and the batch
 * loader (src/data). The GPT-2 cases use ../shared/data/gpt2 (or
 * $MUON_SHARED/data/gpt2) and are skipped when it is absent; everything else
 * builds its own files in a temporary directory. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cJSON.h>

#include "data/data.h"
#include "data/tokenizer.h"
#include "harness.h"
#include "testutil.h"

/* ---- helpers ---- */

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    tu_run(cmd, NULL);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* the GPT-2 files, or NULL */
static const char *gpt2_dir(void)
{
    static char buf[1024];
    const char *env = getenv("MUON_SHARED");
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s/data/gpt2", env);
        if (is_dir(buf))
            return buf;
        snprintf(buf, sizeof buf, "%s/gpt2", env);
        if (is_dir(buf))
            return buf;
    }
    snprintf(buf, sizeof buf, "../shared/data/gpt2");
    return is_dir(buf) ? buf : NULL;
}

/* encoder.py's bytes_to_unicode, written out again for the reference */
static unsigned ref_byte_char(int b)
{
    int n = 0;
    for (int c = 0; c < 256; c++) {
        int printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE;
        if (c == b)
            return printable ? (unsigned)c : 256u + (unsigned)n;
        if (!printable)
            n++;
    }
    return 0;
}

/* UTF-8 of bytes after mapping each byte to its GPT-2 byte character */
static void ref_map_bytes(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = ref_byte_char((unsigned char)s[i]);
        if (c < 0x80) {
            out[k++] = (char)c;
        } else {
            out[k++] = (char)(0xC0 | (c >> 6));
            out[k++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[k] = '\0';
}

static int encode_eq(const tok_tokenizer *t, const char *s, size_t n, int special,
                     const int32_t *want, size_t n_want)
{
    int32_t *ids;
    size_t cnt;
    char err[TOK_ERR_LEN];
    if (tok_encode(t, s, n, special, &ids, &cnt, err) != 0)
        return 0;
    int ok = cnt == n_want && (n_want == 0 || memcmp(ids, want, n_want * sizeof *ids) == 0);
    if (!ok) {
        printf("    encode \"%.*s\" ->", (int)n, s);
        for (size_t i = 0; i < cnt; i++)
            printf(" %d", (int)ids[i]);
        printf("\n");
    }
    free(ids);
    return ok;
}

/* encode then decode gives back the bytes, and every id is in range */
static int round_trips(const tok_tokenizer *t, const char *s, size_t n)
{
    int32_t *ids;
    size_t cnt, blen;
    char *back, err[TOK_ERR_LEN];
    if (tok_encode(t, s, n, 0, &ids, &cnt, err) != 0)
        return 0;
    for (size_t i = 0; i < cnt; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size) {
            free(ids);
            return 0;
        }
    int rc = tok_decode(t, ids, cnt, &back, &blen, err);
    free(ids);
    if (rc)
        return 0;
    int ok = blen == n && memcmp(back, s, n) == 0;
    free(back);
    return ok;
}

/* ---- byte tokenizer ---- */

TEST(data_byte_tokenizer_round_trip)
{
    tok_tokenizer t;
    tok_init_byte(&t);
    ASSERT_EQ_INT(t.vocab_size, 256);
    char buf[1024];
    for (int i = 0; i < 256; i++)
        buf[i] = (char)i; /* includes 0 and 255 */
    tu_rng rng;
    tu_seed(&rng, mt_seed);
    for (int i = 256; i < 1024; i++)
        buf[i] = (char)(int)(tu_uniform(&rng) * 256);
    int32_t *ids;
    size_t n;
    char err[TOK_ERR_LEN];
    ASSERT_EQ_INT(tok_encode(&t, buf, sizeof buf, 1, &ids, &n, err), 0);
    ASSERT_EQ_INT(n, sizeof buf);
    for (size_t i = 0; i < n; i++)
        ASSERT_EQ_INT(ids[i], (unsigned char)buf[i]);
    char *back;
    size_t blen;
    ASSERT_EQ_INT(tok_decode(&t, ids, n, &back, &blen, err), 0);
    ASSERT_EQ_INT(blen, sizeof buf);
    ASSERT(memcmp(back, buf, blen) == 0);
    free(back);
    ids[3] = 256;
    ASSERT_EQ_INT(tok_decode(&t, ids, n, &back, &blen, err), MUON_ERR_ARG);
    ASSERT(strstr(err, "256") && strstr(err, "position 3"));
    free(ids);
    ASSERT_EQ_INT(tok_encode(&t, "", 0, 0, &ids, &n, err), 0);
    ASSERT_EQ_INT(n, 0);
    free(ids);
    tok_kind k;
    ASSERT_EQ_INT(tok_kind_parse("gpt2", &k), 0);
    ASSERT_EQ_INT(k, TOK_GPT2);
    ASSERT_EQ_INT(tok_kind_parse("words", &k), MUON_ERR_ARG);
    tok_free(&t);
}

/* ---- GPT-2 pre-tokenizer ---- */

typedef struct {
    const char *pieces[16];
    int n;
    char buf[256];
    size_t used;
} piece_list;

static int collect(const char *piece, size_t n, void *ctx)
{
    piece_list *l = ctx;
    if (l->n == 16 || l->used + n + 1 > sizeof l->buf)
        return 1;
    memcpy(l->buf + l->used, piece, n);
    l->buf[l->used + n] = '\0';
    l->pieces[l->n++] = l->buf + l->used;
    l->used += n + 1;
    return 0;
}

static int splits_as(const char *text, const char *const *want, int n_want)
{
    piece_list l = {.n = 0};
    if (tok_gpt2_pretokenize(text, strlen(text), collect, &l) != 0 || l.n != n_want)
        goto bad;
    for (int i = 0; i < n_want; i++)
        if (strcmp(l.pieces[i], want[i]) != 0)
            goto bad;
    return 1;
bad:
    printf("    \"%s\" split into %d pieces:", text, l.n);
    for (int i = 0; i < l.n; i++)
        printf(" [%s]", l.pieces[i]);
    printf("\n");
    return 0;
}

#define SPLITS(text, ...)                                                    \
    do {                                                                     \
        static const char *const w_[] = {__VA_ARGS__};                       \
        ASSERT(splits_as(text, w_, (int)(sizeof w_ / sizeof w_[0])));        \
    } while (0)

/* Expected pieces follow the regex's rules by hand: alternatives in order,
 * " ?" only for a literal space, and \s+(?!\S) giving back one space. */
TEST(data_gpt2_pretokenizer_splits)
{
    SPLITS("Hello world", "Hello", " world");
    SPLITS("I'm  here\n\nok", "I", "'m", " ", " here", "\n", "\n", "ok");
    SPLITS("x  ", "x", "  ");
    SPLITS("'sup don't", "'s", "up", " don", "'t");
    SPLITS("3.14 a!!b !!", "3", ".", "14", " a", "!!", "b", " !!");
    SPLITS("\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac x\xc2\xb2", "\xc3\xa9\xe6\x97\xa5\xe6\x9c\xac",
           " x", "\xc2\xb2"); /* é日本 x² (² is a number) */
    SPLITS("\t\tx", "\t", "\t", "x");
    SPLITS("a \xc2\xa0" "b", "a", " ", "\xc2\xa0", "b"); /* no-break space is \s */
    SPLITS("we'll they're I've he'd", "we", "'ll", " they", "'re", " I", "'ve", " he", "'d");
    SPLITS("a\xff\xfe!b", "a", "\xff\xfe!", "b"); /* invalid UTF-8 groups as punctuation */
}

/* ---- BPE on a tiny vocabulary written by the test ---- */

/* the 256 byte characters as ids 0..255 (in byte order) plus extra tokens */
static int write_encoder(const char *path, const char *const *extra, int n_extra)
{
    cJSON *o = cJSON_CreateObject();
    char key[16];
    for (int b = 0; b < 256; b++) {
        char byte = (char)b;
        ref_map_bytes(&byte, 1, key);
        cJSON_AddNumberToObject(o, key, b);
    }
    for (int i = 0; i < n_extra; i++) {
        char mapped[64];
        ref_map_bytes(extra[i], strlen(extra[i]), mapped);
        cJSON_AddNumberToObject(o, mapped, 256 + i);
    }
    char *s = cJSON_PrintUnformatted(o);
    int rc = tu_write_file(path, s, strlen(s));
    free(s);
    cJSON_Delete(o);
    return rc;
}

/* Slow reference BPE, as encoder.py does it: repeatedly take the adjacent
 * pair with the lowest rank and merge all its occurrences left to right. */
static size_t ref_bpe(const char *word, const char *const (*merges)[2], int n_merges,
                      char sym[][64])
{
    size_t n = strlen(word);
    for (size_t i = 0; i < n; i++)
        sym[i][0] = word[i], sym[i][1] = '\0';
    for (;;) {
        int best = n_merges;
        for (size_t i = 0; i + 1 < n; i++)
            for (int r = 0; r < best; r++)
                if (strcmp(sym[i], merges[r][0]) == 0 && strcmp(sym[i + 1], merges[r][1]) == 0)
                    best = r;
        if (best == n_merges)
            return n;
        size_t k = 0;
        for (size_t i = 0; i < n; k++) {
            if (i + 1 < n && strcmp(sym[i], merges[best][0]) == 0 &&
                strcmp(sym[i + 1], merges[best][1]) == 0) {
                char joined[64];
                snprintf(joined, sizeof joined, "%s%s", sym[i], sym[i + 1]);
                strcpy(sym[k], joined);
                i += 2;
            } else {
                memmove(sym[k], sym[i], 64);
                i++;
            }
        }
        n = k;
    }
}

TEST(data_bpe_tiny_vocab_matches_reference)
{
    static const char *const merges[][2] = {
        {"b", "c"}, {"a", "b"}, {"a", "bc"}, {"ab", "ab"}, {"c", "c"}, {"cc", "a"}, {"bc", "bc"},
    };
    static const char *const extra[] = {"bc", "ab", "abc", "abab", "cc", "cca", "bcbc"};
    const int n_merges = 7;
    const char *dir = tu_tmpdir();
    char enc[256], voc[256];
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(voc, sizeof voc, "%s/vocab.bpe", dir);
    ASSERT_EQ_INT(write_encoder(enc, extra, 7), 0);
    char text[512] = "#version: 0.2\n";
    for (int i = 0; i < n_merges; i++)
        snprintf(text + strlen(text), sizeof text - strlen(text), "%s %s\n", merges[i][0],
                 merges[i][1]);
    ASSERT_EQ_INT(tu_write_file(voc, text, strlen(text)), 0);
    tok_tokenizer t;
    char err[TOK_ERR_LEN];
    ASSERT_EQ_INT(tok_load_gpt2(&t, enc, voc, err), 0);
    ASSERT_EQ_INT(t.vocab_size, 263);
    ASSERT_EQ_INT(t.eot_id, -1);
    /* "bc" (rank 0) beats "ab" (rank 1), then a+bc */
    int32_t abc[] = {258};
    ASSERT(encode_eq(&t, "abc", 3, 0, abc, 1));
    int32_t abab[] = {259};
    ASSERT(encode_eq(&t, "abab", 4, 0, abab, 1));
    int32_t aab[] = {'a', 257};
    ASSERT(encode_eq(&t, "aab", 3, 0, aab, 2));
    /* random words over {a, b, c}: one pre-token piece each */
    tu_rng rng;
    tu_seed(&rng, mt_seed + 1);
    for (int trial = 0; trial < 300; trial++) {
        char word[24], sym[24][64];
        size_t len = 1 + (size_t)(tu_uniform(&rng) * 22);
        for (size_t i = 0; i < len; i++)
            word[i] = (char)('a' + (int)(tu_uniform(&rng) * 3));
        word[len] = '\0';
        size_t m = ref_bpe(word, merges, n_merges, sym);
        int32_t want[24];
        for (size_t i = 0; i < m; i++) {
            want[i] = strlen(sym[i]) == 1 ? (unsigned char)sym[i][0] : -1;
            for (int e = 0; e < 7; e++)
                if (strcmp(sym[i], extra[e]) == 0)
                    want[i] = 256 + e;
        }
        ASSERT(encode_eq(&t, word, len, 0, want, m));
        ASSERT(round_trips(&t, word, len));
    }
    tok_free(&t);
    rm_rf(dir);
}

/* writes encoder.json (tiny, valid unless enc_text is given) and vocab.bpe,
 * loads them and returns the status; err gets the message */
static int load_with(const char *dir, const char *enc_text, const char *voc_text, char *err)
{
    static const char *const extra[] = {"ab"};
    char enc[256], voc[256];
    snprintf(enc, sizeof enc, "%s/encoder.json", dir);
    snprintf(voc, sizeof voc, "%s/vocab.bpe", dir);
    if (enc_text)
        tu_write_file(enc, enc_text, strlen(enc_text));
    else
        write_encoder(enc, extra, 1);
    tu_write_file(voc, voc_text, strlen(voc_text));
    tok_tokenizer t;
    int rc = tok_load_gpt2(&t, enc, voc, err);
    if (rc == 0)
        tok_free(&t);
    return rc;
}

#define REJECTS(enc_text, voc_text, status, needle)                          \
    do {                                                                     \
        err[0] = '\0';                                                       \
        ASSERT_EQ_INT(load_with(dir, enc_text, voc_text, err), status);      \
        if (!strstr(err, needle))                                            \
            printf("    message: %s\n", err);                                \
        ASSERT(strstr(err, needle) != NULL);                                 \
    } while (0)

TEST(data_bpe_rejects_malformed_files)
{
    const char *dir = tu_tmpdir();
    char err[TOK_ERR_LEN];
    const char *ok_voc = "#version: 0.2\na b\n";
    ASSERT_EQ_INT(load_with(dir, NULL, ok_voc, err), 0);
    tok_tokenizer t;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.json", dir);
    ASSERT_EQ_INT(tok_load_gpt2(&t, missing, "x", err), MUON_ERR_IO);
    ASSERT(strstr(err, "nope.json") && strstr(err, "No such file"));
    ASSERT_EQ_INT(tok_load_gpt2_dir(&t, missing, err), MUON_ERR_IO);
    REJECTS("{\"a\": 0,", ok_voc, MUON_ERR_FORMAT, "malformed JSON");
    REJECTS("{\"a\": 0} x", ok_voc, MUON_ERR_FORMAT, "malformed JSON");
    REJECTS("[1, 2, 3]", ok_voc, MUON_ERR_FORMAT, "expected an object");
    REJECTS("", ok_voc, MUON_ERR_FORMAT, "malformed JSON");
    /* the wrong version line, bad merge lines */
    REJECTS(NULL, "#version: 0.3\na b\n", MUON_ERR_FORMAT, "#version: 0.2");
    REJECTS(NULL, "a b\n", MUON_ERR_FORMAT, "first line");
    REJECTS(NULL, "", MUON_ERR_FORMAT, "vocab.bpe");
    REJECTS(NULL, "#version: 0.2\na b c\n", MUON_ERR_FORMAT, "line 2");
    REJECTS(NULL, "#version: 0.2\nab\n", MUON_ERR_FORMAT, "one space");
    REJECTS(NULL, "#version: 0.2\na  b\n", MUON_ERR_FORMAT, "one space");
    REJECTS(NULL, "#version: 0.2\na c\n", MUON_ERR_FORMAT, "not in encoder.json");
    REJECTS(NULL, "#version: 0.2\na b\na b\n", MUON_ERR_FORMAT, "line 3");
    REJECTS(NULL, "#version: 0.2\n\na b\n", MUON_ERR_FORMAT, "line 2 is empty");
    REJECTS(NULL, "#version: 0.2\na \xe4\xb8\x80\n", MUON_ERR_FORMAT, "byte character");
    ASSERT_EQ_INT(load_with(dir, NULL, "#version: 0.2\na b\n\n\n", err), 0);
    /* encoder.json with bad ids or keys */
    char *bad = malloc(1 << 14);
    ASSERT(bad != NULL);
    const char *cases[][2] = {
        {"\"xy\": \"7\"", "not a number"}, {"\"xy\": 3", "used twice"},
        {"\"xy\": 999", "has id 999"},   {"\"xy\": 256.5", "has id 256.5"},
        {"\"\\u4e00\": 256", "not a GPT-2 byte-level token"},
    };
    for (int c = 0; c < 5; c++) {
        strcpy(bad, "{");
        for (int b = 0; b < 256; b++) {
            char byte = (char)b, key[8], esc[16];
            ref_map_bytes(&byte, 1, key);
            snprintf(esc, sizeof esc, "%s", b == '"' ? "\\\"" : b == '\\' ? "\\\\" : key);
            snprintf(bad + strlen(bad), 64, "\"%s\": %d, ", esc, b);
        }
        snprintf(bad + strlen(bad), 64, "%s}", cases[c][0]);
        REJECTS(bad, "#version: 0.2\n", MUON_ERR_FORMAT, cases[c][1]);
    }
    REJECTS("{\"a\": 0}", ok_voc, MUON_ERR_FORMAT, "at least 256");
    free(bad);
    rm_rf(dir);
}

/* ---- BPE with the real GPT-2 files ---- */

static int load_real(tok_tokenizer *t)
{
    const char *d = gpt2_dir();
    char err[TOK_ERR_LEN];
    if (!d)
        return 1;
    if (tok_load_gpt2_dir(t, d, err) != 0) {
        printf("    %s\n", err);
        return -1;
    }
    return 0;
}

TEST(data_bpe_gpt2_known_ids)
{
    tok_tokenizer t;
    int rc = load_real(&t);
    if (rc == 1)
        SKIP("GPT-2 files not found (../shared/data/gpt2 or $MUON_SHARED/data/gpt2)");
    ASSERT_EQ_INT(rc, 0);
    ASSERT_EQ_INT(t.vocab_size, 50257);
    ASSERT_EQ_INT(t.eot_id, 50256);
    int32_t hello[] = {15496, 995}, the[] = {262}, eot[] = {50256};
    ASSERT(encode_eq(&t, "Hello world", 11, 0, hello, 2));
    ASSERT(encode_eq(&t, " the", 4, 0, the, 1));
    ASSERT(encode_eq(&t, "<|endoftext|>", 13, 1, eot, 1));
    /* without the option it is plain text: several ids, none of them 50256 */
    int32_t *ids;
    size_t n;
    char err[TOK_ERR_LEN];
    ASSERT_EQ_INT(tok_encode(&t, "<|endoftext|>", 13, 0, &ids, &n, err), 0);
    ASSERT(n > 1);
    for (size_t i = 0; i < n; i++)
        ASSERT(ids[i] != 50256);
    free(ids);
    int32_t mixed[] = {15496, 50256, 15496, 995};
    ASSERT(encode_eq(&t, "Hello<|endoftext|>Hello world", 29, 1, mixed, 4));
    const char *bytes;
    size_t len;
    ASSERT_EQ_INT(tok_token_bytes(&t, 50256, &bytes, &len), 0);
    ASSERT(len == 13 && memcmp(bytes, "<|endoftext|>", 13) == 0);
    ASSERT_EQ_INT(tok_token_bytes(&t, 50257, &bytes, &len), MUON_ERR_ARG);
    tok_free(&t);
}

/* Expectations taken from encoder.json itself: every single byte encodes to
 * the id of its byte character, and whole-word entries to their own id. */
TEST(data_bpe_gpt2_ids_from_encoder_json)
{
    tok_tokenizer t;
    int rc = load_real(&t);
    if (rc == 1)
        SKIP("GPT-2 files not found (../shared/data/gpt2 or $MUON_SHARED/data/gpt2)");
    ASSERT_EQ_INT(rc, 0);
    char path[1100];
    snprintf(path, sizeof path, "%s/encoder.json", gpt2_dir());
    size_t len;
    char *text = tu_read_file(path, &len);
    ASSERT(text != NULL);
    cJSON *enc = cJSON_ParseWithLength(text, len);
    free(text);
    ASSERT(enc != NULL);
    for (int b = 0; b < 256; b++) {
        char byte = (char)b, key[8];
        ref_map_bytes(&byte, 1, key);
        cJSON *v = cJSON_GetObjectItemCaseSensitive(enc, key);
        ASSERT(cJSON_IsNumber(v));
        int32_t want = (int32_t)v->valuedouble;
        ASSERT(encode_eq(&t, &byte, 1, 0, &want, 1));
    }
    static const char *const words[] = {" the", "Hello", " world", " people", " and",
                                        " of", "The", " language", " model"};
    for (int w = 0; w < 9; w++) {
        char key[64];
        ref_map_bytes(words[w], strlen(words[w]), key);
        cJSON *v = cJSON_GetObjectItemCaseSensitive(enc, key);
        ASSERT(cJSON_IsNumber(v));
        int32_t want = (int32_t)v->valuedouble;
        ASSERT(encode_eq(&t, words[w], strlen(words[w]), 0, &want, 1));
    }
    cJSON_Delete(enc);
    tok_free(&t);
}

TEST(data_bpe_gpt2_round_trip)
{
    tok_tokenizer t;
    int rc = load_real(&t);
    if (rc == 1)
        SKIP("GPT-2 files not found (../shared/data/gpt2 or $MUON_SHARED/data/gpt2)");
    ASSERT_EQ_INT(rc, 0);
    static const char para[] =
        "It's 3:14 p.m., and they'll say: \"We've won 1,234,567 games!\"  \n\n"
        "   Caf\xc3\xa9 na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e (Japanese)\t\ttabs; "
        "emoji \xf0\x9f\x99\x82 ... I'd've  DONE it\r\n<|endoftext|> end   ";
    ASSERT(round_trips(&t, para, sizeof para - 1));
    /* any bytes, including NUL, 0xFF and broken UTF-8 */
    char junk[512];
    tu_rng rng;
    tu_seed(&rng, mt_seed + 2);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(int)(tu_uniform(&rng) * 256);
    ASSERT(round_trips(&t, junk, sizeof junk));
    int32_t bad_id = -1;
    char *out, err[TOK_ERR_LEN];
    size_t n;
    ASSERT_EQ_INT(tok_decode(&t, &bad_id, 1, &out, &n, err), MUON_ERR_ARG);
    tok_free(&t);
}

/* ---- text files, directories and the split ---- */

TEST(data_text_split_covers_every_token_once)
{
    const char *dir = tu_tmpdir();
    char path[256], err[DATA_ERR_LEN];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    char text[1003];
    for (int i = 0; i < 1003; i++)
        text[i] = (char)('a' + i % 26);
    ASSERT_EQ_INT(tu_write_file(path, text, sizeof text), 0);
    tok_tokenizer t;
    tok_init_byte(&t);
    data_set a, b;
    ASSERT_EQ_INT(data_load(path, &t, 0.1, &a, err), 0);
    ASSERT_EQ_INT(a.from_shards, 0);
    ASSERT_EQ_INT(a.val.n, 100); /* floor(1003 * 0.1) */
    ASSERT_EQ_INT(a.train.n + a.val.n, 1003);
    for (size_t i = 0; i < a.train.n; i++)
        ASSERT_EQ_INT(a.train.ids[i], (unsigned char)text[i]);
    for (size_t i = 0; i < a.val.n; i++)
        ASSERT_EQ_INT(a.val.ids[i], (unsigned char)text[a.train.n + i]);
    ASSERT_EQ_INT(data_load(path, &t, 0.1, &b, err), 0);
    ASSERT_EQ_INT(b.train.n, a.train.n);
    ASSERT(memcmp(a.train.ids, b.train.ids, a.train.n * sizeof(int32_t)) == 0);
    ASSERT(memcmp(a.val.ids, b.val.ids, a.val.n * sizeof(int32_t)) == 0);
    data_set_free(&a);
    data_set_free(&b);
    ASSERT_EQ_INT(data_split_point(10, 0.0), 10);
    ASSERT_EQ_INT(data_split_point(10, 0.25), 8);
    ASSERT_EQ_INT(data_load(path, &t, 1.0, &a, err), MUON_ERR_ARG);
    rm_rf(dir);
}

TEST(data_text_bad_inputs)
{
    const char *dir = tu_tmpdir();
    char path[256], err[DATA_ERR_LEN];
    tok_tokenizer t;
    tok_init_byte(&t);
    data_set ds;
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    ASSERT_EQ_INT(data_load(path, &t, 0.1, &ds, err), MUON_ERR_IO);
    ASSERT(strstr(err, path) && strstr(err, "No such file"));
    snprintf(path, sizeof path, "%s/empty.txt", dir);
    ASSERT_EQ_INT(tu_write_file(path, "", 0), 0);
    ASSERT_EQ_INT(data_load(path, &t, 0.1, &ds, err), MUON_ERR_FORMAT);
    char want[300];
    snprintf(want, sizeof want, "data file %s is empty", path);
    ASSERT(strcmp(err, want) == 0);
    /* a directory with nothing usable */
    snprintf(path, sizeof path, "%s/d", dir);
    ASSERT_EQ_INT(mkdir(path, 0700), 0);
    ASSERT_EQ_INT(data_load(path, &t, 0.1, &ds, err), MUON_ERR_FORMAT);
    ASSERT(strstr(err, "no non-empty text files") && strstr(err, path));
    rm_rf(dir);
}

TEST(data_text_directory_input)
{
    const char *dir = tu_tmpdir();
    char path[300], err[DATA_ERR_LEN];
    struct {
        const char *name, *text;
        size_t len;
    } files[] = {
        {"b", "second\n", 7},      {"a", "first", 5},          {"a.dat", "\0\1\2", 3},
        {"a.u8", "dup\n", 4},      {"z", "bin\0ary", 7},       {"empty", "", 0},
        {".hidden", "no\n", 3},    {"c", "third %\n", 8},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        ASSERT_EQ_INT(tu_write_file(path, files[i].text, files[i].len), 0);
    }
    snprintf(path, sizeof path, "%s/off", dir);
    ASSERT_EQ_INT(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/off/x", dir);
    ASSERT_EQ_INT(tu_write_file(path, "offensive\n", 10), 0);
    char *bytes;
    size_t len;
    int n_files;
    ASSERT_EQ_INT(data_read_text(dir, &bytes, &len, &n_files, err), 0);
    const char want[] = "first\nsecond\nthird %\n";
    ASSERT_EQ_INT(n_files, 3);
    ASSERT_EQ_INT(len, sizeof want - 1);
    ASSERT(memcmp(bytes, want, len) == 0);
    free(bytes);
    tok_tokenizer t;
    tok_init_byte(&t);
    data_set ds;
    ASSERT_EQ_INT(data_load(dir, &t, 0.0, &ds, err), 0);
    ASSERT_EQ_INT(ds.train.n, sizeof want - 1);
    ASSERT_EQ_INT(ds.val.n, 0);
    data_set_free(&ds);
    rm_rf(dir);
}

TEST(data_fortunes_directory_if_installed)
{
    const char *d = "/usr/share/games/fortunes";
    if (!is_dir(d))
        SKIP("the fortunes package is not installed");
    char *bytes, err[DATA_ERR_LEN];
    size_t len;
    int n_files;
    ASSERT_EQ_INT(data_read_text(d, &bytes, &len, &n_files, err), 0);
    ASSERT(n_files > 0 && len > 1000);
    ASSERT(memchr(bytes, '\0', len) == NULL);
    free(bytes);
}

/* ---- llm.c shards ---- */

static int32_t *iota_ids(size_t n, int32_t mod)
{
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; ids && i < n; i++)
        ids[i] = (int32_t)((i * 7919) % (size_t)mod);
    return ids;
}

static int write_raw(const char *path, const unsigned char *data, size_t len)
{
    return tu_write_file(path, data, len);
}

TEST(data_shard_round_trip_and_corruption)
{
    const char *dir = tu_tmpdir();
    char path[256], bad[256], err[DATA_ERR_LEN];
    snprintf(path, sizeof path, "%s/s.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);
    size_t n = 3000;
    int32_t *ids = iota_ids(n, 65536);
    ASSERT(ids != NULL);
    ids[0] = 0, ids[1] = 65535;
    ASSERT_EQ_INT(data_shard_write(path, ids, n, err), 0);
    size_t flen;
    unsigned char *raw = tu_read_file(path, &flen);
    ASSERT(raw != NULL);
    ASSERT_EQ_INT(flen, 1024 + 2 * n);
    /* the header, byte by byte: 20240520 = 0x0134D888 little-endian, 1, n, zeros */
    ASSERT(raw[0] == 0x88 && raw[1] == 0xD8 && raw[2] == 0x34 && raw[3] == 0x01);
    ASSERT(raw[4] == 1 && raw[5] == 0 && raw[8] == (3000 & 0xFF) && raw[9] == (3000 >> 8));
    for (int i = 12; i < 1024; i++)
        ASSERT_EQ_INT(raw[i], 0);
    ASSERT(raw[1024 + 2] == 0xFF && raw[1024 + 3] == 0xFF);
    int32_t *back;
    size_t nb;
    ASSERT_EQ_INT(data_shard_read(path, &back, &nb, err), 0);
    ASSERT_EQ_INT(nb, n);
    ASSERT(memcmp(back, ids, n * sizeof *ids) == 0);
    free(back);

    unsigned char *copy = malloc(flen);
    ASSERT(copy != NULL);
#define CORRUPT(mutate, cut, status, needle)                                 \
    do {                                                                     \
        memcpy(copy, raw, flen);                                             \
        mutate;                                                              \
        ASSERT_EQ_INT(write_raw(bad, copy, flen - (cut)), 0);                \
        ASSERT_EQ_INT(data_shard_read(bad, &back, &nb, err), status);        \
        if (!strstr(err, needle))                                            \
            printf("    message: %s\n", err);                                \
        ASSERT(strstr(err, needle) && strstr(err, bad));                     \
    } while (0)
    CORRUPT(copy[0] ^= 1, 0, MUON_ERR_FORMAT, "magic");
    CORRUPT(copy[4] = 2, 0, MUON_ERR_VERSION, "version 2");
    CORRUPT((void)0, 1, MUON_ERR_FORMAT, "truncated or corrupted");
    CORRUPT((void)0, 2 * n, MUON_ERR_FORMAT, "truncated or corrupted");
    CORRUPT(copy[8] += 1, 0, MUON_ERR_FORMAT, "header says 3001 tokens");
    CORRUPT((void)0, flen - 100, MUON_ERR_FORMAT, "truncated");
    CORRUPT(copy[8] = copy[9] = 0, 2 * n, MUON_ERR_FORMAT, "no tokens");
#undef CORRUPT
    /* unrepresentable ids are refused and nothing is written */
    char fresh[256];
    snprintf(fresh, sizeof fresh, "%s/new.bin", dir);
    ids[5] = 65536;
    ASSERT_EQ_INT(data_shard_write(fresh, ids, n, err), MUON_ERR_ARG);
    ASSERT(strstr(err, "65536") && strstr(err, "position 5"));
    ids[5] = -1;
    ASSERT_EQ_INT(data_shard_write(fresh, ids, n, err), MUON_ERR_ARG);
    ASSERT(access(fresh, F_OK) != 0);
    /* a shard of GPT-2 ids is refused by the byte tokenizer */
    tok_tokenizer t;
    tok_init_byte(&t);
    data_set ds;
    ASSERT_EQ_INT(data_load(path, &t, 0.1, &ds, err), MUON_ERR_FORMAT);
    ASSERT(strstr(err, "vocabulary of 256"));
    free(copy);
    free(raw);
    free(ids);
    rm_rf(dir);
}

TEST(data_shard_train_val_selection)
{
    const char *dir = tu_tmpdir();
    char tr[256], va[256], solo[256], err[DATA_ERR_LEN];
    snprintf(tr, sizeof tr, "%s/tiny_train.bin", dir);
    snprintf(va, sizeof va, "%s/tiny_val.bin", dir);
    int32_t *a = iota_ids(500, 256), *b = iota_ids(120, 200);
    ASSERT(a && b);
    ASSERT_EQ_INT(data_shard_write(tr, a, 500, err), 0);
    ASSERT_EQ_INT(data_shard_write(va, b, 120, err), 0);
    tok_tokenizer t;
    tok_init_byte(&t);
    data_set ds;
    /* a _train shard finds its _val sibling */
    ASSERT_EQ_INT(data_load(tr, &t, 0.1, &ds, err), 0);
    ASSERT(ds.from_shards && ds.val_is_separate);
    ASSERT_EQ_INT(ds.train.n, 500);
    ASSERT_EQ_INT(ds.val.n, 120);
    ASSERT(memcmp(ds.val.ids, b, 120 * sizeof *b) == 0);
    data_set_free(&ds);
    /* the directory: names with _val are validation */
    ASSERT_EQ_INT(data_load(dir, &t, 0.1, &ds, err), 0);
    ASSERT_EQ_INT(ds.train.n, 500);
    ASSERT_EQ_INT(ds.val.n, 120);
    ASSERT(memcmp(ds.train.ids, a, 500 * sizeof *a) == 0);
    data_set_free(&ds);
    /* a lone shard is split like text */
    snprintf(solo, sizeof solo, "%s/solo.bin", dir);
    ASSERT_EQ_INT(data_shard_write(solo, a, 500, err), 0);
    unlink(tr);
    unlink(va);
    ASSERT_EQ_INT(data_load(solo, &t, 0.1, &ds, err), 0);
    ASSERT(!ds.val_is_separate);
    ASSERT_EQ_INT(ds.train.n, 450);
    ASSERT_EQ_INT(ds.val.n, 50);
    ASSERT(memcmp(ds.val.ids, a + 450, 50 * sizeof *a) == 0);
    data_set_free(&ds);
    free(a);
    free(b);
    rm_rf(dir);
}

/* ---- the batch loader ---- */

/* tokens[i] = i, so a row's values say which window it is */
static int32_t *counting(size_t n)
{
    int32_t *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++)
        x[i] = (int32_t)i;
    return x;
}

TEST(data_loader_windows_targets_and_epochs)
{
    const int B = 4, T = 8;
    const size_t n = 8 * 16 + 5; /* 16 windows, 4 tokens left over */
    int32_t *tok = counting(n), in[32], tg[32];
    ASSERT(tok != NULL);
    data_loader L;
    char err[DATA_ERR_LEN];
    ASSERT_EQ_INT(data_loader_init(&L, tok, n, B, T, 7, "training data", err), 0);
    ASSERT_EQ_INT(L.st.n_windows, 16);
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[16] = {0};
        for (int batch = 0; batch < 4; batch++) {
            ASSERT_EQ_INT(data_loader_next(&L, in, tg), 0);
            for (int r = 0; r < B; r++) {
                int w = in[r * T] / T;
                ASSERT_EQ_INT(in[r * T], w * T); /* windows start on multiples of T */
                for (int t = 0; t < T; t++) {
                    ASSERT_EQ_INT(in[r * T + t], w * T + t);
                    ASSERT_EQ_INT(tg[r * T + t], in[r * T + t] + 1); /* shifted by one */
                }
                seen[w]++;
            }
        }
        for (int w = 0; w < 16; w++)
            ASSERT_EQ_INT(seen[w], 1); /* each window once per epoch */
    }
    ASSERT_EQ_INT(L.st.epoch, 2);
    data_loader_free(&L);
    free(tok);
}

TEST(data_loader_same_seed_same_batches_and_resume)
{
    const int B = 3, T = 5;
    const size_t n = 5 * 7 + 1; /* 7 windows: epochs end inside batches */
    int32_t *tok = counting(n);
    ASSERT(tok != NULL);
    char err[DATA_ERR_LEN];
    data_loader a, b, c;
    ASSERT_EQ_INT(data_loader_init(&a, tok, n, B, T, 42, "training data", err), 0);
    ASSERT_EQ_INT(data_loader_init(&b, tok, n, B, T, 42, "training data", err), 0);
    ASSERT_EQ_INT(data_loader_init(&c, tok, n, B, T, 43, "training data", err), 0);
    int32_t ia[12][15], ta[12][15], ib[15], tb[15];
    int differs = 0;
    data_loader_state saved;
    for (int s = 0; s < 12; s++) {
        if (s == 5)
            data_loader_state_get(&a, &saved);
        ASSERT_EQ_INT(data_loader_next(&a, ia[s], ta[s]), 0);
        ASSERT_EQ_INT(data_loader_next(&b, ib, tb), 0);
        ASSERT(memcmp(ia[s], ib, sizeof ib) == 0 && memcmp(ta[s], tb, sizeof tb) == 0);
        ASSERT_EQ_INT(data_loader_next(&c, ib, tb), 0);
        differs |= memcmp(ia[s], ib, sizeof ib) != 0;
    }
    ASSERT(differs); /* another seed, another order */
    /* a fresh loader restored to step 5 continues exactly as the first */
    data_loader r;
    ASSERT_EQ_INT(data_loader_init(&r, tok, n, B, T, 999, "training data", err), 0);
    ASSERT_EQ_INT(data_loader_state_set(&r, &saved, err), 0);
    for (int s = 5; s < 12; s++) {
        ASSERT_EQ_INT(data_loader_next(&r, ib, tb), 0);
        ASSERT(memcmp(ia[s], ib, sizeof ib) == 0 && memcmp(ta[s], tb, sizeof tb) == 0);
    }
    /* a state from other data or another shape is refused */
    data_loader o;
    ASSERT_EQ_INT(data_loader_init(&o, tok, n, B, T - 1, 42, "training data", err), 0);
    ASSERT_EQ_INT(data_loader_state_set(&o, &saved, err), MUON_ERR_MISMATCH);
    data_loader_state far = saved;
    far.pos = 8;
    ASSERT_EQ_INT(data_loader_state_set(&r, &far, err), MUON_ERR_MISMATCH);
    data_loader_free(&a);
    data_loader_free(&b);
    data_loader_free(&c);
    data_loader_free(&r);
    data_loader_free(&o);
    free(tok);
}

TEST(data_loader_short_data_is_an_error)
{
    int32_t *tok = counting(64);
    ASSERT(tok != NULL);
    data_loader L;
    data_val v;
    char err[DATA_ERR_LEN];
    ASSERT_EQ_INT(data_loader_init(&L, tok, 64, 2, 64, 1, "training data", err), MUON_ERR_SIZE);
    ASSERT(strcmp(err, "training data has 64 tokens; need at least T+1 = 65 for context 64") == 0);
    ASSERT_EQ_INT(data_val_init(&v, tok, 10, 2, 16, 4, "validation data", err), MUON_ERR_SIZE);
    ASSERT(strstr(err, "validation data has 10 tokens"));
    ASSERT_EQ_INT(data_loader_init(&L, tok, 64, 0, 8, 1, "training data", err), MUON_ERR_ARG);
    ASSERT_EQ_INT(data_loader_init(&L, tok, 65, 1, 64, 1, "training data", err), 0);
    data_loader_free(&L);
    free(tok);
}

TEST(data_val_batches_fixed_and_spread)
{
    const int B = 2, T = 4;
    const size_t n = 4 * 40 + 1; /* 40 windows */
    int32_t *tok = counting(n), in[8], tg[8], in2[8], tg2[8];
    ASSERT(tok != NULL);
    data_val v;
    char err[DATA_ERR_LEN];
    ASSERT_EQ_INT(data_val_init(&v, tok, n, B, T, 5, "validation data", err), 0);
    ASSERT_EQ_INT(v.n_batches, 5);
    /* rows k = 0..9 take windows floor(k * 40 / 10) = 0, 4, 8, ..., 36 */
    for (int b = 0; b < v.n_batches; b++) {
        ASSERT_EQ_INT(data_val_batch(&v, b, in, tg), 0);
        ASSERT_EQ_INT(data_val_batch(&v, b, in2, tg2), 0);
        ASSERT(memcmp(in, in2, sizeof in) == 0 && memcmp(tg, tg2, sizeof tg) == 0);
        for (int r = 0; r < B; r++) {
            int k = b * B + r;
            for (int t = 0; t < T; t++) {
                ASSERT_EQ_INT(in[r * T + t], 4 * k * T + t);
                ASSERT_EQ_INT(tg[r * T + t], 4 * k * T + t + 1);
            }
        }
    }
    ASSERT_EQ_INT(data_val_batch(&v, 5, in, tg), MUON_ERR_ARG);
    /* fewer windows than requested batches: every window, once */
    ASSERT_EQ_INT(data_val_init(&v, tok, n, B, T, 1000, "validation data", err), 0);
    ASSERT_EQ_INT(v.n_batches, 20);
    int seen[40] = {0};
    for (int b = 0; b < v.n_batches; b++) {
        ASSERT_EQ_INT(data_val_batch(&v, b, in, tg), 0);
        for (int r = 0; r < B; r++)
            seen[in[r * T] / T]++;
    }
    for (int w = 0; w < 40; w++)
        ASSERT_EQ_INT(seen[w], 1);
    /* fewer windows than one batch: one batch, windows repeat */
    ASSERT_EQ_INT(data_val_init(&v, tok, 2 * T + 1, 4, T, 8, "validation data", err), 0);
    ASSERT_EQ_INT(v.n_batches, 1);
    free(tok);
}
