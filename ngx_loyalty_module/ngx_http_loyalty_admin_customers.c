/*
 * The customer endpoints of the admin API:
 *
 *   GET /customers/{id}     the account: balances, pending accruals with
 *                           their due dates, lots, tier, orders
 *   PATCH /customers/{id}   the profile the program uses: birthday,
 *                           marketing opt-in or opt-out
 *   PUT /customers/{id}/referral-code
 *                           gives the customer a referral code
 *   GET /customers/{id}/history
 *                           the ledger, newest first, a page at a time
 *   PUT /customers/{id}/enrolment
 *                           an explicit sign-up
 */

#include "ngx_http_loyalty_admin.h"
#include "ngx_http_loyalty_checkout.h"
#include "loyalty_code.h"
#include "loyalty_keys.h"


static void ngx_http_loyalty_customer_get(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_customer_patch(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_customer_read(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_customer_scheduled(void *data,
    ngx_uint_t status, redisReply *reply);
static void ngx_http_loyalty_referral_code(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_referral_coded(void *data, ngx_uint_t status,
    redisReply *reply);
static ngx_int_t ngx_http_loyalty_customer_birthday(
    const loyalty_json_t *v, ngx_str_t *out);
static json_t *ngx_http_loyalty_customer_accrual(ngx_str_t *order,
    redisReply *value);
static json_t *ngx_http_loyalty_customer_lots(redisReply *value);
static int64_t ngx_http_loyalty_reply_int(redisReply *e);
static ngx_int_t ngx_http_loyalty_customer_keys(
    ngx_http_loyalty_admin_t *ctx, ngx_str_t *keys);
static void ngx_http_loyalty_customer_progress(ngx_http_loyalty_admin_t *ctx,
    json_t *o, ngx_str_t *tier, ngx_str_t *spend, ngx_str_t *lots);
static void ngx_http_loyalty_referral_noted(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_history(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_history_read(void *data, ngx_uint_t status,
    redisReply *reply);
static json_t *ngx_http_loyalty_history_entry(redisReply *e);
static void ngx_http_loyalty_enrol(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_enrolled(void *data, ngx_uint_t status,
    redisReply *reply);


ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_customer_routes[] = {
    { NGX_HTTP_GET, "customers/*", ngx_http_loyalty_customer_get },
    { NGX_HTTP_PATCH, "customers/*", ngx_http_loyalty_customer_patch },
    { NGX_HTTP_PUT, "customers/*/referral-code",
      ngx_http_loyalty_referral_code },
    { NGX_HTTP_GET, "customers/*/history", ngx_http_loyalty_history },
    { NGX_HTTP_PUT, "customers/*/enrolment", ngx_http_loyalty_enrol },
    { 0, NULL, NULL }
};


static void
ngx_http_loyalty_customer_get(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t  keys[3];

    if (ngx_http_loyalty_customer_keys(ctx, keys) != NGX_OK) {
        return;
    }

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_customer_get, keys, 2,
                                    NULL, 0, ngx_http_loyalty_customer_read,
                                    0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/* --- PATCH /customers/{id} ----------------------------------------------- */

static void
ngx_http_loyalty_customer_patch(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t              keys[3], args[2], due, sched[2];
    const loyalty_json_t  *v;

    if (ngx_http_loyalty_customer_keys(ctx, keys) != NGX_OK) {
        return;
    }

    if (ctx->body == NULL || ctx->body->type != LOYALTY_JSON_OBJECT
        || ctx->body->count == 0)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_body",
                                     "send a JSON object with birthday, "
                                     "marketing or both");
        return;
    }

    ngx_str_null(&args[0]);
    ngx_str_null(&args[1]);

    for (v = ctx->body->child; v; v = v->next) {

        if (v->key_len == 8 && ngx_strncmp(v->key, "birthday", 8) == 0) {
            if (ngx_http_loyalty_customer_birthday(v, &args[0]) != NGX_OK) {
                ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                             "invalid_field",
                                             "birthday is \"MM-DD\" (a day "
                                             "of the year) or null");
                return;
            }

        } else if (v->key_len == 9
                   && ngx_strncmp(v->key, "marketing", 9) == 0)
        {
            if (v->type != LOYALTY_JSON_TRUE
                && v->type != LOYALTY_JSON_FALSE)
            {
                ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                             "invalid_field",
                                             "marketing is true or false");
                return;
            }

            ngx_str_set(&args[1], "0");

            if (v->type == LOYALTY_JSON_TRUE) {
                ngx_str_set(&args[1], "1");
            }

        } else {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "unknown_field",
                                         "unknown field \"%*s\": a customer "
                                         "has birthday and marketing",
                                         v->key_len, v->key);
            return;
        }
    }

    /*
     * The schedule first, in the same pipeline: the worker looks at the
     * account at once (a birthday today); for a customer without an
     * account its visit just removes the entry.
     */
    due.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    sched[1] = ngx_http_loyalty_admin_num(ctx->request->pool, ngx_time());

    if (due.data == NULL || sched[1].data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    due.len = loyalty_key_due((char *) due.data, (char *) ctx->params[0].data,
                              ctx->params[0].len, "");
    sched[0] = ctx->params[0];

    ctx->data = NULL;

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_due_add, &due, 1,
                                    sched, 2,
                                    ngx_http_loyalty_customer_scheduled, 0)
        != NGX_OK
        || ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_customer_update,
                                       keys, 2, args, 2,
                                       ngx_http_loyalty_customer_read, 0)
           != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/* Answered by the update that follows it: this only notes a failure. */

static void
ngx_http_loyalty_customer_scheduled(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type == REDIS_REPLY_ERROR)
    {
        ctx->data = ctx;    /* not scheduled: answer 503 */
    }
}


/* "MM-DD", a day that some year has; null: none (as '-'). */

static ngx_int_t
ngx_http_loyalty_customer_birthday(const loyalty_json_t *v, ngx_str_t *out)
{
    ngx_int_t  month, day;

    static const ngx_int_t  days[] = {
        31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (v->type == LOYALTY_JSON_NULL) {
        ngx_str_set(out, "-");
        return NGX_OK;
    }

    if (v->type != LOYALTY_JSON_STRING || v->len != 5 || v->text[2] != '-') {
        return NGX_ERROR;
    }

    month = ngx_atoi((u_char *) v->text, 2);
    day = ngx_atoi((u_char *) v->text + 3, 2);

    if (month < 1 || month > 12 || day < 1 || day > days[month - 1]) {
        return NGX_ERROR;
    }

    out->data = (u_char *) v->text;
    out->len = 5;

    return NGX_OK;
}


/* --- PUT /customers/{id}/referral-code ---------------------------------- */

typedef struct {
    ngx_str_t   code;
    ngx_uint_t  created;
} ngx_http_loyalty_referral_t;


static void
ngx_http_loyalty_referral_code(ngx_http_loyalty_admin_t *ctx)
{
    char                          code[LOYALTY_CODE_MAX + 1];
    size_t                        len, bad;
    ngx_str_t                     key, keys[3], args[2];
    loyalty_code_rc_t             rc;
    const loyalty_json_t         *v;
    ngx_http_loyalty_referral_t  *ref;

    if (ngx_http_loyalty_admin_customer(ctx, &ctx->params[0], keys)
        != NGX_OK)
    {
        return;
    }

    v = NULL;

    if (ctx->body != NULL && ctx->body->type == LOYALTY_JSON_OBJECT) {
        v = loyalty_json_get(ctx->body, "code", 4);
    }

    rc = (v != NULL && v->type == LOYALTY_JSON_STRING)
         ? loyalty_code_normalize(v->text, v->len, code, &len, &bad)
         : LOYALTY_CODE_EMPTY;

    if (rc != LOYALTY_CODE_OK || ctx->body->count != 1) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "send {\"code\": ...}: 1 to %d "
                                     "letters, digits, '-', '_' or '.'",
                                     LOYALTY_CODE_MAX);
        return;
    }

    key.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    args[1] = ngx_http_loyalty_admin_num(ctx->request->pool, ngx_time());
    ref = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_loyalty_referral_t));

    if (key.data == NULL || args[1].data == NULL || ref == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ref->code.data = ngx_pnalloc(ctx->request->pool, len);
    if (ref->code.data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ref->code.len = len;
    ngx_memcpy(ref->code.data, code, len);
    ctx->data = ref;

    key.len = loyalty_key((char *) key.data, "referral", code, len, "");
    args[0] = ctx->params[0];

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_referral_code, &key,
                                    1, args, 2,
                                    ngx_http_loyalty_referral_coded, 0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/* The code is the customer's: noted on the account's side too. */

static void
ngx_http_loyalty_referral_coded(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_str_t                     keys[3], verdict;
    ngx_http_loyalty_admin_t     *ctx;
    ngx_http_loyalty_referral_t  *ref;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    ref = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    verdict = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (verdict.len == 5 && ngx_strncmp(verdict.data, "taken", 5) == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_CONFLICT, "code_taken",
                                     "the referral code belongs to another "
                                     "customer");
        return;
    }

    ref->created = (verdict.len == 7);

    if (ngx_http_loyalty_customer_keys(ctx, keys) != NGX_OK) {
        return;
    }

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_customer_code,
                                    &keys[1], 1, &ref->code, 1,
                                    ngx_http_loyalty_referral_noted, 0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_referral_noted(void *data, ngx_uint_t status,
    redisReply *reply)
{
    json_t                       *o;
    ngx_http_loyalty_admin_t     *ctx;
    ngx_http_loyalty_referral_t  *ref;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    ref = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type == REDIS_REPLY_ERROR)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    o = json_object();
    json_object_set_new(o, "customer",
                        json_stringn((char *) ctx->params[0].data,
                                     ctx->params[0].len));
    json_object_set_new(o, "code",
                        json_stringn((char *) ref->code.data, ref->code.len));

    ngx_http_loyalty_admin_json(ctx, ref->created ? NGX_HTTP_CREATED
                                                  : NGX_HTTP_OK, o);
}


/*
 * The account's keys for the scripts of this file: the hash, then its
 * referral codes.
 */

static ngx_int_t
ngx_http_loyalty_customer_keys(ngx_http_loyalty_admin_t *ctx,
    ngx_str_t *keys)
{
    if (ngx_http_loyalty_admin_customer(ctx, &ctx->params[0], keys)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    keys[1].data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    if (keys[1].data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    keys[1].len = loyalty_key((char *) keys[1].data, "customer",
                              (char *) ctx->params[0].data,
                              ctx->params[0].len, ":codes");

    return NGX_OK;
}


/* --- GET /customers/{id}/history?limit=20&cursor=... ------------------- */

#define NGX_HTTP_LOYALTY_HISTORY_PAGE  20
#define NGX_HTTP_LOYALTY_HISTORY_MAX   100

static void
ngx_http_loyalty_history(ngx_http_loyalty_admin_t *ctx)
{
    ngx_int_t   limit;
    ngx_str_t   keys[3], args[2], value;
    ngx_uint_t  i;

    if (ngx_http_loyalty_admin_customer(ctx, &ctx->params[0], keys)
        != NGX_OK)
    {
        return;
    }

    limit = NGX_HTTP_LOYALTY_HISTORY_PAGE;

    if (ngx_http_arg(ctx->request, (u_char *) "limit", 5, &value) == NGX_OK) {
        limit = ngx_atoi(value.data, value.len);

        if (limit < 1 || limit > NGX_HTTP_LOYALTY_HISTORY_MAX) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_limit", "limit is 1 to %d",
                                         NGX_HTTP_LOYALTY_HISTORY_MAX);
            return;
        }
    }

    ngx_str_null(&args[0]);

    if (ngx_http_arg(ctx->request, (u_char *) "cursor", 6, &value) == NGX_OK) {
        for (i = 0; i < value.len && value.data[i] >= '0'
                    && value.data[i] <= '9'; i++)
        {
            /* digits only */
        }

        if (value.len == 0 || value.len > 18 || i != value.len) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_cursor",
                                         "cursor is the next_cursor of the "
                                         "previous page");
            return;
        }

        args[0] = value;
    }

    /* one more than asked for: whether there is a next page */
    args[1] = ngx_http_loyalty_admin_num(ctx->request->pool, limit);
    ctx->data = ngx_palloc(ctx->request->pool, sizeof(ngx_int_t));

    if (args[1].data == NULL || ctx->data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    *(ngx_int_t *) ctx->data = limit;
    keys[1] = keys[2];

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_customer_history,
                                    keys, 2, args, 2,
                                    ngx_http_loyalty_history_read, 0)
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_history_read(void *data, ngx_uint_t status,
    redisReply *reply)
{
    size_t                     i, n;
    json_t                    *o, *list, *e;
    ngx_int_t                  limit;
    ngx_str_t                  head, cursor;
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    limit = *(ngx_int_t *) ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    head = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (head.len != 2) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no account for customer \"%V\"",
                                     &ctx->params[0]);
        return;
    }

    list = json_array();
    n = ngx_min(reply->elements - 1, (size_t) limit);
    ngx_str_null(&cursor);

    for (i = 1; i <= n; i++) {
        e = ngx_http_loyalty_history_entry(reply->element[i]);
        if (e != NULL) {
            json_array_append_new(list, e);
        }
    }

    o = json_object();
    json_object_set_new(o, "customer",
                        json_stringn((char *) ctx->params[0].data,
                                     ctx->params[0].len));
    json_object_set_new(o, "entries", list);

    /* the last entry's number: the next page starts below it */
    if (reply->elements - 1 > (size_t) limit) {
        cursor = ngx_http_loyalty_admin_reply_str(reply, n);
        cursor.len = ngx_strlchr(cursor.data, cursor.data + cursor.len, '\n')
                     - cursor.data;
    }

    json_object_set_new(o, "next_cursor",
                        cursor.len ? json_stringn((char *) cursor.data,
                                                  cursor.len)
                                   : json_null());

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


