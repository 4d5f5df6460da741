/*
 * The spool: what Redis did not take of a confirmed order, kept on local
 * disk until loyalty-worker replays it.  One JSON line per order, appended
 * with a single write() to a file of this worker process
 * (orders.<pid>.log), so that lines of several processes never mix.  The
 * replayer renames a file before reading it and takes an exclusive lock,
 * so a writer that opened the old name either finishes first (under its
 * shared lock) or notices the rename and writes to a new file.
 *
 *   {"v":1,"at":1795737600,"order":"o-1","customer":"42","calls":[
 *     {"script":"order_record","argv":["3","loyalty:{customer:42}",...]},
 *     {"command":["SADD","loyalty:{due:3}:498816","42 o-1"]}]}
 *
 * Every call is idempotent: a line replayed twice changes nothing more.
 */

#include <sys/file.h>

#include "ngx_http_loyalty_confirm.h"
#include "ngx_http_loyalty_metrics.h"
#include "loyalty_script.h"


static u_char *ngx_http_loyalty_spool_line(ngx_http_loyalty_job_t *job,
    size_t *len);
static ngx_int_t ngx_http_loyalty_spool_append(ngx_str_t *dir, u_char *line,
    size_t len, ngx_flag_t fsync, ngx_log_t *log);


void
ngx_http_loyalty_spool_write(ngx_http_loyalty_job_t *job, ngx_log_t *log)
{
    u_char                        *line;
    size_t                         len;
    ngx_http_loyalty_main_conf_t  *lmcf;

    lmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_loyalty_module);

    line = ngx_http_loyalty_spool_line(job, &len);
    if (line == NULL) {
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_SPOOL_FAILED, 1);
        ngx_log_error(NGX_LOG_CRIT, log, 0,
                      "loyalty: order \"%V\" of customer \"%V\" could not "
                      "be spooled: out of memory", &job->order,
                      &job->customer);
        return;
    }

    if (ngx_http_loyalty_spool_append(&lmcf->spool, line, len,
                                      lmcf->spool_fsync, log)
        == NGX_OK)
    {
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_SPOOL_WRITES, 1);
        ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_SPOOL_BYTES,
                                     (ngx_atomic_int_t) len);
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "loyalty: order \"%V\" of customer \"%V\" spooled "
                      "for replay", &job->order, &job->customer);
        return;
    }

    ngx_http_loyalty_metrics_add(NGX_HTTP_LOYALTY_M_SPOOL_FAILED, 1);

    /* the last copy: the line itself, for a replay by hand */
    ngx_log_error(NGX_LOG_CRIT, log, 0,
                  "loyalty: order \"%V\" of customer \"%V\" could not be "
                  "spooled; replay this line by hand: %*s", &job->order,
                  &job->customer, len - 1, line);
}


static u_char *
ngx_http_loyalty_spool_line(ngx_http_loyalty_job_t *job, size_t *len)
{
    int                           a;
    u_char                       *line, *p;
    size_t                        size;
    ngx_uint_t                    i;
    ngx_http_loyalty_job_call_t  *call;

    size = sizeof("{\"v\":1,\"at\":,\"order\":\"\",\"customer\":\"\","
                  "\"calls\":[]}\n")
           + NGX_TIME_T_LEN + 2 * job->order.len + 2 * job->customer.len;

    for (i = 0; i < job->ncalls; i++) {
        call = &job->calls[i];

        if (!call->failed) {
            continue;
        }

        size += sizeof("{\"script\":\"\",\"argv\":[]},") + 32;

        /* a script's EVALSHA and hash are not kept (nor maybe set yet) */
        for (a = (call->script >= 0) ? 2 : 0; a < call->argc; a++) {
            size += 6 * call->argvlen[a] + 3;
        }
    }

    line = ngx_pnalloc(job->pool, size);
    if (line == NULL) {
        return NULL;
    }

    p = ngx_sprintf(line, "{\"v\":1,\"at\":%T,\"order\":", ngx_time());
    p = ngx_http_loyalty_json_string(p, job->order.data, job->order.len);
    p = ngx_cpymem(p, ",\"customer\":", sizeof(",\"customer\":") - 1);
    p = ngx_http_loyalty_json_string(p, job->customer.data,
                                     job->customer.len);
    p = ngx_cpymem(p, ",\"calls\":[", sizeof(",\"calls\":[") - 1);

    for (i = 0; i < job->ncalls; i++) {
        call = &job->calls[i];

        if (!call->failed) {
            continue;
        }

        if (p[-1] == '}') {
            *p++ = ',';
        }

        /* a script is named, its EVALSHA and hash are not kept */
        if (call->script >= 0) {
            p = ngx_sprintf(p, "{\"script\":\"%s\",\"argv\":[",
                            loyalty_scripts[call->script].name);
            a = 2;

        } else {
            p = ngx_cpymem(p, "{\"command\":[", sizeof("{\"command\":[") - 1);
            a = 0;
        }

        for ( /* void */ ; a < call->argc; a++) {
            p = ngx_http_loyalty_json_string(p, (u_char *) call->argv[a],
                                             call->argvlen[a]);
            *p++ = ',';
        }

        p[-1] = ']';
        *p++ = '}';
    }

    p = ngx_cpymem(p, "]}\n", 3);
    *len = p - line;

    return line;
}


static ngx_int_t
ngx_http_loyalty_spool_append(ngx_str_t *dir, u_char *line, size_t len,
    ngx_flag_t sync, ngx_log_t *log)
{
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_uint_t       tries;
    ngx_file_info_t  opened, named;
    u_char           path[NGX_MAX_PATH];

    if (dir->len == 0) {
        return NGX_ERROR;
    }

    ngx_snprintf(path, sizeof(path) - 1, "%V/orders.%P.log%Z", dir, ngx_pid);

    for (tries = 0; tries < 3; tries++) {

        fd = ngx_open_file(path, NGX_FILE_APPEND, NGX_FILE_CREATE_OR_OPEN,
                           0640);
        if (fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                          ngx_open_file_n " \"%s\" failed", path);
            return NGX_ERROR;
        }

        /* a replayer renamed the file between open and lock: reopen */
        if (flock(fd, LOCK_SH) == -1
            || ngx_fd_info(fd, &opened) == NGX_FILE_ERROR
            || ngx_file_info(path, &named) == NGX_FILE_ERROR
            || opened.st_ino != named.st_ino)
        {
            (void) ngx_close_file(fd);
            continue;
        }

        n = ngx_write_fd(fd, line, len);

        if (n != (ssize_t) len) {
            ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                          "write() to \"%s\" failed (%z of %uz bytes)",
                          path, n, len);

            /* no half line that the next one would run into (the file is
             * this process's only) */
            if (n > 0 && ftruncate(fd, opened.st_size) == -1) {
                ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                              "ftruncate() of \"%s\" failed: its last "
                              "line is cut short", path);
            }

            (void) ngx_close_file(fd);
            return NGX_ERROR;
        }

        if (sync && fsync(fd) == -1) {
            ngx_log_error(NGX_LOG_CRIT, log, ngx_errno,
                          "fsync() of \"%s\" failed", path);
            (void) ngx_close_file(fd);
            return NGX_ERROR;
        }

        (void) ngx_close_file(fd);

        return NGX_OK;
    }

    return NGX_ERROR;
}
