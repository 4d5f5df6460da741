/*
 * loyalty_health: the worker's view of Redis, for load balancers and ops.
 * Each call runs a script round trip on the shared connection and checks
 * that the reply carries its own nonce.
 */

#include <time.h>

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"
#include "loyalty_keys.h"


#define NGX_HTTP_LOYALTY_HEALTH_ARGS  6


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_loyalty_redis_cmd_t  *cmd;
    struct timespec                start;
    ngx_uint_t                     in_flight;
    ngx_str_t                      nonce;
    const char                    *argv[NGX_HTTP_LOYALTY_HEALTH_ARGS];
    size_t                         argvlen[NGX_HTTP_LOYALTY_HEALTH_ARGS];
    u_char                         nonce_buf[NGX_ATOMIC_T_LEN
                                             + NGX_INT_T_LEN + 2];
    u_char                         since[NGX_TIME_T_LEN];
} ngx_http_loyalty_health_ctx_t;


static void ngx_http_loyalty_health_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static ngx_int_t ngx_http_loyalty_health_respond(
    ngx_http_loyalty_health_ctx_t *ctx, ngx_uint_t status,
    redisReply *reply);
static void ngx_http_loyalty_health_cleanup(void *data);


static ngx_str_t  ngx_http_loyalty_redis_states[] = {
    ngx_string("disconnected"),
    ngx_string("connecting"),
    ngx_string("ready")
};


ngx_int_t
ngx_http_loyalty_health_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_http_loyalty_health_ctx_t  *ctx;
    static ngx_uint_t               seq;

    ctx = ngx_http_loyalty_get_start(r, sizeof(ngx_http_loyalty_health_ctx_t),
                                     ngx_http_loyalty_health_cleanup, &rc);
    if (ctx == NULL) {
        return rc;
    }

    ctx->request = r;
    ctx->in_flight = ngx_http_loyalty_redis_stats()->in_flight;
    ctx->nonce.data = ctx->nonce_buf;
    ctx->nonce.len = ngx_sprintf(ctx->nonce_buf, "%uA-%ui",
                                 r->connection->number, ++seq)
                     - ctx->nonce_buf;

    ctx->argv[2] = "1";
    ctx->argvlen[2] = 1;
    ctx->argv[3] = LOYALTY_KEY_WORKERS;
    ctx->argvlen[3] = sizeof(LOYALTY_KEY_WORKERS) - 1;
    ctx->argv[4] = (char *) ctx->nonce.data;
    ctx->argvlen[4] = ctx->nonce.len;
    ctx->argv[5] = (char *) ctx->since;
    ctx->argvlen[5] = ngx_sprintf(ctx->since, "%T",
                                  ngx_time() - LOYALTY_WORKER_ALIVE_SECONDS)
                      - ctx->since;

    (void) clock_gettime(CLOCK_MONOTONIC, &ctx->start);

    ctx->cmd = ngx_http_loyalty_redis_eval(LOYALTY_SCRIPT_health,
                                           NGX_HTTP_LOYALTY_HEALTH_ARGS,
                                           ctx->argv, ctx->argvlen,
                                           ngx_http_loyalty_health_reply,
                                           ctx);
    if (ctx->cmd == NULL) {
        return ngx_http_loyalty_health_respond(ctx,
                                               NGX_HTTP_LOYALTY_REDIS_FAILED,
                                               NULL);
    }

    return ngx_http_loyalty_get_wait(r);
}


