/*
 * The Redis adapter: hiredis's async context driven by nginx's event loop.
 *
 * Ownership, the part other adapters get wrong:
 * - the socket is wrapped in an nginx connection; the hiredis cleanup hook
 *   closes it through nginx and sets the context's fd to -1 so that
 *   redisFree() does not close the same number again after a reconnect
 *   reused it;
 * - events are level-triggered: hiredis reads at most 16 KB per call, an
 *   edge-triggered read would strand the rest of a large pipelined reply;
 * - hiredis may free the context inside redisAsyncHandleRead/Write, so the
 *   event handlers touch nothing after calling them; the cleanup hook is
 *   the one place that learns the context is gone;
 * - the privdata of every command is a command slot from a per-worker free
 *   list, never a request: a request that goes away only detaches itself.
 */

#include <time.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <hiredis/async.h>

#include "ngx_http_loyalty_redis.h"
#include "ngx_http_loyalty_metrics.h"
#include "loyalty_keys.h"


#define NGX_HTTP_LOYALTY_BACKOFF_MIN  50
#define NGX_HTTP_LOYALTY_BACKOFF_MAX  2000

#define NGX_HTTP_LOYALTY_ERROR_LEN    160

/* a command this long or shorter is written on the stack */
#define NGX_HTTP_LOYALTY_RESP_STACK   4096


struct ngx_http_loyalty_redis_cmd_s {
    ngx_queue_t                         queue;      /* in the free list */
    ngx_event_t                         deadline;
    ngx_http_loyalty_redis_handler_pt   handler;    /* NULL once detached */
    void                               *data;
    int                                 argc;
    const char                        **argv;
    size_t                             *argvlen;
    loyalty_script_id_t                 script;
    ngx_msec_t                          timeout;
    uint64_t                            sent;       /* microseconds */
    unsigned                            retried:1;
};


typedef struct {
    redisAsyncContext                  *ac;
    ngx_uint_t                          state;
    ngx_uint_t                          init_pending;
    ngx_uint_t                          in_flight;
    ngx_uint_t                          reconnects;
    ngx_msec_t                          backoff;
    ngx_event_t                         reconnect;
    ngx_queue_t                         free;
    ngx_pool_t                         *pool;
    ngx_log_t                          *log;
    ngx_http_loyalty_main_conf_t       *conf;

    time_t                              last_error_at;
    time_t                              refused_at;
    size_t                              last_error_len;
    u_char                              last_error[NGX_HTTP_LOYALTY_ERROR_LEN];

    unsigned                            incident:1; /* failure logged */
    unsigned                            exiting:1;
} ngx_http_loyalty_redis_t;


static void ngx_http_loyalty_redis_connect(ngx_event_t *ev);
static void ngx_http_loyalty_redis_refused(redisReply *reply);
static ngx_int_t ngx_http_loyalty_redis_attach(redisAsyncContext *ac);
static void ngx_http_loyalty_redis_send_init(void);
static void ngx_http_loyalty_redis_init_reply(void *data, ngx_uint_t status,
    redisReply *reply);
static size_t ngx_http_loyalty_redis_resp_len(int argc,
    const size_t *argvlen);
static u_char *ngx_http_loyalty_redis_resp_num(u_char *p, u_char type,
    size_t n);
static u_char *ngx_http_loyalty_redis_resp(u_char *p, int argc,
    const char **argv, const size_t *argvlen);
static ngx_http_loyalty_redis_cmd_t *ngx_http_loyalty_redis_send(int argc,
    const char **argv, const size_t *argvlen, ngx_msec_t timeout,
    ngx_http_loyalty_redis_handler_pt handler, void *data);
static void ngx_http_loyalty_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static ngx_int_t ngx_http_loyalty_redis_retry(redisAsyncContext *ac,
    ngx_http_loyalty_redis_cmd_t *cmd, redisReply *reply);
