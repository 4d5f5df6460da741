/*
 * The admin endpoints that give or take points outside an order:
 *
 *   POST /customers/{id}/adjustments   a manual adjustment, with a reason
 *                                      and the actor, for the audit trail
 *   POST /events                       an engagement bonus (a review, a
 *                                      sign-up...) within its type's cap
 *
 * The first two are one account_grant.lua each, idempotent by the id the
 * client gives; the schedule is touched in the same pipeline so that the
 * worker sends the event at once.
 */

#include "ngx_http_loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_keys.h"


#define NGX_HTTP_LOYALTY_TEXT_MAX     200     /* a reason */


/* what an adjustment or an event asks, for the answer */
typedef struct {
    ngx_str_t                        customer;
    ngx_str_t                        id;
    ngx_str_t                        type;      /* an event's */
    const ngx_http_loyalty_bonus_t  *bonus;
    ngx_uint_t                       unscheduled;
} ngx_http_loyalty_grant_t;


static void ngx_http_loyalty_adjust(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_event(ngx_http_loyalty_admin_t *ctx);
static ngx_int_t ngx_http_loyalty_grant_send(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_grant_t *g, ngx_str_t *args);
static void ngx_http_loyalty_grant_scheduled(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_grant_done(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_grant_count(ngx_http_loyalty_grant_t *g,
    int64_t change);
static ngx_int_t ngx_http_loyalty_text(const loyalty_json_t *v, size_t max,
    ngx_str_t *out);
static ngx_int_t ngx_http_loyalty_id(const loyalty_json_t *v,
    ngx_str_t *out);


ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_points_routes[] = {
    { NGX_HTTP_POST, "customers/*/adjustments", ngx_http_loyalty_adjust },
    { NGX_HTTP_POST, "events", ngx_http_loyalty_event },
    { 0, NULL, NULL }
};


/* --- POST /customers/{id}/adjustments ------------------------------------ */

static void
ngx_http_loyalty_adjust(ngx_http_loyalty_admin_t *ctx)
{
    int64_t                    points;
    uint32_t                   crc;
    ngx_str_t                  args[10], reason, actor;
    ngx_pool_t                *pool;
    ngx_uint_t                 seen;
    const loyalty_json_t      *v;
    ngx_http_loyalty_grant_t  *g;

    pool = ctx->request->pool;

    g = ngx_pcalloc(pool, sizeof(ngx_http_loyalty_grant_t));
    if (g == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = g;
    g->customer = ctx->params[0];

    if (ctx->body == NULL || ctx->body->type != LOYALTY_JSON_OBJECT) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_body",
                                     "send {\"id\", \"points\", \"reason\", "
                                     "\"actor\"} as a JSON object");
        return;
    }

    seen = 0;
    points = 0;

    for (v = ctx->body->child; v; v = v->next) {

        if (v->key_len == 2 && ngx_strncmp(v->key, "id", 2) == 0) {
            if (ngx_http_loyalty_id(v, &g->id) != NGX_OK) {
                goto invalid_id;
            }
            seen |= 1;

        } else if (v->key_len == 6 && ngx_strncmp(v->key, "points", 6) == 0) {
            points = (v->type == LOYALTY_JSON_NUMBER)
                     ? ngx_http_loyalty_admin_int(v) : 0;

            if (points == 0) {
                ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                             "invalid_field",
                                             "points is a whole number, not "
                                             "0, from -%d to %d",
                                             NGX_HTTP_LOYALTY_POINTS_MAX,
                                             NGX_HTTP_LOYALTY_POINTS_MAX);
                return;
            }
            seen |= 2;

        } else if (v->key_len == 6 && ngx_strncmp(v->key, "reason", 6) == 0) {
            if (ngx_http_loyalty_text(v, NGX_HTTP_LOYALTY_TEXT_MAX, &reason)
                != NGX_OK)
            {
                ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                             "invalid_field",
                                             "reason is 1 to %d bytes of "
                                             "text without control "
                                             "characters",
                                             NGX_HTTP_LOYALTY_TEXT_MAX);
                return;
            }
            seen |= 4;

        } else if (v->key_len == 5 && ngx_strncmp(v->key, "actor", 5) == 0) {
            if (ngx_http_loyalty_text(v, LOYALTY_ID_MAX, &actor) != NGX_OK) {
                ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                             "invalid_field",
                                             "actor is 1 to %d bytes of "
                                             "text without control "
                                             "characters", LOYALTY_ID_MAX);
                return;
            }
            seen |= 8;

        } else {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "unknown_field",
                                         "unknown field \"%*s\": an "
                                         "adjustment has id, points, reason "
                                         "and actor", v->key_len, v->key);
            return;
        }
    }

    if (seen != 15) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_field",
                                     "an adjustment needs id, points, reason "
                                     "and actor");
        return;
    }

    /* the same id with other points, reason or actor is a conflict */
    crc = ngx_crc32_short((u_char *) &points, sizeof(points));
    crc ^= ngx_crc32_long(reason.data, reason.len) * 31;
    crc ^= ngx_crc32_long(actor.data, actor.len) * 131;

    args[0].data = ngx_pnalloc(pool, sizeof("adjustment:") - 1 + g->id.len);
    args[1] = ngx_http_loyalty_admin_num(pool, crc);
    args[2] = ngx_http_loyalty_admin_num(pool, points);

    if (args[0].data == NULL || args[1].data == NULL || args[2].data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    args[0].len = ngx_sprintf(args[0].data, "adjustment:%V", &g->id)
                  - args[0].data;
    ngx_str_set(&args[6], "adjustment");
    args[7] = g->id;
    args[8] = reason;
    args[9] = actor;

    (void) ngx_http_loyalty_grant_send(ctx, g, args);
    return;

invalid_id:

    ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST, "invalid_field",
                                 "id is 1 to %d bytes of printable ASCII "
                                 "without spaces, '{' or '}'",
                                 LOYALTY_ID_MAX);
}


