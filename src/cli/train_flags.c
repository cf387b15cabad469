/* Reading the trainer's flags. One table of common flags; train and compare
 * each add their own. */
#include "cli/train_flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/family_flags.h"

#define COMMON_FLAGS                                                                          \
    {"data", "PATH", CLI_VALUE, "text file or directory, llm.c .bin shards or a glob of them (required unless resuming)"}, \
    {"out", "DIR", CLI_VALUE, "output directory, created if missing (required unless resuming)"},  \
    {"steps", "N", CLI_VALUE, "total training steps; schedules span them (default 400)"},     \
    {"batch", "B", CLI_VALUE, "sequences per step (default 16)"},                             \
    {"context", "T", CLI_VALUE, "tokens per sequence (default 128)"},                         \
    {"layers", "L", CLI_VALUE, "transformer blocks (default 4)"},                             \
    {"dim", "D", CLI_VALUE, "model width (default 128)"},                                     \
    {"heads", "H", CLI_VALUE, "attention heads; D/H must be even (default 4)"},               \
    {"weight-decay", "X", CLI_VALUE, "decoupled weight decay (default 0; see adam-weight-decay)"},\
    {"schedule", "S", CLI_VALUE, "constant | cosine | wsd (default wsd)"},                    \
    {"warmup", "N", CLI_VALUE, "linear warmup steps (default 20, capped at steps/5)"},       \
    {"min-lr-ratio", "X", CLI_VALUE, "final lr / peak lr for cosine and wsd (default 0)"},    \
    {"eval-every", "N", CLI_VALUE, "validation loss every N steps (default 25)"},             \
    {"eval-batches", "N", CLI_VALUE, "validation batches per evaluation (default 8)"},        \
    {"seed", "S", CLI_VALUE, "seed of initialisation and data order (default 1)"},            \
    {"threads", "N", CLI_VALUE, "threads (default: all cores)"},                              \
    {"tokenizer", "K", CLI_VALUE, "byte | gpt2 (default byte; gpt2 for llm.c shards)"},       \
    {"bpe-dir", "DIR", CLI_VALUE, "encoder.json and vocab.bpe (required by gpt2 on text; optional for shards)"}, \
    {"coeffs", "C", CLI_VALUE, "Newton-Schulz coefficients (default polar-express)"},         \
    {"ns-steps", "Q", CLI_VALUE, "Newton-Schulz steps (default 5)"},                          \
    {"ortho-method", "M", CLI_VALUE, "auto | ns | gram-ns | svd (default auto)"},             \
    {"precision", "P", CLI_VALUE, "fp32 | mixed | auto: bf16 matrix-product operands where faster (default auto)"},\
    {"restarts", "LIST", CLI_VALUE, "Gram NS restarts: steps (e.g. 3) or none (default 3)"},   \
    {"momentum", "X", CLI_VALUE, "Muon momentum (default 0.95)"},                             \
    {"quiet", NULL, CLI_SWITCH, "no progress output"}

const cli_flag cli_train_flag_table[] = {
    COMMON_FLAGS,
    FAMILY_FLAGS,
    {"optim", "O", CLI_VALUE, "muon (hybrid: Muon + AdamW) | adamw | sgdm | scale | fmuon | "
                              "smuon | fanion-k | muonall | adamw-muon (default muon)"},
    {"lr", "X", CLI_VALUE, "learning rate (both groups; default 0.016 for the Muon rules, "
                           "0.004 for adamw and scale, 0.1 for sgdm)"},
    {"adam-lr", "X", CLI_VALUE, "learning rate of the hybrid's AdamW group (default: --lr)"},
    {"stop-at", "K", CLI_VALUE, "stop after step K with a checkpoint, as an interruption (default: run to --steps)"},
    {"resume", "CKPT", CLI_VALUE, "continue from a checkpoint to --steps; auto: the newest complete one in "
                                  "--out DIR, or a new run if there is none (default: a fresh run)"},
    {"checkpoint-every", "N", CLI_VALUE, "also write DIR/checkpoint-STEP.bin every N steps (default 0: by time only)"},
    {"checkpoint-minutes", "M", CLI_VALUE, "... and every M minutes of wall time, 0 for never (default 10)"},
    {"keep-checkpoints", "K", CLI_VALUE, "periodic checkpoints kept, the newest (default 3)"},
    {"on-nonfinite", "A", CLI_VALUE, "skip | abort: a step with a NaN/Inf loss or gradient (default skip)"},
    {"max-skips", "N", CLI_VALUE, "skipped steps allowed before the run ends as diverged (default 10)"},
    {"fault-nan-at", "LIST", CLI_VALUE, "testing aid: make the gradient NaN at these steps, e.g. 4,7 (default none)"},
    {"dist", "MODE", CLI_VALUE, "under mpirun: ddp | zero1 | owner, docs/distributed.md (default: one process)"},
    {"dist-gather", "P", CLI_VALUE, "zero1: all-gather the Muon input in fp32 | bf16 (default fp32)"},
    {"no-overlap", NULL, CLI_SWITCH, "--dist: wait for each collective (to measure the overlap)"},
    {"dist-timeout", "S", CLI_VALUE, "--dist: a rank without progress for S seconds ends the job (0: wait; default 600)"},
};
const int cli_train_flag_count = (int)(sizeof cli_train_flag_table / sizeof cli_train_flag_table[0]);