static ngx_int_t ngx_http_loyalty_redis_refusing(const redisReply *reply);
static void ngx_http_loyalty_redis_deadline(ngx_event_t *ev);
static void ngx_http_loyalty_redis_drop(void);
static void ngx_http_loyalty_redis_lost(const redisAsyncContext *ac);
static void ngx_http_loyalty_redis_fail(const char *fmt, ...);
static void ngx_http_loyalty_redis_schedule(void);
static uint64_t ngx_http_loyalty_redis_usec(void);

static void ngx_http_loyalty_redis_read_handler(ngx_event_t *ev);
static void ngx_http_loyalty_redis_write_handler(ngx_event_t *ev);
static void ngx_http_loyalty_redis_add_read(void *privdata);
static void ngx_http_loyalty_redis_del_read(void *privdata);
static void ngx_http_loyalty_redis_add_write(void *privdata);
static void ngx_http_loyalty_redis_del_write(void *privdata);
static void ngx_http_loyalty_redis_cleanup(void *privdata);


static ngx_http_loyalty_redis_t  ngx_http_loyalty_redis;


ngx_int_t
ngx_http_loyalty_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    ngx_memzero(rd, sizeof(ngx_http_loyalty_redis_t));

    rd->pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, cycle->log);
    if (rd->pool == NULL) {
        return NGX_ERROR;
    }

    rd->log = cycle->log;
    rd->conf = lmcf;
    rd->backoff = NGX_HTTP_LOYALTY_BACKOFF_MIN;
    ngx_queue_init(&rd->free);

    rd->reconnect.handler = ngx_http_loyalty_redis_connect;
    rd->reconnect.log = cycle->log;
    rd->reconnect.data = rd;
    rd->reconnect.cancelable = 1;

    ngx_http_loyalty_redis_connect(&rd->reconnect);

    return NGX_OK;
}


void
ngx_http_loyalty_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    if (rd->pool == NULL) {
        return;
    }

    rd->exiting = 1;

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    /* pending commands are released without calling their handlers */
    ngx_http_loyalty_redis_drop();

    ngx_destroy_pool(rd->pool);
    rd->pool = NULL;
}


static void
ngx_http_loyalty_redis_connect(ngx_event_t *ev)
{
    redisAsyncContext             *ac;
    ngx_http_loyalty_redis_t      *rd = &ngx_http_loyalty_redis;
    ngx_http_loyalty_main_conf_t  *lmcf = rd->conf;

    if (lmcf->redis_unix.len) {
        ac = redisAsyncConnectUnix((char *) lmcf->redis_unix.data);

    } else {
        /* a numeric address, resolved at configuration time: no lookup */
        ac = redisAsyncConnect((char *) lmcf->redis_host.data,
                               lmcf->redis_port);
    }

    if (ac == NULL || ac->err
        || ngx_http_loyalty_redis_attach(ac) != NGX_OK)
    {
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_REDIS_ERRORS
                                     + NGX_HTTP_LOYALTY_REDIS_ERR_CONNECT, 1);

        if (ac == NULL) {
            ngx_http_loyalty_redis_fail("out of memory");

        } else {
            ngx_http_loyalty_redis_fail("%s", ac->err
                                        ? ac->errstr
                                        : "no free connection to wrap the "
                                          "socket");
            redisAsyncFree(ac);
        }

        ngx_http_loyalty_redis_schedule();
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                   "loyalty: redis connecting to %V", &lmcf->redis_name);

    rd->ac = ac;
    rd->state = NGX_HTTP_LOYALTY_REDIS_CONNECTING;

    ngx_http_loyalty_redis_send_init();
}


