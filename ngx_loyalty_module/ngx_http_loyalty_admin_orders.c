/*
 * The order endpoints of the admin API:
 *
 *   POST /orders/{id}/returns   a return or refund, idempotent by its id:
 *                               the order's points shrink pro rata (or are
 *                               clawed back once credited), the points it
 *                               redeemed come back, a coupon that says so
 *                               gets its use back on a whole return
 *
 * Three steps, each one script on one hash tag: the order registry says
 * whose order it is; order_return.lua changes the account; then, in one
 * pipeline, the schedule (the worker sends the event and recomputes the
 * tier) and, for a whole return with a coupon, coupon_return.lua.
 */

#include "ngx_http_loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_keys.h"
#include "loyalty_money.h"


#define NGX_HTTP_LOYALTY_RETURN_LINES  1000


typedef struct {
    ngx_str_t       order;
    ngx_str_t       return_id;
    ngx_str_t       customer;
    int64_t         amount;             /* minor units */
    ngx_str_t       state;
    int64_t         counted;
    int64_t         removed;
    int64_t         given;
    int64_t         shortfall;
    int64_t         available;
    int64_t         pending;
    ngx_str_t       coupon;             /* "" for none */
    const char     *coupon_use;         /* what coupon_return.lua said */
    unsigned        replayed:1;
    unsigned        failed:1;           /* a later step did not run */
} ngx_http_loyalty_return_t;


static void ngx_http_loyalty_return(ngx_http_loyalty_admin_t *ctx);
static ngx_int_t ngx_http_loyalty_return_read(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_return_t *ret);
static ngx_int_t ngx_http_loyalty_return_money(ngx_http_loyalty_admin_t *ctx,
    const loyalty_json_t *v, int64_t *out);
static void ngx_http_loyalty_return_owner(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_return_applied(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_return_after(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_return_answer(ngx_http_loyalty_admin_t *ctx);


ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_order_routes[] = {
    { NGX_HTTP_POST, "orders/*/returns", ngx_http_loyalty_return },
    { 0, NULL, NULL }
};


static void
ngx_http_loyalty_return(ngx_http_loyalty_admin_t *ctx)
{
    size_t                      bad;
    ngx_str_t                   key;
    ngx_http_loyalty_return_t  *ret;

    ret = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_loyalty_return_t));
    key.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);

    if (ret == NULL || key.data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = ret;
    ret->order = ctx->params[0];

    if (loyalty_id_check((char *) ret->order.data, ret->order.len,
                         LOYALTY_ID_MAX, &bad)
        != LOYALTY_CODE_OK)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_order",
                                     "an order id is 1 to %d bytes of "
                                     "printable ASCII without spaces, '{' "
                                     "or '}'", LOYALTY_ID_MAX);
        return;
    }

    if (ngx_http_loyalty_return_read(ctx, ret) != NGX_OK) {
        return;
    }

    key.len = loyalty_key_order((char *) key.data, (char *) ret->order.data,
                                ret->order.len);

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_order_owner, &key, 1,
                                    &ret->order, 1,
                                    ngx_http_loyalty_return_owner, 0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/* {"return_id": "r-1", "amount": "25.00"} or "lines": [{price, quantity}] */