static void
ngx_http_loyalty_health_reply(void *data, ngx_uint_t status,
    redisReply *reply)
{
    ngx_http_loyalty_health_ctx_t  *ctx = data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;
    ctx->cmd = NULL;

    ngx_http_finalize_request(r,
                              ngx_http_loyalty_health_respond(ctx, status,
                                                              reply));
    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_loyalty_health_respond(ngx_http_loyalty_health_ctx_t *ctx,
    ngx_uint_t status, redisReply *reply)
{
    u_char                                *p, *body;
    size_t                                 len;
    ngx_tm_t                               tm;
    ngx_str_t                              error;
    ngx_uint_t                             code;
    ngx_table_elt_t                       *h;
    struct timespec                        now;
    ngx_http_request_t                    *r;
    ngx_http_loyalty_main_conf_t          *lmcf;
    const ngx_http_loyalty_redis_stats_t  *st;

    r = ctx->request;
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);
    st = ngx_http_loyalty_redis_stats();

    ngx_str_null(&error);

    if (status == NGX_HTTP_LOYALTY_REDIS_TIMEOUT) {
        ngx_str_set(&error, "timeout");

    } else if (status != NGX_HTTP_LOYALTY_REDIS_OK) {
        ngx_str_set(&error, "not_connected");

    } else if (reply->type == REDIS_REPLY_ERROR) {
        ngx_str_set(&error, "redis_error");

    } else if (reply->type != REDIS_REPLY_ARRAY
               || reply->elements != 2
               || reply->element[0]->type != REDIS_REPLY_STRING
               || reply->element[0]->len != ctx->nonce.len
               || ngx_strncmp(reply->element[0]->str, ctx->nonce.data,
                              ctx->nonce.len) != 0
               || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "loyalty: redis reply does not match its command");
        ngx_str_set(&error, "reply_mismatch");
    }

    code = error.len ? NGX_HTTP_SERVICE_UNAVAILABLE : NGX_HTTP_OK;

    (void) clock_gettime(CLOCK_MONOTONIC, &now);

    len = sizeof("{\"status\":\"unavailable\",\"error\":\"\","
                 "\"redis\":{\"address\":,\"state\":\"disconnected\","
                 "\"round_trip_ms\":.,\"in_flight\":,\"reconnects\":,"
                 "\"last_error\":,\"last_error_at\":\"\"},\"workers\":,"
                 "\"pid\":}\n")
          + error.len
          + ngx_http_loyalty_json_string_len(lmcf->redis_name.data,
                                             lmcf->redis_name.len)
          + NGX_TIME_T_LEN + 3
          + 3 * NGX_INT_T_LEN
          + ngx_http_loyalty_json_string_len(st->last_error.data,
                                             st->last_error.len)
          + sizeof("1970-01-01T00:00:00Z") + 2 * NGX_INT_T_LEN;

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"status\":\"%s\",",
                    error.len ? "unavailable" : "ok");

    if (error.len) {
        p = ngx_sprintf(p, "\"error\":\"%V\",", &error);
    }

    p = ngx_cpymem(p, "\"redis\":{\"address\":",
                   sizeof("\"redis\":{\"address\":") - 1);
    p = ngx_http_loyalty_json_string(p, lmcf->redis_name.data,
                                     lmcf->redis_name.len);
    p = ngx_sprintf(p, ",\"state\":\"%V\",",
                    &ngx_http_loyalty_redis_states[st->state]);

    if (status == NGX_HTTP_LOYALTY_REDIS_OK) {
        len = (now.tv_sec - ctx->start.tv_sec) * 1000000
              + (now.tv_nsec - ctx->start.tv_nsec) / 1000;
        p = ngx_sprintf(p, "\"round_trip_ms\":%uz.%03uz,",
                        len / 1000, len % 1000);
    }

    p = ngx_sprintf(p, "\"in_flight\":%ui,\"reconnects\":%ui,",
                    ctx->in_flight, st->reconnects);

    if (st->last_error.len) {
        ngx_gmtime(st->last_error_at, &tm);
        p = ngx_cpymem(p, "\"last_error\":", sizeof("\"last_error\":") - 1);
        p = ngx_http_loyalty_json_string(p, st->last_error.data,
                                         st->last_error.len);
        p = ngx_sprintf(p, ",\"last_error_at\":\"%4d-%02d-%02dT"
                        "%02d:%02d:%02dZ\"",
                        tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                        tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);

    } else {
        p = ngx_cpymem(p, "\"last_error\":null",
                       sizeof("\"last_error\":null") - 1);
    }

    *p++ = '}';

    if (error.len == 0) {
        p = ngx_sprintf(p, ",\"workers\":%L", reply->element[1]->integer);
    }

    p = ngx_sprintf(p, ",\"pid\":%P}\n", ngx_pid);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    return ngx_http_loyalty_send_json(r, code, body, p - body);
}


static void
ngx_http_loyalty_health_cleanup(void *data)
{
    ngx_http_loyalty_health_ctx_t  *ctx = data;

    if (ctx->cmd != NULL) {
        ngx_http_loyalty_redis_cancel(ctx->cmd);
        ctx->cmd = NULL;
    }
}
