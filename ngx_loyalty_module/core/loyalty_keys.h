/*
 * Redis key names, in one place for the module, the worker and the tests.
 *
 * Every key carries a hash tag ({...}) naming the one entity it belongs to,
 * and every script touches the keys of a single tag, so the same scripts
 * run unchanged on Redis Cluster:
 *
 *   loyalty:{coupon:CODE}            the coupon (hash)
 *   loyalty:{coupon:CODE}:res        its reservations (zset)
 *   loyalty:{coupon:CODE}:resc       who holds each reservation (hash)
 *   loyalty:{coupon:CODE}:resn       live reservations per customer (hash)
 *   loyalty:{coupon:CODE}:uses       committed uses per customer (hash)
 *   loyalty:{customer:ID}            the account (hash)
 *   loyalty:{customer:ID}:holds      points held per checkout (zset)
 *   loyalty:{customer:ID}:holdv      how many points each holds (hash)
 *   loyalty:{batch:ID}               a bulk generation of coupons (hash)
 *   loyalty:{workers}                live loyalty-workers (zset)
 */

#ifndef LOYALTY_KEYS_H
#define LOYALTY_KEYS_H

#include <stddef.h>


#define LOYALTY_KEY_PREFIX   "loyalty:"

/* sorted set: member host:pid, score the unix time of its last pass */
#define LOYALTY_KEY_WORKERS  LOYALTY_KEY_PREFIX "{workers}"

/* a worker that has not passed for this long is reported as gone */
#define LOYALTY_WORKER_ALIVE_SECONDS  60

/* room for any key: prefix, tag with a 128-byte id, suffix */
#define LOYALTY_KEY_MAX  192


/*
 * Writes LOYALTY_KEY_PREFIX "{kind:id}" suffix into buf (LOYALTY_KEY_MAX
 * bytes), NUL-terminated; returns the length.  The id must already be a
 * valid identifier or code (no braces).
 */
size_t loyalty_key(char *buf, const char *kind, const char *id, size_t len,
    const char *suffix);

#endif /* LOYALTY_KEYS_H */
