/* Training configuration: defaults, validation and a JSON form that
 * checkpoints carry, so a checkpoint says exactly how it was made. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "train/family.h"
#include "train/train.h"

train_config train_config_default(void)
{
    train_config c;
    memset(&c, 0, sizeof c);
    c.tokenizer = TOK_BYTE;
    c.model = gpt_config_default();
    c.batch = 16;
    c.optim = MUON_ALGO_MUON;
    c.lr = TRAIN_DEFAULT_MUON_LR;
    c.adam_lr = TRAIN_DEFAULT_MUON_LR;
    c.weight_decay = 0.0;
    c.momentum = 0.95;
    c.adam_beta1 = 0.9;
    c.adam_beta2 = 0.95;
    c.ortho = muon_ortho_config_default();
    c.schedule = MUON_SCHED_WSD;
    c.warmup = 20;
    c.min_lr_ratio = 0.0;
    c.steps = 400;
    c.stop_at = 0;
    c.eval_every = 25;
    c.eval_batches = 8;
    c.seed = 1;
    c.threads = 0;
    c.progress = TRAIN_PROGRESS_AUTO;
    c.checkpoint_every = 0;
    c.checkpoint_minutes = 10;
    c.keep_checkpoints = 3;
    c.nonfinite_abort = 0;
    c.max_skips = 10;
    muon_opt_config oc = muon_opt_config_default();
    c.adam_weight_decay = c.weight_decay;
    c.scale = oc.scale;
    c.nesterov = oc.nesterov;
    c.spectrum_power = oc.spectrum_power;
    c.fanion_alpha = oc.fanion_alpha;
    c.sign_scale = oc.sign_scale;
    c.fanion_k = oc.fanion_k;
    c.decay_shape = MUON_DECAY_LINEAR;
    c.dist_overlap = 1;
    c.dist_timeout = 600;
    return c;
}

int train_config_validate(const train_config *c, char *err, size_t errcap)
{
    const char *why = NULL;
    if (!c->data[0])
        why = "--data is required";
    else if (!c->out_dir[0])
        why = "--out is required";
    else if (c->batch < 1 || c->batch > 4096)
        why = "--batch must be in 1..4096";
    else if (c->steps < 1)
        why = "--steps must be >= 1";
    else if (c->stop_at < 0 || c->stop_at > c->steps)
        why = "--stop-at must be between 1 and --steps";
    else if (!(c->lr > 0 && isfinite(c->lr)) || !(c->adam_lr > 0 && isfinite(c->adam_lr)))
        why = "learning rates must be positive and finite";
    else if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)) ||
             !(c->adam_weight_decay >= 0 && isfinite(c->adam_weight_decay)))
        why = "--weight-decay and --adam-weight-decay must be >= 0";
    else if (!(c->momentum >= 0 && c->momentum < 1))
        why = "--momentum must be in [0, 1)";
    else if (c->warmup < 0 || c->warmup > c->steps)
        why = "--warmup must be between 0 and --steps";
    else if (c->checkpoint_every < 0 || !(c->checkpoint_minutes >= 0) || c->keep_checkpoints < 1)
        why = "--checkpoint-every and --checkpoint-minutes must be >= 0, --keep-checkpoints >= 1";
    else if (c->max_skips < 0)
        why = "--max-skips must be >= 0";
    else if (!(c->min_lr_ratio >= 0 && c->min_lr_ratio <= 1))
        why = "--min-lr-ratio must be in [0, 1]";
    else if (c->eval_every < 1)
        why = "--eval-every must be >= 1";
    else if (c->eval_batches < 1 || c->eval_batches > 10000)
        why = "--eval-batches must be in 1..10000";
    else if (c->threads < 0 || c->threads > 1024)
        why = "--threads must be in 0..1024";
    else if (c->tokenizer == TOK_GPT2 && !c->bpe_dir[0] && !data_path_is_shards(c->data))
        why = "--tokenizer gpt2 on text needs --bpe-dir DIR (with encoder.json and vocab.bpe)";
    if (!why && gpt_config_validate(&c->model) != MUON_OK)
        why = "model shape invalid: --layers, --dim, --heads, --context must be >= 1, "
              "--dim divisible by --heads, and --dim/--heads even";
    if (!why && muon_ortho_config_validate(&c->ortho) != MUON_OK)
        why = "orthogonalization options invalid";
    if (!why && c->optim == MUON_ALGO_ADAMW_MUON && c->schedule != MUON_SCHED_WSD)
        why = "--optim adamw-muon switches to Muon where wsd's decay starts: it needs "
              "--schedule wsd";
    muon_opt_config oc = train_opt_config(c);
    if (!why && muon_opt_config_validate(&oc) != MUON_OK)
        why = "optimizer options invalid (--scale, --spectrum-power in [0, 8], --fanion-k >= 1, "
              "--fanion-alpha in [0, 1], --sign-scale >= 0)";
    if (why) {
        snprintf(err, errcap, "%s", why);
        return -1;
    }
    return 0;
}

char *train_config_to_json(const train_config *c)
{
    cJSON *o = cJSON_CreateObject();
    char coeffs[32];
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddStringToObject(o, "tokenizer", tok_kind_name(c->tokenizer));
    cJSON_AddStringToObject(o, "bpe_dir", c->bpe_dir);
    cJSON_AddNumberToObject(o, "vocab", c->model.vocab);
    cJSON_AddNumberToObject(o, "context", c->model.context);
    cJSON_AddNumberToObject(o, "layers", c->model.layers);
    cJSON_AddNumberToObject(o, "dim", c->model.dim);
    cJSON_AddNumberToObject(o, "heads", c->model.heads);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddStringToObject(o, "optim", muon_algo_name(c->optim));
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddNumberToObject(o, "adam_lr", c->adam_lr);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(o, "momentum", c->momentum);
    cJSON_AddNumberToObject(o, "adam_beta1", c->adam_beta1);
    cJSON_AddNumberToObject(o, "adam_beta2", c->adam_beta2);
    cJSON_AddStringToObject(o, "ortho_method", muon_ortho_method_name(c->ortho.method));
    cJSON_AddStringToObject(o, "coeffs", muon_coeffs_name(&c->ortho, coeffs, sizeof coeffs));
    cJSON_AddNumberToObject(o, "ns_steps", c->ortho.steps);
    cJSON_AddStringToObject(o, "precision", muon_precision_name(c->ortho.precision));
    /* only when not the default: the default "3" would not parse back
     * under ns_steps <= 3, where it never fires anyway */
    unsigned rb = c->ortho.gram_restarts;
    char restarts[96];
    if (rb && rb != MUON_GRAM_DEFAULT_RESTARTS)
        cJSON_AddStringToObject(o, "restarts", muon_gram_restarts_name(rb, restarts, sizeof restarts));
    cJSON_AddStringToObject(o, "schedule", muon_schedule_name(c->schedule));
    cJSON_AddNumberToObject(o, "warmup", (double)c->warmup);
    cJSON_AddNumberToObject(o, "min_lr_ratio", c->min_lr_ratio);
    cJSON_AddNumberToObject(o, "steps", (double)c->steps);
    cJSON_AddNumberToObject(o, "eval_every", (double)c->eval_every);
    cJSON_AddNumberToObject(o, "eval_batches", c->eval_batches);
    /* as a string: a double cannot hold every 64-bit seed */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    train_family_to_json(c, o);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* A finite number; with is_int, a whole one that the int or long field it
 * goes to can hold (converting anything else would be undefined). */
