/* data_load: a path (text file, text directory, shard, shard directory) ->
 * training and validation token streams. */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "data/dutil.h"
#include "muon.h"

size_t data_split_point(size_t n, double val_fraction)
{
    if (!(val_fraction > 0))
        return n;
    if (val_fraction >= 1)
        return 0;
    return n - (size_t)((double)n * val_fraction);
}

void data_set_free(data_set *ds)
{
    if (!ds)
        return;
    free(ds->train.ids);
    free(ds->val.ids);
    ds->train = ds->val = (data_tokens){NULL, 0};
}

static int is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* every id must be a token of tok */
static int check_ids(const int32_t *ids, size_t n, const tok_tokenizer *tok, const char *path,
                     char *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok->vocab_size) {
            data_errf(err, "shard %s: token id %ld at position %zu is outside the %s "
                      "tokenizer's vocabulary of %d", path, (long)ids[i], i,
                      tok_kind_name(tok->kind), tok->vocab_size);
            return MUON_ERR_FORMAT;
        }
    return MUON_OK;
}

/* append shard path's tokens to *dst */
static int append_shard(data_tokens *dst, const char *path, const tok_tokenizer *tok, char *err)
{
    int32_t *ids;
    size_t n;
    int rc = data_shard_read(path, &ids, &n, err);
    if (rc)
        return rc;
    rc = check_ids(ids, n, tok, path, err);
    if (rc) {
        free(ids);
        return rc;
    }
    if (!dst->ids) {
        dst->ids = ids;
        dst->n = n;
        return MUON_OK;
    }
    int32_t *p = realloc(dst->ids, (dst->n + n) * sizeof *p);
    if (!p) {
        free(ids);
        data_errf(err, "out of memory appending shard %s", path);
        return MUON_ERR_NOMEM;
    }
    memcpy(p + dst->n, ids, n * sizeof *p);
    dst->ids = p;
    dst->n += n;
    free(ids);
    return MUON_OK;
}

/* move the last part of ds->train into ds->val */
static int split(data_set *ds, double val_fraction, char *err)
{
    size_t cut = data_split_point(ds->train.n, val_fraction), nv = ds->train.n - cut;
    if (nv == 0)
        return MUON_OK;
    int32_t *v = malloc(nv * sizeof *v);
    if (!v) {
        data_errf(err, "out of memory splitting %zu tokens", ds->train.n);
        return MUON_ERR_NOMEM;
    }
    memcpy(v, ds->train.ids + cut, nv * sizeof *v);
    ds->val = (data_tokens){v, nv};
    ds->train.n = cut;
    return MUON_OK;
}

/* regular *.bin files, not hidden: llm.c shards */
static int shard_name(const char *dir, const char *name)
{
    char path[4096];
    return name[0] != '.' && data_ends_with(name, ".bin") &&
           snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path && is_regular(path);
}

static int load_shard_dir(const char *dir, char **names, size_t n, const tok_tokenizer *tok,
                          data_set *ds, char *err)
{
    char path[4096];
    int rc = MUON_OK, n_val = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int is_val = strstr(names[i], "_val") != NULL;
        n_val += is_val;
        rc = append_shard(is_val ? &ds->val : &ds->train, path, tok, err);
    }
    if (!rc && ds->train.n == 0) {
        data_errf(err, "data directory %s has only validation shards (*_val*.bin)", dir);
        rc = MUON_ERR_FORMAT;
    }
    if (!rc)
        snprintf(ds->desc, sizeof ds->desc, "shard directory %.150s: %zu shards (%d val), "
                 "%zu + %zu tokens", dir, n, n_val, ds->train.n, ds->val.n);
    ds->val_is_separate = n_val > 0;
    return rc;
}

/* path (a file or a pattern) with the last "_train" of its file name as
 * "_val"; 0 when the name holds no "_train" or out is too small */
static int val_name(const char *path, char *out, size_t cap)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *hit = NULL;
    for (const char *p = base; (p = strstr(p, "_train")); p++)
        hit = p;
    if (!hit)
        return 0;
    int k = snprintf(out, cap, "%.*s_val%s", (int)(hit - path), path, hit + 6);
    return k > 0 && (size_t)k < cap;
}

/* the "_val" sibling of a "_train" shard path, if that file exists */
static int val_sibling(const char *path, char *out, size_t cap)
{
    return val_name(path, out, cap) && is_regular(out);
}

static int load_text(const char *path, const tok_tokenizer *tok, data_set *ds, char *err)
{
    char *bytes;
    size_t len;
    int n_files;
    int rc = data_read_text(path, &bytes, &len, &n_files, err);
    if (rc)
        return rc;
    char msg[DATA_ERR_LEN];
    rc = tok_encode(tok, bytes, len, 0, &ds->train.ids, &ds->train.n, msg);
    free(bytes);
    if (rc) {
        data_errf(err, "data %s: %s", path, msg);
        return rc;
    }
    snprintf(ds->desc, sizeof ds->desc, "text %.150s: %d file%s, %zu bytes, %zu %s tokens", path,
             n_files, n_files == 1 ? "" : "s", len, ds->train.n, tok_kind_name(tok->kind));
    return MUON_OK;
}