static ngx_int_t
ngx_http_loyalty_redis_attach(redisAsyncContext *ac)
{
    ngx_connection_t          *c;
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    c = ngx_get_connection(ac->c.fd, rd->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = ac;
    c->read->handler = ngx_http_loyalty_redis_read_handler;
    c->write->handler = ngx_http_loyalty_redis_write_handler;
    c->read->log = rd->log;
    c->write->log = rd->log;

    ac->ev.data = c;
    ac->ev.addRead = ngx_http_loyalty_redis_add_read;
    ac->ev.delRead = ngx_http_loyalty_redis_del_read;
    ac->ev.addWrite = ngx_http_loyalty_redis_add_write;
    ac->ev.delWrite = ngx_http_loyalty_redis_del_write;
    ac->ev.cleanup = ngx_http_loyalty_redis_cleanup;

    return NGX_OK;
}


/*
 * AUTH, SELECT and SCRIPT LOAD go first on the new connection; commands
 * queued behind them are ordered after them by the pipeline itself.  The
 * connection is ready once all of them have answered OK, which also proves
 * that Redis is not LOADING or BUSY.
 */

static void
ngx_http_loyalty_redis_send_init(void)
{
    int                            argc;
    ngx_uint_t                     i;
    const char                    *argv[3], *pargv[6];
    size_t                         argvlen[3], pargvlen[6];
    u_char                         db[NGX_INT_T_LEN], vkey[24];
    ngx_http_loyalty_redis_t      *rd = &ngx_http_loyalty_redis;
    ngx_http_loyalty_main_conf_t  *lmcf = rd->conf;

    rd->init_pending = 0;

    if (lmcf->redis_password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (lmcf->redis_user.len) {
            argv[argc] = (char *) lmcf->redis_user.data;
            argvlen[argc++] = lmcf->redis_user.len;
        }

        argv[argc] = (char *) lmcf->redis_password.data;
        argvlen[argc++] = lmcf->redis_password.len;

        if (ngx_http_loyalty_redis_send(argc, argv, argvlen,
                                        lmcf->redis_connect_timeout,
                                        ngx_http_loyalty_redis_init_reply,
                                        NULL)
            == NULL)
        {
            return;
        }

        rd->init_pending++;
    }

    if (lmcf->redis_db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", lmcf->redis_db) - db;

        if (ngx_http_loyalty_redis_send(2, argv, argvlen,
                                        lmcf->redis_connect_timeout,
                                        ngx_http_loyalty_redis_init_reply,
                                        NULL)
            == NULL)
        {
            return;
        }

        rd->init_pending++;
    }

    /* the program this nginx runs, for the worker */
    pargv[0] = "HSET";
    pargv[1] = LOYALTY_KEY_PROGRAM;
    pargv[2] = "current";
    pargv[3] = (char *) lmcf->program_version.data;
    pargv[4] = (char *) vkey;
    pargv[5] = (char *) lmcf->program_json.data;
    pargvlen[0] = 4;
    pargvlen[1] = sizeof(LOYALTY_KEY_PROGRAM) - 1;
    pargvlen[2] = 7;
    pargvlen[3] = lmcf->program_version.len;
    pargvlen[4] = ngx_sprintf(vkey, "v:%V", &lmcf->program_version) - vkey;
    pargvlen[5] = lmcf->program_json.len;

    if (ngx_http_loyalty_redis_send(6, pargv, pargvlen,
                                    lmcf->redis_connect_timeout,
                                    ngx_http_loyalty_redis_init_reply, NULL)
        == NULL)
    {
        return;
    }

    rd->init_pending++;

    for (i = 0; i < LOYALTY_SCRIPT_N; i++) {
        argv[0] = "SCRIPT";
        argvlen[0] = 6;
        argv[1] = "LOAD";
        argvlen[1] = 4;
        argv[2] = loyalty_scripts[i].source;
        argvlen[2] = loyalty_scripts[i].len;

        if (ngx_http_loyalty_redis_send(3, argv, argvlen,
                                        lmcf->redis_connect_timeout,
                                        ngx_http_loyalty_redis_init_reply,
                                        (void *) &loyalty_scripts[i])
            == NULL)
        {
            return;
        }

        rd->init_pending++;
    }
}


static void
ngx_http_loyalty_redis_init_reply(void *data, ngx_uint_t status,
    redisReply *reply)
{
    const loyalty_script_t        *script = data;
    ngx_http_loyalty_redis_t      *rd = &ngx_http_loyalty_redis;
    ngx_http_loyalty_main_conf_t  *lmcf = rd->conf;

    if (status != NGX_HTTP_LOYALTY_REDIS_OK) {
        /* the deadline or the lost connection was already reported */
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        ngx_http_loyalty_redis_fail("%*s", (size_t) reply->len, reply->str);
        ngx_http_loyalty_redis_drop();
        return;
    }

    if (script != NULL
        && (reply->type != REDIS_REPLY_STRING
            || reply->len != 40
            || ngx_strncmp(reply->str, script->sha1, 40) != 0))
    {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
                      "loyalty: redis %V returned an unexpected hash for "
                      "script \"%s\"", &lmcf->redis_name, script->name);
    }

    if (--rd->init_pending > 0) {
        return;
    }

    rd->state = NGX_HTTP_LOYALTY_REDIS_READY;
    rd->backoff = NGX_HTTP_LOYALTY_BACKOFF_MIN;

    if (rd->incident) {
        rd->incident = 0;
        rd->reconnects++;
        ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                      "loyalty: redis %V is back", &lmcf->redis_name);

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "loyalty: redis %V ready", &lmcf->redis_name);
    }
}


