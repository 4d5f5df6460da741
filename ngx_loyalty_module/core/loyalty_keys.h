/*
 * Redis key names, in one place for the module, the worker and the tests.
 *
 * Every key carries a hash tag ({...}) naming the one entity it belongs to,
 * and every script touches the keys of a single tag, so the same scripts
 * run unchanged on Redis Cluster.
 */

#ifndef LOYALTY_KEYS_H
#define LOYALTY_KEYS_H

#define LOYALTY_KEY_PREFIX   "loyalty:"

/* sorted set: member host:pid, score the unix time of its last pass */
#define LOYALTY_KEY_WORKERS  LOYALTY_KEY_PREFIX "{workers}"

/* a worker that has not passed for this long is reported as gone */
#define LOYALTY_WORKER_ALIVE_SECONDS  60

#endif /* LOYALTY_KEYS_H */