static ngx_int_t
ngx_http_loyalty_return_read(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_return_t *ret)
{
    size_t                 bad, n;
    int64_t                price, sum, qty;
    const loyalty_json_t  *v, *amount, *lines, *line, *f;

    if (ctx->body == NULL || ctx->body->type != LOYALTY_JSON_OBJECT) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_body",
                                     "send the return as a JSON object");
        return NGX_ERROR;
    }

    amount = NULL;
    lines = NULL;

    for (v = ctx->body->child; v; v = v->next) {
        if (v->key_len == 9 && ngx_strncmp(v->key, "return_id", 9) == 0) {
            if (v->type != LOYALTY_JSON_STRING
                || loyalty_id_check(v->text, v->len, LOYALTY_ID_MAX, &bad)
                   != LOYALTY_CODE_OK)
            {
                break;
            }

            ret->return_id.data = (u_char *) v->text;
            ret->return_id.len = v->len;

        } else if (v->key_len == 6 && ngx_strncmp(v->key, "amount", 6) == 0) {
            amount = v;

        } else if (v->key_len == 5 && ngx_strncmp(v->key, "lines", 5) == 0) {
            lines = v;

        } else {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "unknown_field",
                                         "unknown field \"%*s\": a return "
                                         "has return_id and amount or lines",
                                         v->key_len, v->key);
            return NGX_ERROR;
        }
    }

    if (ret->return_id.len == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "return_id is required: an id of "
                                     "printable ASCII without spaces, '{' "
                                     "or '}', 1 to %d bytes",
                                     LOYALTY_ID_MAX);
        return NGX_ERROR;
    }

    if ((amount == NULL) == (lines == NULL)) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "send either amount or lines");
        return NGX_ERROR;
    }

    if (amount != NULL) {
        if (ngx_http_loyalty_return_money(ctx, amount, &ret->amount)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (lines->type != LOYALTY_JSON_ARRAY || lines->count == 0
        || lines->count > NGX_HTTP_LOYALTY_RETURN_LINES)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "lines is a list of 1 to %d "
                                     "{\"price\", \"quantity\"} objects",
                                     NGX_HTTP_LOYALTY_RETURN_LINES);
        return NGX_ERROR;
    }

    sum = 0;
    n = 0;

    for (line = lines->child; line; line = line->next, n++) {
        f = (line->type == LOYALTY_JSON_OBJECT)
            ? loyalty_json_get(line, "quantity", 8) : NULL;

        if (f == NULL || f->type != LOYALTY_JSON_NUMBER || f->len > 5
            || strspn(f->text, "0123456789") != f->len || f->text[0] == '0')
        {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_field",
                                         "lines/%uz/quantity must be a whole "
                                         "number from 1 to 99999", n);
            return NGX_ERROR;
        }

        qty = ngx_atoi((u_char *) f->text, f->len);

        if (ngx_http_loyalty_return_money(ctx,
                                          loyalty_json_get(line, "price", 5),
                                          &price)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        sum += price * qty;    /* < 1000 lines * 1e12 * 1e5: fits */
    }

    ret->amount = sum;

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_return_money(ngx_http_loyalty_admin_t *ctx,
    const loyalty_json_t *v, int64_t *out)
{
    loyalty_money_spec_t           ms;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);

    ms.decimals = lmcf->decimals;
    ms.round = LOYALTY_ROUND_EXACT;
    ms.min = 1;
    ms.max = 1000000000000LL;

    if (v == NULL
        || (v->type != LOYALTY_JSON_STRING && v->type != LOYALTY_JSON_NUMBER)
        || loyalty_money_parse(v->text, v->len, &ms, out) != LOYALTY_MONEY_OK)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "amounts and prices are positive "
                                     "money with at most %ud decimals, as "
                                     "\"25.00\"", lmcf->decimals);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_loyalty_return_owner(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_str_t                      keys[3], args[6];
    ngx_pool_t                    *pool;
    ngx_http_loyalty_return_t     *ret;
    ngx_http_loyalty_admin_t      *ctx;
    ngx_http_loyalty_main_conf_t  *lmcf;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    ret = ctx->data;
    pool = ctx->request->pool;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || (reply->type != REDIS_REPLY_STRING
            && reply->type != REDIS_REPLY_NIL))
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (reply->type == REDIS_REPLY_NIL) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                     "order \"%V\" was never confirmed",
                                     &ret->order);
        return;
    }

    if (reply->len == 0) {
        ngx_http_loyalty_admin_error(ctx, 422, "guest_order",
                                     "order \"%V\" is a guest's: it earned "
                                     "no points", &ret->order);
        return;
    }

    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);

    ret->customer.data = ngx_pnalloc(pool, reply->len);
    ret->customer.len = reply->len;

    if (ret->customer.data == NULL
        || ngx_http_loyalty_admin_account_keys(pool, (u_char *) reply->str,
                                               reply->len, keys)
           != NGX_OK)
    {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(ret->customer.data, reply->str, reply->len);

    args[0] = ret->order;
    args[1] = ret->return_id;
    args[2] = ngx_http_loyalty_admin_num(pool, ret->amount);
    args[3] = ngx_http_loyalty_admin_num(pool, ngx_time());
    args[4] = ngx_http_loyalty_admin_num(pool,
                                          lmcf->program.points_expire);
    args[5] = ret->customer;

    if (args[2].data == NULL || args[3].data == NULL || args[4].data == NULL
        || ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_order_return,
                                       keys, 3, args, 6,
                                       ngx_http_loyalty_return_applied, 0)
           != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/* The account changed: the schedule, and the coupon of a whole return. */

static void
ngx_http_loyalty_return_applied(void *data, ngx_uint_t status,
    redisReply *reply)
{
    size_t                      i;
    ngx_str_t                   s, keys[3], args[2];
    ngx_pool_t                 *pool;
    redisReply                **e;
    ngx_http_loyalty_stat_t     st[3];
    ngx_http_loyalty_return_t  *ret;
    ngx_http_loyalty_admin_t   *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    ret = ctx->data;
    pool = ctx->request->pool;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    e = reply->element;
    s = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (s.len == 9 && ngx_strncmp(s.data, "not_found", 9) == 0) {
        /* claimed, but its record did not land (yet: see the spool) */
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                     "order \"%V\" has no record in the "
                                     "account of customer \"%V\"",
                                     &ret->order, &ret->customer);
        return;
    }

    if (s.len == 8 && ngx_strncmp(s.data, "conflict", 8) == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_CONFLICT,
                                     "return_conflict",
                                     "return \"%V\" of order \"%V\" was made "
                                     "with another amount", &ret->return_id,
                                     &ret->order);
        return;
    }

    if (reply->elements < 12) {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    ret->replayed = (s.len == 8 && ngx_strncmp(s.data, "replayed", 8) == 0);

    s = ngx_http_loyalty_admin_reply_str(reply, 1);
    ret->state.data = ngx_pstrdup(pool, &s);
    ret->state.len = s.len;
    ret->counted = e[2]->integer;
    ret->removed = e[3]->integer;
    ret->given = e[4]->integer;
    ret->shortfall = e[5]->integer;
    ret->available = e[6]->integer;
    ret->pending = e[7]->integer;

    if (!ret->replayed) {
        ngx_str_set(&st[0].field, "available");
        st[0].change = e[10]->integer;
        ngx_str_set(&st[1].field, "pending");
        st[1].change = e[11]->integer;
        ngx_str_set(&st[2].field, "returned");
        st[2].change = ret->removed;

        ngx_http_loyalty_stats_add(st, 3);
        ngx_http_loyalty_board_add(&ret->customer, -ret->removed);
    }

    s = ngx_http_loyalty_admin_reply_str(reply, 8);
    ret->coupon.data = ngx_pstrdup(pool, &s);
    ret->coupon.len = s.len;

    for (i = 0; i < 3; i++) {
        keys[i].data = ngx_pnalloc(pool, LOYALTY_KEY_MAX);
        if (keys[i].data == NULL) {
            ngx_http_finalize_request(ctx->request,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ret->state.data == NULL || ret->coupon.data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the worker visits now: the event goes out, the tier is recomputed */
    keys[0].len = loyalty_key_due((char *) keys[0].data,
                                  (char *) ret->customer.data,
                                  ret->customer.len, "");
    args[0] = ret->customer;
    args[1] = ngx_http_loyalty_admin_num(pool, ngx_time());

    if (args[1].data == NULL
        || ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_due_add, keys, 1,
                                       args, 2,
                                       ngx_http_loyalty_return_after, 0)
           != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (ret->coupon.len == 0 || e[9]->integer != 1) {
        return;
    }

    keys[0].len = loyalty_key((char *) keys[0].data, "coupon",
                              (char *) ret->coupon.data, ret->coupon.len, "");
    keys[1].len = loyalty_key((char *) keys[1].data, "coupon",
                              (char *) ret->coupon.data, ret->coupon.len,
                              ":uses");
    keys[2].len = loyalty_key((char *) keys[2].data, "coupon",
                              (char *) ret->coupon.data, ret->coupon.len,
                              ":orders");

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_coupon_return, keys,
                                    3, &ret->order, 1,
                                    ngx_http_loyalty_return_after, 1)
        != NGX_OK)
    {
        /* the schedule call is queued; its reply answers 503 */
        ret->failed = 1;
    }
}


static void
ngx_http_loyalty_return_after(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_stat_t         st;
    ngx_http_loyalty_return_t      *ret;
    ngx_http_loyalty_admin_t       *ctx;
    ngx_http_loyalty_admin_call_t  *call;

    call = ngx_http_loyalty_admin_done_call(data);
    ctx = call->ctx;
    ret = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type == REDIS_REPLY_ERROR)
    {
        ret->failed = 1;

    } else if (call->index == 1 && reply->type == REDIS_REPLY_STRING) {
        if (reply->len == 8 && ngx_strncmp(reply->str, "released", 8) == 0) {
            st.field.data = ngx_pnalloc(ctx->request->pool,
                                        sizeof("coupon:") - 1
                                        + ret->coupon.len);
            if (st.field.data != NULL) {
                st.field.len = ngx_sprintf(st.field.data, "coupon:%V",
                                           &ret->coupon)
                               - st.field.data;
                st.change = -1;
                ngx_http_loyalty_stats_add(&st, 1);
            }
        }

        ret->coupon_use = ngx_pnalloc(ctx->request->pool, reply->len + 1);

        if (ret->coupon_use != NULL) {
            ngx_cpystrn((u_char *) ret->coupon_use, (u_char *) reply->str,
                        reply->len + 1);
        }
    }

    if (ctx->pending) {
        return;
    }

    if (ret->failed) {
        /* the return itself is in; a retry with its id finishes the rest */
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    ngx_http_loyalty_return_answer(ctx);
}


static void
ngx_http_loyalty_return_answer(ngx_http_loyalty_admin_t *ctx)
{
    char                            text[32];
    json_t                         *o, *coupon;
    ngx_http_loyalty_return_t      *ret;
    ngx_http_loyalty_main_conf_t   *lmcf;

    ret = ctx->data;
    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);

    o = json_object();

    json_object_set_new(o, "order", json_stringn((char *) ret->order.data,
                                                 ret->order.len));
    json_object_set_new(o, "return_id",
                        json_stringn((char *) ret->return_id.data,
                                     ret->return_id.len));
    json_object_set_new(o, "customer",
                        json_stringn((char *) ret->customer.data,
                                     ret->customer.len));
    json_object_set_new(o, "state", json_stringn((char *) ret->state.data,
                                                 ret->state.len));

    loyalty_money_format(ret->counted, lmcf->decimals, text);
    json_object_set_new(o, "counted", json_string(text));
    json_object_set_new(o, "points_removed", json_integer(ret->removed));
    json_object_set_new(o, "redeemed_returned", json_integer(ret->given));
    json_object_set_new(o, "shortfall", json_integer(ret->shortfall));
    json_object_set_new(o, "available", json_integer(ret->available));
    json_object_set_new(o, "pending", json_integer(ret->pending));

    if (ret->coupon.len) {
        coupon = json_object();
        json_object_set_new(coupon, "code",
                            json_stringn((char *) ret->coupon.data,
                                         ret->coupon.len));
        json_object_set_new(coupon, "use",
                            json_string(ret->coupon_use ? ret->coupon_use
                                                        : "kept"));
        json_object_set_new(o, "coupon", coupon);

    } else {
        json_object_set_new(o, "coupon", json_null());
    }

    json_object_set_new(o, "replayed", json_boolean(ret->replayed));

    ngx_http_loyalty_admin_json(ctx, ret->replayed ? NGX_HTTP_OK
                                                   : NGX_HTTP_CREATED, o);
}

