/* GPT-2 BPE internals shared by tokenizer.c and bpe.c. */
#ifndef TOK_BPE_H
#define TOK_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"

/* Load the two files into a new tok_bpe (*out); returns a muon_status. */
int tok_bpe_load(const char *encoder_json, const char *vocab_bpe, tok_bpe **out,
                 int *vocab_size, int *eot_id, char *err);
void tok_bpe_free(tok_bpe *b);

/* Append the ids of text[0..len) (no special tokens) to the growing array
 * *ids (capacity *cap, count *n). Returns a muon_status. */
int tok_bpe_encode(const tok_bpe *b, const char *text, size_t len, int32_t **ids, size_t *n,
                   size_t *cap);

/* Bytes of token id (0 <= id < vocab size). */
void tok_bpe_token(const tok_bpe *b, int32_t id, const char **bytes, size_t *len);

#endif
