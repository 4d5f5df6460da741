#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_coupon.h"
#include "loyalty_out.h"
#include "loyalty_time.h"


static int loyalty_coupon_money(const loyalty_json_t *root, const char *name,
    const loyalty_coupon_t *c, int64_t min, int64_t *out,
    loyalty_coupon_error_t *err);
static int loyalty_coupon_time(const loyalty_json_t *root, const char *name,
    int64_t *out, loyalty_coupon_error_t *err);
static int loyalty_coupon_count(const loyalty_json_t *root, const char *name,
    int64_t *out, loyalty_coupon_error_t *err);
static int loyalty_coupon_lists(const loyalty_json_t *root, const char *name,
    loyalty_strset_t *sets, loyalty_alloc_pt alloc, void *ctx,
    loyalty_coupon_error_t *err);
static int loyalty_coupon_fail(loyalty_coupon_error_t *err,
    const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int loyalty_strset_cmp(const void *a, const void *b);
static int loyalty_strset_has(const loyalty_strset_t *set,
    const loyalty_str_t *s);
static int loyalty_coupon_line_eligible(const loyalty_coupon_t *c,
    const loyalty_line_t *line);


static const char  *loyalty_coupon_statuses[LOYALTY_COUPON_STATUS_N] = {
    "valid", "not_found", "not_started", "expired", "disabled", "exhausted",
    "customer_limit", "min_spend", "not_applicable", "rate_limited",
    "unverified"
};

static const char  *loyalty_coupon_fields[] = {
    "code", "type", "value", "currency", "starts_at", "ends_at", "min_spend",
    "max_discount", "max_uses", "per_customer", "release_on_return",
    "include", "exclude", NULL
};

static const char  *loyalty_match_names[LOYALTY_MATCH_N] = {
    "skus", "brands", "categories"
};


int
loyalty_coupon_read(const loyalty_json_t *root, loyalty_alloc_pt alloc,
    void *ctx, loyalty_coupon_t *c, loyalty_coupon_error_t *err)
{
    int                    decimals;
    size_t                 i, len, bad;
    int64_t                bp;
    loyalty_code_rc_t      rc;
    loyalty_money_spec_t   ms;
    const loyalty_json_t  *v;

    memset(c, 0, sizeof(loyalty_coupon_t));
    memset(err, 0, sizeof(loyalty_coupon_error_t));

    if (root->type != LOYALTY_JSON_OBJECT) {
        return loyalty_coupon_fail(err, "", "a coupon is a JSON object");
    }

    for (v = root->child; v != NULL; v = v->next) {
        for (i = 0; loyalty_coupon_fields[i] != NULL; i++) {
            if (strcmp(v->key, loyalty_coupon_fields[i]) == 0) {
                break;
            }
        }

        if (loyalty_coupon_fields[i] == NULL) {
            return loyalty_coupon_fail(err, v->key, "is not a coupon field");
        }
    }

    v = loyalty_json_get(root, "code", 4);

    if (v == NULL || v->type != LOYALTY_JSON_STRING) {
        return loyalty_coupon_fail(err, "code", "is required, as a string");
    }

    rc = loyalty_code_normalize(v->text, v->len, c->code, &len, &bad);

    if (rc != LOYALTY_CODE_OK) {
        return loyalty_coupon_fail(err, "code", "must be 1 to %d letters, "
                                   "digits, '-', '_' or '.'",
                                   LOYALTY_CODE_MAX);
    }

    v = loyalty_json_get(root, "currency", 8);

    if (v != NULL) {
        decimals = v->type == LOYALTY_JSON_STRING
                   ? loyalty_currency_decimals(v->text, v->len) : -1;

        if (decimals < 0) {
            return loyalty_coupon_fail(err, "currency", "must be an ISO 4217 "
                                       "code such as \"EUR\"");
        }

        memcpy(c->currency, v->text, 4);
        c->decimals = (unsigned) decimals;
    }

    v = loyalty_json_get(root, "type", 4);

    if (v != NULL && v->type == LOYALTY_JSON_STRING
        && strcmp(v->text, "fixed") == 0)
    {
        c->kind = LOYALTY_COUPON_FIXED;

    } else if (v != NULL && v->type == LOYALTY_JSON_STRING
               && strcmp(v->text, "percent") == 0)
    {
        c->kind = LOYALTY_COUPON_PERCENT;

    } else {
        return loyalty_coupon_fail(err, "type",
                                   "must be \"fixed\" or \"percent\"");
    }

    if (c->kind == LOYALTY_COUPON_FIXED) {
        if (c->currency[0] == '\0') {
            return loyalty_coupon_fail(err, "currency", "is required for a "
                                       "fixed amount");
        }

        if (loyalty_coupon_money(root, "value", c, 1, &c->value, err) != 0) {
            return -1;
        }

        if (c->value == 0) {
            return loyalty_coupon_fail(err, "value", "is required");
        }

    } else {
        /* a percentage with up to two decimals, kept in basis points */
        v = loyalty_json_get(root, "value", 5);
        ms.decimals = 2;
        ms.round = LOYALTY_ROUND_EXACT;
        ms.min = 1;
        ms.max = 10000;

        if (v == NULL
            || (v->type != LOYALTY_JSON_NUMBER
                && v->type != LOYALTY_JSON_STRING)
            || loyalty_money_parse(v->text, v->len, &ms, &bp)
               != LOYALTY_MONEY_OK)
        {
            return loyalty_coupon_fail(err, "value", "must be a percentage "
                                       "from 0.01 to 100 with at most two "
                                       "decimals");
        }

        c->value = bp;
    }

    if (loyalty_coupon_money(root, "min_spend", c, 0, &c->min_spend, err)
        || loyalty_coupon_money(root, "max_discount", c, 0, &c->max_discount,
                                err)
        || loyalty_coupon_time(root, "starts_at", &c->starts_at, err)
        || loyalty_coupon_time(root, "ends_at", &c->ends_at, err)
        || loyalty_coupon_count(root, "max_uses", &c->max_uses, err)
        || loyalty_coupon_count(root, "per_customer", &c->per_customer, err)
        || loyalty_coupon_lists(root, "include", c->include, alloc, ctx, err)
        || loyalty_coupon_lists(root, "exclude", c->exclude, alloc, ctx, err))
    {
        return -1;
    }

    v = loyalty_json_get(root, "release_on_return", 17);

    if (v != NULL && v->type != LOYALTY_JSON_TRUE
        && v->type != LOYALTY_JSON_FALSE && v->type != LOYALTY_JSON_NULL)
    {
        return loyalty_coupon_fail(err, "release_on_return",
                                   "must be true or false");
    }

    c->release_on_return = (v != NULL && v->type == LOYALTY_JSON_TRUE);

    if (c->ends_at && c->ends_at <= c->starts_at) {
        return loyalty_coupon_fail(err, "ends_at", "must be after starts_at");
    }

    if (c->max_uses && c->per_customer > c->max_uses) {
        return loyalty_coupon_fail(err, "per_customer", "must not exceed "
                                   "max_uses");
    }

    return 0;
}


/* Money fields need the coupon's currency; 0 when absent. */

static int
loyalty_coupon_money(const loyalty_json_t *root, const char *name,
    const loyalty_coupon_t *c, int64_t min, int64_t *out,
    loyalty_coupon_error_t *err)
{
    loyalty_money_spec_t   ms;
    const loyalty_json_t  *v;

    *out = 0;
    v = loyalty_json_get(root, name, strlen(name));

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        return 0;
    }

    if (c->currency[0] == '\0') {
        return loyalty_coupon_fail(err, name, "needs the coupon's currency");
    }

    ms.decimals = c->decimals;
    ms.round = LOYALTY_ROUND_EXACT;
    ms.min = min;
    ms.max = LOYALTY_MONEY_LIMIT;

    if ((v->type != LOYALTY_JSON_NUMBER && v->type != LOYALTY_JSON_STRING)
        || loyalty_money_parse(v->text, v->len, &ms, out) != LOYALTY_MONEY_OK)
    {
        return loyalty_coupon_fail(err, name, "must be an amount in %s with "
                                   "at most %u decimals", c->currency,
                                   c->decimals);
    }

    return 0;
}


