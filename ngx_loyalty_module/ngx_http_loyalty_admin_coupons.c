/*
 * The coupon endpoints of the admin API:
 *
 *   POST /coupons                 create one (idempotent by its code)
 *   POST /coupon-batches          generate many unique codes (idempotent
 *                                 by the batch id)
 *   GET  /coupons/{code}          read one, with its usage and live
 *                                 reservations
 *   POST /coupons/{code}/disable  refuse it from now on
 *   POST /coupons/{code}/enable   accept it again
 */

#include <sys/random.h>

#include "ngx_http_loyalty_admin.h"
#include "ngx_http_loyalty_coupon.h"
#include "loyalty_code.h"
#include "loyalty_time.h"


#define NGX_HTTP_LOYALTY_BATCH_MAX       10000
#define NGX_HTTP_LOYALTY_BATCH_WINDOW    256
#define NGX_HTTP_LOYALTY_BATCH_ROUNDS    3
#define NGX_HTTP_LOYALTY_CODE_LENGTH     13     /* 65 bits */
#define NGX_HTTP_LOYALTY_RESERVATIONS    100


typedef struct {
    ngx_str_t                  code;
    ngx_str_t                  key;
    ngx_str_t                  def;
    loyalty_coupon_t           coupon;
} ngx_http_loyalty_coupon_req_t;


typedef struct {
    ngx_str_t                  id;
    ngx_str_t                  key;
    ngx_str_t                  prefix;
    ngx_uint_t                 count;
    ngx_uint_t                 length;
    loyalty_coupon_t           template;
    ngx_str_t                  params;
    ngx_str_t                 *codes;
    ngx_uint_t                *retry;       /* indexes that conflicted */
    ngx_uint_t                 nretry;
    ngx_uint_t                 next;        /* next code to create */
    ngx_uint_t                 rounds;
    ngx_uint_t                 status;      /* 201 new, 200 replayed */
} ngx_http_loyalty_batch_t;


