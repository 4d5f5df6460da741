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
 *   loyalty:{customer:ID}:out        its events not yet in the stream (list)
 *   loyalty:{due:S}                  when the worker next visits each
 *                                    customer of shard S (zset)
 *   loyalty:{due:S}:lease            which worker works shard S (string)
 *   loyalty:{orders:S}               which customer each order is (hash)
 *   loyalty:{program}                the published program (hash)
 *   loyalty:{events}                 events for the shop's mailer (stream)
 *   loyalty:{workers}                live loyalty-workers (zset)
 */

#ifndef LOYALTY_KEYS_H
#define LOYALTY_KEYS_H

#include <stddef.h>
#include <stdint.h>


#define LOYALTY_KEY_PREFIX   "loyalty:"

/* hash: "current" the version nginx runs, "v:<version>" its JSON */
#define LOYALTY_KEY_PROGRAM  LOYALTY_KEY_PREFIX "{program}"

/* stream of events for the shop's mailer */
#define LOYALTY_KEY_EVENTS   LOYALTY_KEY_PREFIX "{events}"

/* customers fall in one of this many shards of the schedule, by id */
#define LOYALTY_DUE_SHARDS   16

/* sorted set: member host:pid, score the unix time of its last pass */
#define LOYALTY_KEY_WORKERS  LOYALTY_KEY_PREFIX "{workers}"

/*
 * hash: what loyalty-worker counts for /metrics (spool_replayed,
 * spool_rejected); beside the program's totals, in their hash tag
 */
#define LOYALTY_KEY_OPS      LOYALTY_KEY_PREFIX "{stats}:ops"

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

/*
 * The visit schedule of a customer's shard, loyalty:{due:S} suffix: the
 * sorted set of when loyalty-worker next visits each customer (suffix ""),
 * or the shard's lease (":lease").
 */
size_t loyalty_key_due(char *buf, const char *customer, size_t len,
    const char *suffix);
size_t loyalty_key_shard(char *buf, unsigned shard, const char *suffix);

/* The registry shard of an order: loyalty:{orders:S}. */
size_t loyalty_key_order(char *buf, const char *order, size_t len);

/*
 * A leaderboard: loyalty:{board}:YYYY-MM (a month) or loyalty:{board}:YYYY
 * (a year), all under one tag so that they can be read together.
 */
size_t loyalty_key_board(char *buf, const char *period, size_t len);

/* The board of the month (year 0) or of the year (1) of a time, in UTC. */
size_t loyalty_key_board_at(char *buf, int64_t t, int year);

/*
 * The program's running totals: loyalty:{stats} (LOYALTY_STATS_TOTALS),
 * the day of a time loyalty:{stats}:day:YYYY-MM-DD (UTC) and the uses per
 * coupon loyalty:{stats}:coupons.
 */
#define LOYALTY_STATS_TOTALS   0
#define LOYALTY_STATS_DAY      1
#define LOYALTY_STATS_COUPONS  2

size_t loyalty_key_stats(char *buf, int which, int64_t t);

#endif /* LOYALTY_KEYS_H */