const cli_flag cli_compare_flag_table[] = {
    COMMON_FLAGS,
    FAMILY_FLAGS,
    {"preset", "NAME", CLI_VALUE, "moonlight: weight decay 0.1 on both groups, moonlight scale, "
                                  "Nesterov 0.95 (default: none)"},
    {"lr-grid", "LIST", CLI_VALUE, "rates swept for both optimizers (default 0.002,0.004,0.008,0.016,0.032)"},
    {"sweep-steps", "N", CLI_VALUE, "steps of each sweep run (default --steps/4)"},
    {"seeds", "N", CLI_VALUE, "final runs per optimizer, seeds S, S+1, ... (default 3)"},
};
const int cli_compare_flag_count =
    (int)(sizeof cli_compare_flag_table / sizeof cli_compare_flag_table[0]);

static int copy_path(const cli_args *a, const char *flag, const char *v, char *dst, size_t cap)
{
    if (strlen(v) >= cap)
        return cli_usage_error(a, "--%s is too long", flag);
    snprintf(dst, cap, "%s", v);
    return 0;
}

/* Checkpoint cadence and the handling of non-finite steps: run-time
 * choices, taken from this command line even on a resume. */
static int read_safety_flags(const cli_args *a, train_config *c)
{
    int rc;
    if ((rc = cli_get_long(a, "checkpoint-every", c->checkpoint_every, 0, 1000000000,
                           &c->checkpoint_every)) ||
        (rc = cli_get_double(a, "checkpoint-minutes", c->checkpoint_minutes, 0, 1e7,
                             &c->checkpoint_minutes)) ||
        (rc = cli_get_int(a, "keep-checkpoints", c->keep_checkpoints, 1, 100000,
                          &c->keep_checkpoints)) ||
        (rc = cli_get_long(a, "max-skips", c->max_skips, 0, 1000000000, &c->max_skips)))
        return rc;
    const char *s = cli_get_str(a, "on-nonfinite", NULL);
    if (s && strcmp(s, "skip") && strcmp(s, "abort"))
        return cli_usage_error(a, "--on-nonfinite must be skip or abort, got '%s'", s);
    if (s)
        c->nonfinite_abort = !strcmp(s, "abort");
    if ((s = cli_get_str(a, "fault-nan-at", NULL))) {
        c->n_nan_at = 0;
        for (const char *p = s; *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p || v < 1 || c->n_nan_at == 8 || (*end && *end != ','))
                return cli_usage_error(a, "--fault-nan-at takes up to 8 steps >= 1 separated by "
                                          "commas, got '%s'", s);
            c->nan_at[c->n_nan_at++] = v;
            p = *end ? end + 1 : end;
        }
    }
    return 0;
}