static void ngx_http_loyalty_coupon_create(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_coupon_created(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_coupon_get(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_coupon_got(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_coupon_disable(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_coupon_enable(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_coupon_state(ngx_http_loyalty_admin_t *ctx,
    const char *disabled);
static void ngx_http_loyalty_coupon_stated(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_batch(ngx_http_loyalty_admin_t *ctx);
static ngx_int_t ngx_http_loyalty_batch_read(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b);
static ngx_int_t ngx_http_loyalty_batch_generate(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b, ngx_uint_t i);
static ngx_int_t ngx_http_loyalty_batch_draw(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b);
static ngx_int_t ngx_http_loyalty_batch_record(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b, const char *step);
static void ngx_http_loyalty_batch_begun(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_batch_create(ngx_http_loyalty_admin_t *ctx);
static void ngx_http_loyalty_batch_created(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_batch_finished(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_batch_answer(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b);
static ngx_http_loyalty_coupon_req_t *ngx_http_loyalty_coupon_code(
    ngx_http_loyalty_admin_t *ctx);
static ngx_int_t ngx_http_loyalty_coupon_send_create(
    ngx_http_loyalty_admin_t *ctx, loyalty_coupon_t *c, ngx_str_t *code,
    ngx_http_loyalty_redis_handler_pt handler, ngx_uint_t index,
    ngx_str_t *def_out);
static json_t *ngx_http_loyalty_coupon_json(ngx_str_t *def,
    ngx_str_t *version, ngx_uint_t disabled);


ngx_http_loyalty_admin_route_t  ngx_http_loyalty_admin_coupon_routes[] = {
    { NGX_HTTP_POST, "coupons", ngx_http_loyalty_coupon_create },
    { NGX_HTTP_POST, "coupon-batches", ngx_http_loyalty_batch },
    { NGX_HTTP_GET, "coupons/*", ngx_http_loyalty_coupon_get },
    { NGX_HTTP_POST, "coupons/*/disable", ngx_http_loyalty_coupon_disable },
    { NGX_HTTP_POST, "coupons/*/enable", ngx_http_loyalty_coupon_enable },
    { 0, NULL, NULL }
};


static void *
ngx_http_loyalty_admin_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


/* --- POST /coupons -------------------------------------------------------- */

static void
ngx_http_loyalty_coupon_create(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t                       code;
    loyalty_coupon_error_t          err;
    ngx_http_loyalty_coupon_req_t  *req;

    if (ctx->body == NULL) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_body",
                                     "send the coupon as a JSON object");
        return;
    }

    req = ngx_pcalloc(ctx->request->pool,
                      sizeof(ngx_http_loyalty_coupon_req_t));
    if (req == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = req;

    if (loyalty_coupon_read(ctx->body, ngx_http_loyalty_admin_alloc,
                            ctx->request->pool, &req->coupon, &err)
        != 0)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field", "%s", err.message);
        return;
    }

    code.data = (u_char *) req->coupon.code;
    code.len = ngx_strlen(req->coupon.code);

    switch (ngx_http_loyalty_coupon_send_create(
                ctx, &req->coupon, &code, ngx_http_loyalty_coupon_created, 0,
                &req->def))
    {
    case NGX_OK:
        return;

    case NGX_DECLINED:
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "the coupon's definition is larger "
                                     "than %d bytes",
                                     LOYALTY_COUPON_JSON_MAX);
        return;

    default:
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_coupon_created(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_str_t                        head, version, disabled;
    ngx_http_loyalty_admin_t        *ctx;
    ngx_http_loyalty_coupon_req_t   *req;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    req = ctx->data;

    head = ngx_http_loyalty_admin_reply_str(reply, 0);
    version = ngx_http_loyalty_admin_reply_str(reply, 1);
    disabled = ngx_http_loyalty_admin_reply_str(reply, 2);

    if (status != NGX_HTTP_LOYALTY_REDIS_OK || head.len == 0) {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (head.len == 8 && ngx_strncmp(head.data, "conflict", 8) == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_CONFLICT, "coupon_exists",
                                     "coupon \"%s\" exists with another "
                                     "definition", req->coupon.code);
        return;
    }

    ngx_http_loyalty_admin_json(ctx,
                                head.len == 7 ? NGX_HTTP_CREATED : NGX_HTTP_OK,
                                ngx_http_loyalty_coupon_json(
                                    &req->def, &version,
                                    disabled.len == 1
                                    && disabled.data[0] == '1'));
}


/*
 * Writes the canonical definition of c under code and sends it;
 * NGX_DECLINED when it does not fit (it always does within the limits of
 * loyalty_coupon_read).
 */

static ngx_int_t
ngx_http_loyalty_coupon_send_create(ngx_http_loyalty_admin_t *ctx,
    loyalty_coupon_t *c, ngx_str_t *code,
    ngx_http_loyalty_redis_handler_pt handler, ngx_uint_t index,
    ngx_str_t *def_out)
{
    u_char      *key;
    size_t       len;
    ngx_str_t    keys[1], args[4];
    ngx_pool_t  *pool = ctx->request->pool;

    ngx_memcpy(c->code, code->data, code->len);
    c->code[code->len] = '\0';

    /* written into scratch space (grown once for a large definition),
     * then kept at its size */
    for ( ;; ) {
        if (ctx->scratch == NULL) {
            ctx->scratch_size = ctx->scratch_size ? LOYALTY_COUPON_JSON_MAX
                                                  : 16384;
            ctx->scratch = ngx_pnalloc(pool, ctx->scratch_size);
            if (ctx->scratch == NULL) {
                return NGX_ERROR;
            }
        }

        len = loyalty_coupon_write(c, (char *) ctx->scratch,
                                   ctx->scratch_size);
        if (len) {
            break;
        }

        if (ctx->scratch_size == LOYALTY_COUPON_JSON_MAX) {
            return NGX_DECLINED;
        }

        ctx->scratch = NULL;
    }

    args[0].data = ngx_pnalloc(pool, len);
    key = ngx_pnalloc(pool, LOYALTY_KEY_MAX);

    if (args[0].data == NULL || key == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(args[0].data, ctx->scratch, len);
    args[0].len = len;
    *def_out = args[0];

    keys[0].data = key;
    keys[0].len = loyalty_key((char *) key, "coupon", (char *) code->data,
                              code->len, "");

    args[1] = ngx_http_loyalty_admin_num(pool, c->max_uses);
    args[2] = ngx_http_loyalty_admin_num(pool, c->per_customer);
    args[3] = ngx_http_loyalty_admin_num(pool, ngx_time());

    if (args[1].data == NULL || args[2].data == NULL || args[3].data == NULL)
    {
        return NGX_ERROR;
    }

    return ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_coupon_create,
                                       keys, 1, args, 4, handler, index);
}


/* --- GET /coupons/{code} ------------------------------------------------- */

static void
ngx_http_loyalty_coupon_get(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t                        keys[3], args[2];
    ngx_uint_t                       i;
    ngx_http_loyalty_coupon_req_t   *req;
    char                             k[NGX_HTTP_LOYALTY_COUPON_KEYS]
                                      [LOYALTY_KEY_MAX];
    size_t                           lens[NGX_HTTP_LOYALTY_COUPON_KEYS];

    req = ngx_http_loyalty_coupon_code(ctx);
    if (req == NULL) {
        return;
    }

    ngx_http_loyalty_coupon_keys(&req->code, k, lens);

    for (i = 0; i < 3; i++) {
        keys[i].data = ngx_pnalloc(ctx->request->pool, lens[i]);
        if (keys[i].data == NULL) {
            ngx_http_finalize_request(ctx->request,
                                      NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(keys[i].data, k[i], lens[i]);
        keys[i].len = lens[i];
    }

    args[0] = ngx_http_loyalty_admin_num(ctx->request->pool, ngx_time());
    args[1] = ngx_http_loyalty_admin_num(ctx->request->pool,
                                   NGX_HTTP_LOYALTY_RESERVATIONS);

    if (args[0].data == NULL || args[1].data == NULL
        || ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_coupon_get, keys,
                                       3, args, 2,
                                       ngx_http_loyalty_coupon_got, 0)
           != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_coupon_got(void *data, ngx_uint_t status,
    redisReply *reply)
{
    size_t                          i;
    json_t                         *o, *list, *res;
    ngx_str_t                       def, version, disabled, used, created;
    ngx_http_loyalty_admin_t       *ctx;
    ngx_http_loyalty_coupon_req_t  *req;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    req = ctx->data;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (reply->elements < 6) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no coupon \"%V\"", &req->code);
        return;
    }

    def = ngx_http_loyalty_admin_reply_str(reply, 0);
    version = ngx_http_loyalty_admin_reply_str(reply, 1);
    disabled = ngx_http_loyalty_admin_reply_str(reply, 2);
    used = ngx_http_loyalty_admin_reply_str(reply, 3);
    created = ngx_http_loyalty_admin_reply_str(reply, 4);

    o = ngx_http_loyalty_coupon_json(&def, &version,
                                     disabled.len == 1
                                     && disabled.data[0] == '1');
    if (o == NULL) {
        ngx_http_loyalty_admin_json(ctx, 0, NULL);
        return;
    }

    list = json_array();

    for (i = 6; i + 2 < reply->elements; i += 3) {
        res = json_object();
        json_object_set_new(res, "checkout",
                            json_stringn(reply->element[i]->str,
                                         reply->element[i]->len));
        json_object_set_new(res, "customer",
                            json_stringn(reply->element[i + 1]->str,
                                         reply->element[i + 1]->len));
        json_object_set_new(res, "expires_at",
                            ngx_http_loyalty_admin_time(
                                ngx_atoi((u_char *) reply->element[i + 2]->str,
                                         reply->element[i + 2]->len)));
        json_array_append_new(list, res);
    }

    json_object_set_new(o, "used", json_integer(ngx_atoi(used.data,
                                                         used.len)));
    json_object_set_new(o, "reserved",
                        json_integer(reply->element[5]->integer));
    json_object_set_new(o, "reservations", list);
    json_object_set_new(o, "created_at",
                        ngx_http_loyalty_admin_time(ngx_atoi(created.data,
                                                             created.len)));

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


/* --- POST /coupons/{code}/disable and /enable ---------------------------- */

static void
ngx_http_loyalty_coupon_disable(ngx_http_loyalty_admin_t *ctx)
{
    ngx_http_loyalty_coupon_state(ctx, "1");
}


static void
ngx_http_loyalty_coupon_enable(ngx_http_loyalty_admin_t *ctx)
{
    ngx_http_loyalty_coupon_state(ctx, "0");
}


static void
ngx_http_loyalty_coupon_state(ngx_http_loyalty_admin_t *ctx,
    const char *disabled)
{
    ngx_str_t                       keys[1], args[1];
    ngx_http_loyalty_coupon_req_t  *req;

    req = ngx_http_loyalty_coupon_code(ctx);
    if (req == NULL) {
        return;
    }

    keys[0] = req->key;
    args[0].data = (u_char *) disabled;
    args[0].len = 1;

    if (ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_coupon_state, keys, 1,
                                    args, 1, ngx_http_loyalty_coupon_stated,
                                    disabled[0] == '1')
        != NGX_OK)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_coupon_stated(void *data, ngx_uint_t status,
    redisReply *reply)
{
    json_t                          *o;
    ngx_str_t                        head, version;
    ngx_http_loyalty_admin_t        *ctx;
    ngx_http_loyalty_admin_call_t   *call;
    ngx_http_loyalty_coupon_req_t   *req;

    call = ngx_http_loyalty_admin_done_call(data);
    ctx = call->ctx;
    req = ctx->data;

    head = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (status != NGX_HTTP_LOYALTY_REDIS_OK || head.len == 0) {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (head.len != 2) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                     "no coupon \"%V\"", &req->code);
        return;
    }

    version = ngx_http_loyalty_admin_reply_str(reply, 1);

    o = json_object();
    json_object_set_new(o, "code", json_stringn((char *) req->code.data,
                                                req->code.len));
    json_object_set_new(o, "disabled", json_boolean(call->index));
    json_object_set_new(o, "version",
                        json_integer(ngx_atoi(version.data, version.len)));
    json_object_set_new(o, "changed",
                        json_boolean(reply->element[2]->integer));

    ngx_http_loyalty_admin_json(ctx, NGX_HTTP_OK, o);
}


/* --- POST /coupon-batches ------------------------------------------------- */

static void
ngx_http_loyalty_batch(ngx_http_loyalty_admin_t *ctx)
{
    ngx_http_loyalty_batch_t  *b;

    b = ngx_pcalloc(ctx->request->pool, sizeof(ngx_http_loyalty_batch_t));
    if (b == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = b;

    if (ngx_http_loyalty_batch_read(ctx, b) != NGX_OK) {
        return;
    }

    b->codes = ngx_pcalloc(ctx->request->pool, b->count * sizeof(ngx_str_t));
    b->retry = ngx_palloc(ctx->request->pool, b->count * sizeof(ngx_uint_t));

    if (b->codes == NULL || b->retry == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_loyalty_batch_draw(ctx, b) != NGX_OK) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    b->status = NGX_HTTP_CREATED;

    if (ngx_http_loyalty_batch_record(ctx, b, "begin") != NGX_OK) {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


/*
 * {"batch": "bf-2026", "count": 1000, "prefix": "BF-", "length": 13,
 *  "coupon": {the definition without its code}}
 */

static ngx_int_t
ngx_http_loyalty_batch_read(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b)
{
    u_char                 *p;
    size_t                  len, bad;
    int64_t                 space;
    ngx_uint_t              i;
    loyalty_json_t         *code;
    loyalty_code_rc_t       rc;
    loyalty_coupon_error_t  err;
    const loyalty_json_t   *v, *tpl;
    char                    prefix[LOYALTY_CODE_MAX + 1];

    if (ctx->body == NULL || ctx->body->type != LOYALTY_JSON_OBJECT) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "missing_body",
                                     "send the batch as a JSON object");
        return NGX_ERROR;
    }

    v = loyalty_json_get(ctx->body, "batch", 5);

    if (v == NULL || v->type != LOYALTY_JSON_STRING
        || loyalty_id_check(v->text, v->len, LOYALTY_ID_MAX, &bad)
           != LOYALTY_CODE_OK)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "batch is required: an id of printable "
                                     "ASCII without spaces, '{' or '}'");
        return NGX_ERROR;
    }

    b->id.data = (u_char *) v->text;
    b->id.len = v->len;

    v = loyalty_json_get(ctx->body, "count", 5);
    b->count = 0;

    if (v != NULL && v->type == LOYALTY_JSON_NUMBER && v->len <= 5) {
        b->count = ngx_atoi((u_char *) v->text, v->len);
    }

    if (b->count == (ngx_uint_t) NGX_ERROR || b->count == 0
        || b->count > NGX_HTTP_LOYALTY_BATCH_MAX)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "count must be a whole number from 1 "
                                     "to %d", NGX_HTTP_LOYALTY_BATCH_MAX);
        return NGX_ERROR;
    }

    b->prefix.len = 0;
    v = loyalty_json_get(ctx->body, "prefix", 6);

    if (v != NULL) {
        rc = v->type == LOYALTY_JSON_STRING
             ? loyalty_code_normalize(v->text, v->len, prefix, &len, &bad)
             : LOYALTY_CODE_BAD_CHAR;

        if (rc != LOYALTY_CODE_OK || len > 32) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_field",
                                         "prefix must be 1 to 32 letters, "
                                         "digits, '-', '_' or '.'");
            return NGX_ERROR;
        }

        b->prefix.data = ngx_pnalloc(ctx->request->pool, len);
        if (b->prefix.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(b->prefix.data, prefix, len);
        b->prefix.len = len;
    }

    v = loyalty_json_get(ctx->body, "length", 6);
    b->length = NGX_HTTP_LOYALTY_CODE_LENGTH;

    if (v != NULL) {
        b->length = (v->type == LOYALTY_JSON_NUMBER && v->len <= 2)
                    ? (ngx_uint_t) ngx_atoi((u_char *) v->text, v->len) : 0;

        if (b->length < 4 || b->length > 32) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_field",
                                         "length must be from 4 to 32 "
                                         "random characters");
            return NGX_ERROR;
        }
    }

    /* enough codes to draw from that collisions stay rare */
    space = 1;

    for (i = 0; i < b->length && space < (int64_t) 1 << 40; i++) {
        space *= 32;
    }

    if (space < (int64_t) b->count * 1000) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "length %ui is too short for %ui "
                                     "unique codes", b->length, b->count);
        return NGX_ERROR;
    }

    tpl = loyalty_json_get(ctx->body, "coupon", 6);

    if (tpl == NULL || tpl->type != LOYALTY_JSON_OBJECT) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "coupon is required: the definition "
                                     "every generated code gets");
        return NGX_ERROR;
    }

    if (loyalty_json_get(tpl, "code", 4) != NULL) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field",
                                     "coupon.code must not be given: the "
                                     "codes are generated");
        return NGX_ERROR;
    }

    /* the template is read as a coupon whose code is the prefix or "X" */
    code = ngx_pcalloc(ctx->request->pool, sizeof(loyalty_json_t));
    if (code == NULL) {
        return NGX_ERROR;
    }

    code->type = LOYALTY_JSON_STRING;
    code->key = "code";
    code->key_len = 4;
    code->text = "X";
    code->len = 1;
    code->next = tpl->child;
    ((loyalty_json_t *) tpl)->child = code;

    if (loyalty_coupon_read(tpl, ngx_http_loyalty_admin_alloc,
                            ctx->request->pool, &b->template, &err)
        != 0)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_field", "coupon.%s",
                                     err.message);
        return NGX_ERROR;
    }

    /* what makes a replay the same request */
    b->params.data = ngx_pnalloc(ctx->request->pool,
                                 LOYALTY_COUPON_JSON_MAX + 64);
    if (b->params.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(b->params.data, "%ui %ui %V ", b->count, b->length,
                    &b->prefix);
    len = loyalty_coupon_write(&b->template, (char *) p,
                               LOYALTY_COUPON_JSON_MAX);
    b->params.len = p - b->params.data + len;

    b->key.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);
    if (b->key.data == NULL) {
        return NGX_ERROR;
    }

    b->key.len = loyalty_key((char *) b->key.data, "batch",
                             (char *) b->id.data, b->id.len, "");

    return NGX_OK;
}