static int get_num(const cJSON *o, const char *k, int is_int, double *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return -1;
    double x = it->valuedouble;
    if (is_int && (x != floor(x) || fabs(x) > (double)INT_MAX))
        return -1;
    *v = x;
    return 0;
}

static int get_str(const cJSON *o, const char *k, char *dst, size_t cap)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap)
        return -1;
    strcpy(dst, it->valuestring);
    return 0;
}

int train_config_from_json(const char *json, size_t len, train_config *out, char *err,
                           size_t errcap)
{
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(err, errcap, "configuration is not a JSON object");
        return -1;
    }
    train_config c = train_config_default();
    enum { N_NUMS = 18 };
    double v[N_NUMS];
    static const char *const nums[N_NUMS] = {"vocab", "context", "layers", "dim", "heads",
                                             "batch", "lr", "adam_lr", "weight_decay",
                                             "momentum", "adam_beta1", "adam_beta2", "ns_steps",
                                             "warmup", "min_lr_ratio", "steps", "eval_every",
                                             "eval_batches"};
    char tok[16], optim[16], method[16], coeffs[32], sched[16], seed[32];
    const char *bad = NULL;
    /* 1: an integer field (the rates and ratios are not) */
    static const char is_int[N_NUMS] = {1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1};
    for (int i = 0; i < N_NUMS && !bad; i++)
        if (get_num(o, nums[i], is_int[i], &v[i]))
            bad = nums[i];
    if (!bad && get_str(o, "data", c.data, sizeof c.data))
        bad = "data";
    if (!bad && get_str(o, "bpe_dir", c.bpe_dir, sizeof c.bpe_dir))
        bad = "bpe_dir";
    if (!bad && (get_str(o, "tokenizer", tok, sizeof tok) || tok_kind_parse(tok, &c.tokenizer)))
        bad = "tokenizer";
    if (!bad && (get_str(o, "optim", optim, sizeof optim) || muon_algo_parse(optim, &c.optim)))
        bad = "optim";
    if (!bad)
        bad = train_family_from_json(o, &c);
    if (!bad && (get_str(o, "ortho_method", method, sizeof method) ||
                 muon_ortho_method_parse(method, &c.ortho.method)))
        bad = "ortho_method";
    if (!bad && (get_str(o, "coeffs", coeffs, sizeof coeffs) ||
                 muon_coeffs_parse(coeffs, &c.ortho)))
        bad = "coeffs";
    /* absent in configurations written before mixed precision: fp32 */
    char prec[16] = "fp32";
    if (!bad && !cJSON_GetObjectItemCaseSensitive(o, "precision"))
        c.ortho.precision = MUON_PRECISION_FP32;
    else if (!bad && (get_str(o, "precision", prec, sizeof prec) ||
                      muon_precision_parse(prec, &c.ortho.precision)))
        bad = "precision";
    /* absent before restarts were configurable: the default; checked
     * against ns_steps once the numbers are read */
    char restarts[96] = "";
    if (!bad && cJSON_GetObjectItemCaseSensitive(o, "restarts") &&
        get_str(o, "restarts", restarts, sizeof restarts))
        bad = "restarts";
    if (!bad && (get_str(o, "schedule", sched, sizeof sched) ||
                 muon_schedule_parse(sched, &c.schedule)))
        bad = "schedule";
    if (!bad && get_str(o, "seed", seed, sizeof seed))
        bad = "seed";
    cJSON_Delete(o);
    if (!bad && restarts[0] &&
        muon_gram_restarts_parse(restarts, (int)v[12], &c.ortho.gram_restarts) != MUON_OK)
        bad = "restarts";
    if (bad) {
        snprintf(err, errcap, "configuration: missing or invalid '%s'", bad);
        return -1;
    }
    c.model.vocab = (int)v[0];
    c.model.context = (int)v[1];
    c.model.layers = (int)v[2];
    c.model.dim = (int)v[3];
    c.model.heads = (int)v[4];
    c.batch = (int)v[5];
    c.lr = v[6];
    c.adam_lr = v[7];
    c.weight_decay = v[8];
    if (c.adam_weight_decay < 0) /* written when one decay served both groups */
        c.adam_weight_decay = c.weight_decay;
    c.momentum = v[9];
    c.adam_beta1 = v[10];
    c.adam_beta2 = v[11];
    c.ortho.steps = (int)v[12];
    c.warmup = (long)v[13];
    c.min_lr_ratio = v[14];
    c.steps = (long)v[15];
    c.eval_every = (long)v[16];
    c.eval_batches = (int)v[17];
    c.seed = strtoull(seed, NULL, 10);
    *out = c;
    return 0;
}
