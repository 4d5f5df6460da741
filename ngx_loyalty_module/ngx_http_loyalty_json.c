/*
 * The answers the module writes itself.  Every one is application/json
 * (but /metrics' text), success or error; errors are {"error": "<code>",
 * "message": "..."} with a code that never changes once documented.  Also
 * here: the 405 every location shares, and the start and the wait of the
 * GET endpoints that ask Redis (health, /metrics).
 */

#include "ngx_http_loyalty_module.h"


#define NGX_HTTP_LOYALTY_MESSAGE_LEN  512


ngx_int_t
ngx_http_loyalty_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len)
{
    static ngx_str_t  type = ngx_string("application/json");

    return ngx_http_loyalty_send_body(r, status, &type, type.len, body, len);
}


/*
 * A whole answer from one buffer of the request's pool; type_len is the
 * part of the type before its parameters (nginx's charset filter reads it).
 */

ngx_int_t
ngx_http_loyalty_send_body(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, size_t type_len, u_char *body, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type_len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || len == 0) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The start of a GET endpoint that asks Redis (health, /metrics): other
 * methods refused, the body discarded, its context allocated with a
 * cleanup that runs if the request ends before Redis answers.  NULL with
 * *rc the handler's return when the request ends here.
 */

void *
ngx_http_loyalty_get_start(ngx_http_request_t *r, size_t size,
    ngx_pool_cleanup_pt cleanup, ngx_int_t *rc)
{
    void                *ctx;
    ngx_pool_cleanup_t  *cln;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        *rc = ngx_http_loyalty_send_not_allowed(r, NGX_HTTP_GET|NGX_HTTP_HEAD);
        return NULL;
    }

    *rc = ngx_http_discard_request_body(r);
    if (*rc != NGX_OK) {
        return NULL;
    }

    *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    ctx = ngx_pcalloc(r->pool, size);
    if (ctx == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = cleanup;
    cln->data = ctx;

    return ctx;
}


/*
 * 405 for a method the location does not serve: the methods it does in
 * `Allow` (RFC 9110 asks for it) and in the message, the body discarded.
 */

ngx_int_t
ngx_http_loyalty_send_not_allowed(ngx_http_request_t *r, ngx_uint_t methods)
{
    u_char           *p;
    ngx_uint_t        i;
    ngx_table_elt_t  *h;

    static struct {
        ngx_uint_t    method;
        ngx_str_t     name;
    } names[] = {
        { NGX_HTTP_GET, ngx_string("GET, ") },
        { NGX_HTTP_HEAD, ngx_string("HEAD, ") },
        { NGX_HTTP_POST, ngx_string("POST, ") },
        { NGX_HTTP_PUT, ngx_string("PUT, ") },
        { NGX_HTTP_PATCH, ngx_string("PATCH, ") },
        { NGX_HTTP_DELETE, ngx_string("DELETE, ") }
    };

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    p = ngx_pnalloc(r->pool, sizeof("GET, HEAD, POST, PUT, PATCH, DELETE, "));

    if (h == NULL || p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = p;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (methods & names[i].method) {
            p = ngx_cpymem(p, names[i].name.data, names[i].name.len);
        }
    }

    h->value.len = (p > h->value.data) ? p - h->value.data - 2 : 0;

    return ngx_http_loyalty_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                       "method_not_allowed",
                                       "%V is not allowed here; use %V",
                                       &r->method_name, &h->value);
}


ngx_int_t
ngx_http_loyalty_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char   *p, *body, msg[NGX_HTTP_LOYALTY_MESSAGE_LEN];
    size_t    len, code_len, msg_len;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    msg_len = p - msg;
    code_len = ngx_strlen(code);

    len = sizeof("{\"error\":,\"message\":}\n") - 1
          + ngx_http_loyalty_json_string_len((u_char *) code, code_len)
          + ngx_http_loyalty_json_string_len(msg, msg_len);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, "{\"error\":", sizeof("{\"error\":") - 1);
    p = ngx_http_loyalty_json_string(p, (u_char *) code, code_len);
    p = ngx_cpymem(p, ",\"message\":", sizeof(",\"message\":") - 1);
    p = ngx_http_loyalty_json_string(p, msg, msg_len);
    *p++ = '}';
    *p++ = '\n';

    return ngx_http_loyalty_send_json(r, status, body, p - body);
}


size_t
ngx_http_loyalty_json_string_len(u_char *src, size_t len)
{
    return len + ngx_escape_json(NULL, src, len) + 2;
}


/* Writes src as a quoted JSON string. */

u_char *
ngx_http_loyalty_json_string(u_char *p, u_char *src, size_t len)
{
    *p++ = '"';
    p = (u_char *) ngx_escape_json(p, src, len);
    *p++ = '"';

    return p;
}


ngx_int_t
ngx_http_loyalty_send_err(ngx_http_request_t *r, ngx_http_loyalty_error_t *err)
{
    return ngx_http_loyalty_send_error(r, err->status, err->code, "%*s",
                                       err->len, err->message);
}


/* The GET endpoint waits for Redis; a client that goes away ends it. */

ngx_int_t
ngx_http_loyalty_get_wait(ngx_http_request_t *r)
{
    if (!r->discard_body) {
        r->read_event_handler = ngx_http_test_reading;
    }

    r->main->count++;

    return NGX_DONE;
}
