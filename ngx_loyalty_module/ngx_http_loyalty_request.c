/*
 * What the checkout and the order confirmation share: the trusted headers,
 * the body, the cart, the customer.  Every failure here is the client's
 * and becomes an error answer; nothing here touches Redis.
 */

#include "ngx_http_loyalty_module.h"
#include "loyalty_json.h"


#define NGX_HTTP_LOYALTY_JSON_MAX_STRING   8192
#define NGX_HTTP_LOYALTY_JSON_MAX_MEMBERS  256


/*
 * Client headers named like the module's are dropped, so that a header the
 * backend sees with that prefix can only have been set by nginx.
 */

void
ngx_http_loyalty_strip_headers(ngx_http_request_t *r, ngx_str_t *prefix)
{
    ngx_uint_t        i, found;
    ngx_list_t        old;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *copy;

    if (prefix->len == 0) {
        return;
    }

    found = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len >= prefix->len
            && ngx_strncasecmp(h[i].key.data, prefix->data, prefix->len) == 0)
        {
            found++;
        }
    }

    if (found == 0) {
        return;
    }

    /*
     * The list is rebuilt in place (its "last" points into itself); the
     * old parts and their elements stay in the pool while they are read.
     */
    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool, 20,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return;
    }

    part = &old.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len >= prefix->len
            && ngx_strncasecmp(h[i].key.data, prefix->data, prefix->len) == 0)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "loyalty: removed client header \"%V\"",
                          &h[i].key);
            continue;
        }

        copy = ngx_list_push(&r->headers_in.headers);
        if (copy == NULL) {
            return;
        }

        *copy = h[i];
    }
}


/* Before reading: JSON only, and not larger than the cart limit. */

ngx_int_t
ngx_http_loyalty_check_body(ngx_http_request_t *r, size_t max,
    ngx_http_loyalty_error_t *err)
{
    u_char           *p, *end;
    ngx_table_elt_t  *ct;

    ct = r->headers_in.content_type;

    if (ct != NULL) {
        p = ct->value.data;
        end = p + ct->value.len;

        /* application/json or application/<something>+json, any params */
        while (p < end && *p != ';' && *p != ' ') {
            p++;
        }

        if ((p - ct->value.data == 16
             && ngx_strncasecmp(ct->value.data, (u_char *) "application/json",
                                16) == 0)
            || (p - ct->value.data > 17
                && ngx_strncasecmp(ct->value.data, (u_char *) "application/",
                                   12) == 0
                && ngx_strncasecmp(p - 5, (u_char *) "+json", 5) == 0))
        {
            ct = NULL;
        }
    }

    if (ct != NULL || r->headers_in.content_type == NULL) {
        ngx_http_loyalty_error(err, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                               "unsupported_media_type",
                               "the body must be application/json");
        return NGX_ERROR;
    }

    if (r->headers_in.content_length_n > (off_t) max) {
        ngx_http_loyalty_error(err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                               "body_too_large",
                               "the body has %O bytes; at most %uz are "
                               "accepted", r->headers_in.content_length_n,
                               max);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The body read by nginx as one contiguous string.  A body that nginx
 * spilled to its temporary file (larger than client_body_buffer_size) is
 * read back from it: it is at most max bytes, just written, and local.
 */

ngx_int_t
ngx_http_loyalty_body(ngx_http_request_t *r, size_t max, ngx_str_t *body,
    ngx_http_loyalty_error_t *err)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    ngx_str_null(body);

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (len > (off_t) max) {
        ngx_http_loyalty_error(err, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                               "body_too_large",
                               "the body has %O bytes; at most %uz are "
                               "accepted", len, max);
        return NGX_ERROR;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && !cl->buf->in_file) {
        body->data = cl->buf->pos;
        body->len = len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        ngx_http_loyalty_error(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                               "internal_error", "out of memory");
        return NGX_ERROR;
    }

    body->data = p;
    body->len = (size_t) len;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            /* the last buffer of a chunked body may be empty, without pos */
            if (b->last != b->pos) {
                p = ngx_cpymem(p, b->pos, b->last - b->pos);
            }

            continue;
        }

        n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                          b->file_pos);

        if (n != b->file_last - b->file_pos) {
            ngx_http_loyalty_error(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "internal_error",
                                   "the body could not be read back");
            return NGX_ERROR;
        }

        p += n;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_loyalty_read_cart(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_str_t *body, loyalty_cart_t *cart,
    ngx_http_loyalty_error_t *err)
{
    loyalty_json_t         *root;
    loyalty_cart_rc_t       rc;
    loyalty_cart_error_t    cerr;
    loyalty_json_error_t    jerr;
    loyalty_json_limits_t   limits;

    limits.alloc = ngx_http_loyalty_palloc;
    limits.ctx = r->pool;
    limits.max_depth = llcf->max_depth;
    limits.max_values = llcf->max_lines * 64 + 10000;
    limits.max_members = NGX_HTTP_LOYALTY_JSON_MAX_MEMBERS;
    limits.max_string = NGX_HTTP_LOYALTY_JSON_MAX_STRING;

    root = loyalty_json_parse((char *) body->data, body->len, &limits, &jerr);

    if (root == NULL) {
        if (jerr.reason == NULL) {
            ngx_http_loyalty_error(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "internal_error", "out of memory");
            return NGX_ERROR;
        }

        if (jerr.limit) {
            ngx_http_loyalty_error(err, NGX_HTTP_BAD_REQUEST,
                                   "json_too_complex",
                                   "the body exceeds a limit of the cart: "
                                   "%s at byte %uz", jerr.reason,
                                   jerr.offset);
            return NGX_ERROR;
        }

        ngx_http_loyalty_error(err, NGX_HTTP_BAD_REQUEST, "invalid_json",
                               "the body is not valid JSON: %s at byte %uz",
                               jerr.reason, jerr.offset);
        return NGX_ERROR;
    }

    rc = loyalty_cart_read(root, &llcf->cart, ngx_http_loyalty_palloc,
                           r->pool, cart, &cerr);

    if (rc == LOYALTY_CART_OK) {
        return NGX_OK;
    }

    if (rc == LOYALTY_CART_NO_MEMORY) {
        ngx_http_loyalty_error(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                               "internal_error", "out of memory");
        return NGX_ERROR;
    }

    ngx_http_loyalty_error(err, NGX_HTTP_BAD_REQUEST, loyalty_cart_code(rc),
                           "%s", cerr.message);

    return NGX_ERROR;
}