ngx_http_loyalty_redis_cmd_t *
ngx_http_loyalty_redis_eval(loyalty_script_id_t script, int argc,
    const char **argv, size_t *argvlen,
    ngx_http_loyalty_redis_handler_pt handler, void *data)
{
    ngx_http_loyalty_redis_cmd_t  *cmd;

    argv[0] = "EVALSHA";
    argvlen[0] = sizeof("EVALSHA") - 1;
    argv[1] = loyalty_scripts[script].sha1;
    argvlen[1] = 40;

    cmd = ngx_http_loyalty_redis_send(argc, argv, argvlen,
                                      ngx_http_loyalty_redis.conf
                                          ->redis_timeout,
                                      handler, data);
    if (cmd == NULL) {
        return NULL;
    }

    cmd->script = script;
    cmd->argc = argc;
    cmd->argv = argv;
    cmd->argvlen = argvlen;

    return cmd;
}


ngx_http_loyalty_redis_cmd_t *
ngx_http_loyalty_redis_command(int argc, const char **argv, size_t *argvlen,
    ngx_http_loyalty_redis_handler_pt handler, void *data)
{
    return ngx_http_loyalty_redis_send(argc, argv, argvlen,
                                       ngx_http_loyalty_redis.conf
                                           ->redis_timeout,
                                       handler, data);
}


void
ngx_http_loyalty_redis_fire(loyalty_script_id_t script, ngx_str_t *keys,
    ngx_uint_t nkeys, ngx_str_t *args, ngx_uint_t nargs)
{
    u_char                         n[NGX_INT_T_LEN];
    ngx_uint_t                     i;
    ngx_http_loyalty_redis_cmd_t  *cmd;

    /* the command is formatted before the call returns: one set will do */
    static const char             *argv[3 + NGX_HTTP_LOYALTY_REDIS_FIRE_ARGS];
    static size_t                  argvlen[3
                                           + NGX_HTTP_LOYALTY_REDIS_FIRE_ARGS];

    if (nkeys + nargs > NGX_HTTP_LOYALTY_REDIS_FIRE_ARGS) {
        return;
    }

    argv[2] = (char *) n;
    argvlen[2] = ngx_sprintf(n, "%ui", nkeys) - n;

    for (i = 0; i < nkeys; i++) {
        argv[3 + i] = (char *) keys[i].data;
        argvlen[3 + i] = keys[i].len;
    }

    for (i = 0; i < nargs; i++) {
        argv[3 + nkeys + i] = (char *) args[i].data;
        argvlen[3 + nkeys + i] = args[i].len;
    }

    cmd = ngx_http_loyalty_redis_eval(script, (int) (3 + nkeys + nargs), argv,
                                      argvlen, NULL, NULL);
    if (cmd != NULL) {
        /* hiredis has copied argv; nothing to retry with */
        ngx_http_loyalty_redis_cancel(cmd);
    }
}


void
ngx_http_loyalty_redis_cancel(ngx_http_loyalty_redis_cmd_t *cmd)
{
    /* the slot stays with hiredis until its reply or the connection ends */
    cmd->handler = NULL;
    cmd->data = NULL;
    cmd->argv = NULL;
    cmd->argvlen = NULL;
}