/*
 * "seq\nat\ntype\npoints\npending\nref\ndetail\nactor" as JSON: the ref
 * and the detail are named by the type.
 */

static json_t *
ngx_http_loyalty_history_entry(redisReply *e)
{
    char        *p, *end, *nl;
    json_t      *o;
    ngx_uint_t   i, t;
    ngx_str_t    f[8];

    static const char  *names[][3] = {
        { "order", "order", NULL },
        { "credit", "order", NULL },
        { "expiry", NULL, NULL },
        { "return", "order", "return" },
        { "bonus", "bonus_id", "kind" },
        { "adjustment", "adjustment_id", "reason" },
    };

    if (e->type != REDIS_REPLY_STRING) {
        return NULL;
    }

    p = e->str;
    end = p + e->len;

    for (i = 0; i < 8; i++) {
        nl = p ? memchr(p, '\n', end - p) : NULL;

        f[i].data = (u_char *) p;
        f[i].len = p ? (size_t) ((nl ? nl : end) - p) : 0;

        p = nl ? nl + 1 : NULL;
    }

    for (t = 0; t < sizeof(names) / sizeof(names[0]); t++) {
        if (f[2].len == ngx_strlen(names[t][0])
            && ngx_strncmp(f[2].data, names[t][0], f[2].len) == 0)
        {
            break;
        }
    }

    o = json_object();
    json_object_set_new(o, "id", json_stringn((char *) f[0].data, f[0].len));
    json_object_set_new(o, "at",
                        ngx_http_loyalty_admin_time(
                            ngx_atoof(f[1].data, f[1].len)));
    json_object_set_new(o, "type",
                        json_stringn((char *) f[2].data, f[2].len));

    for (i = 3; i < 5; i++) {
        p = (char *) f[i].data;
        json_object_set_new(o, i == 3 ? "points" : "pending",
                            json_integer(f[i].len && *p == '-'
                                         ? -ngx_atoof(f[i].data + 1,
                                                      f[i].len - 1)
                                         : ngx_atoof(f[i].data, f[i].len)));
    }

    for (i = 5; i < 7; i++) {
        if (f[i].len && t < sizeof(names) / sizeof(names[0])
            && names[t][i - 4] != NULL)
        {
            json_object_set_new(o, names[t][i - 4],
                                json_stringn((char *) f[i].data, f[i].len));
        }
    }

    if (f[7].len) {
        json_object_set_new(o, "actor",
                            json_stringn((char *) f[7].data, f[7].len));
    }

    return o;
}