int cli_train_config_from_args(const cli_args *a, train_flags_mode mode, train_config *out,
                               const char **resume)
{
    train_config c = train_config_default();
    *resume = NULL;
    int rc;
    static char latest[TRAIN_PATH_MAX + 32];
    const char *want = mode == TRAIN_FLAGS_TRAIN ? cli_get_str(a, "resume", NULL) : NULL;
    if (want && !strcmp(want, "auto")) {
        const char *dir = cli_get_str(a, "out", NULL);
        long at = 0;
        char err[TRAIN_ERR_LEN];
        if (!dir)
            return cli_usage_error(a, "--resume auto needs --out DIR, the run's directory");
        if (train_find_latest(dir, latest, sizeof latest, &at, err, sizeof err) == 0) {
            want = latest;
            if (!cli_count(a, "quiet"))
                fprintf(stderr, "%s: resuming %s (step %ld)\n", a->prog, latest, at);
        } else {
            want = NULL;
            if (!cli_count(a, "quiet"))
                fprintf(stderr, "%s: no checkpoint in %s: a new run\n", a->prog, dir);
        }
    }
    if (want) {
        *resume = want;
        train_ckpt ck;
        char err[TRAIN_ERR_LEN];
        if (train_ckpt_load(*resume, &ck, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", a->prog, err);
            return 1;
        }
        c = ck.cfg;
        train_ckpt_free(&ck);
        /* by default a resumed run writes beside its checkpoint */
        snprintf(c.out_dir, sizeof c.out_dir, "%s", *resume);
        char *slash = strrchr(c.out_dir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(c.out_dir, sizeof c.out_dir, ".");
    }
    const char *s;
    if ((s = cli_get_str(a, "data", NULL)) && (rc = copy_path(a, "data", s, c.data, sizeof c.data)))
        return rc;
    if ((s = cli_get_str(a, "out", NULL)) &&
        (rc = copy_path(a, "out", s, c.out_dir, sizeof c.out_dir)))
        return rc;
    if (!c.data[0])
        return cli_usage_error(a, "--data is required (a text file, directory or shards)");
    if (!c.out_dir[0])
        return cli_usage_error(a, "--out is required");
    long steps = c.steps, stop = 0, warm = c.warmup, every = c.eval_every;
    if ((rc = cli_get_long(a, "steps", c.steps, 1, 100000000, &steps)) ||
        (rc = cli_get_int(a, "batch", c.batch, 1, 4096, &c.batch)) ||
        (rc = cli_get_int(a, "context", c.model.context, 1, 1 << 20, &c.model.context)) ||
        (rc = cli_get_int(a, "layers", c.model.layers, 1, 1024, &c.model.layers)) ||
        (rc = cli_get_int(a, "dim", c.model.dim, 2, 1 << 16, &c.model.dim)) ||
        (rc = cli_get_int(a, "heads", c.model.heads, 1, 1024, &c.model.heads)) ||
        (rc = cli_get_double(a, "weight-decay", c.weight_decay, 0, 10, &c.weight_decay)) ||
        (rc = cli_get_long(a, "warmup", c.warmup, 0, 100000000, &warm)) ||
        (rc = cli_get_double(a, "min-lr-ratio", c.min_lr_ratio, 0, 1, &c.min_lr_ratio)) ||
        (rc = cli_get_long(a, "eval-every", c.eval_every, 1, 100000000, &every)) ||
        (rc = cli_get_int(a, "eval-batches", c.eval_batches, 1, 10000, &c.eval_batches)) ||
        (rc = cli_get_int(a, "threads", c.threads, 0, 1024, &c.threads)) ||
        (rc = cli_get_double(a, "momentum", c.momentum, 0, 0.9999, &c.momentum)))
        return rc;
    c.steps = steps;
    /* the default warmup shrinks with short runs; an explicit one must fit.
     * A resumed run keeps its checkpoint's warmup: shrinking it would change
     * the schedule mid-run and break the bit-identical resume. */
    if (!cli_count(a, "warmup") && !*resume && warm > steps / 5)
        warm = steps / 5;
    c.warmup = warm;
    c.eval_every = every;
    long seed = (long)c.seed;
    if ((rc = cli_get_long(a, "seed", (long)c.seed, 0, 0x7fffffffffffffffL, &seed)))
        return rc;
    c.seed = (uint64_t)seed;
    if ((s = cli_get_str(a, "schedule", NULL)) && muon_schedule_parse(s, &c.schedule))
        return cli_usage_error(a, "--schedule must be constant, cosine or wsd, got '%s'", s);
    if ((s = cli_get_str(a, "tokenizer", NULL)) && tok_kind_parse(s, &c.tokenizer))
        return cli_usage_error(a, "--tokenizer must be byte or gpt2, got '%s'", s);
    if ((s = cli_get_str(a, "bpe-dir", NULL)) &&
        (rc = copy_path(a, "bpe-dir", s, c.bpe_dir, sizeof c.bpe_dir)))
        return rc;
    if ((s = cli_get_str(a, "coeffs", NULL)) && muon_coeffs_parse(s, &c.ortho))
        return cli_usage_error(a, "--coeffs must be keller, quintic5, polar-express or "
                                  "taylor-K (K = 1..5), got '%s'", s);
    if ((s = cli_get_str(a, "ortho-method", NULL)) && muon_ortho_method_parse(s, &c.ortho.method))
        return cli_usage_error(a, "--ortho-method must be auto, ns, gram-ns or svd, got '%s'", s);
    if ((rc = cli_get_int(a, "ns-steps", c.ortho.steps ? c.ortho.steps : 5, 1, 100,
                          &c.ortho.steps)))
        return rc;
    if ((rc = cli_get_precision(a, &c.ortho.precision)))
        return rc;
    if (c.ortho.precision == MUON_PRECISION_MIXED && c.ortho.method == MUON_ORTHO_SVD)
        return cli_usage_error(a, "--precision mixed cannot be combined with --ortho-method svd");
    if ((rc = cli_get_restarts(a, &c.ortho)))
        return rc;
    if (cli_count(a, "quiet"))
        c.progress = TRAIN_PROGRESS_QUIET;
    if (mode == TRAIN_FLAGS_COMPARE && (rc = cli_compare_preset(a, &c)))
        return rc;
    if ((rc = cli_family_flags_read(a, &c)))
        return rc;
    if (mode == TRAIN_FLAGS_TRAIN) {
        if ((s = cli_get_str(a, "optim", NULL)) && muon_algo_parse(s, &c.optim))
            return cli_usage_error(a, "--optim must be muon, adamw, sgdm, scale, fmuon, smuon, "
                                      "fanion-k, muonall or adamw-muon, got '%s'", s);
        /* Default rates: train_default_lr (docs/cli.md); a resume keeps its own */
        if (!*resume)
            c.lr = c.adam_lr = train_default_lr(c.optim);
        if ((rc = cli_get_double(a, "lr", c.lr, 1e-12, 100, &c.lr)))
            return rc;
        /* the hybrid's AdamW group follows --lr unless given its own */
        double adam_def = cli_count(a, "lr") && !*resume ? c.lr : c.adam_lr;
        if ((rc = cli_get_double(a, "adam-lr", adam_def, 1e-12, 100, &c.adam_lr)))
            return rc;
        if ((rc = cli_get_long(a, "stop-at", 0, 1, c.steps, &stop)))
            return rc;
        c.stop_at = stop;
        if ((rc = read_safety_flags(a, &c)))
            return rc;
        if ((s = cli_get_str(a, "dist", NULL))) {
            if (strcmp(s, "ddp") && strcmp(s, "zero1") && strcmp(s, "owner"))
                return cli_usage_error(a, "--dist must be ddp, zero1 or owner, got '%s'", s);
            snprintf(c.dist, sizeof c.dist, "%s", s);
        }
        if ((s = cli_get_str(a, "dist-gather", NULL))) {
            if (strcmp(s, "fp32") && strcmp(s, "bf16"))
                return cli_usage_error(a, "--dist-gather must be fp32 or bf16, got '%s'", s);
            c.dist_bf16 = !strcmp(s, "bf16");
        }
        if (cli_count(a, "no-overlap"))
            c.dist_overlap = 0;
        if ((rc = cli_get_double(a, "dist-timeout", c.dist_timeout, 0, 1e7, &c.dist_timeout)))
            return rc;
        if ((c.dist_bf16 || !c.dist_overlap || cli_count(a, "dist-timeout")) && !c.dist[0])
            return cli_usage_error(a, "--dist-gather, --no-overlap and --dist-timeout need --dist");
    }
    if (c.warmup > c.steps)
        return cli_usage_error(a, "--warmup (%ld) must not exceed --steps (%ld)", c.warmup,
                               c.steps);
    if (c.model.dim % c.model.heads != 0 || (c.model.dim / c.model.heads) % 2 != 0)
        return cli_usage_error(a, "--dim (%d) must be a multiple of --heads (%d) with an even "
                                  "head size", c.model.dim, c.model.heads);
    /* llm.c shards hold GPT-2 ids: their vocabulary, BPE files optional */
    if (!cli_count(a, "tokenizer") && !*resume && data_path_is_shards(c.data))
        c.tokenizer = TOK_GPT2;
    if (c.tokenizer == TOK_GPT2 && !c.bpe_dir[0] && !data_path_is_shards(c.data))
        return cli_usage_error(a, "--tokenizer gpt2 on text needs --bpe-dir DIR");
    *out = c;
    return 0;
}
