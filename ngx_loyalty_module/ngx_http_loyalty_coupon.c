/*
 * Each worker keeps the coupon definitions it has seen, so that a checkout
 * can apply the coupon's rules before asking Redis and needs one round
 * trip, not two.  The cache is safe because it is never trusted: the
 * reserving script compares the version the worker evaluated with the
 * current one and answers with the new definition when they differ.
 */

#include "ngx_http_loyalty_module.h"
#include "ngx_http_loyalty_coupon.h"


#define NGX_HTTP_LOYALTY_COUPON_CACHE_MAX  1024


typedef struct {
    ngx_rbtree_t                      rbtree;
    ngx_rbtree_node_t                 sentinel;
    ngx_queue_t                       lru;
    ngx_uint_t                        count;
} ngx_http_loyalty_coupon_cache_t;


static ngx_http_loyalty_coupon_cache_t  ngx_http_loyalty_coupon_cache;


static ngx_http_loyalty_coupon_cache_t *
ngx_http_loyalty_coupon_cache_get(void)
{
    ngx_http_loyalty_coupon_cache_t  *cache = &ngx_http_loyalty_coupon_cache;

    if (cache->rbtree.root == NULL) {
        ngx_rbtree_init(&cache->rbtree, &cache->sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_queue_init(&cache->lru);
    }

    return cache;
}


ngx_http_loyalty_coupon_entry_t *
ngx_http_loyalty_coupon_cached(ngx_str_t *code)
{
    ngx_str_node_t                   *sn;
    ngx_http_loyalty_coupon_cache_t  *cache;
    ngx_http_loyalty_coupon_entry_t  *e;

    cache = ngx_http_loyalty_coupon_cache_get();

    sn = ngx_str_rbtree_lookup(&cache->rbtree, code,
                               ngx_crc32_short(code->data, code->len));
    if (sn == NULL) {
        return NULL;
    }

    e = (ngx_http_loyalty_coupon_entry_t *) sn;

    ngx_queue_remove(&e->queue);
    ngx_queue_insert_head(&cache->lru, &e->queue);

    return e;
}


/*
 * Replaces the cached definition of a code with the one Redis returned;
 * NULL (and a log line) when it cannot be read, which only a definition
 * written by another program could cause.  A version already cached is
 * kept: the checkouts of one batch get the same definition each.
 */

ngx_http_loyalty_coupon_entry_t *
ngx_http_loyalty_coupon_store(ngx_str_t *code, ngx_str_t *version,
    ngx_str_t *def, ngx_log_t *log)
{
    ngx_pool_t                       *pool;
    ngx_queue_t                      *q;
    loyalty_json_t                   *root;
    loyalty_json_error_t              jerr;
    loyalty_json_limits_t             limits;
    loyalty_coupon_error_t            cerr;
    ngx_http_loyalty_coupon_cache_t  *cache;
    ngx_http_loyalty_coupon_entry_t  *e;

    cache = ngx_http_loyalty_coupon_cache_get();

    e = ngx_http_loyalty_coupon_cached(code);
    if (e != NULL) {
        if (e->version.len == version->len
            && ngx_strncmp(e->version.data, version->data, version->len) == 0)
        {
            return e;
        }

        ngx_http_loyalty_coupon_evict(e);
    }

    if (cache->count >= NGX_HTTP_LOYALTY_COUPON_CACHE_MAX) {
        q = ngx_queue_last(&cache->lru);
        ngx_http_loyalty_coupon_evict(
            ngx_queue_data(q, ngx_http_loyalty_coupon_entry_t, queue));
    }

    /* the entry outlives the request: its pool logs to the cycle */
    pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    e = ngx_pcalloc(pool, sizeof(ngx_http_loyalty_coupon_entry_t));
    if (e == NULL) {
        goto failed;
    }

    e->pool = pool;

    e->sn.str.data = ngx_pstrdup(pool, code);
    e->version.data = ngx_pstrdup(pool, version);
    if (e->sn.str.data == NULL || e->version.data == NULL) {
        goto failed;
    }

    e->sn.str.len = code->len;
    e->version.len = version->len;

    limits.alloc = ngx_http_loyalty_palloc;
    limits.ctx = pool;
    limits.max_depth = 4;
    limits.max_values = 6 * LOYALTY_COUPON_LIST_MAX + 64;
    limits.max_members = 32;
    limits.max_string = LOYALTY_COUPON_ITEM_MAX;

    root = loyalty_json_parse((char *) def->data, def->len, &limits, &jerr);

    if (root == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty: coupon \"%V\" has an unreadable definition "
                      "in Redis: %s at byte %uz", code,
                      jerr.reason ? jerr.reason : "out of memory",
                      jerr.offset);
        goto failed;
    }

    if (loyalty_coupon_read(root, ngx_http_loyalty_palloc, pool, &e->coupon,
                            &cerr)
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "loyalty: coupon \"%V\" has an invalid definition in "
                      "Redis: %s", code, cerr.message);
        goto failed;
    }

    e->sn.node.key = ngx_crc32_short(code->data, code->len);
    ngx_rbtree_insert(&cache->rbtree, &e->sn.node);
    ngx_queue_insert_head(&cache->lru, &e->queue);
    cache->count++;

    return e;

failed:

    ngx_destroy_pool(pool);

    return NULL;
}


void
ngx_http_loyalty_coupon_evict(ngx_http_loyalty_coupon_entry_t *e)
{
    ngx_http_loyalty_coupon_cache_t  *cache = &ngx_http_loyalty_coupon_cache;

    ngx_rbtree_delete(&cache->rbtree, &e->sn.node);
    ngx_queue_remove(&e->queue);
    cache->count--;

    ngx_destroy_pool(e->pool);
}


void
ngx_http_loyalty_coupon_cache_free(void)
{
    ngx_queue_t                      *q;
    ngx_http_loyalty_coupon_cache_t  *cache = &ngx_http_loyalty_coupon_cache;

    if (cache->rbtree.root == NULL) {
        return;
    }

    while (!ngx_queue_empty(&cache->lru)) {
        q = ngx_queue_head(&cache->lru);
        ngx_http_loyalty_coupon_evict(
            ngx_queue_data(q, ngx_http_loyalty_coupon_entry_t, queue));
    }
}


/*
 * The keys of coupon_reserve.lua, in its order; the first three are also
 * those of coupon_release.lua (with :res first) and coupon_get.lua.
 */

void
ngx_http_loyalty_coupon_keys(ngx_str_t *code,
    char keys[][LOYALTY_KEY_MAX], size_t *lens)
{
    ngx_uint_t          i;
    static const char  *suffix[NGX_HTTP_LOYALTY_COUPON_KEYS] = {
        "", ":res", ":resc", ":resn", ":uses"
    };

    for (i = 0; i < NGX_HTTP_LOYALTY_COUPON_KEYS; i++) {
        lens[i] = loyalty_key(keys[i], "coupon", (char *) code->data,
                              code->len, suffix[i]);
    }
}