/* --- PUT /customers/{id}/enrolment ---------------------------------------- */

static void
ngx_http_loyalty_enrol(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t  keys[3], due, args[2];

    if (ngx_http_loyalty_admin_customer(ctx, &ctx->params[0], keys)
        != NGX_OK)
    {
        return;
    }

    /* the worker looks at the account at once: its statements start */
    due.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    args[1] = ngx_http_loyalty_admin_num(ctx->request->pool, ngx_time());

    if (due.data == NULL || args[1].data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    due.len = loyalty_key_due((char *) due.data, (char *) ctx->params[0].data,
                              ctx->params[0].len, "");
    args[0] = ctx->params[0];
    ctx->data = NULL;

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_due_add, &due, 1,
                                    args, 2,
                                    ngx_http_loyalty_customer_scheduled, 0)
        != NGX_OK
        || ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_customer_enrol,
                                       keys, 1, &args[1], 1,
                                       ngx_http_loyalty_enrolled, 0)
           != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_enrolled(void *data, ngx_uint_t status, redisReply *reply)
{
    json_t                    *o;
    ngx_str_t                  s;
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || ctx->data != NULL)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    s = ngx_http_loyalty_admin_reply_str(reply, 1);

    o = json_object();
    json_object_set_new(o, "customer",
                        json_stringn((char *) ctx->params[0].data,
                                     ctx->params[0].len));
    json_object_set_new(o, "enrolled_at",
                        ngx_http_loyalty_admin_time(ngx_atoof(s.data,
                                                              s.len)));

    s = ngx_http_loyalty_admin_reply_str(reply, 0);

    ngx_http_loyalty_admin_json(ctx, s.len == 8 ? NGX_HTTP_CREATED
                                                : NGX_HTTP_OK, o);
}