static int
loyalty_coupon_time(const loyalty_json_t *root, const char *name,
    int64_t *out, loyalty_coupon_error_t *err)
{
    const loyalty_json_t  *v;

    *out = 0;
    v = loyalty_json_get(root, name, strlen(name));

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        return 0;
    }

    if (v->type != LOYALTY_JSON_STRING
        || loyalty_time_parse(v->text, v->len, out) != 0
        || *out <= 0)
    {
        return loyalty_coupon_fail(err, name, "must be an RFC 3339 time "
                                   "such as \"2026-11-27T00:00:00Z\"");
    }

    return 0;
}


static int
loyalty_coupon_count(const loyalty_json_t *root, const char *name,
    int64_t *out, loyalty_coupon_error_t *err)
{
    size_t                 i;
    const loyalty_json_t  *v;

    *out = 0;
    v = loyalty_json_get(root, name, strlen(name));

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        return 0;
    }

    if (v->type != LOYALTY_JSON_NUMBER || v->len > 9
        || strspn(v->text, "0123456789") != v->len)
    {
        return loyalty_coupon_fail(err, name, "must be a whole number from "
                                   "0 (unlimited) to 999999999");
    }

    for (i = 0; i < v->len; i++) {
        *out = *out * 10 + (v->text[i] - '0');
    }

    return 0;
}


