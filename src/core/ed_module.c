/* The module table: indexes and key look-up across modules. */
#include "ed_core.h"
#include "ed_module.h"

size_t ed_modules_n;
ed_module_t **ed_conf_modules_override;

ed_module_t **
ed_modules_table(void)
{
    return ed_conf_modules_override ? ed_conf_modules_override : ed_modules;
}

/* Each module's index is its position in the table; configuration
 * arrays are indexed by it. No return value. */
void
ed_modules_init(void)
{
    ed_module_t **mods = ed_modules_table();
    size_t i;

    for (i = 0; mods[i] != NULL; i++) {
        mods[i]->index = (unsigned)i;
    }
    ed_modules_n = i;
}

/* Returns the key named name allowed in ctx, else the first key of that
 * name anywhere (the caller reports the wrong level), else NULL. The
 * owning module goes to *module when module is not NULL. */
const ed_key_t *
ed_module_find_key(const char *name, unsigned ctx, ed_module_t **module)
{
    ed_module_t **mods = ed_modules_table();
    ed_module_t *other_m;
    const ed_key_t *k, *other;
    size_t i;

    other = NULL;
    other_m = NULL;
    for (i = 0; mods[i] != NULL; i++) {
        if (mods[i]->keys == NULL) {
            continue;
        }
        for (k = mods[i]->keys; k->name != NULL; k++) {
            if (strcmp(k->name, name) != 0) {
                continue;
            }
            if (k->ctx & ctx) {
                if (module) {
                    *module = mods[i];
                }
                return k;
            }
            if (other == NULL) {
                other = k;
                other_m = mods[i];
            }
        }
    }
    if (module) {
        *module = other_m;
    }
    return other;
}