const ngx_http_loyalty_redis_stats_t *
ngx_http_loyalty_redis_stats(void)
{
    static ngx_http_loyalty_redis_stats_t   stats;
    ngx_http_loyalty_redis_t               *rd = &ngx_http_loyalty_redis;

    stats.state = rd->state;
    stats.in_flight = rd->in_flight;
    stats.reconnects = rd->reconnects;
    stats.last_error_at = rd->last_error_at;
    stats.last_error.data = rd->last_error;
    stats.last_error.len = rd->last_error_len;

    return &stats;
}


/*
 * Commands are written in RESP here, not by redisAsyncCommandArgv: hiredis
 * formats each argument's length with its own printf-like sdscatfmt, which
 * made up a quarter of an order confirmation's instructions (six commands
 * of about fourteen arguments each).
 */

static size_t
ngx_http_loyalty_redis_resp_len(int argc, const size_t *argvlen)
{
    int     i;
    size_t  len;

    len = 1 + NGX_INT_T_LEN + 2;

    for (i = 0; i < argc; i++) {
        len += 1 + NGX_SIZE_T_LEN + 2 + argvlen[i] + 2;
    }

    return len;
}


static u_char *
ngx_http_loyalty_redis_resp_num(u_char *p, u_char type, size_t n)
{
    u_char   digits[NGX_SIZE_T_LEN], *d;

    *p++ = type;

    /* nearly every count and length is under 100: no loop, no copy */
    if (n < 10) {
        *p++ = (u_char) ('0' + n);

    } else if (n < 100) {
        *p++ = (u_char) ('0' + n / 10);
        *p++ = (u_char) ('0' + n % 10);

    } else {
        d = digits + NGX_SIZE_T_LEN;

        do {
            *--d = (u_char) ('0' + n % 10);
            n /= 10;
        } while (n);

        p = ngx_cpymem(p, d, digits + NGX_SIZE_T_LEN - d);
    }

    *p++ = CR;
    *p++ = LF;

    return p;
}


static u_char *
ngx_http_loyalty_redis_resp(u_char *p, int argc, const char **argv,
    const size_t *argvlen)
{
    int  i;

    p = ngx_http_loyalty_redis_resp_num(p, '*', (size_t) argc);

    for (i = 0; i < argc; i++) {
        p = ngx_http_loyalty_redis_resp_num(p, '$', argvlen[i]);

        /* an empty argument may come without a pointer */
        if (argvlen[i]) {
            p = ngx_cpymem(p, argv[i], argvlen[i]);
        }

        *p++ = CR;
        *p++ = LF;
    }

    return p;
}


static ngx_http_loyalty_redis_cmd_t *
ngx_http_loyalty_redis_send(int argc, const char **argv,
    const size_t *argvlen, ngx_msec_t timeout,
    ngx_http_loyalty_redis_handler_pt handler, void *data)
{
    int                            rc;
    u_char                        *buf, *last;
    u_char                         stack[NGX_HTTP_LOYALTY_RESP_STACK];
    size_t                         len;
    ngx_queue_t                   *q;
    ngx_http_loyalty_redis_t      *rd = &ngx_http_loyalty_redis;
    ngx_http_loyalty_redis_cmd_t  *cmd;

    if (rd->ac == NULL
        || rd->state == NGX_HTTP_LOYALTY_REDIS_DISCONNECTED
        || rd->in_flight >= NGX_HTTP_LOYALTY_REDIS_MAX_IN_FLIGHT)
    {
        return NULL;
    }

    if (!ngx_queue_empty(&rd->free)) {
        q = ngx_queue_head(&rd->free);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_loyalty_redis_cmd_t, queue);

    } else {
        cmd = ngx_palloc(rd->pool, sizeof(ngx_http_loyalty_redis_cmd_t));
        if (cmd == NULL) {
            return NULL;
        }
    }

    ngx_memzero(cmd, sizeof(ngx_http_loyalty_redis_cmd_t));

    cmd->handler = handler;
    cmd->data = data;
    cmd->script = LOYALTY_SCRIPT_N;
    cmd->timeout = timeout;
    cmd->deadline.handler = ngx_http_loyalty_redis_deadline;
    cmd->deadline.data = cmd;
    cmd->deadline.log = rd->log;

    len = ngx_http_loyalty_redis_resp_len(argc, argvlen);

    if (len <= NGX_HTTP_LOYALTY_RESP_STACK) {
        buf = stack;

    } else {
        buf = ngx_alloc(len, rd->log);
        if (buf == NULL) {
            ngx_queue_insert_head(&rd->free, &cmd->queue);
            return NULL;
        }
    }

    last = ngx_http_loyalty_redis_resp(buf, argc, argv, argvlen);

    /* hiredis copies the command into its output buffer */
    rc = redisAsyncFormattedCommand(rd->ac, ngx_http_loyalty_redis_reply, cmd,
                                    (char *) buf, last - buf);

    if (buf != stack) {
        ngx_free(buf);
    }

    if (rc != REDIS_OK) {
        ngx_queue_insert_head(&rd->free, &cmd->queue);
        return NULL;
    }

    rd->in_flight++;
    cmd->sent = ngx_http_loyalty_redis_usec();

    /* not cancelable: a worker must not exit while a request waits */
    ngx_add_timer(&cmd->deadline, timeout);

    return cmd;
}


