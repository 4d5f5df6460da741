/*
 * Replaying the spool: the order writes nginx could not give Redis, one
 * JSON line per order in files orders.<pid>.log (see ngx_http_loyalty_spool.c
 * for the writer's side).
 *
 * A file is claimed by renaming it to <name>.replay-<pid>; the exclusive
 * lock then waits for a writer that opened the old name.  Every call of a
 * line is idempotent, so a file is replayed whole, again, until every line
 * went through: a worker killed half way, or Redis failing half way, only
 * means some calls run twice.  A line that cannot be read is moved to
 * rejected.log, never dropped.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loyalty_json.h"
#include "loyalty_keys.h"
#include "loyalty_script.h"
#include "loyalty_worker.h"


#define SPOOL_LINE_MAX  (1024 * 1024)
#define SPOOL_ARGS_MAX  64


static int spool_replay_file(worker_t *w, int fd, const char *path);
static int spool_replay_line(worker_t *w, char *line, size_t len);
static int spool_call(worker_t *w, const loyalty_json_t *call,
    const loyalty_json_t *order, const loyalty_json_t *customer);
static int spool_event(worker_t *w, const loyalty_json_t *order,
    const loyalty_json_t *customer, redisReply *reply);
static int spool_count(worker_t *w, const loyalty_json_t *customer,
    const loyalty_json_t *args, redisReply *reply);
static int spool_count_coupon(worker_t *w, const loyalty_json_t *args);
static void spool_reject(const char *dir, const char *line, size_t len,
    const char *why);
static void spool_count_ops(worker_t *w, int replayed, int rejected);


/*
 * Replays every spool file of the directory.  Returns the number of lines
 * replayed, or -1 when Redis failed (the rest waits for the next pass).
 */

int
worker_spool_replay(worker_t *w)
{
    int             fd, n, total;
    DIR            *d;
    char          **names;
    size_t          i, count, cap;
    struct dirent  *e;
    char            from[512], claimed[512];

    if (w->conf.spool == NULL) {
        return 0;
    }

    d = opendir(w->conf.spool);
    if (d == NULL) {
        worker_log(WORKER_LOG_ERROR, "cannot read the spool \"%s\": %s",
                   w->conf.spool, strerror(errno));
        return -1;
    }

    /* the names first: claiming renames entries under readdir() */
    names = NULL;
    count = 0;
    cap = 0;

    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "orders.", 7) != 0
            || strstr(e->d_name, ".log") == NULL)
        {
            continue;
        }

        if (count == cap) {
            cap = cap ? 2 * cap : 16;
            names = realloc(names, cap * sizeof(char *));
            if (names == NULL) {
                closedir(d);
                return -1;
            }
        }

        names[count++] = strdup(e->d_name);
    }

    closedir(d);

    total = 0;

    for (i = 0; i < count; i++) {

        if (names[i] == NULL || total < 0) {
            free(names[i]);
            continue;
        }

        snprintf(from, sizeof(from), "%s/%s", w->conf.spool, names[i]);
        snprintf(claimed, sizeof(claimed), "%s/%.*s.replay-%ld",
                 w->conf.spool,
                 (int) (strstr(names[i], ".log") + 4 - names[i]), names[i],
                 (long) getpid());
        free(names[i]);

        fd = open(from, O_RDONLY);
        if (fd == -1) {
            continue;
        }

        /*
         * Held: a writer is appending right now, or another worker
         * replays it.  Next pass.  Once ours, the new name keeps writers
         * out: one that opened the old name waits for the lock, then sees
         * the name moved and writes to a new file.
         */
        if (flock(fd, LOCK_EX | LOCK_NB) == -1
            || (strcmp(from, claimed) != 0 && rename(from, claimed) != 0))
        {
            close(fd);
            continue;
        }

        n = spool_replay_file(w, fd, claimed);
        total = (n < 0) ? -1 : total + n;
    }

    free(names);

    return total;
}


static int
spool_replay_file(worker_t *w, int fd, const char *path)
{
    int       n, rejected;
    FILE     *f;
    char     *line;
    size_t    cap;
    ssize_t   len;

    f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return 0;
    }

    line = NULL;
    cap = 0;
    n = 0;
    rejected = 0;

    while ((len = getline(&line, &cap, f)) != -1) {

        if (len == 0 || line[len - 1] != '\n') {
            spool_reject(w->conf.spool, line, (size_t) len, "cut short");
            rejected++;
            continue;
        }

        switch (spool_replay_line(w, line, (size_t) len - 1)) {

        case 0:
            n++;
            break;

        case -1:
            /* Redis failed: the whole file again next time */
            free(line);
            fclose(f);
            return -1;

        default:
            spool_reject(w->conf.spool, line, (size_t) len - 1,
                         "not a spool record");
            rejected++;
        }
    }

    free(line);

    /* removed under the lock: no writer can have it open for writing */
    if (unlink(path) != 0) {
        worker_log(WORKER_LOG_ERROR, "cannot remove \"%s\": %s", path,
                   strerror(errno));
    }

    fclose(f);

    if (n) {
        worker_log(WORKER_LOG_INFO, "replayed %d spooled orders from %s",
                   n, path);
    }

    spool_count_ops(w, n, rejected);

    return n;
}


