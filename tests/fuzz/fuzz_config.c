/* The training configuration's JSON (train_config_from_json), which every
 * checkpoint carries. A configuration that reads must write back to JSON
 * that reads again to the same JSON. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "train/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    train_config c, d;
    char err[256];
    if (train_config_from_json((const char *)data, size, &c, err, sizeof err) != 0)
        return 0;
    char *j1 = train_config_to_json(&c);
    if (!j1)
        fz_fail("train_config_to_json failed");
    if (train_config_from_json(j1, strlen(j1), &d, err, sizeof err) != 0)
        fz_fail("a configuration that reads does not read back from its own JSON");
    char *j2 = train_config_to_json(&d);
    if (!j2 || strcmp(j1, j2) != 0)
        fz_fail("a configuration's JSON changes on a round trip");
    free(j1);
    free(j2);
    return 0;
}