static void
ngx_http_loyalty_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    void                               *data;
    ngx_uint_t                          status, refusing;
    redisReply                         *reply = r;
    ngx_http_loyalty_redis_t           *rd = &ngx_http_loyalty_redis;
    ngx_http_loyalty_redis_cmd_t       *cmd = privdata;
    ngx_http_loyalty_redis_handler_pt   handler;

    rd->in_flight--;
    refusing = 0;

    if (reply == NULL) {
        /* the context is being freed: by an error, or by us */
        ngx_http_loyalty_redis_lost(ac);
        status = NGX_HTTP_LOYALTY_REDIS_FAILED;

    } else {
        if (reply->type == REDIS_REPLY_ERROR
            && ngx_http_loyalty_redis_retry(ac, cmd, reply) == NGX_OK)
        {
            return;
        }

        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_http_loyalty_redis_refused(reply);
        }

        status = NGX_HTTP_LOYALTY_REDIS_OK;

        /* a connection's setup is not a round trip anything waits for */
        if (cmd->handler != ngx_http_loyalty_redis_init_reply) {
            ngx_http_loyalty_metrics_round_trip(ngx_http_loyalty_redis_usec()
                                                - cmd->sent);
        }

        if (reply->type == REDIS_REPLY_ERROR) {
            ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_REDIS_ERRORS
                                         + NGX_HTTP_LOYALTY_REDIS_ERR_REPLY,
                                         1);
        }

        if (ngx_http_loyalty_redis_refusing(reply)) {
            /*
             * Redis answers but cannot serve (a replica, a data set still
             * loading, a script that will not end): for the requests it is
             * down, as if the connection were lost
             */
            ngx_http_loyalty_redis_fail("%*s", (int) reply->len, reply->str);
            status = NGX_HTTP_LOYALTY_REDIS_FAILED;
            reply = NULL;
            refusing = 1;
        }
    }

    if (cmd->deadline.timer_set) {
        ngx_del_timer(&cmd->deadline);
    }

    handler = cmd->handler;
    data = cmd->data;

    /* back to the free list first: the handler may send at once */
    ngx_queue_insert_head(&rd->free, &cmd->queue);

    if (handler != NULL && !rd->exiting) {
        handler(data, status, reply);
    }

    if (refusing) {
        /*
         * the commands behind it would get the same answer: reconnect with
         * backoff until Redis serves again
         */
        ngx_http_loyalty_redis_drop();
    }
}


/*
 * The error replies that say Redis as a whole cannot serve now, rather
 * than that this command was wrong: LOADING, BUSY, READONLY (a replica),
 * MASTERDOWN, MISCONF (writes refused after a failed save) and OOM
 * (maxmemory reached).  The code is the reply's first word.
 */

