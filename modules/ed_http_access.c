/* The access module: `access: [{allow: X}, {deny: X}]` where X is an
 * address, a CIDR block or `all`. The first matching rule wins; no match
 * allows; a denied client gets 403. Runs in the access phase. */
#include "ed_http_explain.h"
#include "ed_cidr.h"

typedef struct {
    ed_cidr_t cidr;
    unsigned  deny:1;
} ed_http_access_rule_t;

typedef struct {
    ed_http_access_rule_t *rules;
    size_t                 nrules;
} ed_http_access_t;

typedef struct {
    ed_http_access_t *access;
} ed_http_access_conf_t;

static const char *ed_http_access_set(ed_conf_t *cf, const ed_key_t *key,
                                      ed_node_t *node, void *conf);
static int ed_http_access_attach(ed_conf_t *cf, ed_http_location_t *loc);
static int ed_http_access_explain(ed_explain_t *ex);

static const ed_key_t ed_http_access_keys[] = {
    { "access", ED_CTX_ANY_HTTP, ED_KEY_PTR | ED_KEY_INHERIT,
      ed_http_access_set, ED_CONF_LOC,
      offsetof(ed_http_access_conf_t, access), NULL, NULL },
    { NULL, 0, 0, NULL, 0, 0, NULL, NULL }
};

ed_module_t ed_http_access_module = {
    .name = "access",
    .keys = ed_http_access_keys,
    .conf_size = { 0, 0, sizeof(ed_http_access_conf_t), 0 },
    .attach = ed_http_access_attach,
    .explain = ed_http_access_explain,
};

/* access: a list of one-key maps, {allow: X} or {deny: X}. */
static const char *
ed_http_access_set(ed_conf_t *cf, const ed_key_t *key, ed_node_t *node,
                   void *conf)
{
    ed_http_access_t      *a;
    ed_http_access_rule_t *rule;
    const char            *err;
    size_t                 i;

    if (node->type != ED_NODE_SEQ) {
        return "expected a list of {allow: ADDRESS} or {deny: ADDRESS}";
    }
    a = ed_pcalloc(cf->pool, sizeof(ed_http_access_t));
    if (a == NULL
        || (a->rules = ed_pcalloc(cf->pool, (node->n ? node->n : 1)
                                                * sizeof(*rule)))
               == NULL)
    {
        return "out of memory";
    }
    for (i = 0; i < node->n; i++) {
        ed_node_t  *item = node->items[i], *k, *v;
        const char *name;

        if (item->type != ED_NODE_MAP || item->n != 1) {
            ed_conf_error(cf, item, "expected {allow: ADDRESS} or "
                          "{deny: ADDRESS} in access");
            continue;
        }
        k = item->items[0];
        v = item->items[1];
        name = k->value.data;
        if (strcmp(name, "allow") != 0 && strcmp(name, "deny") != 0) {
            ed_conf_error(cf, k, "unknown key \"%s\" in access; expected "
                          "\"allow\" or \"deny\"", name);
            continue;
        }
        if (v->type != ED_NODE_SCALAR) {
            ed_conf_error(cf, v, "invalid address in access: expected an "
                          "address, a CIDR block or \"all\"");
            continue;
        }
        rule = &a->rules[a->nrules];
        if (ed_cidr_parse(v->value.data, v->value.len, &rule->cidr, &err)
            != ED_OK)
        {
            ed_conf_error(cf, v, "invalid address \"%s\" in access: %s",
                          v->value.data, err);
            continue;
        }
        rule->deny = name[0] == 'd';
        a->nrules++;
    }
    *(ed_http_access_t **)((char *)conf + key->offset) = a;
    return NULL;
}

static int
ed_http_access_check(ed_http_request_t *r)
{
    ed_http_access_conf_t *acf = ed_http_loc_conf(r, ed_http_access_module);
    ed_http_access_rule_t *rule = acf->access->rules;
    size_t                 i;

    for (i = 0; i < acf->access->nrules; i++) {
        if (ed_cidr_match(&rule[i].cidr, &ed_http_remote(r)->sa)) {
            if (!rule[i].deny) {
                return ED_DECLINED;
            }
            /* The location is named: after an internal redirect it is not
             * the one the request line selects. */
            ed_http_log(ED_LOG_ERR, r, 0, "access forbidden by rule %zu of "
                        "location \"%s\"", i + 1, r->loc->name.data);
            return 403;
        }
    }
    return ED_DECLINED;
}

static int
ed_http_access_attach(ed_conf_t *cf, ed_http_location_t *loc)
{
    ed_http_access_conf_t *acf = ed_http_conf_at(loc, ed_http_access_module);

    if (acf->access == NULL || acf->access->nrules == 0) {
        return ED_OK;
    }
    return ed_http_access_add(cf, loc, ed_http_access_check);
}

/* eddy explain: the rule the client's address meets first, as the
 * check above decides. */
static int
ed_http_access_explain(ed_explain_t *ex)
{
    ed_http_access_conf_t *acf = ed_http_conf_at(ex->loc,
                                                 ed_http_access_module);
    ed_http_access_rule_t *rule;
    ed_node_t             *node, *item;
    const char            *from;
    size_t                 i;

    if (ex->phase != ED_EXPLAIN_RULES || acf->access == NULL
        || acf->access->nrules == 0)
    {
        return ED_DECLINED;
    }
    rule = acf->access->rules;
    from = ed_explain_from(ex, NULL, "access", &node, 0);
    for (i = 0; i < acf->access->nrules; i++) {
        if (!ed_cidr_match(&rule[i].cidr, &ed_http_remote(ex->r)->sa)) {
            continue;
        }
        /* Rules are kept one per item of a configuration that loaded. */
        item = node && node->type == ED_NODE_SEQ && i < node->n
                   ? node->items[i] : NULL;
        if (item && item->type == ED_NODE_MAP && item->n == 1) {
            ed_explain_rule(ex, "access", rule[i].deny ? "deny" : "allow",
                            rule[i].deny ? 403 : 0,
                            "rule %zu \"%s: %s\" (%s:%u:%u)", i + 1,
                            item->items[0]->value.data,
                            item->items[1]->value.data, item->file,
                            item->line, item->col);
        } else {
            ed_explain_rule(ex, "access", rule[i].deny ? "deny" : "allow",
                            rule[i].deny ? 403 : 0, "rule %zu (%s)", i + 1,
                            from);
        }
        return ED_OK;
    }
    ed_explain_rule(ex, "access", "allow", 0, "no rule of %zu matches (%s)",
                    acf->access->nrules, from);
    return ED_OK;
}