/* The account of a GET or of a PATCH, answered. */

static void
ngx_http_loyalty_customer_read(void *data, ngx_uint_t status,
    redisReply *reply)
{
    size_t                     i;
    json_t                    *o, *pending, *codes;
    ngx_str_t                  f, tier, spend, lots;
    redisReply                *v, *codes_reply;
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[1]->type != REDIS_REPLY_ARRAY || ctx->data != NULL)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    codes_reply = reply->element[1];
    reply = reply->element[0];

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
    json_object_set_new(o, "birthday", json_null());
    json_object_set_new(o, "marketing", json_true());

    ngx_str_null(&tier);
    ngx_str_null(&spend);
    ngx_str_null(&lots);

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
            tier.data = (u_char *) v->str;
            tier.len = v->len;

        } else if (f.len == 1 && f.data[0] == 'S') {
            spend.data = (u_char *) v->str;
            spend.len = v->len;

        } else if (f.len == 1 && f.data[0] == 'e') {
            json_object_set_new(o, "enrolled_at",
                                ngx_http_loyalty_admin_time(
                                    ngx_http_loyalty_reply_int(v)));

        } else if (f.len == 2 && ngx_strncmp(f.data, "rb", 2) == 0) {
            json_object_set_new(o, "referred_by",
                                json_stringn(v->str, v->len));

        } else if (f.len == 2 && ngx_strncmp(f.data, "bd", 2) == 0) {
            json_object_set_new(o, "birthday", json_stringn(v->str, v->len));

        } else if (f.len == 2 && ngx_strncmp(f.data, "mo", 2) == 0) {
            json_object_set_new(o, "marketing", json_false());

        } else if (f.len == 1 && f.data[0] == 'L') {
            json_object_set_new(o, "lots",
                                ngx_http_loyalty_customer_lots(v));
            lots.data = (u_char *) v->str;
            lots.len = v->len;
        }
    }

    codes = json_array();

    for (i = 0; i < codes_reply->elements; i++) {
        f = ngx_http_loyalty_admin_reply_str(codes_reply, i);
        json_array_append_new(codes, json_stringn((char *) f.data, f.len));
    }

    json_object_set_new(o, "referral_codes", codes);
    ngx_http_loyalty_customer_progress(ctx, o, &tier, &spend, &lots);

    /* the accruals still waiting for their return window */
    json_object_set_new(o, "pending_accruals", pending);

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


