/* The trainer's checkpoint: sections of the container in train/ckpt.c.
 *   CONF  the training configuration as JSON (train_config_to_json)
 *   STEP  u64 completed steps, f64 wall seconds, u32 CRC-32 of the data
 *   DATA  the data loader's state, 6 x u64
 *   PARM  the model parameters, float32 in gpt_params() order
 *   OPTS  the optimizer state (libmuon's own versioned blob)
 * Everything is checked against the model the CONF section describes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ckpt.h"
#include "train/train.h"

#define TAG_CONF CKPT_TAG('C', 'O', 'N', 'F')
#define TAG_STEP CKPT_TAG('S', 'T', 'E', 'P')
#define TAG_DATA CKPT_TAG('D', 'A', 'T', 'A')
#define TAG_PARM CKPT_TAG('P', 'A', 'R', 'M')
#define TAG_OPTS CKPT_TAG('O', 'P', 'T', 'S')

typedef struct {
    uint64_t step;
    double wall_s;
    uint32_t data_crc, pad;
} step_record;

int train_ckpt_save(const char *path, const train_ckpt *ck, char *err, size_t errcap)
{
    char *conf = train_config_to_json(&ck->cfg);
    if (!conf) {
        snprintf(err, errcap, "out of memory writing %s", path);
        return -1;
    }
    step_record st = {(uint64_t)ck->step, ck->wall_s, ck->data_crc, 0};
    ckpt_section s[5] = {
        {TAG_CONF, conf, strlen(conf)},
        {TAG_STEP, &st, sizeof st},
        {TAG_DATA, ck->data_state, sizeof ck->data_state},
        {TAG_PARM, ck->params, (uint64_t)ck->n_params * sizeof(float)},
        {TAG_OPTS, ck->opt_state, ck->opt_state_len},
    };
    int rc = ckpt_write(path, s, 5, err, errcap);
    free(conf);
    return rc;
}

int train_ckpt_load(const char *path, train_ckpt *ck, char *err, size_t errcap)
{
    memset(ck, 0, sizeof *ck);
    ckpt_file f;
    if (ckpt_read(path, &f, err, errcap))
        return -1;
    const ckpt_section *conf = ckpt_find(&f, TAG_CONF), *st = ckpt_find(&f, TAG_STEP),
                       *data = ckpt_find(&f, TAG_DATA), *parm = ckpt_find(&f, TAG_PARM),
                       *opts = ckpt_find(&f, TAG_OPTS);
    const char *why = NULL;
    char cerr[256];
    train_ckpt c;
    memset(&c, 0, sizeof c);
    if (!conf || !st || !data || !parm || !opts)
        why = "a section is missing (not a trainer checkpoint)";
    else if (st->len != sizeof(step_record) || data->len != sizeof c.data_state)
        why = "a section has the wrong size";
    else if (train_config_from_json(conf->data, (size_t)conf->len, &c.cfg, cerr, sizeof cerr))
        why = cerr;
    else if (gpt_config_validate(&c.cfg.model) != MUON_OK)
        why = "the stored model shape is invalid";
    if (!why) {
        /* the parameter count follows from the stored shape alone */
        c.n_params = gpt_config_num_params(&c.cfg.model);
        /* its byte count must not wrap: a wrapped one could equal the
         * section's length while the count itself is far larger */
        if (c.n_params == 0 || c.n_params > SIZE_MAX / sizeof(float))
            why = "the stored model shape is too large";
        else if (parm->len != (uint64_t)c.n_params * sizeof(float))
            why = "the parameter section does not match the stored model shape";
    }
    if (why) {
        snprintf(err, errcap, "checkpoint %s: %s", path, why);
        ckpt_close(&f);
        return -1;
    }
    step_record sr;
    memcpy(&sr, st->data, sizeof sr);
    c.step = (long)sr.step;
    c.wall_s = sr.wall_s;
    c.data_crc = sr.data_crc;
    memcpy(c.data_state, data->data, sizeof c.data_state);
    c.params = malloc(parm->len ? (size_t)parm->len : 1);
    c.opt_state = malloc(opts->len ? (size_t)opts->len : 1);
    if (!c.params || !c.opt_state) {
        free(c.params);
        free(c.opt_state);
        ckpt_close(&f);
        snprintf(err, errcap, "out of memory reading %s", path);
        return -1;
    }
    memcpy(c.params, parm->data, (size_t)parm->len);
    memcpy(c.opt_state, opts->data, (size_t)opts->len);
    c.opt_state_len = (size_t)opts->len;
    ckpt_close(&f);
    *ck = c;
    return 0;
}

void train_ckpt_free(train_ckpt *ck)
{
    free(ck->params);
    free(ck->opt_state);
    memset(ck, 0, sizeof *ck);
}
