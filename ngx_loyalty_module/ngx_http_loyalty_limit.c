/*
 * Coupon guessing is throttled: failed attempts are counted per customer
 * and per client address in a sliding window, in shared memory so that
 * all workers count together, and with no Redis round trip: beyond the
 * limit nothing is looked up at all.
 *
 * The window is the classic two-bucket estimate: the previous period's
 * count weighted by how much of it still overlaps, plus the current one.
 */

#include "ngx_http_loyalty_module.h"


typedef struct {
    u_char                       color;
    u_char                       len;
    u_short                      pad;
    ngx_queue_t                  queue;     /* least recently used last */
    ngx_msec_t                   window;    /* start of the current period */
    ngx_uint_t                   current;
    ngx_uint_t                   previous;
    u_char                       data[1];
} ngx_http_loyalty_limit_node_t;


typedef struct {
    ngx_rbtree_t                 rbtree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  queue;
} ngx_http_loyalty_limit_shctx_t;


typedef struct {
    ngx_http_loyalty_limit_shctx_t  *sh;
    ngx_slab_pool_t                 *shpool;
} ngx_http_loyalty_limit_ctx_t;


static ngx_int_t ngx_http_loyalty_limit_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_uint_t ngx_http_loyalty_limit_keys(ngx_http_request_t *r,
    ngx_str_t *customer, ngx_str_t *keys);
static ngx_http_loyalty_limit_node_t *ngx_http_loyalty_limit_lookup(
    ngx_http_loyalty_limit_ctx_t *ctx, ngx_str_t *key, uint32_t hash);
static void ngx_http_loyalty_limit_roll(ngx_http_loyalty_limit_node_t *n,
    ngx_msec_t period, ngx_msec_t now);
static void ngx_http_loyalty_limit_expire(ngx_http_loyalty_limit_ctx_t *ctx,
    ngx_msec_t period, ngx_uint_t force);
static void ngx_http_loyalty_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);


ngx_int_t
ngx_http_loyalty_limit_add_zone(ngx_conf_t *cf,
    ngx_http_loyalty_main_conf_t *lmcf)
{
    ngx_str_t                      name;
    ngx_http_loyalty_limit_ctx_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_loyalty_limit_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "loyalty");

    lmcf->shm_zone = ngx_shared_memory_add(cf, &name, lmcf->shm_size,
                                           &ngx_http_loyalty_module);
    if (lmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    lmcf->shm_zone->init = ngx_http_loyalty_limit_init_zone;
    lmcf->shm_zone->data = ctx;

    return NGX_OK;
}


static ngx_int_t
ngx_http_loyalty_limit_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_loyalty_limit_ctx_t  *octx = data;

    ngx_http_loyalty_limit_ctx_t  *ctx;

    ctx = zone->data;

    if (octx != NULL) {
        /* a reload: keep counting where the old cycle was */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        return NGX_OK;
    }

    ctx->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        return NGX_OK;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool,
                             sizeof(ngx_http_loyalty_limit_shctx_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_http_loyalty_limit_rbtree_insert);
    ngx_queue_init(&ctx->sh->queue);

    ctx->shpool->log_ctx = (u_char *) " in loyalty zone";
    ctx->shpool->log_nomem = 0;

    return NGX_OK;
}