static int
loyalty_coupon_lists(const loyalty_json_t *root, const char *name,
    loyalty_strset_t *sets, loyalty_alloc_pt alloc, void *ctx,
    loyalty_coupon_error_t *err)
{
    int                    k;
    char                   field[32];
    size_t                 i, j;
    loyalty_strset_t      *set;
    const loyalty_json_t  *obj, *list, *v;

    obj = loyalty_json_get(root, name, strlen(name));

    if (obj == NULL || obj->type == LOYALTY_JSON_NULL) {
        return 0;
    }

    if (obj->type != LOYALTY_JSON_OBJECT) {
        return loyalty_coupon_fail(err, name, "must be an object with skus, "
                                   "brands and/or categories");
    }

    for (v = obj->child; v != NULL; v = v->next) {
        if (strcmp(v->key, "skus") && strcmp(v->key, "brands")
            && strcmp(v->key, "categories"))
        {
            snprintf(field, sizeof(field), "%s.%s", name, v->key);
            return loyalty_coupon_fail(err, field, "is not skus, brands or "
                                       "categories");
        }
    }

    for (k = 0; k < LOYALTY_MATCH_N; k++) {
        set = &sets[k];
        snprintf(field, sizeof(field), "%s.%s", name, loyalty_match_names[k]);

        list = loyalty_json_get(obj, loyalty_match_names[k],
                                strlen(loyalty_match_names[k]));

        if (list == NULL || list->type == LOYALTY_JSON_NULL) {
            continue;
        }

        if (list->type != LOYALTY_JSON_ARRAY
            || list->count > LOYALTY_COUPON_LIST_MAX)
        {
            return loyalty_coupon_fail(err, field, "must be an array of at "
                                       "most %d strings",
                                       LOYALTY_COUPON_LIST_MAX);
        }

        if (list->count == 0) {
            continue;
        }

        set->items = alloc(ctx, list->count * sizeof(loyalty_str_t));
        if (set->items == NULL) {
            return loyalty_coupon_fail(err, field, "out of memory");
        }

        for (i = 0, v = list->child; v != NULL; i++, v = v->next) {
            if (v->type != LOYALTY_JSON_STRING || v->len == 0
                || v->len > LOYALTY_COUPON_ITEM_MAX)
            {
                return loyalty_coupon_fail(err, field, "must hold non-empty "
                                           "strings of at most %d bytes",
                                           LOYALTY_COUPON_ITEM_MAX);
            }

            set->items[i].data = v->text;
            set->items[i].len = v->len;
        }

        qsort(set->items, list->count, sizeof(loyalty_str_t),
              loyalty_strset_cmp);

        /* drop duplicates */
        for (i = 1, j = 1; i < list->count; i++) {
            if (!loyalty_str_eq(&set->items[i], &set->items[j - 1])) {
                set->items[j++] = set->items[i];
            }
        }

        set->n = j;
    }

    return 0;
}


