/* `muon sample`: generate text from a checkpoint, token by token. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "cli/cli.h"
#include "cli/train_flags.h"
#include "train/train.h"

static const cli_flag flags[] = {
    {"checkpoint", "PATH", CLI_VALUE, "a checkpoint.bin written by muon train (required)"},
    {"prompt", "TEXT", CLI_VALUE, "text to continue (default: a newline)"},
    {"tokens", "N", CLI_VALUE, "tokens to generate (default 200)"},
    {"temperature", "X", CLI_VALUE, "0 = greedy (default 0.8)"},
    {"seed", "S", CLI_VALUE, "sampling seed (default 1)"},
    {"threads", "N", CLI_VALUE, "threads (default: all cores)"},
    {"bpe-dir", "DIR", CLI_VALUE, "GPT-2's encoder.json and vocab.bpe (default: the checkpoint's)"},
};
#define N_FLAGS ((int)(sizeof flags / sizeof flags[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: muon sample --checkpoint DIR/checkpoint.bin [flags]\n\nflags:\n");
    cli_print_flags(f, flags, N_FLAGS);
}

/* splitmix64 -> uniform [0, 1) */
static double next_uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

/* Pick a token from logits at a temperature (0: the most likely). */
static int32_t pick(const float *logits, int V, double temp, uint64_t *rng)
{
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best])
            best = i;
    if (temp <= 0)
        return best;
    double sum = 0, u;
    for (int i = 0; i < V; i++)
        sum += exp((logits[i] - logits[best]) / temp);
    u = next_uniform(rng) * sum;
    for (int i = 0; i < V; i++) {
        u -= exp((logits[i] - logits[best]) / temp);
        if (u <= 0)
            return i;
    }
    return best;
}

static int generate(const train_ckpt *ck, const char *bpe_dir, const char *prompt, long n_tokens,
                    double temp, uint64_t seed)
{
    const train_config *c = &ck->cfg;
    tok_tokenizer tok;
    char err[TOK_ERR_LEN];
    if (!bpe_dir)
        bpe_dir = c->bpe_dir;
    if (c->tokenizer == TOK_GPT2 && !bpe_dir[0]) {
        fprintf(stderr, "muon sample: the checkpoint was trained on GPT-2 token ids (llm.c "
                        "shards) without the BPE files; give --bpe-dir DIR with encoder.json "
                        "and vocab.bpe to print text\n");
        return 1;
    }
    if (c->tokenizer == TOK_GPT2) {
        if (tok_load_gpt2_dir(&tok, bpe_dir, err)) {
            fprintf(stderr, "muon sample: %s\n", err);
            return 1;
        }
    } else
        tok_init_byte(&tok);
    int32_t *ids = NULL;
    size_t n = 0;
    /* without a prompt, start from a newline as the tokenizer encodes it
     * (GPT-2's newline is id 198; id 10 is '+') */
    const char *start = *prompt ? prompt : "\n";
    if (tok_encode(&tok, start, strlen(start), 1, &ids, &n, err)) {
        fprintf(stderr, "muon sample: %s\n", err);
        tok_free(&tok);
        return 1;
    }
    gpt_model *m = NULL;
    int T = c->model.context;
    int32_t *window = malloc(sizeof(int32_t) * (size_t)T);
    if (gpt_create(&c->model, 1, &m) != MUON_OK || !window) {
        fprintf(stderr, "muon sample: cannot build the model\n");
        free(ids);
        free(window);
        tok_free(&tok);
        return 1;
    }
    memcpy(gpt_params(m), ck->params, ck->n_params * sizeof(float));
    fwrite(prompt, 1, strlen(prompt), stdout);
    uint64_t rng = seed;
    /* the context window slides over prompt + generated tokens */
    size_t total = n, cap = n + (size_t)n_tokens + 1;
    int32_t *seq = malloc(sizeof(int32_t) * cap);
    if (n)
        memcpy(seq, ids, sizeof(int32_t) * n);
    else
        seq[total++] = 0; /* not reached: "\n" encodes to one token or more */
    for (long k = 0; k < n_tokens; k++) {
        int len = total > (size_t)T ? T : (int)total;
        memcpy(window, seq + total - (size_t)len, sizeof(int32_t) * (size_t)len);
        gpt_forward(m, window, NULL, 1, len);
        const float *logits = gpt_logits(m) + (size_t)(len - 1) * (size_t)tok.vocab_size;
        int32_t next = pick(logits, tok.vocab_size, temp, &rng);
        seq[total++] = next;
        const char *bytes;
        size_t blen;
        if (tok_token_bytes(&tok, next, &bytes, &blen) == 0)
            fwrite(bytes, 1, blen, stdout);
        fflush(stdout);
    }
    printf("\n");
    free(seq);
    free(window);
    free(ids);
    gpt_free(m);
    tok_free(&tok);
    return 0;
}

int cli_sample(int argc, char **argv)
{
    cli_args a;
    int rc = cli_args_parse(&a, "muon sample", flags, N_FLAGS, 0, argc, argv);
    if (rc)
        return rc;
    if (a.help) {
        usage(stdout);
        cli_args_free(&a);
        return 0;
    }
    const char *path;
    long n_tokens, seed;
    double temp;
    int threads;
    if ((rc = cli_require_str(&a, "checkpoint", &path)) ||
        (rc = cli_get_long(&a, "tokens", 200, 0, 1000000, &n_tokens)) ||
        (rc = cli_get_double(&a, "temperature", 0.8, 0, 100, &temp)) ||
        (rc = cli_get_long(&a, "seed", 1, 0, 0x7fffffffffffffffL, &seed)) ||
        (rc = cli_get_int(&a, "threads", 0, 0, 1024, &threads))) {
        cli_args_free(&a);
        return rc;
    }
    const char *prompt = cli_get_str(&a, "prompt", "");
    if (threads > 0)
        omp_set_num_threads(threads);
    muon_set_blas_threads(threads);
    train_ckpt ck;
    char err[TRAIN_ERR_LEN];
    if (train_ckpt_load(path, &ck, err, sizeof err)) {
        fprintf(stderr, "muon sample: %s\n", err);
        cli_args_free(&a);
        return 1;
    }
    rc = generate(&ck, cli_get_str(&a, "bpe-dir", NULL), prompt, n_tokens, temp, (uint64_t)seed);
    train_ckpt_free(&ck);
    cli_args_free(&a);
    return rc;
}