/*
 * What the account page needs beyond the balances: the tier's perks and
 * the spend still missing for the next tier (the tier spend inside
 * loyalty_tier_window, "time:amount:order,..."), and the points that
 * expire within the reminder's notice.
 */

static void
ngx_http_loyalty_customer_progress(ngx_http_loyalty_admin_t *ctx, json_t *o,
    ngx_str_t *tier, ngx_str_t *spend, ngx_str_t *lots)
{
    off_t                          t, n;
    char                           text[LOYALTY_MONEY_TEXT_MAX];
    json_t                        *soon, *perks;
    time_t                         now, first;
    u_char                        *p, *end, *colon, *comma;
    int64_t                        total, points;
    ngx_uint_t                     i, current;
    loyalty_program_t             *prog;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);
    prog = &lmcf->program;
    now = ngx_time();

    /* expiring soon: lots "expiry:points", 0 never */
    points = 0;
    first = 0;
    p = lots->data;
    end = p ? p + lots->len : NULL;

    while (p && p < end) {
        comma = ngx_strlchr(p, end, ',');
        comma = comma ? comma : end;
        colon = ngx_strlchr(p, comma, ':');

        if (colon) {
            t = ngx_atoof(p, colon - p);
            n = ngx_atoof(colon + 1, comma - colon - 1);

            if (t > 0 && n > 0 && t - prog->expire_notice <= now) {
                points += n;
                first = (first == 0 || t < first) ? t : first;
            }
        }

        p = comma + 1;
    }

    soon = json_object();
    json_object_set_new(soon, "points", json_integer(points));
    json_object_set_new(soon, "first_expires_at",
                        first ? ngx_http_loyalty_admin_time(first)
                              : json_null());
    json_object_set_new(o, "expiring_soon", soon);

    if (prog->ntiers == 0) {
        return;
    }

    /* the spend inside the window: "time:amount:order,..." */
    total = 0;
    p = spend->data;
    end = p ? p + spend->len : NULL;

    while (p && p < end) {
        comma = ngx_strlchr(p, end, ',');
        comma = comma ? comma : end;
        colon = ngx_strlchr(p, comma, ':');

        if (colon) {
            t = ngx_atoof(p, colon - p);
            p = colon + 1;
            colon = ngx_strlchr(p, comma, ':');
            n = ngx_atoof(p, (colon ? colon : comma) - p);

            if (t > now - prog->tier_window && n > 0) {
                total += n;
            }
        }

        p = comma + 1;
    }

    current = 0;

    for (i = 0; i < prog->ntiers; i++) {
        if (tier->len == prog->tiers[i].name.len
            && ngx_strncmp(tier->data, prog->tiers[i].name.data, tier->len)
               == 0)
        {
            current = i;
        }
    }

    perks = json_array();
    p = (u_char *) prog->tiers[current].perks.data;
    end = p + prog->tiers[current].perks.len;

    while (p && p < end) {
        comma = ngx_strlchr(p, end, ',');
        comma = comma ? comma : end;
        json_array_append_new(perks, json_stringn((char *) p, comma - p));
        p = comma + 1;
    }

    json_object_set_new(o, "tier_perks", perks);
    loyalty_money_format(total, lmcf->decimals, text);
    json_object_set_new(o, "tier_spend", json_string(text));

    if (current + 1 < prog->ntiers) {
        json_object_set_new(o, "next_tier",
                            json_stringn(prog->tiers[current + 1].name.data,
                                         prog->tiers[current + 1].name.len));
        loyalty_money_format(ngx_max(prog->tiers[current + 1].threshold
                                     - total, 0),
                             lmcf->decimals, text);
        json_object_set_new(o, "to_next_tier", json_string(text));

    } else {
        json_object_set_new(o, "next_tier", json_null());
        json_object_set_new(o, "to_next_tier", json_null());
    }
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
    off_t    expiry;
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
            expiry = ngx_atoof(p, colon - p);
            json_object_set_new(lot, "expires_at",
                                expiry > 0
                                ? ngx_http_loyalty_admin_time(expiry)
                                : json_null());    /* never */
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
