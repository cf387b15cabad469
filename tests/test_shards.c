/* llm.c token shards as llm.c users have them: a glob of train shards with
 * their _val siblings, GPT-2's vocabulary taken from the shards without the
 * BPE files, which are needed only to print text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "harness.h"
#include "testutil.h"
#include "train/train.h"

static void write_shard(const char *dir, const char *name, int32_t first, size_t n)
{
    char p[800], err[DATA_ERR_LEN];
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (first + (int32_t)i * 97) % 50257;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int rc = data_shard_write(p, ids, n, err);
    free(ids);
    if (rc)
        printf("    %s\n", err);
}

TEST(shards_glob_with_val_siblings)
{
    const char *d = tu_tmpdir();
    write_shard(d, "web_train_000002.bin", 300, 100);
    write_shard(d, "web_train_000001.bin", 200, 100);
    write_shard(d, "web_val_000000.bin", 100, 50);
    write_shard(d, "other_train_000000.bin", 900, 30);
    tok_tokenizer tok;
    tok_init_gpt2_ids(&tok);
    ASSERT_EQ_INT(tok.vocab_size, 50257);
    char pat[700], err[DATA_ERR_LEN];
    snprintf(pat, sizeof pat, "%s/web_train_*.bin", d);
    ASSERT(data_path_is_shards(pat));
    data_set ds;
    ASSERT_OK(data_load(pat, &tok, DATA_VAL_FRACTION, &ds, err));
    /* both train shards in name order, the _val one as validation, the
     * shard the pattern does not match left out */
    ASSERT(ds.from_shards && ds.val_is_separate);
    ASSERT_EQ_INT((long)ds.train.n, 200);
    ASSERT_EQ_INT((long)ds.val.n, 50);
    ASSERT_EQ_INT(ds.train.ids[0], 200);
    ASSERT_EQ_INT(ds.train.ids[100], 300);
    ASSERT_EQ_INT(ds.val.ids[0], 100);
    data_set_free(&ds);
    /* a pattern without _train: matches split by name */
    snprintf(pat, sizeof pat, "%s/web_*.bin", d);
    ASSERT_OK(data_load(pat, &tok, DATA_VAL_FRACTION, &ds, err));
    ASSERT_EQ_INT((long)ds.train.n, 200);
    ASSERT_EQ_INT((long)ds.val.n, 50);
    data_set_free(&ds);
    /* nothing matched; a match that is not a shard; ids past the byte
     * tokenizer's vocabulary */
    snprintf(pat, sizeof pat, "%s/none_*.bin", d);
    ASSERT_STATUS(data_load(pat, &tok, DATA_VAL_FRACTION, &ds, err), MUON_ERR_IO);
    ASSERT(strstr(err, "no file matches"));
    char p[800];
    snprintf(p, sizeof p, "%s/notes.txt", d);
    ASSERT(tu_write_file(p, "x", 1) == 0);
    snprintf(pat, sizeof pat, "%s/*", d);
    ASSERT_STATUS(data_load(pat, &tok, DATA_VAL_FRACTION, &ds, err), MUON_ERR_FORMAT);
    ASSERT(strstr(err, "not an llm.c .bin shard"));
    tok_tokenizer byte;
    tok_init_byte(&byte);
    snprintf(pat, sizeof pat, "%s/web_train_*.bin", d);
    ASSERT_STATUS(data_load(pat, &byte, DATA_VAL_FRACTION, &ds, err), MUON_ERR_FORMAT);
    ASSERT(!data_path_is_shards(p));
    ASSERT(data_path_is_shards(d)); /* a directory holding .bin files */
}

TEST(shards_gpt2_ids_without_bpe_files)
{
    tok_tokenizer t;
    tok_init_gpt2_ids(&t);
    ASSERT_EQ_INT(t.eot_id, 50256);
    int32_t *ids = NULL;
    size_t n = 0;
    char err[TOK_ERR_LEN], *text = NULL;
    ASSERT_STATUS(tok_encode(&t, "hello", 5, 0, &ids, &n, err), MUON_ERR_STATE);
    ASSERT(strstr(err, "--bpe-dir"));
    int32_t some[2] = {15496, 50256};
    ASSERT_STATUS(tok_decode(&t, some, 2, &text, &n, err), MUON_ERR_STATE);
    ASSERT(text == NULL && strstr(err, "BPE"));
    tok_free(&t);
}

static int built(void)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/muon", tu_build_dir());
    return stat(p, &st) == 0;
}

TEST(shards_train_takes_gpt2_vocab_from_shards)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_shard(d, "fw_train_000000.bin", 7, 3000);
    write_shard(d, "fw_val_000000.bin", 11, 1000);
    char cmd[2048], *out = NULL, *bd = realpath(tu_build_dir(), NULL);
    ASSERT(bd);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s/muon' train --data 'fw_train_*.bin' --out run --layers 1 --dim 16 "
             "--heads 2 --context 16 --batch 4 --steps 3 --quiet --threads 1",
             d, bd);
    free(bd);
    int rc = tu_run(cmd, &out);
    if (rc)
        printf("    %s", out ? out : "");
    free(out);
    ASSERT_EQ_INT(rc, 0);
    char p[800], err[TRAIN_ERR_LEN];
    snprintf(p, sizeof p, "%s/run/checkpoint.bin", d);
    train_ckpt ck;
    ASSERT(train_ckpt_load(p, &ck, err, sizeof err) == 0);
    int vocab = ck.cfg.model.vocab, kind = ck.cfg.tokenizer;
    train_ckpt_free(&ck);
    ASSERT_EQ_INT(vocab, 50257);
    ASSERT_EQ_INT(kind, TOK_GPT2);
    /* text needs the files: sampling without them says so */
    snprintf(cmd, sizeof cmd, "'%s/muon' sample --checkpoint '%s' --tokens 3", tu_build_dir(), p);
    ASSERT_EQ_INT(tu_run(cmd, &out), 1);
    ASSERT(out && strstr(out, "--bpe-dir"));
    free(out);
    /* and so does GPT-2 on text, before any file is written */
    snprintf(p, sizeof p, "%s/t.txt", d);
    ASSERT(tu_write_file(p, "some text\n", 10) == 0);
    snprintf(cmd, sizeof cmd, "'%s/muon' train --data '%s' --out '%s/t' --tokenizer gpt2",
             tu_build_dir(), p, d);
    ASSERT_EQ_INT(tu_run(cmd, &out), 2);
    ASSERT(out && strstr(out, "--bpe-dir"));
    free(out);
    snprintf(cmd, sizeof cmd, "test ! -e '%s/t'", d);
    ASSERT_EQ_INT(tu_run(cmd, NULL), 0);
}