static int is_pattern(const char *path)
{
    return strpbrk(path, "*?[") != NULL;
}

int data_path_is_shards(const char *path)
{
    struct stat st;
    if (!path || !*path)
        return 0;
    if (is_pattern(path) || data_ends_with(path, ".bin"))
        return 1;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return 0;
    char **names;
    size_t n;
    char err[DATA_ERR_LEN];
    if (data_list_dir(path, shard_name, &names, &n, err))
        return 0;
    data_free_names(names, n);
    return n > 0;
}

static int load_shard_glob(const char *pattern, const tok_tokenizer *tok, data_set *ds,
                           char *err)
{
    glob_t g, gv;
    memset(&gv, 0, sizeof gv);
    int grc = glob(pattern, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        data_errf(err, "no file matches the data pattern %s", pattern);
        return MUON_ERR_IO;
    }
    if (grc != 0) {
        data_errf(err, "cannot expand the data pattern %s", pattern);
        return grc == GLOB_NOSPACE ? MUON_ERR_NOMEM : MUON_ERR_IO;
    }
    char vp[4200];
    int have_v = val_name(pattern, vp, sizeof vp) && glob(vp, 0, NULL, &gv) == 0;
    int rc = MUON_OK, n_val = 0;
    size_t total = g.gl_pathc + (have_v ? gv.gl_pathc : 0);
    for (size_t i = 0; i < total && !rc; i++) {
        const char *p = i < g.gl_pathc ? g.gl_pathv[i] : gv.gl_pathv[i - g.gl_pathc];
        const char *base = strrchr(p, '/');
        base = base ? base + 1 : p;
        if (!data_ends_with(p, ".bin") || !is_regular(p)) {
            data_errf(err, "data pattern %s matches %s, which is not an llm.c .bin shard",
                      pattern, p);
            rc = MUON_ERR_FORMAT;
            break;
        }
        int is_val = i >= g.gl_pathc || strstr(base, "_val") != NULL;
        n_val += is_val;
        rc = append_shard(is_val ? &ds->val : &ds->train, p, tok, err);
    }
    if (!rc && ds->train.n == 0) {
        data_errf(err, "data pattern %s selects only validation shards (*_val*.bin)", pattern);
        rc = MUON_ERR_FORMAT;
    }
    if (!rc)
        snprintf(ds->desc, sizeof ds->desc, "shards %.150s: %zu files (%d val), %zu + %zu tokens",
                 pattern, total, n_val, ds->train.n, ds->val.n);
    ds->val_is_separate = n_val > 0;
    globfree(&g);
    if (have_v)
        globfree(&gv);
    return rc;
}

int data_load(const char *path, const tok_tokenizer *tok, double val_fraction, data_set *out,
              char *err)
{
    if (!path || !tok || !out) {
        data_errf(err, "data_load: NULL argument");
        return MUON_ERR_NULL;
    }
    if (!(val_fraction >= 0 && val_fraction < 1)) {
        data_errf(err, "validation fraction %g is not in [0, 1)", val_fraction);
        return MUON_ERR_ARG;
    }
    data_set ds;
    memset(&ds, 0, sizeof ds);
    struct stat st;
    int rc;
    if (is_pattern(path) && stat(path, &st) != 0) {
        ds.from_shards = 1;
        rc = load_shard_glob(path, tok, &ds, err);
        if (!rc && !ds.val_is_separate)
            rc = split(&ds, val_fraction, err);
        if (rc) {
            data_set_free(&ds);
            return rc;
        }
        *out = ds;
        return MUON_OK;
    }
    if (stat(path, &st) != 0) {
        data_errf(err, "cannot open data file %s: %s", path, strerror(errno));
        return MUON_ERR_IO;
    }
    if (S_ISDIR(st.st_mode)) {
        char **names;
        size_t n;
        rc = data_list_dir(path, shard_name, &names, &n, err);
        if (rc)
            return rc;
        ds.from_shards = n > 0;
        rc = n ? load_shard_dir(path, names, n, tok, &ds, err) : load_text(path, tok, &ds, err);
        data_free_names(names, n);
    } else if (data_ends_with(path, ".bin")) {
        char sib[4200];
        ds.from_shards = 1;
        rc = append_shard(&ds.train, path, tok, err);
        if (!rc && val_sibling(path, sib, sizeof sib)) {
            ds.val_is_separate = 1;
            rc = append_shard(&ds.val, sib, tok, err);
        }
        if (!rc)
            snprintf(ds.desc, sizeof ds.desc, "shard %.150s: %zu tokens%s", path, ds.train.n,
                     ds.val_is_separate ? " (+ its _val shard)" : "");
    } else {
        rc = load_text(path, tok, &ds, err);
    }
    if (!rc && !ds.val_is_separate)
        rc = split(&ds, val_fraction, err);
    if (rc) {
        data_set_free(&ds);
        return rc;
    }
    *out = ds;
    return MUON_OK;
}
