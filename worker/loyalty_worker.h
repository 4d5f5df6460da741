/* loyalty-worker: shared declarations of the daemon's parts. */

#ifndef LOYALTY_WORKER_H
#define LOYALTY_WORKER_H

#include <hiredis/hiredis.h>


enum {
    WORKER_LOG_ERROR = 0,
    WORKER_LOG_WARN,
    WORKER_LOG_INFO,
    WORKER_LOG_DEBUG
};


typedef struct {
    const char     *redis;
    const char     *user;
    const char     *password;
    long            db;
    long            timeout;        /* ms */
    const char     *log_path;
    int             log_level;
    long            batch;
    long            interval;       /* ms */
    int             once;
    const char     *spool;          /* nginx's loyalty_spool, or NULL */
    long            events_max;
    long long       now;            /* --now: the clock, fixed; 0 real */
    long            lease;          /* ms a worker holds a shard */
} worker_conf_t;


/* memory for a parsed JSON document, freed in one go */
typedef struct {
    char           *buf;
    size_t          used;
    size_t          size;
} worker_arena_t;


typedef struct worker_program_s  worker_program_t;


typedef struct {
    worker_conf_t   conf;
    redisContext   *redis;
    int             incident;       /* a Redis failure has been logged */
    char            id[256];        /* host:pid */
    worker_program_t  *program;     /* the one nginx published */
    int             no_program;     /* its absence has been logged */
} worker_t;


void worker_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void worker_reopen_log(void);
void worker_redis_error(worker_t *w, const char *what);
int worker_reply_ok(worker_t *w, redisContext *c, redisReply *reply);
redisReply *worker_redis_argv(worker_t *w, int argc, const char **argv,
    const size_t *argvlen);

/*
 * Every command goes to Redis as an argument vector, never through a
 * format string: nothing an argument holds (an id read from Redis, a
 * password) can change the command.  A length of WORKER_CSTR, or argvlen
 * NULL, takes the argument as a C string.
 */
#define WORKER_COMMAND_ARGS  24
#define WORKER_CSTR          ((size_t) -1)

redisReply *worker_command(redisContext *c, int argc, const char **argv,
    const size_t *argvlen);
int worker_append(redisContext *c, int argc, const char **argv,
    const size_t *argvlen);

void *worker_arena_alloc(void *ctx, size_t size);

/*
 * Moves the program's totals (stats_add.lua): n fields and their changes,
 * changes of 0 left out.
 */
int worker_stats_add(worker_t *w, int n, const char **fields,
    const long long *changes);

/* Points earned on the leaderboards of the month and year of now. */
int worker_board_add(worker_t *w, const char *customer, size_t len,
    long long points);
long long worker_now(worker_t *w);
int worker_event_head(worker_t *w, const char **argv, char *max,
    size_t size);
int worker_stopping(void);

/* worker_spool.c */
int worker_spool_replay(worker_t *w);

/* worker_visit.c */
int worker_visit(worker_t *w);
void worker_program_free(worker_program_t *p);

#endif /* LOYALTY_WORKER_H */
