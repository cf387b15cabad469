/* What the libFuzzer targets in tests/fuzz share: the input as a file for
 * the readers that take a path, the fixed objects some parsers need, and
 * the generators of the seed corpora (gen_seeds.c), so that seeds and
 * targets agree on those objects. Every target is LLVMFuzzerTestOneInput
 * in its own fuzz_NAME.c; `make fuzz` builds and runs them. */
#ifndef MUON_FUZZ_H
#define MUON_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"
#include "muon.h"

/* Replace the contents of file `slot` (0..3, a memfd made on first use)
 * with len bytes and return a path that opens it: /proc/self/fd/N. */
const char *fz_file(int slot, const void *data, size_t len);

/* A per-process directory under $TMPDIR (or /tmp), removed at exit. */
const char *fz_tmpdir(void);

/* A property the parser must keep does not hold: report and abort, which
 * libFuzzer records as a crash with the input that caused it. */
void fz_fail(const char *what) __attribute__((noreturn));

/* Encode then decode len bytes of text with t (special tokens allowed or
 * not): every id must be in the vocabulary and the text must come back. */
void fz_check_round_trip(const tok_tokenizer *t, const char *text, size_t len, int special);

/* The optimizer muon_opt_load_buffer is fuzzed against: three parameters
 * (a 4x3 matrix, a 5x2 embedding, a 3-vector), finalized, with the hybrid
 * (adamw == 0) or AdamW for every parameter. Weights and gradients live in
 * static storage, so the same call always gives the same optimizer. */
muon_opt *fz_make_opt(int adamw);
/* One step with fixed gradients, so the saved state is not all zeros. */
void fz_step_opt(muon_opt *opt);

/* A tiny but valid GPT-2 BPE pair: encoder.json holds the 256 byte tokens,
 * the tokens its merges produce and "<|endoftext|>"; vocab.bpe opens with
 * "#version: 0.2". Both malloc'd, NUL-terminated. */
void fz_tiny_bpe(char **encoder_json, char **vocab_bpe);

#endif
