/*
 * Redis from inside an nginx worker, never blocking: one hiredis async
 * context per worker bound to nginx's event loop, all requests pipelined on
 * it, a deadline on every command, reconnection with backoff.
 */

#ifndef NGX_HTTP_LOYALTY_REDIS_H
#define NGX_HTTP_LOYALTY_REDIS_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <hiredis/hiredis.h>

#include "ngx_http_loyalty_module.h"
#include "loyalty_script.h"


typedef enum {
    NGX_HTTP_LOYALTY_REDIS_OK = 0,      /* a reply, possibly an error reply */
    NGX_HTTP_LOYALTY_REDIS_TIMEOUT,     /* the deadline passed first */
    NGX_HTTP_LOYALTY_REDIS_FAILED       /* the connection went away first */
} ngx_http_loyalty_redis_status_e;


typedef enum {
    NGX_HTTP_LOYALTY_REDIS_DISCONNECTED = 0,
    NGX_HTTP_LOYALTY_REDIS_CONNECTING,  /* socket up, scripts loading */
    NGX_HTTP_LOYALTY_REDIS_READY
} ngx_http_loyalty_redis_state_e;


typedef struct ngx_http_loyalty_redis_cmd_s  ngx_http_loyalty_redis_cmd_t;

/*
 * Called once per sent command, never from inside the send call.  The reply
 * belongs to hiredis and is freed when the handler returns.
 */
typedef void (*ngx_http_loyalty_redis_handler_pt)(void *data,
    ngx_uint_t status, redisReply *reply);


typedef struct {
    ngx_uint_t           state;
    ngx_uint_t           in_flight;
    ngx_uint_t           reconnects;
    time_t               last_error_at;
    ngx_str_t            last_error;
} ngx_http_loyalty_redis_stats_t;


/* Bounds the commands queued on one worker's connection. */
#define NGX_HTTP_LOYALTY_REDIS_MAX_IN_FLIGHT  20000


ngx_int_t ngx_http_loyalty_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf);
void ngx_http_loyalty_redis_exit_process(ngx_cycle_t *cycle);

/*
 * Sends EVALSHA of an embedded script.  argv[0] and argv[1] are filled in
 * here (EVALSHA and the hash); argv[2] is the number of keys, then the keys
 * and the arguments.  argv must stay valid until the handler runs or the
 * command is canceled: a NOSCRIPT reply is retried with the same argv.
 * Returns NULL when nothing was sent (Redis is down or overloaded): the
 * handler is then never called.
 */
ngx_http_loyalty_redis_cmd_t *ngx_http_loyalty_redis_eval(
    loyalty_script_id_t script, int argc, const char **argv, size_t *argvlen,
    ngx_http_loyalty_redis_handler_pt handler, void *data);

/*
 * Sends EVALSHA of a script whose answer nobody waits for (keys and args
 * are copied at once; at most NGX_HTTP_LOYALTY_REDIS_FIRE_ARGS in all).  A
 * failure is not reported: use it only for what has another way to happen
 * (a release that expiry does anyway) or may be lost (program counts).
 */
#define NGX_HTTP_LOYALTY_REDIS_FIRE_ARGS  640

void ngx_http_loyalty_redis_fire(loyalty_script_id_t script, ngx_str_t *keys,
    ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs);

/* Sends a plain command, with the same deadline and the same rules. */
ngx_http_loyalty_redis_cmd_t *ngx_http_loyalty_redis_command(int argc,
    const char **argv, size_t *argvlen,
    ngx_http_loyalty_redis_handler_pt handler, void *data);

/* Detaches the caller: its handler will not be called, argv is released. */
void ngx_http_loyalty_redis_cancel(ngx_http_loyalty_redis_cmd_t *cmd);

const ngx_http_loyalty_redis_stats_t *ngx_http_loyalty_redis_stats(void);

#endif /* NGX_HTTP_LOYALTY_REDIS_H */