static int
loyalty_coupon_fail(loyalty_coupon_error_t *err, const char *field,
    const char *fmt, ...)
{
    int      n;
    va_list  args;

    snprintf(err->field, sizeof(err->field), "%s", field);

    n = field[0] ? snprintf(err->message, sizeof(err->message), "%s ", field)
                 : 0;

    va_start(args, fmt);
    vsnprintf(err->message + n, sizeof(err->message) - (size_t) n, fmt, args);
    va_end(args);

    return -1;
}


size_t
loyalty_coupon_write(const loyalty_coupon_t *c, char *buf, size_t size)
{
    int             k, side;
    char            text[LOYALTY_MONEY_TEXT_MAX];
    size_t          i;
    loyalty_out_t   o;
    const loyalty_strset_t  *sets;

    loyalty_out_init(&o, buf, size);

    loyalty_out(&o, "{\"code\":\"%s\",\"type\":\"%s\",\"value\":\"", c->code,
                c->kind == LOYALTY_COUPON_FIXED ? "fixed" : "percent");

    if (c->kind == LOYALTY_COUPON_FIXED) {
        loyalty_money_format(c->value, c->decimals, text);
    } else {
        loyalty_money_format(c->value, 2, text);
    }

    loyalty_out(&o, "%s\"", text);

    if (c->currency[0]) {
        loyalty_out(&o, ",\"currency\":\"%s\"", c->currency);
    }

    if (c->starts_at) {
        loyalty_time_format(c->starts_at, text);
        loyalty_out(&o, ",\"starts_at\":\"%s\"", text);
    }

    if (c->ends_at) {
        loyalty_time_format(c->ends_at, text);
        loyalty_out(&o, ",\"ends_at\":\"%s\"", text);
    }

    if (c->min_spend) {
        loyalty_money_format(c->min_spend, c->decimals, text);
        loyalty_out(&o, ",\"min_spend\":\"%s\"", text);
    }

    if (c->max_discount) {
        loyalty_money_format(c->max_discount, c->decimals, text);
        loyalty_out(&o, ",\"max_discount\":\"%s\"", text);
    }

    loyalty_out(&o, ",\"max_uses\":%lld,\"per_customer\":%lld",
                (long long) c->max_uses, (long long) c->per_customer);

    /* only when set: the normal form of older definitions stays the same */
    if (c->release_on_return) {
        loyalty_out(&o, ",\"release_on_return\":true");
    }

    for (side = 0; side < 2; side++) {
        sets = side ? c->exclude : c->include;

        if (sets[0].n + sets[1].n + sets[2].n == 0) {
            continue;
        }

        loyalty_out(&o, ",\"%s\":{", side ? "exclude" : "include");

        for (k = 0; k < LOYALTY_MATCH_N; k++) {
            loyalty_out(&o, "%s\"%s\":[", k ? "," : "",
                        loyalty_match_names[k]);

            for (i = 0; i < sets[k].n; i++) {
                if (i) {
                    loyalty_out(&o, ",");
                }

                loyalty_out_string(&o, sets[k].items[i].data,
                                   sets[k].items[i].len);
            }

            loyalty_out(&o, "]");
        }

        loyalty_out(&o, "}");
    }

    loyalty_out(&o, "}");

    return loyalty_out_done(&o, buf);
}