static ngx_int_t
ngx_http_loyalty_redis_refusing(const redisReply *reply)
{
    size_t             len;
    ngx_uint_t         i;
    static ngx_str_t   codes[] = {
        ngx_string("LOADING"),
        ngx_string("BUSY"),
        ngx_string("READONLY"),
        ngx_string("MASTERDOWN"),
        ngx_string("MISCONF"),
        ngx_string("OOM"),
    };

    if (reply->type != REDIS_REPLY_ERROR) {
        return 0;
    }

    for (len = 0; len < reply->len && reply->str[len] != ' '; len++) {
        /* void */
    }

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (len == codes[i].len
            && ngx_strncmp(reply->str, codes[i].data, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * NOSCRIPT means Redis lost its script cache (SCRIPT FLUSH, a restarted or
 * promoted replica).  SCRIPT LOAD goes out first, then the same EVALSHA:
 * the pipeline orders them, so the retry finds the script.
 */

static ngx_int_t
ngx_http_loyalty_redis_retry(redisAsyncContext *ac,
    ngx_http_loyalty_redis_cmd_t *cmd, redisReply *reply)
{
    const char                *argv[3];
    size_t                     argvlen[3];
    const loyalty_script_t    *script;
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    if (cmd->script == LOYALTY_SCRIPT_N
        || cmd->argv == NULL
        || cmd->retried
        || reply->len < 8
        || ngx_strncmp(reply->str, "NOSCRIPT", 8) != 0)
    {
        return NGX_DECLINED;
    }

    script = &loyalty_scripts[cmd->script];

    ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                  "loyalty: redis %V lost script \"%s\", loading it again",
                  &rd->conf->redis_name, script->name);

    argv[0] = "SCRIPT";
    argvlen[0] = 6;
    argv[1] = "LOAD";
    argvlen[1] = 4;
    argv[2] = script->source;
    argvlen[2] = script->len;

    if (redisAsyncCommandArgv(ac, NULL, NULL, 3, argv, argvlen) != REDIS_OK
        || redisAsyncCommandArgv(ac, ngx_http_loyalty_redis_reply, cmd,
                                 cmd->argc, cmd->argv, cmd->argvlen)
           != REDIS_OK)
    {
        return NGX_DECLINED;
    }

    cmd->retried = 1;
    rd->in_flight++;

    return NGX_OK;
}


static void
ngx_http_loyalty_redis_deadline(ngx_event_t *ev)
{
    void                               *data;
    ngx_http_loyalty_redis_cmd_t       *cmd = ev->data;
    ngx_http_loyalty_redis_handler_pt   handler;

    handler = cmd->handler;
    data = cmd->data;
    ngx_http_loyalty_redis_cancel(cmd);

    ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_REDIS_ERRORS
                                 + NGX_HTTP_LOYALTY_REDIS_ERR_TIMEOUT, 1);

    /*
     * Replies come in order, so everything queued behind this command is
     * stuck too: reset the connection and fail them all now rather than
     * one deadline at a time.
     */
    ngx_http_loyalty_redis_fail("no reply within %M ms", cmd->timeout);
    ngx_http_loyalty_redis_drop();

    if (handler != NULL) {
        handler(data, NGX_HTTP_LOYALTY_REDIS_TIMEOUT, NULL);
    }
}


static void
ngx_http_loyalty_redis_drop(void)
{
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    if (rd->ac == NULL || rd->state == NGX_HTTP_LOYALTY_REDIS_DISCONNECTED) {
        /* not connected, or hiredis is already freeing the context */
        return;
    }

    rd->state = NGX_HTTP_LOYALTY_REDIS_DISCONNECTED;

    /* runs every pending callback with a NULL reply, then the cleanup */
    redisAsyncFree(rd->ac);
}


/*
 * The connection went away by itself (ours are marked disconnected
 * first): while it was being set up, a connect error; once ready, a
 * disconnection; a reply hiredis could not parse, either way, protocol.
 */

static void
ngx_http_loyalty_redis_lost(const redisAsyncContext *ac)
{
    ngx_uint_t                 kind;
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    if (rd->state == NGX_HTTP_LOYALTY_REDIS_DISCONNECTED) {
        return;
    }

    kind = (ac->err == REDIS_ERR_PROTOCOL)
           ? NGX_HTTP_LOYALTY_REDIS_ERR_PROTOCOL
           : (rd->state == NGX_HTTP_LOYALTY_REDIS_CONNECTING)
             ? NGX_HTTP_LOYALTY_REDIS_ERR_CONNECT
             : NGX_HTTP_LOYALTY_REDIS_ERR_DISCONNECT;

    rd->state = NGX_HTTP_LOYALTY_REDIS_DISCONNECTED;

    if (!rd->exiting) {
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_REDIS_ERRORS + kind,
                                     1);
    }

    if (!rd->exiting) {
        ngx_http_loyalty_redis_fail("%s", ac->err ? ac->errstr
                                                  : "connection closed");
    }
}


