/* libFuzzer target for the YAML loader: load, dump, reload, compare. */
#include "ed_core.h"
#include "ed_conf.h"
#include "fuzz.h"

#include <stdint.h>

/* Whether two trees hold the same structure and strings (quoting and
 * positions may differ after a dump). */
static int
ed_fuzz_same(const ed_node_t *a, const ed_node_t *b)
{
    size_t i, n;

    if (a->type != b->type) {
        return 0;
    }
    if (a->type == ED_NODE_SCALAR) {
        return a->value.len == b->value.len
               && memcmp(a->value.data, b->value.data, a->value.len) == 0;
    }
    if (a->n != b->n) {
        return 0;
    }
    n = a->type == ED_NODE_MAP ? 2 * a->n : a->n;
    for (i = 0; i < n; i++) {
        if (!ed_fuzz_same(a->items[i], b->items[i])) {
            return 0;
        }
    }
    return 1;
}

/* Loads into a fresh pool; a tree that loads must dump as YAML that
 * loads back into the same tree. Always returns 0. */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ed_pool_t *pool;
    ed_conf_t *cf, *cf2;
    ed_node_t *root, *again;
    char *buf;
    size_t len;
    FILE *out;

    pool = ed_pool_create(4096);
    if (pool == NULL) {
        return 0;
    }
    cf = ed_pcalloc(pool, sizeof(ed_conf_t));
    cf2 = ed_pcalloc(pool, sizeof(ed_conf_t));
    if (cf == NULL || cf2 == NULL) {
        goto done;
    }
    cf->pool = pool;
    cf->prefix = "/nonexistent";
    /* Fuzz input must not make the loader read the file system. */
    cf->no_include = 1;
    *cf2 = *cf;
    root = ed_conf_load_string(cf, "/nonexistent/fuzz.yaml", (const char *)data,
                               size);
    if (root == NULL) {
        goto done;
    }
    buf = NULL;
    len = 0;
    out = open_memstream(&buf, &len);
    if (out == NULL) {
        goto done;
    }
    ed_conf_dump(out, root);
    fclose(out);
    /* A value may carry "${env:" that came from the environment or a
     * default; reloading would substitute it again. */
    if (memmem(buf, len, "${env:", 6) == NULL) {
        again = ed_conf_load_string(cf2, "dump.yaml", buf, len);
        if (again == NULL || !ed_fuzz_same(root, again)) {
            fprintf(stderr, "dump does not load back:\n%.*s\n%s\n", (int)len,
                    buf, cf2->nerrors ? cf2->errors[0] : "");
            abort();
        }
    }
    free(buf);

done:
    ed_pool_destroy(pool);
    return 0;
}