ngx_int_t
ngx_http_loyalty_limit_exceeded(ngx_http_request_t *r, ngx_str_t *customer)
{
    ngx_msec_t                      now, left;
    ngx_str_t                       keys[2];
    ngx_uint_t                      i, n, estimate;
    ngx_http_loyalty_limit_ctx_t   *ctx;
    ngx_http_loyalty_main_conf_t   *lmcf;
    ngx_http_loyalty_limit_node_t  *node;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    if (lmcf->attempts == 0) {
        return 0;
    }

    ctx = lmcf->shm_zone->data;
    now = ngx_current_msec;
    n = ngx_http_loyalty_limit_keys(r, customer, keys);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (i = 0; i < n; i++) {
        node = ngx_http_loyalty_limit_lookup(ctx, &keys[i],
                                             ngx_crc32_short(keys[i].data,
                                                             keys[i].len));
        if (node == NULL) {
            continue;
        }

        ngx_http_loyalty_limit_roll(node, lmcf->attempts_period, now);

        left = lmcf->attempts_period - (now - node->window);
        estimate = node->current
                   + node->previous * left / lmcf->attempts_period;

        if (estimate >= lmcf->attempts) {
            ngx_shmtx_unlock(&ctx->shpool->mutex);
            return 1;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return 0;
}


void
ngx_http_loyalty_limit_count(ngx_http_request_t *r, ngx_str_t *customer)
{
    size_t                          size;
    uint32_t                        hash;
    ngx_str_t                       keys[2];
    ngx_msec_t                      now;
    ngx_uint_t                      i, n;
    ngx_rbtree_node_t              *rb;
    ngx_http_loyalty_limit_ctx_t   *ctx;
    ngx_http_loyalty_main_conf_t   *lmcf;
    ngx_http_loyalty_limit_node_t  *node;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_loyalty_module);

    if (lmcf->attempts == 0) {
        return;
    }

    ctx = lmcf->shm_zone->data;
    now = ngx_current_msec;
    n = ngx_http_loyalty_limit_keys(r, customer, keys);

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ngx_http_loyalty_limit_expire(ctx, lmcf->attempts_period, 0);

    for (i = 0; i < n; i++) {
        hash = ngx_crc32_short(keys[i].data, keys[i].len);
        node = ngx_http_loyalty_limit_lookup(ctx, &keys[i], hash);

        if (node != NULL) {
            ngx_queue_remove(&node->queue);
            ngx_queue_insert_head(&ctx->sh->queue, &node->queue);
            ngx_http_loyalty_limit_roll(node, lmcf->attempts_period, now);
            node->current++;
            continue;
        }

        size = offsetof(ngx_rbtree_node_t, color)
               + offsetof(ngx_http_loyalty_limit_node_t, data)
               + keys[i].len;

        rb = ngx_slab_alloc_locked(ctx->shpool, size);

        if (rb == NULL) {
            /* full: the least recently counted goes, whatever its age */
            ngx_http_loyalty_limit_expire(ctx, lmcf->attempts_period, 1);
            rb = ngx_slab_alloc_locked(ctx->shpool, size);

            if (rb == NULL) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "loyalty: the shared memory zone is too small "
                              "to count coupon attempts; raise "
                              "loyalty_shm_size");
                break;
            }
        }

        rb->key = hash;
        node = (ngx_http_loyalty_limit_node_t *) &rb->color;
        node->len = (u_char) keys[i].len;
        node->window = now;
        node->current = 1;
        node->previous = 0;
        ngx_memcpy(node->data, keys[i].data, keys[i].len);

        ngx_rbtree_insert(&ctx->sh->rbtree, rb);
        ngx_queue_insert_head(&ctx->sh->queue, &node->queue);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


/* "c" + the customer (when known) and "a" + the client's address bytes. */

static ngx_uint_t
ngx_http_loyalty_limit_keys(ngx_http_request_t *r, ngx_str_t *customer,
    ngx_str_t *keys)
{
    u_char                *p;
    ngx_uint_t             n;
    struct sockaddr_in    *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6   *sin6;
#endif

    n = 0;

    if (customer->len) {
        p = ngx_pnalloc(r->pool, 1 + customer->len);

        if (p != NULL) {
            p[0] = 'c';
            ngx_memcpy(p + 1, customer->data, customer->len);
            keys[n].data = p;
            keys[n++].len = 1 + customer->len;
        }
    }

    p = ngx_pnalloc(r->pool, 1 + 16);
    if (p == NULL) {
        return n;
    }

    p[0] = 'a';
    keys[n].data = p;

    switch (r->connection->sockaddr->sa_family) {

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) r->connection->sockaddr;
        ngx_memcpy(p + 1, sin6->sin6_addr.s6_addr, 16);
        keys[n++].len = 17;
        break;
#endif

    case AF_INET:
        sin = (struct sockaddr_in *) r->connection->sockaddr;
        ngx_memcpy(p + 1, &sin->sin_addr, 4);
        keys[n++].len = 5;
        break;

    default:
        /* a unix socket client: the customer is all there is */
        break;
    }

    return n;
}


static ngx_http_loyalty_limit_node_t *
ngx_http_loyalty_limit_lookup(ngx_http_loyalty_limit_ctx_t *ctx,
    ngx_str_t *key, uint32_t hash)
{
    ngx_int_t                       rc;
    ngx_rbtree_node_t              *node, *sentinel;
    ngx_http_loyalty_limit_node_t  *n;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        n = (ngx_http_loyalty_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, n->data, key->len, (size_t) n->len);

        if (rc == 0) {
            return n;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_loyalty_limit_roll(ngx_http_loyalty_limit_node_t *n,
    ngx_msec_t period, ngx_msec_t now)
{
    ngx_msec_t  elapsed;

    elapsed = now - n->window;

    if (elapsed < period) {
        return;
    }

    if (elapsed < 2 * period) {
        n->previous = n->current;
        n->window += period;

    } else {
        n->previous = 0;
        n->window = now;
    }

    n->current = 0;
}


/* Frees up to two nodes idle for two periods, or the oldest when forced. */

static void
ngx_http_loyalty_limit_expire(ngx_http_loyalty_limit_ctx_t *ctx,
    ngx_msec_t period, ngx_uint_t force)
{
    ngx_uint_t                      i;
    ngx_queue_t                    *q;
    ngx_rbtree_node_t              *node;
    ngx_http_loyalty_limit_node_t  *n;

    for (i = 0; i < 2; i++) {

        if (ngx_queue_empty(&ctx->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&ctx->sh->queue);
        n = ngx_queue_data(q, ngx_http_loyalty_limit_node_t, queue);

        if (!force && ngx_current_msec - n->window < 2 * period) {
            return;
        }

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) n - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&ctx->sh->rbtree, node);
        ngx_slab_free_locked(ctx->shpool, node);

        force = 0;
    }
}


static void
ngx_http_loyalty_limit_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t              **p;
    ngx_http_loyalty_limit_node_t   *n, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            n = (ngx_http_loyalty_limit_node_t *) &node->color;
            t = (ngx_http_loyalty_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(n->data, t->data, n->len, t->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}