/* --- POST /events --------------------------------------------------------- */

static void
ngx_http_loyalty_event(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t                      args[10];
    ngx_pool_t                    *pool;
    const loyalty_json_t          *v, *id, *type, *customer;
    ngx_http_loyalty_grant_t      *g;
    ngx_http_loyalty_main_conf_t  *lmcf;

    pool = ctx->request->pool;
    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);

    g = ngx_pcalloc(pool, sizeof(ngx_http_loyalty_grant_t));
    if (g == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = g;

    if (ctx->body == NULL || ctx->body->type != LOYALTY_JSON_OBJECT) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_body",
                                     "send {\"id\", \"type\", \"customer\"} "
                                     "as a JSON object");
        return;
    }

    for (v = ctx->body->child; v; v = v->next) {
        if (!((v->key_len == 2 && ngx_strncmp(v->key, "id", 2) == 0)
              || (v->key_len == 4 && ngx_strncmp(v->key, "type", 4) == 0)
              || (v->key_len == 8
                  && ngx_strncmp(v->key, "customer", 8) == 0)))
        {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "unknown_field",
                                         "unknown field \"%*s\": an event "
                                         "has id, type and customer",
                                         v->key_len, v->key);
            return;
        }
    }

    id = loyalty_json_get(ctx->body, "id", 2);
    type = loyalty_json_get(ctx->body, "type", 4);
    customer = loyalty_json_get(ctx->body, "customer", 8);

    if (id == NULL || type == NULL || customer == NULL) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_field",
                                     "an event needs id, type and customer");
        return;
    }

    if (ngx_http_loyalty_id(id, &g->id) != NGX_OK) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "id is 1 to %d bytes of printable ASCII "
                                     "without spaces, '{' or '}'",
                                     LOYALTY_ID_MAX);
        return;
    }

    if (type->type != LOYALTY_JSON_STRING || customer->type
        != LOYALTY_JSON_STRING)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "type and customer are strings");
        return;
    }

    g->customer.data = (u_char *) customer->text;
    g->customer.len = customer->len;
    g->type.data = (u_char *) type->text;
    g->type.len = type->len;

    g->bonus = ngx_http_loyalty_bonus_find(lmcf, g->type.data, g->type.len);

    if (g->bonus == NULL) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_LOYALTY_UNPROCESSABLE,
                                     "unknown_event_type",
                                     "no loyalty_bonus gives points for "
                                     "events of type \"%*s\"",
                                     ngx_min(type->len, 64), type->text);
        return;
    }

    args[0].data = ngx_pnalloc(pool, sizeof("event::") - 1 + g->type.len
                                     + g->id.len);
    args[2] = ngx_http_loyalty_admin_num(pool, g->bonus->points);

    if (args[0].data == NULL || args[2].data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    args[0].len = ngx_sprintf(args[0].data, "event:%V:%V", &g->type, &g->id)
                  - args[0].data;
    ngx_str_set(&args[1], "-");     /* the key says all */
    ngx_str_set(&args[6], "bonus");
    args[7] = g->id;
    args[8] = g->type;
    ngx_str_null(&args[9]);

    (void) ngx_http_loyalty_grant_send(ctx, g, args);
}


