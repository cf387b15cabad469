/* GPT-2 BPE files (tok_load_gpt2): the input is encoder.json followed by
 * vocab.bpe, split where "#version" first appears (vocab.bpe's first line);
 * without it all of the input is encoder.json and vocab.bpe is empty. A
 * vocabulary that loads must encode the input itself losslessly, with and
 * without the special token. */
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char mark[] = "#version";
    size_t split = size;
    for (size_t i = 0; i + sizeof mark - 1 <= size; i++)
        if (!memcmp(data + i, mark, sizeof mark - 1)) {
            split = i;
            break;
        }
    const char *enc = fz_file(0, data, split);
    const char *voc = fz_file(1, data + split, size - split);
    tok_tokenizer t;
    char err[TOK_ERR_LEN];
    if (tok_load_gpt2(&t, enc, voc, err) != 0)
        return 0;
    if (t.vocab_size < 256 || t.eot_id >= t.vocab_size)
        fz_fail("a loaded BPE has an impossible vocabulary size or special id");
    fz_check_round_trip(&t, (const char *)data, size, 0);
    fz_check_round_trip(&t, (const char *)data, size, 1);
    tok_free(&t);
    return 0;
}
