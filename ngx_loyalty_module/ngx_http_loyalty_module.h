/*
 * ngx_http_loyalty_module: loyalty points and coupons inside nginx.
 *
 * Shared declarations of the module's parts: configuration, the JSON
 * responses, and the entry points each request flow registers.
 */

#ifndef NGX_HTTP_LOYALTY_MODULE_H
#define NGX_HTTP_LOYALTY_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct {
    ngx_str_t            redis_name;        /* as configured, for logs */
    ngx_str_t            redis_host;        /* numeric, NUL-terminated */
    int                  redis_port;
    ngx_str_t            redis_unix;        /* socket path, NUL-terminated */
    ngx_str_t            redis_user;
    ngx_str_t            redis_password;
    ngx_int_t            redis_db;
    ngx_msec_t           redis_timeout;
    ngx_msec_t           redis_connect_timeout;

    /* the first directive that needs Redis, for the nginx -t message */
    ngx_str_t            used_by;
    ngx_str_t            used_file;
    ngx_uint_t           used_line;
} ngx_http_loyalty_main_conf_t;


typedef struct {
    ngx_flag_t           health;
} ngx_http_loyalty_loc_conf_t;


extern ngx_module_t  ngx_http_loyalty_module;


/* ngx_http_loyalty_module.c */
void ngx_http_loyalty_needs_redis(ngx_conf_t *cf, ngx_command_t *cmd);

/* ngx_http_loyalty_health.c */
ngx_int_t ngx_http_loyalty_health_handler(ngx_http_request_t *r);

/* ngx_http_loyalty_json.c */
ngx_int_t ngx_http_loyalty_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *body, size_t len);
ngx_int_t ngx_http_loyalty_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *fmt, ...);
u_char *ngx_http_loyalty_json_string(u_char *p, u_char *src, size_t len);
size_t ngx_http_loyalty_json_string_len(u_char *src, size_t len);

#endif /* NGX_HTTP_LOYALTY_MODULE_H */
