/*
 * loyalty_admin: the JSON API for the shop backend and marketing.
 *
 * Off unless a location says loyalty_admin; every request needs
 * "Authorization: Bearer <loyalty_admin_token>", compared in constant
 * time, before anything else is looked at.  Paths are relative to the
 * location: with "location /loyalty/admin/", POST /loyalty/admin/coupons.
 * Errors are {"error": code, "message": text} like everywhere else.
 */

#include "ngx_http_loyalty_admin.h"
#include "loyalty_code.h"
#include "loyalty_keys.h"
#include "loyalty_time.h"


static ngx_http_loyalty_admin_route_t *ngx_http_loyalty_admin_route(
    ngx_http_request_t *r, ngx_http_loyalty_admin_t *ctx,
    ngx_uint_t *allowed);
static ngx_int_t ngx_http_loyalty_admin_authorized(ngx_http_request_t *r,
    ngx_str_t *token);
static void ngx_http_loyalty_admin_body(ngx_http_request_t *r);
static void ngx_http_loyalty_admin_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_admin_cleanup(void *data);


static ngx_http_loyalty_admin_route_t  *ngx_http_loyalty_admin_routes[] = {
    ngx_http_loyalty_admin_coupon_routes,
    ngx_http_loyalty_admin_customer_routes,
    ngx_http_loyalty_admin_order_routes,
    ngx_http_loyalty_admin_points_routes,
    ngx_http_loyalty_admin_report_routes,
    NULL
};


ngx_int_t
ngx_http_loyalty_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_uint_t                        allowed;
    ngx_table_elt_t                  *h;
    ngx_pool_cleanup_t               *cln;
    ngx_http_loyalty_admin_t         *ctx;
    ngx_http_loyalty_loc_conf_t      *llcf;
    ngx_http_loyalty_admin_route_t   *route;

    llcf = ngx_http_get_module_loc_conf(r, ngx_http_loyalty_module);

    if (!ngx_http_loyalty_admin_authorized(r, &llcf->admin_token)) {
        /* the body, if any, is not the next request */
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "loyalty: admin request without a valid token");

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "WWW-Authenticate");
        ngx_str_set(&h->value, "Bearer realm=\"loyalty\"");

        return ngx_http_loyalty_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                           "unauthorized",
                                           "a valid \"Authorization: Bearer "
                                           "...\" header is required");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_loyalty_admin_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;

    route = ngx_http_loyalty_admin_route(r, ctx, &allowed);

    if (route == NULL) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (allowed) {
            return ngx_http_loyalty_send_not_allowed(r, allowed);
        }

        return ngx_http_loyalty_send_error(r, NGX_HTTP_NOT_FOUND,
                                           "not_found",
                                           "no such endpoint: %V", &r->uri);
    }

    if (ngx_array_init(&ctx->calls, r->pool, 4,
                       sizeof(ngx_http_loyalty_admin_call_t *))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_loyalty_admin_cleanup;
    cln->data = ctx;

    ctx->data = route;
    ngx_http_set_ctx(r, ctx, ngx_http_loyalty_module);

    rc = ngx_http_read_client_request_body(r, ngx_http_loyalty_admin_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* The request body, if any, as JSON; then the endpoint. */

static void
ngx_http_loyalty_admin_body(ngx_http_request_t *r)
{
    ngx_str_t                        body;
    loyalty_json_error_t             jerr;
    loyalty_json_limits_t            limits;
    ngx_http_loyalty_error_t         err;
    ngx_http_loyalty_admin_t        *ctx;
    ngx_http_loyalty_admin_route_t  *route;

    ctx = ngx_http_get_module_ctx(r, ngx_http_loyalty_module);
    route = ctx->data;
    ctx->data = NULL;

    if (ngx_http_loyalty_body(r, NGX_HTTP_LOYALTY_ADMIN_BODY_MAX, &body,
                              &err)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, ngx_http_loyalty_send_err(r, &err));
        return;
    }

    if (body.len) {
        if (ngx_http_loyalty_check_body(r, NGX_HTTP_LOYALTY_ADMIN_BODY_MAX,
                                        &err)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, ngx_http_loyalty_send_err(r, &err));
            return;
        }

        limits.alloc = ngx_http_loyalty_palloc;
        limits.ctx = r->pool;
        limits.max_depth = 8;
        limits.max_values = 100000;
        limits.max_members = 64;
        limits.max_string = 4096;

        ctx->body = loyalty_json_parse((char *) body.data, body.len, &limits,
                                       &jerr);

        if (ctx->body == NULL && jerr.reason == NULL) {
            ngx_http_loyalty_admin_error(ctx,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "internal_error", "out of memory");
            return;
        }

        /* valid JSON beyond a bound is told apart, as at the checkout */
        if (ctx->body == NULL && jerr.limit) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "json_too_complex",
                                         "the body exceeds a limit of the "
                                         "admin API: %s at byte %uz",
                                         jerr.reason, jerr.offset);
            return;
        }

        if (ctx->body == NULL) {
            ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                         "invalid_json",
                                         "the body is not valid JSON: %s at "
                                         "byte %uz", jerr.reason,
                                         jerr.offset);
            return;
        }
    }

    route->handler(ctx);
}


