/* The access module: `access: [{allow: X}, {deny: X}]` where X is an
 * address, a CIDR block or `all`; a rule with `methods: [...]` applies
 * to those methods only (nginx's limit_except). The first matching rule
 * wins; no match allows; a denied client gets 403. Runs in the access
 * phase. */
#include "ed_http_explain.h"
#include "ed_cidr.h"

typedef struct {
    ed_cidr_t  cidr;
    ed_str_t  *methods;    /* NULL: every method */
    size_t     nmethods;
    unsigned   deny:1;
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

/* A rule's `methods`: method names (tokens). NULL or a message. */
static const char *
ed_http_access_methods(ed_conf_t *cf, ed_node_t *v,
                       ed_http_access_rule_t *rule)
{
    size_t i, j;

    if (v->type != ED_NODE_SEQ || v->n == 0) {
        return "expected a list of methods like [PURGE]";
    }
    rule->methods = ed_palloc(cf->pool, v->n * sizeof(ed_str_t));
    if (rule->methods == NULL) {
        return "out of memory";
    }
    for (i = 0; i < v->n; i++) {
        if (v->items[i]->type != ED_NODE_SCALAR
            || v->items[i]->value.len == 0)
        {
            return "expected a list of methods like [PURGE]";
        }
        for (j = 0; j < v->items[i]->value.len; j++) {
            if (!(ed_http_char[(u_char)v->items[i]->value.data[j]]
                  & ED_HTTP_C_TOKEN))
            {
                return "expected a list of methods like [PURGE]";
            }
        }
        rule->methods[i] = v->items[i]->value;
    }
    rule->nmethods = v->n;
    return NULL;
}

/* access: a list of maps, {allow: X} or {deny: X}, each with an
 * optional `methods`. */
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
        ed_node_t  *item = node->items[i], *k = NULL, *v = NULL, *m = NULL;
        const char *name;

        if (item->type == ED_NODE_MAP && item->n == 2) {
            /* {allow: X, methods: [...]} in either order. */
            if (strcmp(item->items[2]->value.data, "methods") == 0) {
                k = item->items[0];
                v = item->items[1];
                m = item->items[3];
            } else if (strcmp(item->items[0]->value.data, "methods") == 0) {
                m = item->items[1];
                k = item->items[2];
                v = item->items[3];
            }
        } else if (item->type == ED_NODE_MAP && item->n == 1) {
            k = item->items[0];
            v = item->items[1];
        }
        if (k == NULL) {
            ed_conf_error(cf, item, "expected {allow: ADDRESS} or "
                          "{deny: ADDRESS} in access, with methods or "
                          "not");
            continue;
        }
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
        rule->methods = NULL;
        rule->nmethods = 0;
        if (m != NULL && (err = ed_http_access_methods(cf, m, rule))
                             != NULL)
        {
            ed_conf_error(cf, m, "invalid methods in access: %s", err);
            continue;
        }
        a->nrules++;
    }
    *(ed_http_access_t **)((char *)conf + key->offset) = a;
    return NULL;
}

/* Whether rule applies to the request's method. */
static bool
ed_http_access_method(const ed_http_access_rule_t *rule,
                      const ed_http_request_t *r)
{
    size_t i;

    if (rule->methods == NULL) {
        return true;
    }
    for (i = 0; i < rule->nmethods; i++) {
        if (ed_str_eq(&rule->methods[i], &r->head.method)) {
            return true;
        }
    }
    return false;
}

static int
ed_http_access_check(ed_http_request_t *r)
{
    ed_http_access_conf_t *acf = ed_http_loc_conf(r, ed_http_access_module);
    ed_http_access_rule_t *rule = acf->access->rules;
    size_t                 i;

    for (i = 0; i < acf->access->nrules; i++) {
        if (ed_http_access_method(&rule[i], r)
            && ed_cidr_match(&rule[i].cidr, &ed_http_remote(r)->sa))
        {
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
        if (!ed_http_access_method(&rule[i], ex->r)
            || !ed_cidr_match(&rule[i].cidr, &ed_http_remote(ex->r)->sa))
        {
            continue;
        }
        /* Rules are kept one per item of a configuration that loaded. */
        item = node && node->type == ED_NODE_SEQ && i < node->n
                   ? node->items[i] : NULL;
        if (item && item->type == ED_NODE_MAP && item->n == 1
            && rule[i].methods == NULL)
        {
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