/*
 * The customer, from the variable ops chose (set by the auth layer, never
 * taken from the body).  Empty means a guest.
 */

ngx_int_t
ngx_http_loyalty_customer(ngx_http_request_t *r,
    ngx_http_loyalty_loc_conf_t *llcf, ngx_str_t *customer,
    ngx_http_loyalty_error_t *err)
{
    size_t             bad;
    loyalty_code_rc_t  rc;

    if (ngx_http_complex_value(r, llcf->customer, customer) != NGX_OK) {
        ngx_http_loyalty_error(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                               "internal_error", "out of memory");
        return NGX_ERROR;
    }

    if (customer->len == 0) {
        return NGX_OK;
    }

    rc = loyalty_id_check((char *) customer->data, customer->len,
                          LOYALTY_ID_MAX, &bad);

    if (rc != LOYALTY_CODE_OK) {
        ngx_http_loyalty_error(err, NGX_HTTP_BAD_REQUEST, "invalid_customer",
                               "the customer id %s: at most %d bytes of "
                               "printable ASCII without spaces, '{' or '}'",
                               loyalty_code_strerror(rc), LOYALTY_ID_MAX);
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_loyalty_error(ngx_http_loyalty_error_t *err, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    err->status = status;
    err->code = code;

    va_start(args, fmt);
    p = ngx_vslprintf(err->message, err->message + sizeof(err->message), fmt,
                      args);
    va_end(args);

    err->len = p - err->message;
}


void *
ngx_http_loyalty_palloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


ngx_str_t *
ngx_http_loyalty_money(ngx_pool_t *pool, int64_t minor, unsigned decimals)
{
    ngx_str_t  *s;

    s = ngx_palloc(pool, sizeof(ngx_str_t) + LOYALTY_MONEY_TEXT_MAX);
    if (s == NULL) {
        return NULL;
    }

    s->data = (u_char *) (s + 1);
    s->len = loyalty_money_format(minor, decimals, (char *) s->data);

    return s;
}