/* A random code: the prefix and length characters of a 32-letter alphabet
 * without 0, O, 1 and I, five bits each from the kernel's CSPRNG. */

static ngx_int_t
ngx_http_loyalty_batch_generate(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b, ngx_uint_t i)
{
    u_char       *p, rnd[32];
    ngx_uint_t    j;
    static char   alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

    if (getrandom(rnd, b->length, 0) != (ssize_t) b->length) {
        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log,
                      ngx_errno, "loyalty: getrandom() failed");
        return NGX_ERROR;
    }

    p = ngx_pnalloc(ctx->request->pool, b->prefix.len + b->length);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (b->prefix.len) {
        ngx_memcpy(p, b->prefix.data, b->prefix.len);
    }

    for (j = 0; j < b->length; j++) {
        p[b->prefix.len + j] = alphabet[rnd[j] & 31];
    }

    b->codes[i].data = p;
    b->codes[i].len = b->prefix.len + b->length;

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_loyalty_batch_cmp(const void *one, const void *two)
{
    const ngx_str_t  *a = *(ngx_str_t **) one;
    const ngx_str_t  *b = *(ngx_str_t **) two;

    /* all codes of a batch have the same length */
    return ngx_memcmp(a->data, b->data, a->len);
}


/* Draws every code of the batch, again for any drawn twice. */