/*
 * Matches the path below the location against the routes.  When the path
 * exists with other methods only, *allowed says which.
 */

static ngx_http_loyalty_admin_route_t *
ngx_http_loyalty_admin_route(ngx_http_request_t *r,
    ngx_http_loyalty_admin_t *ctx, ngx_uint_t *allowed)
{
    u_char                          *p, *end, *seg;
    ngx_uint_t                       i, n;
    const char                      *pat;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_loyalty_admin_route_t  *route, **group;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    p = r->uri.data + clcf->name.len;
    end = r->uri.data + r->uri.len;

    if (p > end) {
        p = end;
    }

    if (p < end && *p == '/') {
        p++;
    }

    *allowed = 0;

    for (group = ngx_http_loyalty_admin_routes; *group; group++) {
        for (route = *group; route->path; route++) {

            pat = route->path;
            seg = p;
            n = 0;

            /* segment by segment: literal text, or '*' for one param */
            while (*pat && seg <= end) {
                if (*pat == '*') {
                    for (i = 0; seg + i < end && seg[i] != '/'; i++) {
                        /* void */
                    }

                    if (i == 0 || n == NGX_HTTP_LOYALTY_ADMIN_PARAMS) {
                        break;
                    }

                    ctx->params[n].data = seg;
                    ctx->params[n++].len = i;
                    seg += i;
                    pat++;
                    continue;
                }

                if (seg == end || *seg != (u_char) *pat) {
                    break;
                }

                seg++;
                pat++;
            }

            if (*pat != '\0' || seg != end) {
                continue;
            }

            /* HEAD is answered wherever GET is */
            if ((route->method & r->method)
                || ((route->method & NGX_HTTP_GET)
                    && (r->method & NGX_HTTP_HEAD)))
            {
                return route;
            }

            *allowed |= route->method;
        }
    }

    return NULL;
}


/* Constant time in the presented token: no early exit, no length leak. */

static ngx_int_t
ngx_http_loyalty_admin_authorized(ngx_http_request_t *r, ngx_str_t *token)
{
    u_char      diff;
    ngx_str_t   given;
    ngx_uint_t  i;

    if (r->headers_in.authorization == NULL) {
        return 0;
    }

    given = r->headers_in.authorization->value;

    if (given.len < 7
        || ngx_strncasecmp(given.data, (u_char *) "Bearer ", 7) != 0)
    {
        return 0;
    }

    given.data += 7;
    given.len -= 7;

    if (token->len == 0) {
        return 0;
    }

    diff = (u_char) (given.len != token->len);

    for (i = 0; i < given.len; i++) {
        diff |= given.data[i] ^ token->data[i % token->len];
    }

    return diff == 0;
}


