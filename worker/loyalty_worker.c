/*
 * loyalty-worker: the daemon that applies what must wait (points credited
 * after the return window, expiry, tiers, rewards, statements) in batches.
 * It runs beside nginx, talks only to Redis, and several may run at once.
 *
 * This file holds the process: options, logging, signals, the Redis
 * connection and the loop that runs one pass every interval.
 */

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "loyalty_keys.h"
#include "loyalty_script.h"
#include "loyalty_worker.h"


#define WORKER_HEARTBEAT_KEEP  86400    /* forget workers gone for a day */


static void usage(FILE *out);
static int parse_options(int argc, char **argv, worker_conf_t *conf);
static int parse_level(const char *name);
static redisContext *worker_connect(worker_t *w);
static int worker_pass(worker_t *w);
static int worker_heartbeat(worker_t *w);
static void worker_sleep(long ms);
static void on_signal(int signo);


static volatile sig_atomic_t  worker_stop;
static volatile sig_atomic_t  worker_reopen;

static FILE        *log_file;
static const char  *log_path;
static int          log_level = WORKER_LOG_INFO;

static const char  *level_names[] = { "error", "warn", "info", "debug" };


int
main(int argc, char **argv)
{
    int                 rc;
    worker_t            w;
    struct sigaction    sa;

    memset(&w, 0, sizeof(w));

    rc = parse_options(argc, argv, &w.conf);
    if (rc != -1) {
        return rc;
    }

    log_path = w.conf.log_path;
    log_level = w.conf.log_level;
    log_file = stderr;

    if (log_path != NULL) {
        log_file = fopen(log_path, "a");
        if (log_file == NULL) {
            fprintf(stderr, "loyalty-worker: cannot open log \"%s\": %s\n",
                    log_path, strerror(errno));
            return 1;
        }
    }

    setvbuf(log_file, NULL, _IOLBF, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (gethostname(w.id, sizeof(w.id) - 16) != 0) {
        strcpy(w.id, "localhost");
    }

    snprintf(w.id + strlen(w.id), 16, ":%ld", (long) getpid());

    worker_log(WORKER_LOG_INFO, "started as %s, redis %s%s", w.id,
               w.conf.redis, w.conf.once ? ", one pass" : "");

    rc = 0;

    while (!worker_stop) {

        if (worker_reopen) {
            worker_reopen = 0;
            worker_reopen_log();
        }

        rc = worker_pass(&w) == 0 ? 0 : 1;

        if (w.conf.once) {
            break;
        }

        worker_sleep(w.conf.interval);
    }

    if (w.redis != NULL) {
        redisFree(w.redis);
    }

    worker_program_free(w.program);

    worker_log(WORKER_LOG_INFO, "stopped");

    return rc;
}


static void
usage(FILE *out)
{
    fprintf(out,
"Usage: loyalty-worker [options]\n"
"\n"
"Applies the loyalty program's deferred work from Redis in batches.\n"
"\n"
"  -r, --redis ADDR       Redis address: host:port or unix:/path\n"
"                         (default 127.0.0.1:6379)\n"
"  -u, --user NAME        Redis ACL user (needs a password)\n"
"  -p, --password SECRET  Redis password (default: $LOYALTY_REDIS_PASSWORD)\n"
"  -d, --db N             Redis database number (default 0)\n"
"  -t, --timeout MS       Redis connect and command timeout (default 2000)\n"
"  -l, --log FILE         log file, reopened on SIGHUP (default stderr)\n"
"  -L, --log-level LEVEL  error, warn, info or debug (default info)\n"
"  -b, --batch N          items per batch (default 1000)\n"
"  -i, --interval MS      pause between passes (default 1000)\n"
"  -s, --spool DIR        nginx's loyalty_spool directory: replay what it\n"
"                         holds (run the worker on every nginx server)\n"
"  -e, --events-max N     cap of the events stream (default 1000000)\n"
"  -n, --now TIME         run at this unix time instead of the clock's\n"
"                         (for tests and for catching up by hand)\n"
"  -E, --lease MS         how long a worker holds a shard of the\n"
"                         schedule without renewing it (default 30000)\n"
"  -1, --once             run one pass and exit (for cron); the exit\n"
"                         status says whether it succeeded\n"
"  -h, --help             this text\n"
"\n"
"SIGTERM and SIGINT finish the current batch and exit; SIGHUP reopens\n"
"the log file.\n");
}


/* Returns -1 to go on, or the exit status. */

static int
parse_options(int argc, char **argv, worker_conf_t *conf)
{
    int          c;
    char        *end;
    long         n;
    static const struct option  options[] = {
        { "redis",     required_argument, NULL, 'r' },
        { "user",      required_argument, NULL, 'u' },
        { "password",  required_argument, NULL, 'p' },
        { "db",        required_argument, NULL, 'd' },
        { "timeout",   required_argument, NULL, 't' },
        { "log",       required_argument, NULL, 'l' },
        { "log-level", required_argument, NULL, 'L' },
        { "batch",     required_argument, NULL, 'b' },
        { "interval",  required_argument, NULL, 'i' },
        { "spool",     required_argument, NULL, 's' },
        { "events-max", required_argument, NULL, 'e' },
        { "now",       required_argument, NULL, 'n' },
        { "lease",     required_argument, NULL, 'E' },
        { "once",      no_argument,       NULL, '1' },
        { "help",      no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };

    conf->redis = "127.0.0.1:6379";
    conf->password = getenv("LOYALTY_REDIS_PASSWORD");
    conf->timeout = 2000;
    conf->log_level = WORKER_LOG_INFO;
    conf->batch = 1000;
    conf->interval = 1000;
    conf->events_max = 1000000;
    conf->lease = 30000;

    while ((c = getopt_long(argc, argv, "r:u:p:d:t:l:L:b:i:s:e:n:E:1h", options,
                            NULL))
           != -1)
    {
        switch (c) {

        case 'r':
            conf->redis = optarg;
            continue;

        case 'u':
            conf->user = optarg;
            continue;

        case 'p':
            conf->password = optarg;
            continue;

        case 'l':
            conf->log_path = optarg;
            continue;

        case 's':
            conf->spool = optarg;
            continue;

        case 'L':
            conf->log_level = parse_level(optarg);

            if (conf->log_level < 0) {
                fprintf(stderr, "loyalty-worker: unknown log level \"%s\"\n",
                        optarg);
                return 2;
            }

            continue;

        case '1':
            conf->once = 1;
            continue;

        case 'h':
            usage(stdout);
            return 0;

        case 'n':
            errno = 0;
            conf->now = strtoll(optarg, &end, 10);

            if (errno || *end != '\0' || conf->now <= 0) {
                fprintf(stderr, "loyalty-worker: invalid time \"%s\" for "
                        "--now: expected unix seconds\n", optarg);
                return 2;
            }

            continue;

        case 'd':
        case 't':
        case 'b':
        case 'i':
        case 'e':
        case 'E':
            errno = 0;
            n = strtol(optarg, &end, 10);

            if (errno || *end != '\0' || n < (c == 'd' ? 0 : 1)
                || n > 100000000)
            {
                fprintf(stderr, "loyalty-worker: invalid number \"%s\" "
                        "for -%c\n", optarg, c);
                return 2;
            }

            if (c == 'd') {
                conf->db = n;
            } else if (c == 't') {
                conf->timeout = n;
            } else if (c == 'b') {
                conf->batch = n;
            } else if (c == 'e') {
                conf->events_max = n;
            } else if (c == 'E') {
                conf->lease = n;
            } else {
                conf->interval = n;
            }

            continue;

        default:
            usage(stderr);
            return 2;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "loyalty-worker: unexpected argument \"%s\"\n",
                argv[optind]);
        return 2;
    }

    if (conf->user != NULL && conf->password == NULL) {
        fprintf(stderr, "loyalty-worker: --user needs --password\n");
        return 2;
    }

    return -1;
}


static int
parse_level(const char *name)
{
    int  i;

    for (i = 0; i <= WORKER_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


void
worker_log(int level, const char *fmt, ...)
{
    char        when[32];
    time_t      now;
    va_list     args;
    struct tm   tm;

    if (level > log_level) {
        return;
    }

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

    fprintf(log_file, "%s [%s] loyalty-worker[%ld]: ", when,
            level_names[level], (long) getpid());

    va_start(args, fmt);
    vfprintf(log_file, fmt, args);
    va_end(args);

    fputc('\n', log_file);
}


void
worker_reopen_log(void)
{
    FILE  *f;

    if (log_path == NULL) {
        return;
    }

    f = freopen(log_path, "a", log_file);
    if (f == NULL) {
        /* the old stream is gone: fall back to stderr rather than lose */
        log_file = stderr;
        worker_log(WORKER_LOG_ERROR, "cannot reopen log \"%s\": %s",
                   log_path, strerror(errno));
        return;
    }

    log_file = f;
    setvbuf(log_file, NULL, _IOLBF, 0);
    worker_log(WORKER_LOG_INFO, "log reopened");
}


/*
 * One pass.  A Redis failure is logged once per incident and its end once;
 * the next pass reconnects.
 */

static int
worker_pass(worker_t *w)
{
    if (w->redis == NULL) {
        w->redis = worker_connect(w);

        if (w->redis == NULL) {
            return -1;
        }
    }

    if (worker_heartbeat(w) != 0 || worker_spool_replay(w) < 0
        || worker_visit(w) < 0)
    {
        redisFree(w->redis);
        w->redis = NULL;
        return -1;
    }

    if (w->incident) {
        w->incident = 0;
        worker_log(WORKER_LOG_INFO, "redis %s is back", w->conf.redis);
    }

    return 0;
}


static redisContext *
worker_connect(worker_t *w)
{
    int              i;
    char            *host, *colon, db[24];
    long             port;
    redisReply      *reply;
    redisContext    *c;
    struct timeval   tv;

    tv.tv_sec = w->conf.timeout / 1000;
    tv.tv_usec = (w->conf.timeout % 1000) * 1000;

    if (strncmp(w->conf.redis, "unix:", 5) == 0) {
        c = redisConnectUnixWithTimeout(w->conf.redis + 5, tv);

    } else {
        host = strdup(w->conf.redis);
        if (host == NULL) {
            return NULL;
        }

        port = 6379;
        colon = strrchr(host, ':');

        if (colon != NULL) {
            *colon = '\0';
            port = strtol(colon + 1, NULL, 10);
        }

        c = redisConnectWithTimeout(host, (int) port, tv);
        free(host);
    }

    if (c == NULL || c->err) {
        worker_redis_error(w, c ? c->errstr : "out of memory");

        if (c != NULL) {
            redisFree(c);
        }

        return NULL;
    }

    redisSetTimeout(c, tv);

    reply = NULL;

    if (w->conf.password != NULL) {
        if (w->conf.user != NULL) {
            reply = worker_command(c, 3, (const char *[]) {
                                       "AUTH", w->conf.user,
                                       w->conf.password }, NULL);
        } else {
            reply = worker_command(c, 2, (const char *[]) {
                                       "AUTH", w->conf.password }, NULL);
        }

        if (worker_reply_ok(w, c, reply) != 0) {
            redisFree(c);
            return NULL;
        }
    }

    if (w->conf.db != 0) {
        snprintf(db, sizeof(db), "%ld", w->conf.db);
        reply = worker_command(c, 2, (const char *[]) { "SELECT", db },
                               NULL);

        if (worker_reply_ok(w, c, reply) != 0) {
            redisFree(c);
            return NULL;
        }
    }

    /* the scripts, as nginx loads them: EVALSHA needs them */
    for (i = 0; i < LOYALTY_SCRIPT_N; i++) {
        reply = worker_command(c, 3, (const char *[]) {
                                   "SCRIPT", "LOAD",
                                   loyalty_scripts[i].source },
                               (size_t []) { 6, 4, loyalty_scripts[i].len });

        if (worker_reply_ok(w, c, reply) != 0) {
            redisFree(c);
            return NULL;
        }
    }

    return c;
}


/* A command; NULL (logged once per incident) when Redis did not answer. */

redisReply *
worker_redis_argv(worker_t *w, int argc, const char **argv,
    const size_t *argvlen)
{
    redisReply  *reply;

    reply = worker_command(w->redis, argc, argv, argvlen);

    if (reply == NULL) {
        worker_redis_error(w, w->redis->errstr);
    }

    return reply;
}


static void
worker_command_lengths(int argc, const char **argv, const size_t *argvlen,
    size_t *lens)
{
    int  i;

    for (i = 0; i < argc; i++) {
        lens[i] = (argvlen == NULL || argvlen[i] == WORKER_CSTR)
                  ? strlen(argv[i]) : argvlen[i];
    }
}


redisReply *
worker_command(redisContext *c, int argc, const char **argv,
    const size_t *argvlen)
{
    size_t  lens[WORKER_COMMAND_ARGS];

    if (argc > WORKER_COMMAND_ARGS) {
        return NULL;
    }

    worker_command_lengths(argc, argv, argvlen, lens);

    return redisCommandArgv(c, argc, argv, lens);
}


int
worker_append(redisContext *c, int argc, const char **argv,
    const size_t *argvlen)
{
    size_t  lens[WORKER_COMMAND_ARGS];

    if (argc > WORKER_COMMAND_ARGS) {
        return REDIS_ERR;
    }

    worker_command_lengths(argc, argv, argvlen, lens);

    return redisAppendCommandArgv(c, argc, argv, lens);
}


/* Frees the reply; logs and returns -1 unless it is a plain success. */

int
worker_reply_ok(worker_t *w, redisContext *c, redisReply *reply)
{
    int  rc;

    if (reply == NULL) {
        worker_redis_error(w, c->errstr);
        return -1;
    }

    rc = 0;

    if (reply->type == REDIS_REPLY_ERROR) {
        worker_redis_error(w, reply->str);
        rc = -1;
    }

    freeReplyObject(reply);

    return rc;
}


void
worker_redis_error(worker_t *w, const char *what)
{
    if (w->incident) {
        worker_log(WORKER_LOG_DEBUG, "redis %s still unavailable: %s",
                   w->conf.redis, what);
        return;
    }

    w->incident = 1;
    worker_log(WORKER_LOG_ERROR, "redis %s unavailable: %s", w->conf.redis,
               what);
}


/* The set that the health endpoint reads to count live workers. */

static int
worker_heartbeat(worker_t *w)
{
    char         now[24], old[24];
    long long    t;
    redisReply  *reply;

    t = (long long) time(NULL);      /* the real clock, even with --now */
    snprintf(now, sizeof(now), "%lld", t);
    snprintf(old, sizeof(old), "%lld", t - WORKER_HEARTBEAT_KEEP);

    worker_append(w->redis, 4, (const char *[]) {
                      "ZADD", LOYALTY_KEY_WORKERS, now, w->id }, NULL);
    worker_append(w->redis, 4, (const char *[]) {
                      "ZREMRANGEBYSCORE", LOYALTY_KEY_WORKERS, "-inf", old },
                  NULL);

    if (redisGetReply(w->redis, (void **) &reply) != REDIS_OK
        || worker_reply_ok(w, w->redis, reply) != 0)
    {
        return -1;
    }

    if (redisGetReply(w->redis, (void **) &reply) != REDIS_OK
        || worker_reply_ok(w, w->redis, reply) != 0)
    {
        return -1;
    }

    return 0;
}


int
worker_stopping(void)
{
    return worker_stop;
}


long long
worker_now(worker_t *w)
{
    return w->conf.now ? w->conf.now : (long long) time(NULL);
}


void *
worker_arena_alloc(void *ctx, size_t size)
{
    void            *p;
    worker_arena_t  *a = ctx;

    size = (size + 15) & ~(size_t) 15;

    if (a->used + size > a->size) {
        return NULL;
    }

    p = a->buf + a->used;
    a->used += size;

    return p;
}


/* Sleeps in short steps so that a signal ends the wait promptly. */

static void
worker_sleep(long ms)
{
    struct timespec  ts;

    while (ms > 0 && !worker_stop) {
        ts.tv_sec = 0;
        ts.tv_nsec = (ms > 100 ? 100 : ms) * 1000000L;
        nanosleep(&ts, NULL);
        ms -= 100;
    }
}


static void
on_signal(int signo)
{
    if (signo == SIGHUP) {
        worker_reopen = 1;
        return;
    }

    worker_stop = 1;
}


/*
 * The head of every event's XADD, as nginx writes it too: the stream,
 * capped near --events-max.  max (size bytes) holds the cap's digits.
 * Returns the number of arguments written.
 */

int
worker_event_head(worker_t *w, const char **argv, char *max, size_t size)
{
    snprintf(max, size, "%ld", w->conf.events_max);

    argv[0] = "XADD";
    argv[1] = LOYALTY_KEY_EVENTS;
    argv[2] = "MAXLEN";
    argv[3] = "~";
    argv[4] = max;
    argv[5] = "*";

    return 6;
}