/*
 * For nginx's /metrics, which has no other way to learn what this process
 * did: counted once the file is done, since a file Redis failed half way
 * is replayed whole again.  A count lost with Redis is a count, not an
 * order.
 */

static void
spool_count_ops(worker_t *w, int replayed, int rejected)
{
    redisReply  *r;

    if (replayed) {
        r = redisCommand(w->redis, "HINCRBY %s spool_replayed %d",
                         LOYALTY_KEY_OPS, replayed);
        (void) worker_reply_ok(w, w->redis, r);
    }

    if (rejected) {
        r = redisCommand(w->redis, "HINCRBY %s spool_rejected %d",
                         LOYALTY_KEY_OPS, rejected);
        (void) worker_reply_ok(w, w->redis, r);
    }
}


/*
 * 0 when done, -1 when Redis failed, 1 when the line is not a record.  A
 * call answering "conflict" ends its line: what follows it was for an
 * order that is not this customer's.
 */

static int
spool_replay_line(worker_t *w, char *line, size_t len)
{
    int                     rc;
    loyalty_json_t         *root;
    worker_arena_t          arena;
    loyalty_json_error_t    err;
    loyalty_json_limits_t   limits;
    const loyalty_json_t   *calls, *call, *order, *customer, *v;

    if (len > SPOOL_LINE_MAX) {
        return 1;
    }

    arena.size = 16 * len + 4096;
    arena.used = 0;
    arena.buf = malloc(arena.size);
    if (arena.buf == NULL) {
        return -1;
    }

    limits.alloc = worker_arena_alloc;
    limits.ctx = &arena;
    limits.max_depth = 8;
    limits.max_values = 4096;
    limits.max_members = 16;
    limits.max_string = len;

    root = loyalty_json_parse(line, len, &limits, &err);

    v = loyalty_json_get(root, "v", 1);
    calls = loyalty_json_get(root, "calls", 5);
    order = loyalty_json_get(root, "order", 5);
    customer = loyalty_json_get(root, "customer", 8);

    if (root == NULL || v == NULL || strcmp(v->text, "1") != 0
        || calls == NULL || calls->type != LOYALTY_JSON_ARRAY
        || order == NULL || customer == NULL)
    {
        free(arena.buf);
        return 1;
    }

    rc = 0;

    for (call = calls->child; call != NULL && rc == 0; call = call->next) {
        rc = spool_call(w, call, order, customer);
    }

    free(arena.buf);

    /* a conflict ends the line as done */
    return rc == 2 ? 0 : rc;
}


static int
spool_call(worker_t *w, const loyalty_json_t *call,
    const loyalty_json_t *order, const loyalty_json_t *customer)
{
    int                    argc, i, rc;
    size_t                 argvlen[SPOOL_ARGS_MAX + 2];
    redisReply            *reply;
    const char            *argv[SPOOL_ARGS_MAX + 2];
    const loyalty_json_t  *script, *args, *a;

    script = loyalty_json_get(call, "script", 6);
    args = loyalty_json_get(call, script ? "argv" : "command",
                            script ? 4 : 7);

    if (args == NULL || args->type != LOYALTY_JSON_ARRAY
        || args->count == 0 || args->count > SPOOL_ARGS_MAX)
    {
        return 1;
    }

    argc = 0;

    if (script != NULL) {
        for (i = 0; i < LOYALTY_SCRIPT_N; i++) {
            if (strcmp(loyalty_scripts[i].name, script->text) == 0) {
                break;
            }
        }

        if (i == LOYALTY_SCRIPT_N) {
            worker_log(WORKER_LOG_ERROR, "the spool names an unknown script "
                       "\"%s\"", script->text);
            return 1;
        }

        argv[argc] = "EVALSHA";
        argvlen[argc++] = 7;
        argv[argc] = loyalty_scripts[i].sha1;
        argvlen[argc++] = 40;
    }

    for (a = args->child; a != NULL; a = a->next) {
        if (a->type != LOYALTY_JSON_STRING) {
            return 1;
        }

        argv[argc] = a->text;
        argvlen[argc++] = a->len;
    }

    reply = worker_redis_argv(w, argc, argv, argvlen);
    if (reply == NULL) {
        return -1;
    }

    rc = 0;

    if (reply->type == REDIS_REPLY_ERROR) {
        worker_redis_error(w, reply->str);
        rc = -1;

    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements
               && reply->element[0]->type == REDIS_REPLY_STRING
               && strcmp(reply->element[0]->str, "conflict") == 0)
    {
        /* the order is another customer's, or was other: nothing more */
        worker_log(WORKER_LOG_ERROR, "spooled order \"%s\" of customer "
                   "\"%s\" conflicts with one recorded before; not "
                   "recorded again", order->text, customer->text);
        rc = 2;

    } else if (script != NULL && strcmp(script->text, "order_record") == 0
               && reply->type == REDIS_REPLY_ARRAY && reply->elements == 6
               && strcmp(reply->element[0]->str, "recorded") == 0)
    {
        /* the first time this order is recorded: its event goes now */
        rc = spool_event(w, order, customer, reply);

        if (rc == 0) {
            rc = spool_count(w, customer, args, reply);
        }

    } else if (script != NULL && strcmp(script->text, "coupon_commit") == 0
               && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
               && strcmp(reply->element[0]->str, "committed") == 0)
    {
        rc = spool_count_coupon(w, args);
    }

    freeReplyObject(reply);

    return rc;
}