void
loyalty_coupon_evaluate(const loyalty_coupon_t *c, const loyalty_cart_t *cart,
    int64_t now, loyalty_round_t round, loyalty_coupon_verdict_t *v)
{
    size_t   i;
    int64_t  discount;

    v->eligible = 0;
    v->discount = 0;

    if (c->starts_at && now < c->starts_at) {
        v->status = LOYALTY_COUPON_NOT_STARTED;
        return;
    }

    if (c->ends_at && now >= c->ends_at) {
        v->status = LOYALTY_COUPON_EXPIRED;
        return;
    }

    /* money in the coupon means money in its currency */
    if (c->currency[0] && strcmp(c->currency, cart->currency) != 0) {
        v->status = LOYALTY_COUPON_NOT_APPLICABLE;
        return;
    }

    for (i = 0; i < cart->nlines; i++) {
        if (loyalty_coupon_line_eligible(c, &cart->lines[i])) {
            v->eligible += cart->lines[i].total;
        }
    }

    if (v->eligible == 0) {
        v->status = LOYALTY_COUPON_NOT_APPLICABLE;
        return;
    }

    if (v->eligible < c->min_spend) {
        v->status = LOYALTY_COUPON_MIN_SPEND;
        return;
    }

    if (c->kind == LOYALTY_COUPON_FIXED) {
        discount = c->value;

    } else {
        /* a basis-point share cannot exceed the amount: no overflow */
        (void) loyalty_muldiv(v->eligible, c->value, 10000, round,
                              &discount);
    }

    if (c->max_discount && discount > c->max_discount) {
        discount = c->max_discount;
    }

    /* never more than the lines it applies to */
    if (discount > v->eligible) {
        discount = v->eligible;
    }

    v->discount = discount;
    v->status = LOYALTY_COUPON_VALID;
}


static int
loyalty_coupon_line_eligible(const loyalty_coupon_t *c,
    const loyalty_line_t *line)
{
    int                   k, any_include;
    const loyalty_str_t  *key[LOYALTY_MATCH_N];

    key[LOYALTY_MATCH_SKU] = &line->sku;
    key[LOYALTY_MATCH_BRAND] = &line->brand;
    key[LOYALTY_MATCH_CATEGORY] = &line->category;

    for (k = 0; k < LOYALTY_MATCH_N; k++) {
        if (loyalty_strset_has(&c->exclude[k], key[k])) {
            return 0;
        }
    }

    any_include = 0;

    for (k = 0; k < LOYALTY_MATCH_N; k++) {
        if (c->include[k].n == 0) {
            continue;
        }

        any_include = 1;

        if (loyalty_strset_has(&c->include[k], key[k])) {
            return 1;
        }
    }

    return !any_include;
}


static int
loyalty_strset_cmp(const void *a, const void *b)
{
    return loyalty_str_cmp(a, b);
}


static int
loyalty_strset_has(const loyalty_strset_t *set, const loyalty_str_t *s)
{
    if (set->n == 0 || s->len == 0) {
        return 0;
    }

    return bsearch(s, set->items, set->n, sizeof(loyalty_str_t),
                   loyalty_strset_cmp) != NULL;
}


const char *
loyalty_coupon_status_name(loyalty_coupon_status_t status)
{
    return loyalty_coupon_statuses[status];
}


int
loyalty_coupon_status_by_name(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < LOYALTY_COUPON_STATUS_N; i++) {
        if (strlen(loyalty_coupon_statuses[i]) == len
            && memcmp(loyalty_coupon_statuses[i], name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}