/*
 * Redis answered, but with an error: the ACL user lacks a command
 * (NOPERM), a failover left us on a replica (READONLY), memory is full
 * (OOM), a snapshot failed (MISCONF), or a script broke.  The request
 * fails as if Redis were down; ops need the reason, and it repeats on
 * every request, so it is logged at most once a minute per worker.
 */

static void
ngx_http_loyalty_redis_refused(redisReply *reply)
{
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    if (ngx_time() - rd->refused_at < 60) {
        return;
    }

    rd->refused_at = ngx_time();

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "loyalty: redis %V refused a command: %*s",
                  &rd->conf->redis_name, ngx_min(reply->len, (size_t) 200),
                  reply->str);
}


/* Records the failure; logs it once per incident, not once per request. */

static void
ngx_http_loyalty_redis_fail(const char *fmt, ...)
{
    u_char                    *p;
    va_list                    args;
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    va_start(args, fmt);
    p = ngx_vslprintf(rd->last_error,
                      rd->last_error + NGX_HTTP_LOYALTY_ERROR_LEN, fmt, args);
    va_end(args);

    rd->last_error_len = p - rd->last_error;
    rd->last_error_at = ngx_time();

    if (rd->incident) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, rd->log, 0,
                       "loyalty: redis %V still unavailable: %V",
                       &rd->conf->redis_name,
                       &ngx_http_loyalty_redis_stats()->last_error);
        return;
    }

    rd->incident = 1;

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                  "loyalty: redis %V unavailable: %*s; coupons and "
                  "redemptions are not verified until it is back",
                  &rd->conf->redis_name, rd->last_error_len, rd->last_error);
}


static void
ngx_http_loyalty_redis_schedule(void)
{
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    if (rd->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (!rd->reconnect.timer_set) {
        ngx_add_timer(&rd->reconnect, rd->backoff);
    }

    rd->backoff = ngx_min(rd->backoff * 2, NGX_HTTP_LOYALTY_BACKOFF_MAX);
}


/* A monotonic clock: round trips are far below a millisecond. */

static uint64_t
ngx_http_loyalty_redis_usec(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}


/* The event hooks.  Nothing is touched after hiredis returns. */

static void
ngx_http_loyalty_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleRead(c->data);
}


static void
ngx_http_loyalty_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t  *c = ev->data;

    redisAsyncHandleWrite(c->data);
}


static void
ngx_http_loyalty_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "loyalty: redis read event not added");
        }
    }
}


static void
ngx_http_loyalty_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_loyalty_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "loyalty: redis write event not added");
        }
    }
}


static void
ngx_http_loyalty_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/*
 * Called by hiredis as the context is freed, whoever freed it.  nginx
 * closes the socket; hiredis must not close that number again.
 */

static void
ngx_http_loyalty_redis_cleanup(void *privdata)
{
    ngx_connection_t          *c = privdata;
    redisAsyncContext         *ac = c->data;
    ngx_http_loyalty_redis_t  *rd = &ngx_http_loyalty_redis;

    ngx_http_loyalty_redis_lost(ac);

    ngx_close_connection(c);
    ac->c.fd = -1;

    rd->ac = NULL;

    ngx_http_loyalty_redis_schedule();
}
