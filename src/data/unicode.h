/* UTF-8 decoding and the character classes of GPT-2's pre-tokenizer regex
 * (\p{L}, \p{N}, \s), used by the BPE tokenizer. */
#ifndef TOK_UNICODE_H
#define TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Decode one code point from s[0..len) (len >= 1) into *cp and return the
 * number of bytes it takes. A byte that does not start a valid, shortest-form
 * UTF-8 sequence decodes as one byte with *cp = TOK_CP_INVALID, so every byte
 * string can be walked and no byte is ever lost. */
#define TOK_CP_INVALID 0xFFFFFFFFu
size_t tok_utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* 1 if cp is a letter (\p{L}), a number (\p{N}) or white space (\s) as the
 * Python `regex` module used by GPT-2 classifies it. TOK_CP_INVALID is none
 * of the three (it groups with punctuation). */
int tok_is_letter(uint32_t cp);
int tok_is_number(uint32_t cp);
int tok_is_space(uint32_t cp);

#endif