ngx_int_t
ngx_http_loyalty_admin_eval(ngx_http_loyalty_admin_t *ctx,
    loyalty_script_id_t script, ngx_str_t *keys, ngx_uint_t nkeys,
    ngx_str_t *args, ngx_uint_t nargs,
    ngx_http_loyalty_redis_handler_pt handler, ngx_uint_t index)
{
    u_char                          *n;
    ngx_uint_t                       i;
    ngx_pool_t                      *pool = ctx->request->pool;
    ngx_http_loyalty_admin_call_t   *call, **slot;

    call = ngx_palloc(pool, sizeof(ngx_http_loyalty_admin_call_t));
    n = ngx_pnalloc(pool, NGX_INT_T_LEN);

    if (call == NULL || n == NULL) {
        return NGX_ERROR;
    }

    call->argc = (int) (3 + nkeys + nargs);
    call->argv = ngx_palloc(pool, call->argc * sizeof(char *));
    call->argvlen = ngx_palloc(pool, call->argc * sizeof(size_t));

    if (call->argv == NULL || call->argvlen == NULL) {
        return NGX_ERROR;
    }

    call->argv[2] = (char *) n;
    call->argvlen[2] = ngx_sprintf(n, "%ui", nkeys) - n;

    for (i = 0; i < nkeys; i++) {
        call->argv[3 + i] = (char *) keys[i].data;
        call->argvlen[3 + i] = keys[i].len;
    }

    for (i = 0; i < nargs; i++) {
        call->argv[3 + nkeys + i] = (char *) args[i].data;
        call->argvlen[3 + nkeys + i] = args[i].len;
    }

    call->ctx = ctx;
    call->handler = handler;
    call->index = index;

    call->cmd = ngx_http_loyalty_redis_eval(script, call->argc, call->argv,
                                            call->argvlen,
                                            ngx_http_loyalty_admin_reply,
                                            call);
    if (call->cmd == NULL) {
        return NGX_ERROR;
    }

    slot = ngx_array_push(&ctx->calls);
    if (slot == NULL) {
        ngx_http_loyalty_redis_cancel(call->cmd);
        return NGX_ERROR;
    }

    *slot = call;
    ctx->pending++;

    return NGX_OK;
}


static void
ngx_http_loyalty_admin_reply(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_admin_call_t  *call = data;

    ngx_connection_t  *c;

    c = call->ctx->request->connection;

    call->handler(call, status, reply);

    ngx_http_run_posted_requests(c);
}


ngx_http_loyalty_admin_call_t *
ngx_http_loyalty_admin_done_call(void *data)
{
    ngx_http_loyalty_admin_call_t  *call = data;

    call->cmd = NULL;
    call->ctx->pending--;

    return call;
}


static void
ngx_http_loyalty_admin_cleanup(void *data)
{
    ngx_http_loyalty_admin_t  *ctx = data;

    ngx_uint_t                       i;
    ngx_http_loyalty_admin_call_t  **calls;

    calls = ctx->calls.elts;

    for (i = 0; i < ctx->calls.nelts; i++) {
        if (calls[i]->cmd != NULL) {
            ngx_http_loyalty_redis_cancel(calls[i]->cmd);
            calls[i]->cmd = NULL;
        }
    }
}


