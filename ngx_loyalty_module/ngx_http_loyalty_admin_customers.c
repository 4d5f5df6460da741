/*
 * The customer endpoints of the admin API:
 *
 *   GET /customers/{id}     the account: balances, pending accruals with
 *                           their due dates, lots, tier, orders
 */

#include "ngx_http_loyalty_admin.h"
#include "ngx_http_loyalty_checkout.h"
#include "loyalty_code.h"
#include "loyalty_keys.h"


static void ngx_http_loyalty_customer_get(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_customer_got(void *data, ngx_uint_t status,
    redisReply *reply);
static ngx_int_t ngx_http_loyalty_customer_id(ngx_http_loyalty_admin_t *ctx,
    ngx_str_t *key);
static json_t *ngx_http_loyalty_customer_accrual(ngx_str_t *order,
    redisReply *value);
static json_t *ngx_http_loyalty_customer_lots(redisReply *value);
static int64_t ngx_http_loyalty_reply_int(redisReply *e);


ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_customer_routes[] = {
    { NGX_HTTP_GET, "customers/*", ngx_http_loyalty_customer_get },
    { 0, NULL, NULL }
};


static void
ngx_http_loyalty_customer_get(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t  key;

    if (ngx_http_loyalty_customer_id(ctx, &key) != NGX_OK) {
        return;
    }

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_customer_get, &key, 1,
                                    NULL, 0, ngx_http_loyalty_customer_got,
                                    0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_customer_got(void *data, ngx_uint_t status,
    redisReply *reply)
{
    size_t                     i;
    json_t                    *o, *pending;
    ngx_str_t                  f;
    redisReply                *v;
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (reply->elements == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no account for customer \"%V\"",
                                     &ctx->params[0]);
        return;
    }

    o = json_object();
    pending = json_array();

    json_object_set_new(o, "customer",
                        json_stringn((char *) ctx->params[0].data,
                                     ctx->params[0].len));
    json_object_set_new(o, "available", json_integer(0));
    json_object_set_new(o, "held", json_integer(0));
    json_object_set_new(o, "pending", json_integer(0));
    json_object_set_new(o, "lifetime", json_integer(0));
    json_object_set_new(o, "orders", json_integer(0));
    json_object_set_new(o, "tier", json_null());
    json_object_set_new(o, "lots", json_array());

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f.data = (u_char *) reply->element[i]->str;
        f.len = reply->element[i]->len;
        v = reply->element[i + 1];

        if (f.len > 2 && f.data[0] == 'o' && f.data[1] == ':') {
            f.data += 2;
            f.len -= 2;
            json_array_append_new(pending,
                                  ngx_http_loyalty_customer_accrual(&f, v));
            continue;
        }

        if (f.len == 1 && f.data[0] == 'a') {
            json_object_set_new(o, "available",
                                json_integer(ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 1 && f.data[0] == 'h') {
            json_object_set_new(o, "held",
                                json_integer(ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 1 && f.data[0] == 'p') {
            json_object_set_new(o, "pending",
                                json_integer(ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 2 && ngx_strncmp(f.data, "lt", 2) == 0) {
            json_object_set_new(o, "lifetime",
                                json_integer(ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 1 && f.data[0] == 'n') {
            json_object_set_new(o, "orders",
                                json_integer(ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 1 && f.data[0] == 't') {
            json_object_set_new(o, "tier", json_stringn(v->str, v->len));

        } else if (f.len == 1 && f.data[0] == 'e') {
            json_object_set_new(o, "enrolled_at",
                                ngx_http_loyalty_admin_time(
                                    ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 2 && ngx_strncmp(f.data, "rb", 2) == 0) {
            json_object_set_new(o, "referred_by",
                                json_stringn(v->str, v->len));

        } else if (f.len == 1 && f.data[0] == 'L') {
            json_object_set_new(o, "lots",
                                ngx_http_loyalty_customer_lots(v));
        }
    }

    /* the accruals still waiting for their return window */
    json_object_set_new(o, "pending_accruals", pending);

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


/* "state|points|due|basis|version|fingerprint|redeemed|bonus|referral" */

static json_t *
ngx_http_loyalty_customer_accrual(ngx_str_t *order, redisReply *value)
{
    u_char     *p, *end, *start;
    json_t     *o;
    int64_t     n[4];
    ngx_uint_t  i;
    static const char  *states[] = { "pending", "credited", "voided" };

    o = json_object();
    json_object_set_new(o, "order", json_stringn((char *) order->data,
                                                 order->len));

    p = (u_char *) value->str;
    end = p + value->len;

    json_object_set_new(o, "state",
                        json_string(p < end && *p == 'C' ? states[1]
                                    : p < end && *p == 'V' ? states[2]
                                    : states[0]));

    /* points, due, basis: the three numbers after the state */
    for (i = 0; i < 4 && p < end; i++) {
        while (p < end && *p != '|') {
            p++;
        }

        start = ++p;

        while (p < end && *p != '|') {
            p++;
        }

        n[i] = ngx_atoof(start, p - start);
    }

    json_object_set_new(o, "points", json_integer(n[0]));
    json_object_set_new(o, "due_at", ngx_http_loyalty_admin_time(n[1]));

    return o;
}


/* "expiry:points,expiry:points" */

static json_t *
ngx_http_loyalty_customer_lots(redisReply *value)
{
    u_char  *p, *end, *colon, *comma;
    json_t  *list, *lot;

    list = json_array();
    p = (u_char *) value->str;
    end = p + value->len;

    while (p < end) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        colon = ngx_strlchr(p, comma, ':');

        if (colon != NULL) {
            lot = json_object();
            json_object_set_new(lot, "points",
                                json_integer(ngx_atoof(colon + 1,
                                                       comma - colon - 1)));
            json_object_set_new(lot, "expires_at",
                                ngx_http_loyalty_admin_time(
                                    ngx_atoof(p, colon - p)));
            json_array_append_new(list, lot);
        }

        p = comma + 1;
    }

    return list;
}


static int64_t
ngx_http_loyalty_reply_int(redisReply *e)
{
    off_t  n;

    n = ngx_atoof((u_char *) e->str, e->len);

    return n == NGX_ERROR ? 0 : n;
}


/* The {id} of the path, checked, and the account's key. */

static ngx_int_t
ngx_http_loyalty_customer_id(ngx_http_loyalty_admin_t *ctx, ngx_str_t *key)
{
    size_t  bad;

    if (loyalty_id_check((char *) ctx->params[0].data, ctx->params[0].len,
                         LOYALTY_ID_MAX, &bad)
        != LOYALTY_CODE_OK)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_customer",
                                     "a customer id is 1 to %d bytes of "
                                     "printable ASCII without spaces, '{' "
                                     "or '}'", LOYALTY_ID_MAX);
        return NGX_ERROR;
    }

    key->data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    if (key->data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    key->len = loyalty_key((char *) key->data, "customer",
                           (char *) ctx->params[0].data, ctx->params[0].len,
                           "");

    return NGX_OK;
}