static ngx_int_t
ngx_http_loyalty_batch_draw(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b)
{
    ngx_uint_t    i, dup;
    ngx_str_t   **sorted;

    sorted = ngx_palloc(ctx->request->pool, b->count * sizeof(ngx_str_t *));
    if (sorted == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < b->count; i++) {
        if (ngx_http_loyalty_batch_generate(ctx, b, i) != NGX_OK) {
            return NGX_ERROR;
        }

        sorted[i] = &b->codes[i];
    }

    do {
        ngx_qsort(sorted, b->count, sizeof(ngx_str_t *),
                  ngx_http_loyalty_batch_cmp);

        dup = 0;

        for (i = 1; i < b->count; i++) {
            if (ngx_http_loyalty_batch_cmp(&sorted[i - 1], &sorted[i]) == 0) {
                if (ngx_http_loyalty_batch_generate(ctx, b,
                                                    sorted[i] - b->codes)
                    != NGX_OK)
                {
                    return NGX_ERROR;
                }

                dup++;
            }
        }

    } while (dup);

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_batch_record(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b, const char *step)
{
    u_char      *p;
    ngx_str_t    keys[1], args[4];
    ngx_uint_t   i;

    keys[0] = b->key;

    args[0].data = (u_char *) step;
    args[0].len = ngx_strlen(step);
    args[1] = b->params;

    args[2].data = ngx_pnalloc(ctx->request->pool,
                               b->count * (LOYALTY_CODE_MAX + 1));
    if (args[2].data == NULL) {
        return NGX_ERROR;
    }

    p = args[2].data;

    for (i = 0; i < b->count; i++) {
        if (i) {
            *p++ = ' ';
        }

        p = ngx_cpymem(p, b->codes[i].data, b->codes[i].len);
    }

    args[2].len = p - args[2].data;
    args[3] = ngx_http_loyalty_admin_num(ctx->request->pool, ngx_time());

    if (args[3].data == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_loyalty_admin_eval(ctx, LOYALTY_SCRIPT_coupon_batch, keys,
                                       1, args, 4,
                                       step[0] == 'b'
                                       ? ngx_http_loyalty_batch_begun
                                       : ngx_http_loyalty_batch_finished, 0);
}


/* Splits the space-separated codes of a stored batch into b->codes. */

static ngx_int_t
ngx_http_loyalty_batch_stored(ngx_http_loyalty_batch_t *b, ngx_str_t *codes,
    ngx_pool_t *pool)
{
    u_char      *p, *end, *start;
    ngx_uint_t   n;

    if (codes->len == 0) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(pool, codes->len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, codes->data, codes->len);
    end = p + codes->len;

    for (n = 0; p < end && n < b->count; n++) {
        start = p;

        while (p < end && *p != ' ') {
            p++;
        }

        b->codes[n].data = start;
        b->codes[n].len = p - start;
        p++;
    }

    return n == b->count ? NGX_OK : NGX_ERROR;
}


static void
ngx_http_loyalty_batch_begun(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_str_t                  head, codes;
    ngx_http_loyalty_admin_t  *ctx;
    ngx_http_loyalty_batch_t  *b;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;
    b = ctx->data;

    head = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (status != NGX_HTTP_LOYALTY_REDIS_OK || head.len == 0) {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    if (head.len == 8 && ngx_strncmp(head.data, "conflict", 8) == 0) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_CONFLICT, "batch_exists",
                                     "batch \"%V\" exists with other "
                                     "parameters", &b->id);
        return;
    }

    if (head.len != 3) {
        /* a replay: the codes are those the first request chose */
        codes = ngx_http_loyalty_admin_reply_str(reply, 1);

        if (ngx_http_loyalty_batch_stored(b, &codes, ctx->request->pool)
            != NGX_OK)
        {
            ngx_http_loyalty_admin_error(ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "internal_error",
                                         "batch \"%V\" is unreadable",
                                         &b->id);
            return;
        }

        b->status = NGX_HTTP_OK;

        if (head.len == 4) {
            ngx_http_loyalty_batch_answer(ctx, b);
            return;
        }

        /* "pending": an earlier request stopped half way; finish it */
    }

    b->next = 0;
    ngx_http_loyalty_batch_create(ctx);
}


/* Creates the codes a window at a time, so a batch never floods Redis. */

static void
ngx_http_loyalty_batch_create(ngx_http_loyalty_admin_t *ctx)
{
    ngx_str_t                  def;
    ngx_uint_t                 i, n, end;
    ngx_http_loyalty_batch_t  *b = ctx->data;

    n = b->rounds ? b->nretry : b->count;
    end = ngx_min(b->next + NGX_HTTP_LOYALTY_BATCH_WINDOW, n);

    for (i = b->next; i < end; i++) {
        if (ngx_http_loyalty_coupon_send_create(
                ctx, &b->template,
                &b->codes[b->rounds ? b->retry[i] : i],
                ngx_http_loyalty_batch_created,
                b->rounds ? b->retry[i] : i, &def)
            != NGX_OK)
        {
            if (ctx->pending == 0) {
                ngx_http_loyalty_admin_unavailable(ctx);
            }

            b->next = (ngx_uint_t) -1;
            return;
        }
    }

    b->next = end;
}


static void
ngx_http_loyalty_batch_created(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_str_t                       head;
    ngx_uint_t                      i, n;
    ngx_http_loyalty_batch_t       *b;
    ngx_http_loyalty_admin_t       *ctx;
    ngx_http_loyalty_admin_call_t  *call;

    call = ngx_http_loyalty_admin_done_call(data);
    ctx = call->ctx;
    b = ctx->data;

    head = ngx_http_loyalty_admin_reply_str(reply, 0);

    if (status != NGX_HTTP_LOYALTY_REDIS_OK || head.len == 0) {
        b->next = (ngx_uint_t) -1;
    }

    if (b->next == (ngx_uint_t) -1) {
        /* failed: answer once the last reply of the window is in */
        if (ctx->pending == 0) {
            ngx_http_loyalty_admin_unavailable(ctx);
        }

        return;
    }

    /*
     * The code is taken by another coupon: it gets a new one.  "exists"
     * (the same definition) is another coupon too, unless this request
     * resumes a batch that created it.
     */
    if ((head.len == 8 && ngx_strncmp(head.data, "conflict", 8) == 0)
        || (head.len == 6 && b->status == NGX_HTTP_CREATED))
    {
        b->codes[call->index].len = 0;
    }

    if (ctx->pending) {
        return;
    }

    n = b->rounds ? b->nretry : b->count;

    if (b->next < n) {
        ngx_http_loyalty_batch_create(ctx);
        return;
    }

    b->nretry = 0;

    for (i = 0; i < b->count; i++) {
        if (b->codes[i].len == 0) {
            b->retry[b->nretry++] = i;
        }
    }

    if (b->nretry) {
        if (++b->rounds > NGX_HTTP_LOYALTY_BATCH_ROUNDS) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_CONFLICT,
                                         "codes_exhausted",
                                         "could not find %ui unused codes; "
                                         "use a longer length",
                                         b->nretry);
            return;
        }

        for (i = 0; i < b->nretry; i++) {
            if (ngx_http_loyalty_batch_generate(ctx, b, b->retry[i])
                != NGX_OK)
            {
                ngx_http_finalize_request(ctx->request,
                                          NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }

        b->next = 0;
        ngx_http_loyalty_batch_create(ctx);
        return;
    }

    if (ngx_http_loyalty_batch_record(ctx, b, "finish") != NGX_OK) {
        ngx_http_loyalty_admin_unavailable(ctx);
    }
}


static void
ngx_http_loyalty_batch_finished(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_admin_t  *ctx;

    ctx = ngx_http_loyalty_admin_done_call(data)->ctx;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK
        || reply->type != REDIS_REPLY_ARRAY)
    {
        ngx_http_loyalty_admin_unavailable(ctx);
        return;
    }

    ngx_http_loyalty_batch_answer(ctx, ctx->data);
}