void
ngx_http_loyalty_admin_json(ngx_http_loyalty_admin_t *ctx, ngx_uint_t status,
    json_t *value)
{
    char                *text;
    u_char              *body;
    size_t               len;
    ngx_http_request_t  *r = ctx->request;

    text = value ? json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(value);

    if (text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = ngx_strlen(text);
    body = ngx_pnalloc(r->pool, len + 1);

    if (body == NULL) {
        free(text);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(body, text, len);
    body[len++] = '\n';
    free(text);

    ngx_http_finalize_request(r, ngx_http_loyalty_send_json(r, status, body,
                                                            len));
}


void
ngx_http_loyalty_admin_error(ngx_http_loyalty_admin_t *ctx,
    ngx_uint_t status, const char *code, const char *fmt, ...)
{
    u_char    *p, msg[512];
    va_list    args;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    ngx_http_finalize_request(ctx->request,
                              ngx_http_loyalty_send_error(ctx->request,
                                                          status, code,
                                                          "%*s", p - msg,
                                                          msg));
}


void
ngx_http_loyalty_admin_unavailable(ngx_http_loyalty_admin_t *ctx)
{
    ngx_http_loyalty_admin_error(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "redis_unavailable",
                                 "Redis did not answer or refused (see the "
                                 "error log); nothing was changed unless a "
                                 "retry says so");
}


ngx_str_t
ngx_http_loyalty_admin_reply_str(redisReply *reply, size_t i)
{
    ngx_str_t    s;
    redisReply  *e;

    ngx_str_null(&s);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || i >= reply->elements)
    {
        return s;
    }

    e = reply->element[i];

    if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
        s.data = (u_char *) e->str;
        s.len = e->len;
    }

    return s;
}


json_t *
ngx_http_loyalty_admin_time(int64_t t)
{
    char  text[LOYALTY_TIME_TEXT_MAX];

    loyalty_time_format(t, text);

    return json_string(text);
}


ngx_str_t
ngx_http_loyalty_admin_num(ngx_pool_t *pool, int64_t n)
{
    ngx_str_t  s;

    s.data = ngx_pnalloc(pool, NGX_INT64_LEN);
    s.len = s.data ? (size_t) (ngx_sprintf(s.data, "%L", n) - s.data) : 0;

    return s;
}


ngx_int_t
ngx_http_loyalty_admin_account_keys(ngx_pool_t *pool, u_char *customer,
    size_t len, ngx_str_t *keys)
{
    ngx_uint_t   i;
    static char *suffix[] = { "", ":out", ":log" };

    for (i = 0; i < 3; i++) {
        keys[i].data = ngx_pnalloc(pool, LOYALTY_KEY_MAX);
        if (keys[i].data == NULL) {
            return NGX_ERROR;
        }

        keys[i].len = loyalty_key((char *) keys[i].data, "customer",
                                  (char *) customer, len, suffix[i]);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_loyalty_admin_customer(ngx_http_loyalty_admin_t *ctx, ngx_str_t *id,
    ngx_str_t *keys)
{
    size_t  bad;

    if (loyalty_id_check((char *) id->data, id->len, LOYALTY_ID_MAX, &bad)
        != LOYALTY_CODE_OK)
    {
        ngx_http_loyalty_admin_error(ctx, NGX_HTTP_BAD_REQUEST,
                                     "invalid_customer",
                                     "a customer id is 1 to %d bytes of "
                                     "printable ASCII without spaces, '{' "
                                     "or '}'", LOYALTY_ID_MAX);
        return NGX_ERROR;
    }

    if (ngx_http_loyalty_admin_account_keys(ctx->request->pool, id->data,
                                            id->len, keys)
        != NGX_OK)
    {
        ngx_http_finalize_request(ctx->request,
                                  NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    return NGX_OK;
}


int64_t
ngx_http_loyalty_admin_int(const loyalty_json_t *v)
{
    off_t        n;
    const char  *p;

    if (v->type != LOYALTY_JSON_NUMBER || v->len == 0 || v->len > 11) {
        return 0;
    }

    p = v->text[0] == '-' ? v->text + 1 : v->text;
    n = ngx_atoof((u_char *) p, v->len - (p - v->text));

    if (n == NGX_ERROR || n > NGX_HTTP_LOYALTY_POINTS_MAX) {
        return 0;
    }

    return p == v->text ? n : -n;
}
