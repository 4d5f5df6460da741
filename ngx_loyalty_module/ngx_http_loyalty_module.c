/*
 * ngx_http_loyalty_module: the module definition, its directives and their
 * configuration, and the per-worker start and stop of the Redis adapter.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_redis.h"


static void *ngx_http_loyalty_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_loyalty_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_loyalty_init_process(ngx_cycle_t *cycle);
static void ngx_http_loyalty_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_loyalty_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_loyalty_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_loyalty_commands[] = {

    { ngx_string("loyalty_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1234,
      ngx_http_loyalty_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("loyalty_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("loyalty_redis_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_loyalty_main_conf_t, redis_connect_timeout),
      NULL },

    { ngx_string("loyalty_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_loyalty_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_loyalty_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_loyalty_postconfiguration,    /* postconfiguration */

    ngx_http_loyalty_create_main_conf,     /* create main configuration */
    ngx_http_loyalty_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_loyalty_create_loc_conf,      /* create location configuration */
    ngx_http_loyalty_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_loyalty_module = {
    NGX_MODULE_V1,
    &ngx_http_loyalty_module_ctx,          /* module context */
    ngx_http_loyalty_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_loyalty_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_loyalty_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_loyalty_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->redis_name = { 0, NULL };
     *     lmcf->redis_unix = { 0, NULL };
     *     lmcf->redis_password = { 0, NULL };
     *     lmcf->used_by = { 0, NULL };
     */

    lmcf->redis_db = NGX_CONF_UNSET;
    lmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    lmcf->redis_connect_timeout = NGX_CONF_UNSET_MSEC;

    return lmcf;
}


static char *
ngx_http_loyalty_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    ngx_conf_init_value(lmcf->redis_db, 0);
    ngx_conf_init_msec_value(lmcf->redis_timeout, 100);
    ngx_conf_init_msec_value(lmcf->redis_connect_timeout, 1000);

    return NGX_CONF_OK;
}


static void *
ngx_http_loyalty_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_loyalty_loc_conf_t  *llcf;

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    llcf->health = NGX_CONF_UNSET;

    return llcf;
}


static char *
ngx_http_loyalty_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_loyalty_loc_conf_t  *prev = parent;
    ngx_http_loyalty_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->health, prev->health, 0);

    return NGX_CONF_OK;
}


/*
 * loyalty_redis 127.0.0.1:6379 [user=NAME] [password=SECRET] [db=N];
 * loyalty_redis unix:/run/redis/redis.sock ...;
 *
 * A host name is resolved here, once, at configuration time, like the
 * servers of an upstream block: resolving in a worker would block it.
 */

static char *
ngx_http_loyalty_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_main_conf_t  *lmcf = conf;

    u_char      *p;
    ngx_str_t   *value;
    ngx_url_t    u;
    ngx_uint_t   i;

    if (lmcf->redis_name.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    lmcf->redis_name = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            lmcf->redis_user.data = value[i].data + 5;
            lmcf->redis_user.len = value[i].len - 5;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            lmcf->redis_password.data = value[i].data + 9;
            lmcf->redis_password.len = value[i].len - 9;

            if (lmcf->redis_password.len == 0) {
                return "has an empty \"password=\"";
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            lmcf->redis_db = ngx_atoi(value[i].data + 3, value[i].len - 3);

            if (lmcf->redis_db == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid database number \"%V\" in "
                                   "\"loyalty_redis\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in \"loyalty_redis\", "
                           "expected user=, password= or db=", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (lmcf->redis_user.len && lmcf->redis_password.len == 0) {
        return "has \"user=\" without \"password=\"";
    }

    if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        if (value[1].len == 5) {
            return "has an empty unix socket path";
        }

        /* value[] strings are NUL-terminated by the parser */
        lmcf->redis_unix.data = value[1].data + 5;
        lmcf->redis_unix.len = value[1].len - 5;
        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"loyalty_redis\" address \"%V\"",
                               u.err, &u.url);
        }

        return NGX_CONF_ERROR;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    lmcf->redis_host.data = p;
    lmcf->redis_host.len = ngx_sock_ntop(u.addrs[0].sockaddr,
                                         u.addrs[0].socklen, p,
                                         NGX_SOCKADDR_STRLEN, 0);
    p[lmcf->redis_host.len] = '\0';
    lmcf->redis_port = ngx_inet_get_port(u.addrs[0].sockaddr);

    if (u.naddrs > 1) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"loyalty_redis\" host \"%V\" has %ui addresses, "
                           "using %V", &u.host, u.naddrs, &lmcf->redis_host);
    }

    return NGX_CONF_OK;
}


/* Remembers the first directive that needs Redis, for a precise error. */

void
ngx_http_loyalty_needs_redis(ngx_conf_t *cf, ngx_command_t *cmd)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (lmcf->used_by.len == 0) {
        lmcf->used_by = cmd->name;
        lmcf->used_file = cf->conf_file->file.name;
        lmcf->used_line = cf->conf_file->line;
    }
}


static char *
ngx_http_loyalty_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_loyalty_loc_conf_t  *llcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (llcf->health != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    llcf->health = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_loyalty_health_handler;

    ngx_http_loyalty_needs_redis(cf, cmd);

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_loyalty_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_loyalty_module);

    if (lmcf->used_by.len && lmcf->redis_name.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%V\" in %V:%ui needs \"loyalty_redis\" in the "
                      "http block", &lmcf->used_by, &lmcf->used_file,
                      lmcf->used_line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_init_process(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_main_conf_t  *lmcf;

    /* workers only: not the cache manager or loader */
    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    lmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_loyalty_module);

    if (lmcf == NULL || lmcf->redis_name.len == 0) {
        return NGX_OK;
    }

    return ngx_http_loyalty_redis_init_process(cycle, lmcf);
}


static void
ngx_http_loyalty_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_loyalty_redis_exit_process(cycle);
}
