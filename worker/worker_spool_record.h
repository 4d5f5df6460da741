/*
 * A spool record: one line of nginx's spool (ngx_http_loyalty_spool.c)
 * read and checked whole before anything of it goes to Redis.  Pure: no
 * Redis, no files, so that the unit tests and the fuzzer drive it alone.
 */

#ifndef WORKER_SPOOL_RECORD_H
#define WORKER_SPOOL_RECORD_H

#include <stddef.h>

#include "loyalty_json.h"


#define WORKER_SPOOL_LINE_MAX   (1024 * 1024)

/* the arguments of one call after EVALSHA and its hash */
#define WORKER_SPOOL_ARGS_MAX   64

/* the calls of one confirmation (NGX_HTTP_LOYALTY_JOB_CALLS) */
#define WORKER_SPOOL_CALLS_MAX  5


typedef struct {
    int             script;     /* LOYALTY_SCRIPT_*, or -1: the events XADD */
    int             argc;
    const char     *argv[WORKER_SPOOL_ARGS_MAX];
    size_t          argvlen[WORKER_SPOOL_ARGS_MAX];
} worker_spool_call_t;


typedef struct {
    const char     *order;
    size_t          order_len;
    const char     *customer;   /* "" for a guest's order */
    size_t          customer_len;
    size_t          ncalls;
    worker_spool_call_t  calls[WORKER_SPOOL_CALLS_MAX];
} worker_spool_record_t;


/*
 * Reads one line (without its newline).  0 with rec filled, its strings
 * in memory from alloc; -1 with *why a static reason when the line is not
 * a record the module writes; -2 when alloc ran out.
 */
int worker_spool_record_read(const char *line, size_t len,
    loyalty_alloc_pt alloc, void *ctx, worker_spool_record_t *rec,
    const char **why);

#endif /* WORKER_SPOOL_RECORD_H */
