/* Tokenizers for the trainer: byte-level (the default, no files) and GPT-2
 * byte-level BPE loaded from encoder.json + vocab.bpe. See docs/data.md.
 *
 *     tok_tokenizer tok;
 *     char err[TOK_ERR_LEN];
 *     if (tok_load_gpt2_dir(&tok, "path/to/gpt2", err) != 0) { puts(err); ... }
 *     int32_t *ids; size_t n;
 *     tok_encode(&tok, text, len, 0, &ids, &n, err);     // ids malloc'd
 *     char *back; size_t blen;
 *     tok_decode(&tok, ids, n, &back, &blen, err);        // back malloc'd
 *     free(ids); free(back); tok_free(&tok);
 *
 * Every function returning int returns a muon_status code (0 == MUON_OK) and,
 * on failure, writes a one-line message naming the file or value into err
 * (TOK_ERR_LEN bytes) and changes none of its outputs. */
#ifndef TOK_TOKENIZER_H
#define TOK_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#define TOK_ERR_LEN 256

typedef enum { TOK_BYTE = 0, TOK_GPT2 = 1 } tok_kind;

typedef struct tok_bpe tok_bpe; /* the loaded GPT-2 vocabulary and merges */

typedef struct {
    tok_kind kind;
    int vocab_size; /* 256 for bytes, 50257 for GPT-2 */
    int eot_id;     /* id of "<|endoftext|>" or -1 when there is none */
    tok_bpe *bpe;   /* NULL for TOK_BYTE */
} tok_tokenizer;

/* "byte" / "gpt2" and back. parse returns MUON_ERR_ARG for other names. */
const char *tok_kind_name(tok_kind k);
int tok_kind_parse(const char *name, tok_kind *out);

/* The byte tokenizer: id == byte value, vocab 256, no special token. */
void tok_init_byte(tok_tokenizer *t);

#define TOK_GPT2_VOCAB 50257
/* GPT-2's vocabulary without its BPE files: the ids of llm.c token shards
 * (vocab 50257, "<|endoftext|>" = 50256). It cannot encode or print text:
 * those calls return MUON_ERR_STATE with a message asking for the files. */
void tok_init_gpt2_ids(tok_tokenizer *t);

/* Load GPT-2 BPE. Missing or unreadable file -> MUON_ERR_IO; malformed JSON,
 * ids that are not 0..n-1 exactly once, a key that is not a byte-level token,
 * a version line other than "#version: 0.2", or a merge line that is not two
 * known tokens separated by one space (or that uses a token before a merge
 * produces it, or whose result is not in encoder.json) -> MUON_ERR_FORMAT. */
int tok_load_gpt2(tok_tokenizer *t, const char *encoder_json, const char *vocab_bpe,
                  char *err);
/* The same with dir/encoder.json and dir/vocab.bpe. */
int tok_load_gpt2_dir(tok_tokenizer *t, const char *dir, char *err);
/* Release what a load allocated (safe on a byte tokenizer and twice). */
void tok_free(tok_tokenizer *t);

/* Encode len bytes of text (any bytes; need not be valid UTF-8 or
 * NUL-terminated). *ids is malloc'd by the call (the caller frees it; NULL
 * with *n = 0 for empty text). With allow_special != 0 (GPT-2 only) every
 * "<|endoftext|>" in the text becomes eot_id; otherwise it is encoded as
 * plain text, as GPT-2's encoder.py does. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int allow_special,
               int32_t **ids, size_t *n, char *err);

/* Decode n ids into malloc'd bytes *text (NUL-terminated for convenience;
 * *len excludes the NUL). An id outside [0, vocab_size) -> MUON_ERR_ARG. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, char **text,
               size_t *len, char *err);

/* The bytes of one id, for streaming output while sampling: *bytes points
 * into the tokenizer (valid until tok_free). Concatenating the pieces of a
 * sequence gives exactly tok_decode's output. Bad id -> MUON_ERR_ARG. */
int tok_token_bytes(const tok_tokenizer *t, int32_t id, const char **bytes, size_t *len);

/* GPT-2 pre-tokenization (the regex in docs/data.md): split text into
 * pieces; calls fn(piece_start, piece_len, ctx) for each piece in order and
 * stops early, returning fn's value, when fn returns non-zero. Exposed for
 * tests. */
int tok_gpt2_pretokenize(const char *text, size_t len,
                         int (*fn)(const char *piece, size_t n, void *ctx), void *ctx);

#endif