/*
 * The schedule, then account_grant.lua, in one pipeline.  args[0..2] and
 * args[6..9] are the caller's; the rest is filled here.
 */

static ngx_int_t
ngx_http_loyalty_grant_send(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_grant_t *g, ngx_str_t *args)
{
    ngx_str_t                      keys[5], due, sched[2], grant[13];
    ngx_uint_t                     i;
    ngx_pool_t                    *pool;
    ngx_http_loyalty_main_conf_t  *lmcf;

    pool = ctx->request->pool;
    lmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_loyalty_module);

    if (ngx_http_loyalty_admin_customer(ctx, &g->customer, keys) != NGX_OK) {
        return NGX_ERROR;
    }

    keys[3].data = ngx_pnalloc(pool, LOYALTY_KEY_MAX);
    keys[4].data = ngx_pnalloc(pool, LOYALTY_KEY_MAX);
    due.data = ngx_pnalloc(pool, LOYALTY_KEY_MAX);

    for (i = 0; i < 3; i++) {
        grant[i] = args[i];
    }

    grant[3] = ngx_http_loyalty_admin_num(pool, ngx_time());
    grant[4] = ngx_http_loyalty_admin_num(pool, lmcf->program.points_expire);
    grant[5] = g->customer;

    for (i = 6; i < 10; i++) {
        grant[i] = args[i];
    }

    grant[10] = ngx_http_loyalty_admin_num(pool,
                                           g->bonus ? g->bonus->max : 0);
    grant[11] = ngx_http_loyalty_admin_num(pool,
                                           g->bonus ? g->bonus->period : 0);

    if (g->bonus) {
        ngx_str_set(&grant[12], "bonus_granted");
    } else {
        ngx_str_set(&grant[12], "points_adjusted");
    }

    if (keys[3].data == NULL || keys[4].data == NULL || due.data == NULL
        || grant[3].data == NULL || grant[4].data == NULL
        || grant[10].data == NULL || grant[11].data == NULL)
    {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    keys[3].len = loyalty_key((char *) keys[3].data, "customer",
                              (char *) g->customer.data, g->customer.len,
                              ":ids");
    keys[4].len = loyalty_key((char *) keys[4].data, "customer",
                              (char *) g->customer.data, g->customer.len,
                              ":idv");
    due.len = loyalty_key_due((char *) due.data, (char *) g->customer.data,
                              g->customer.len, "");
    sched[0] = g->customer;
    sched[1] = grant[3];

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_due_add, &due, 1,
                                    sched, 2,
                                    ngx_http_loyalty_grant_scheduled, 0)
        != NGX_OK
        || ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_account_grant,
                                       keys, 5, grant, 13,
                                       ngx_http_loyalty_grant_done, 0)
           != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Answered by the grant that follows it: this only notes a failure. */

static void
ngx_http_loyalty_grant_scheduled(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_admin_t  *ctx;
    ngx_http_loyalty_grant_t  *g;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    g = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type == REDIS_REPLY_ERROR)
    {
        g->unscheduled = 1;
    }
}


/* {'new' | 'replayed', answer, points, available, pending, used} */

