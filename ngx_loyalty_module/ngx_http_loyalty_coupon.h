/* The worker's cache of coupon definitions, and the coupon's Redis keys. */

#ifndef NGX_HTTP_LOYALTY_COUPON_H
#define NGX_HTTP_LOYALTY_COUPON_H

#include <ngx_config.h>
#include <ngx_core.h>

#include "loyalty_coupon.h"
#include "loyalty_keys.h"


#define NGX_HTTP_LOYALTY_COUPON_KEYS  5


typedef struct {
    ngx_str_node_t       sn;            /* the code */
    ngx_queue_t          queue;         /* most recently used first */
    ngx_pool_t          *pool;          /* everything of the entry */
    ngx_str_t            version;
    loyalty_coupon_t     coupon;
} ngx_http_loyalty_coupon_entry_t;


ngx_http_loyalty_coupon_entry_t *ngx_http_loyalty_coupon_cached(
    ngx_str_t *code);
ngx_http_loyalty_coupon_entry_t *ngx_http_loyalty_coupon_store(
    ngx_str_t *code, ngx_str_t *version, ngx_str_t *def, ngx_log_t *log);
void ngx_http_loyalty_coupon_evict(ngx_http_loyalty_coupon_entry_t *e);
void ngx_http_loyalty_coupon_cache_free(void);

void ngx_http_loyalty_coupon_keys(ngx_str_t *code,
    char keys[][LOYALTY_KEY_MAX], size_t *lens);

#endif /* NGX_HTTP_LOYALTY_COUPON_H */
