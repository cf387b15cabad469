/* GPT-2's pre-tokenizer, by hand. encoder.py splits text with the regex
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * tried left to right at each position. Below, each alternative is one
 * branch in the same order; the classes come from unicode.c. Invalid UTF-8
 * bytes count as one punctuation-class character each, so no byte is lost. */
#include <stddef.h>

#include "data/tokenizer.h"
#include "data/unicode.h"

enum { CL_LETTER, CL_NUMBER, CL_SPACE, CL_OTHER };

static int classify(uint32_t cp)
{
    if (tok_is_letter(cp))
        return CL_LETTER;
    if (tok_is_number(cp))
        return CL_NUMBER;
    if (tok_is_space(cp))
        return CL_SPACE;
    return CL_OTHER;
}

/* class of the character at i and its width in bytes */
static int class_at(const unsigned char *s, size_t len, size_t i, size_t *width, uint32_t *cp)
{
    uint32_t c;
    *width = tok_utf8_decode(s + i, len - i, &c);
    if (cp)
        *cp = c;
    return classify(c);
}

/* end of the run of characters of class cl starting at i (s[i] is in it) */
static size_t run_end(const unsigned char *s, size_t len, size_t i, int cl)
{
    while (i < len) {
        size_t w;
        if (class_at(s, len, i, &w, NULL) != cl)
            break;
        i += w;
    }
    return i;
}

/* length of a contraction ('s 't 're 've 'm 'll 'd) at i, or 0 */
static size_t contraction(const unsigned char *s, size_t len, size_t i)
{
    if (s[i] != '\'' || i + 1 >= len)
        return 0;
    unsigned char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 < len) {
        unsigned char b = s[i + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
            return 3;
    }
    return 0;
}

/* length of the piece starting at i (i < len) */
static size_t piece_at(const unsigned char *s, size_t len, size_t i)
{
    size_t n = contraction(s, len, i);
    if (n)
        return n;
    size_t w;
    uint32_t cp;
    int cl = class_at(s, len, i, &w, &cp);
    /* " ?X+" for X in letters, numbers, other: the optional space is a
     * literal ' ' only, and the run must have at least one character */
    size_t j = i;
    if (cp == ' ' && i + 1 < len) {
        size_t w2;
        int cl2 = class_at(s, len, i + 1, &w2, NULL);
        if (cl2 != CL_SPACE) {
            j = i + 1;
            cl = cl2;
        }
    }
    if (cl != CL_SPACE)
        return run_end(s, len, j, cl) - i;
    /* white space: "\s+(?!\S)" keeps the run but, when a non-space follows,
     * gives its last character back (so " word" stays together); if that
     * leaves nothing, "\s+" takes the whole run */
    size_t k = i, last = i;
    while (k < len) {
        size_t wk;
        if (class_at(s, len, k, &wk, NULL) != CL_SPACE)
            break;
        last = k;
        k += wk;
    }
    if (k == len || last == i)
        return k - i;
    return last - i;
}

int tok_gpt2_pretokenize(const char *text, size_t len,
                         int (*fn)(const char *piece, size_t n, void *ctx), void *ctx)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        size_t n = piece_at(s, len, i);
        int rc = fn(text + i, n, ctx);
        if (rc)
            return rc;
        i += n;
    }
    return 0;
}