static int
spool_event(worker_t *w, const loyalty_json_t *order,
    const loyalty_json_t *customer, redisReply *reply)
{
    char          id[256], points[32], pending[32], at[32], maxlen[32];
    redisReply   *r;

    snprintf(id, sizeof(id), "points_earned:%s", order->text);
    snprintf(points, sizeof(points), "%lld", reply->element[1]->integer);
    snprintf(pending, sizeof(pending), "%lld", reply->element[2]->integer);
    snprintf(at, sizeof(at), "%lld", (long long) time(NULL));
    snprintf(maxlen, sizeof(maxlen), "%ld", w->conf.events_max);

    r = redisCommand(w->redis, "XADD %s MAXLEN ~ %s * type points_earned "
                     "id %s customer %s order %s points %s pending %s at %s",
                     LOYALTY_KEY_EVENTS, maxlen, id, customer->text,
                     order->text, points, pending, at);

    return worker_reply_ok(w, w->redis, r);
}


/*
 * The program's totals and the leaderboard, as nginx would have moved
 * them (ngx_http_loyalty_confirm.c): the order's value is its basis,
 * ARGV[5] of order_record.lua.
 */

static int
spool_count(worker_t *w, const loyalty_json_t *customer,
    const loyalty_json_t *args, redisReply *reply)
{
    int                    i, nkeys;
    long long              n, changes[6];
    const char            *fields[6];
    const loyalty_json_t  *a;

    a = args->child;
    nkeys = atoi(a->text);

    for (i = 0; a != NULL && i < nkeys + 5; i++) {
        a = a->next;
    }

    n = reply->element[5]->integer;

    fields[0] = "pending";
    changes[0] = reply->element[1]->integer;
    fields[1] = "available";
    changes[1] = -reply->element[3]->integer;
    fields[2] = "redeemed";
    changes[2] = reply->element[3]->integer;
    fields[3] = "member_orders";
    changes[3] = 1;
    fields[4] = "member_value";
    changes[4] = a != NULL ? atoll(a->text) : 0;
    fields[5] = n == 2 ? "repeat_customers" : "customers";
    changes[5] = (n == 1 || n == 2);

    if (worker_stats_add(w, 6, fields, changes) != 0) {
        return -1;
    }

    return worker_board_add(w, customer->text, customer->len,
                            reply->element[1]->integer);
}


/* A coupon's use: its code is in its key, loyalty:{coupon:CODE}. */

static int
spool_count_coupon(worker_t *w, const loyalty_json_t *args)
{
    char                   field[LOYALTY_KEY_MAX];
    long long              one;
    const char            *fields[1], *start, *end;
    const loyalty_json_t  *key;

    key = args->child->next;

    if (key == NULL
        || (start = strstr(key->text, "{coupon:")) == NULL
        || (end = strchr(start, '}')) == NULL)
    {
        return 0;
    }

    start += sizeof("{coupon:") - 1;
    snprintf(field, sizeof(field), "coupon:%.*s", (int) (end - start), start);
    fields[0] = field;
    one = 1;

    return worker_stats_add(w, 1, fields, &one);
}


static void
spool_reject(const char *dir, const char *line, size_t len, const char *why)
{
    FILE  *f;
    char   path[512];

    snprintf(path, sizeof(path), "%s/rejected.log", dir);

    f = fopen(path, "a");
    if (f == NULL) {
        worker_log(WORKER_LOG_ERROR, "a spooled line (%s) could not be set "
                   "aside: %.*s", why, (int) len, line);
        return;
    }

    fprintf(f, "%.*s\n", (int) (len && line[len - 1] == '\n' ? len - 1 : len),
            line);
    fclose(f);

    worker_log(WORKER_LOG_ERROR, "a spooled line is %s; set aside in %s",
               why, path);
}