static void
ngx_http_loyalty_grant_done(void *data, ngx_uint_t status, redisReply *reply)
{
    json_t                    *o;
    ngx_str_t                  first, answer;
    ngx_uint_t                 code;
    ngx_http_loyalty_admin_t  *ctx;
    ngx_http_loyalty_grant_t  *g;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    g = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    first = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (first.len == 8 && ngx_strncmp(first.data, "conflict", 8) == 0) {
        /* an event's id and type are its whole content */
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_CONFLICT,
                                     "adjustment_conflict",
                                     "adjustment \"%V\" of customer \"%V\" "
                                     "was made with other points, reason or "
                                     "actor", &g->id, &g->customer);
        return;
    }

    if (reply->elements != 6 || g->unscheduled) {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    answer = ngx_http_loyalty_admin_reply_str(reply, 1);

    if (answer.len == 12 && ngx_strncmp(answer.data, "insufficient", 12) == 0)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_LOYALTY_UNPROCESSABLE,
                                     "insufficient_points",
                                     "customer \"%V\" has %L points "
                                     "available: less than the adjustment "
                                     "takes", &g->customer,
                                     (int64_t) reply->element[3]->integer);
        return;
    }

    if (answer.len == 6 && ngx_strncmp(answer.data, "capped", 6) == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_LOYALTY_UNPROCESSABLE,
                                     "cap_reached",
                                     "customer \"%V\" has had %ui \"%V\" "
                                     "bonuses in the last %T s, the most "
                                     "loyalty_bonus allows: nothing granted",
                                     &g->customer, g->bonus->max, &g->type,
                                     g->bonus->period);
        return;
    }

    o = json_object();
    json_object_set_new(o, "customer",
                        json_stringn((char *) g->customer.data,
                                     g->customer.len));
    json_object_set_new(o, "id",
                        json_stringn((char *) g->id.data, g->id.len));

    if (g->bonus) {
        json_object_set_new(o, "type",
                            json_stringn((char *) g->type.data,
                                         g->type.len));
    }

    json_object_set_new(o, "points",
                        json_integer(reply->element[2]->integer));
    json_object_set_new(o, "available",
                        json_integer(reply->element[3]->integer));
    json_object_set_new(o, "pending",
                        json_integer(reply->element[4]->integer));

    if (g->bonus && g->bonus->max) {
        json_object_set_new(o, "used",
                            json_integer(reply->element[5]->integer));
        json_object_set_new(o, "max", json_integer(g->bonus->max));
    }

    code = (first.len == 3) ? NGX_HTTP_CREATED : NGX_HTTP_OK;
    json_object_set_new(o, "replayed", json_boolean(code == NGX_HTTP_OK));

    if (code == NGX_HTTP_CREATED) {
        ngx_http_loyalty_grant_count(g, reply->element[2]->integer);
    }

    ngx_http_loyalty_admin_json(ctx, code, o);
}


/*
 * The program's totals: points given are issued, points taken by hand
 * are "adjusted"; a bonus is on the leaderboard.
 */

static void
ngx_http_loyalty_grant_count(ngx_http_loyalty_grant_t *g, int64_t change)
{
    ngx_http_loyalty_stat_t  st[2];

    ngx_str_set(&st[0].field, "available");
    st[0].change = change;

    if (change > 0) {
        ngx_str_set(&st[1].field, "issued");
        st[1].change = change;

    } else {
        ngx_str_set(&st[1].field, "adjusted");
        st[1].change = -change;
    }

    ngx_http_loyalty_stats_add(st, 2);

    if (g->bonus) {
        ngx_http_loyalty_board_add(&g->customer, change);
    }
}


/* A string of 1 to max bytes without control characters. */

static ngx_int_t
ngx_http_loyalty_text(const loyalty_json_t *v, size_t max, ngx_str_t *out)
{
    size_t  i;

    if (v->type != LOYALTY_JSON_STRING || v->len == 0 || v->len > max) {
        return NGX_ERROR;
    }

    for (i = 0; i < v->len; i++) {
        if ((u_char) v->text[i] < 0x20 || v->text[i] == 0x7f) {
            return NGX_ERROR;
        }
    }

    out->data = (u_char *) v->text;
    out->len = v->len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_id(const loyalty_json_t *v, ngx_str_t *out)
{
    size_t  bad;

    if (v->type != LOYALTY_JSON_STRING
        || loyalty_id_check(v->text, v->len, LOYALTY_ID_MAX, &bad)
           != LOYALTY_CODE_OK)
    {
        return NGX_ERROR;
    }

    out->data = (u_char *) v->text;
    out->len = v->len;

    return NGX_OK;
}