static void
ngx_http_loyalty_batch_answer(ngx_http_loyalty_admin_t *ctx,
    ngx_http_loyalty_batch_t *b)
{
    json_t      *o, *codes;
    ngx_uint_t   i;

    codes = json_array();

    for (i = 0; i < b->count; i++) {
        json_array_append_new(codes, json_stringn((char *) b->codes[i].data,
                                                  b->codes[i].len));
    }

    o = json_object();
    json_object_set_new(o, "batch", json_stringn((char *) b->id.data,
                                                 b->id.len));
    json_object_set_new(o, "count", json_integer(b->count));
    json_object_set_new(o, "codes", codes);

    ngx_http_loyalty_admin_json(ctx, b->status, o);
}


/* --- helpers --------------------------------------------------------------- */

/*
 * The request about the {code} of the path: the code normalised, and its
 * key.  NULL when the request has been answered (a bad code).
 */

static ngx_http_loyalty_coupon_req_t *
ngx_http_loyalty_coupon_code(ngx_http_loyalty_admin_t *ctx)
{
    size_t                          len, bad;
    ngx_str_t                       raw;
    loyalty_code_rc_t               rc;
    ngx_http_loyalty_coupon_req_t  *req;
    char                            code[LOYALTY_CODE_MAX + 1];

    req = ngx_pcalloc(ctx->request->pool,
                      sizeof(ngx_http_loyalty_coupon_req_t));
    if (req == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ctx->data = req;
    raw = ctx->params[0];

    rc = loyalty_code_normalize((char *) raw.data, raw.len, code, &len, &bad);

    if (rc != LOYALTY_CODE_OK) {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_code",
                                     "a coupon code is 1 to %d letters, "
                                     "digits, '-', '_' or '.'",
                                     LOYALTY_CODE_MAX);
        return NULL;
    }

    req->code.data = ngx_pnalloc(ctx->request->pool, len);
    req->key.data = ngx_pnalloc(ctx->request->pool, LOYALTY_KEY_MAX);

    if (req->code.data == NULL || req->key.data == NULL) {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ngx_memcpy(req->code.data, code, len);
    req->code.len = len;
    req->key.len = loyalty_key((char *) req->key.data, "coupon", code, len,
                               "");

    return req;
}


/* The coupon as the API shows it: its definition, version and state. */

static json_t *
ngx_http_loyalty_coupon_json(ngx_str_t *def, ngx_str_t *version,
    ngx_uint_t disabled)
{
    json_t        *o;
    json_error_t   err;

    o = json_loadb((char *) def->data, def->len, 0, &err);
    if (o == NULL) {
        return NULL;
    }

    json_object_set_new(o, "version",
                        json_integer(ngx_atoi(version->data, version->len)));
    json_object_set_new(o, "disabled", json_boolean(disabled));

    return o;
}

