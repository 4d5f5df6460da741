#include <string.h>

#include "loyalty_json.h"


typedef struct {
    const char                   *start;
    const char                   *p;
    const char                   *end;
    const loyalty_json_limits_t  *limits;
    loyalty_json_error_t         *err;
    size_t                        values;
} loyalty_json_parser_t;


static loyalty_json_t *loyalty_json_value(loyalty_json_parser_t *ps,
    unsigned depth);
static int loyalty_json_object(loyalty_json_parser_t *ps, loyalty_json_t *v,
    unsigned depth);
static int loyalty_json_array(loyalty_json_parser_t *ps, loyalty_json_t *v,
    unsigned depth);
static int loyalty_json_string(loyalty_json_parser_t *ps, const char **out,
    size_t *out_len);
static int loyalty_json_number(loyalty_json_parser_t *ps, loyalty_json_t *v);
static int loyalty_json_literal(loyalty_json_parser_t *ps, const char *word,
    size_t len);
static int loyalty_json_hex4(const char *p, unsigned *out);
static size_t loyalty_utf8_valid(const unsigned char *p,
    const unsigned char *end);
static void loyalty_json_skip_space(loyalty_json_parser_t *ps);
static int loyalty_json_fail(loyalty_json_parser_t *ps, const char *p,
    const char *reason);
static int loyalty_json_limit(loyalty_json_parser_t *ps, const char *p,
    const char *reason);
static void *loyalty_json_alloc(loyalty_json_parser_t *ps, size_t size);


loyalty_json_t *
loyalty_json_parse(const char *text, size_t len,
    const loyalty_json_limits_t *limits, loyalty_json_error_t *err)
{
    loyalty_json_t         *root;
    loyalty_json_parser_t   ps;

    ps.start = text;
    ps.p = text;
    ps.end = text + len;
    ps.limits = limits;
    ps.err = err;
    ps.values = 0;

    err->offset = 0;
    err->reason = NULL;
    err->limit = 0;

    loyalty_json_skip_space(&ps);

    root = loyalty_json_value(&ps, 0);
    if (root == NULL) {
        return NULL;
    }

    loyalty_json_skip_space(&ps);

    if (ps.p != ps.end) {
        loyalty_json_fail(&ps, ps.p, "unexpected data after the document");
        return NULL;
    }

    return root;
}


static loyalty_json_t *
loyalty_json_value(loyalty_json_parser_t *ps, unsigned depth)
{
    int              rc;
    loyalty_json_t  *v;

    if (ps->p == ps->end) {
        loyalty_json_fail(ps, ps->p, "unexpected end of data");
        return NULL;
    }

    if (++ps->values > ps->limits->max_values) {
        loyalty_json_limit(ps, ps->p, "too many values");
        return NULL;
    }

    v = loyalty_json_alloc(ps, sizeof(loyalty_json_t));
    if (v == NULL) {
        return NULL;
    }

    memset(v, 0, sizeof(loyalty_json_t));

    switch (*ps->p) {

    case '{':
        v->type = LOYALTY_JSON_OBJECT;
        rc = loyalty_json_object(ps, v, depth + 1);
        break;

    case '[':
        v->type = LOYALTY_JSON_ARRAY;
        rc = loyalty_json_array(ps, v, depth + 1);
        break;

    case '"':
        v->type = LOYALTY_JSON_STRING;
        rc = loyalty_json_string(ps, &v->text, &v->len);
        break;

    case 't':
        v->type = LOYALTY_JSON_TRUE;
        rc = loyalty_json_literal(ps, "true", 4);
        break;

    case 'f':
        v->type = LOYALTY_JSON_FALSE;
        rc = loyalty_json_literal(ps, "false", 5);
        break;

    case 'n':
        v->type = LOYALTY_JSON_NULL;
        rc = loyalty_json_literal(ps, "null", 4);
        break;

    default:
        v->type = LOYALTY_JSON_NUMBER;
        rc = loyalty_json_number(ps, v);
        break;
    }

    return rc == 0 ? v : NULL;
}


static int
loyalty_json_object(loyalty_json_parser_t *ps, loyalty_json_t *v,
    unsigned depth)
{
    size_t           key_len;
    const char      *key, *at;
    loyalty_json_t  *member, *m, **last;

    if (depth > ps->limits->max_depth) {
        return loyalty_json_limit(ps, ps->p, "nested too deeply");
    }

    ps->p++;
    last = &v->child;

    loyalty_json_skip_space(ps);

    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return 0;
    }

    for ( ;; ) {
        loyalty_json_skip_space(ps);

        at = ps->p;

        if (ps->p == ps->end || *ps->p != '"') {
            return loyalty_json_fail(ps, ps->p, "expected a member name");
        }

        if (loyalty_json_string(ps, &key, &key_len) != 0) {
            return -1;
        }

        /* two readers of one body must never see different values */
        for (m = v->child; m != NULL; m = m->next) {
            if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) {
                return loyalty_json_fail(ps, at, "duplicate member name");
            }
        }

        if (++v->count > ps->limits->max_members) {
            return loyalty_json_limit(ps, at, "too many members in an object");
        }

        loyalty_json_skip_space(ps);

        if (ps->p == ps->end || *ps->p != ':') {
            return loyalty_json_fail(ps, ps->p, "expected ':'");
        }

        ps->p++;
        loyalty_json_skip_space(ps);

        member = loyalty_json_value(ps, depth);
        if (member == NULL) {
            return -1;
        }

        member->key = key;
        member->key_len = key_len;
        *last = member;
        last = &member->next;

        loyalty_json_skip_space(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }

        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return 0;
        }

        return loyalty_json_fail(ps, ps->p, "expected ',' or '}'");
    }
}


static int
loyalty_json_array(loyalty_json_parser_t *ps, loyalty_json_t *v,
    unsigned depth)
{
    loyalty_json_t  *element, **last;

    if (depth > ps->limits->max_depth) {
        return loyalty_json_limit(ps, ps->p, "nested too deeply");
    }

    ps->p++;
    last = &v->child;

    loyalty_json_skip_space(ps);

    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return 0;
    }

    for ( ;; ) {
        loyalty_json_skip_space(ps);

        element = loyalty_json_value(ps, depth);
        if (element == NULL) {
            return -1;
        }

        v->count++;
        *last = element;
        last = &element->next;

        loyalty_json_skip_space(ps);

        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }

        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return 0;
        }

        return loyalty_json_fail(ps, ps->p, "expected ',' or ']'");
    }
}


/*
 * Decodes a string into fresh memory.  The decoded form is never longer
 * than the encoded one, so one allocation of the encoded length suffices.
 */

static int
loyalty_json_string(loyalty_json_parser_t *ps, const char **out,
    size_t *out_len)
{
    char                 *buf, *d;
    size_t                n;
    unsigned              cp, lo, plain;
    const char           *p, *start;
    const unsigned char  *u;

    start = ps->p + 1;
    plain = 1;

    /* find the closing quote first, to size the buffer; a string of
     * printable ASCII without escapes, the usual one, is then copied */
    for (p = start; p < ps->end && *p != '"'; p++) {
        u = (const unsigned char *) p;

        if (*u < 0x20 || *u >= 0x80 || *u == '\\') {
            plain = 0;

            if (*u == '\\') {
                p++;
            }
        }
    }

    if (p >= ps->end) {
        return loyalty_json_fail(ps, ps->end, "unterminated string");
    }

    buf = loyalty_json_alloc(ps, (size_t) (p - start) + 1);
    if (buf == NULL) {
        return -1;
    }

    if (plain) {
        d = buf + (p - start);
        memcpy(buf, start, (size_t) (p - start));
        goto done;
    }

    d = buf;
    p = start;

    while (*p != '"') {
        u = (const unsigned char *) p;

        if (*u < 0x20) {
            return loyalty_json_fail(ps, p, "control character in a string");
        }

        if (*u >= 0x80) {
            n = loyalty_utf8_valid(u, (const unsigned char *) ps->end);
            if (n == 0) {
                return loyalty_json_fail(ps, p, "invalid UTF-8");
            }

            memcpy(d, p, n);
            d += n;
            p += n;
            continue;
        }

        if (*p != '\\') {
            *d++ = *p++;
            continue;
        }

        switch (p[1]) {
        case '"':  *d++ = '"';  p += 2; continue;
        case '\\': *d++ = '\\'; p += 2; continue;
        case '/':  *d++ = '/';  p += 2; continue;
        case 'b':  *d++ = '\b'; p += 2; continue;
        case 'f':  *d++ = '\f'; p += 2; continue;
        case 'n':  *d++ = '\n'; p += 2; continue;
        case 'r':  *d++ = '\r'; p += 2; continue;
        case 't':  *d++ = '\t'; p += 2; continue;
        case 'u':  break;
        default:
            return loyalty_json_fail(ps, p, "invalid escape");
        }

        if (ps->end - p < 6 || loyalty_json_hex4(p + 2, &cp) != 0) {
            return loyalty_json_fail(ps, p, "invalid \\u escape");
        }

        p += 6;

        if (cp >= 0xdc00 && cp <= 0xdfff) {
            return loyalty_json_fail(ps, p - 6, "unpaired surrogate");
        }

        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u'
                || loyalty_json_hex4(p + 2, &lo) != 0
                || lo < 0xdc00 || lo > 0xdfff)
            {
                return loyalty_json_fail(ps, p - 6, "unpaired surrogate");
            }

            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;
        }

        if (cp == 0) {
            return loyalty_json_fail(ps, p - 6, "NUL character in a string");
        }

        if (cp < 0x80) {
            *d++ = (char) cp;

        } else if (cp < 0x800) {
            *d++ = (char) (0xc0 | (cp >> 6));
            *d++ = (char) (0x80 | (cp & 0x3f));

        } else if (cp < 0x10000) {
            *d++ = (char) (0xe0 | (cp >> 12));
            *d++ = (char) (0x80 | ((cp >> 6) & 0x3f));
            *d++ = (char) (0x80 | (cp & 0x3f));

        } else {
            *d++ = (char) (0xf0 | (cp >> 18));
            *d++ = (char) (0x80 | ((cp >> 12) & 0x3f));
            *d++ = (char) (0x80 | ((cp >> 6) & 0x3f));
            *d++ = (char) (0x80 | (cp & 0x3f));
        }
    }

done:

    if ((size_t) (d - buf) > ps->limits->max_string) {
        return loyalty_json_limit(ps, start - 1, "string too long");
    }

    *d = '\0';
    *out = buf;
    *out_len = (size_t) (d - buf);

    ps->p = p + 1;

    return 0;
}


/* The JSON number grammar; the text is kept as it was written. */

static int
loyalty_json_number(loyalty_json_parser_t *ps, loyalty_json_t *v)
{
    char        *text;
    const char  *p, *digits;

    p = ps->p;

    if (p < ps->end && *p == '-') {
        p++;
    }

    digits = p;

    if (p < ps->end && *p == '0') {
        p++;

    } else {
        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p == digits) {
        return loyalty_json_fail(ps, ps->p, "unexpected character");
    }

    if (p < ps->end && *p == '.') {
        digits = ++p;

        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == digits) {
            return loyalty_json_fail(ps, p, "invalid number");
        }
    }

    if (p < ps->end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < ps->end && (*p == '+' || *p == '-')) {
            p++;
        }

        digits = p;

        while (p < ps->end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == digits) {
            return loyalty_json_fail(ps, p, "invalid number");
        }
    }

    v->len = (size_t) (p - ps->p);

    if (v->len > ps->limits->max_string) {
        return loyalty_json_limit(ps, ps->p, "number too long");
    }

    text = loyalty_json_alloc(ps, v->len + 1);
    if (text == NULL) {
        return -1;
    }

    memcpy(text, ps->p, v->len);
    text[v->len] = '\0';
    v->text = text;

    ps->p = p;

    return 0;
}


static int
loyalty_json_literal(loyalty_json_parser_t *ps, const char *word, size_t len)
{
    if ((size_t) (ps->end - ps->p) < len || memcmp(ps->p, word, len) != 0) {
        return loyalty_json_fail(ps, ps->p, "unexpected character");
    }

    ps->p += len;

    return 0;
}


static int
loyalty_json_hex4(const char *p, unsigned *out)
{
    int       i;
    unsigned  v;

    v = 0;

    for (i = 0; i < 4; i++) {
        v <<= 4;

        if (p[i] >= '0' && p[i] <= '9') {
            v |= (unsigned) (p[i] - '0');

        } else if (p[i] >= 'a' && p[i] <= 'f') {
            v |= (unsigned) (p[i] - 'a' + 10);

        } else if (p[i] >= 'A' && p[i] <= 'F') {
            v |= (unsigned) (p[i] - 'A' + 10);

        } else {
            return -1;
        }
    }

    *out = v;

    return 0;
}


/*
 * The length of the UTF-8 sequence at p, or 0 when it is not valid
 * (truncated, overlong, a surrogate, beyond U+10FFFF).
 */

static size_t
loyalty_utf8_valid(const unsigned char *p, const unsigned char *end)
{
    size_t    n, i;
    unsigned  cp, min;

    if (*p >= 0xc2 && *p <= 0xdf) {
        n = 2;
        cp = *p & 0x1f;
        min = 0x80;

    } else if (*p >= 0xe0 && *p <= 0xef) {
        n = 3;
        cp = *p & 0x0f;
        min = 0x800;

    } else if (*p >= 0xf0 && *p <= 0xf4) {
        n = 4;
        cp = *p & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if ((size_t) (end - p) < n) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    return n;
}


static void
loyalty_json_skip_space(loyalty_json_parser_t *ps)
{
    while (ps->p < ps->end
           && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n'
               || *ps->p == '\r'))
    {
        ps->p++;
    }
}


static int
loyalty_json_fail(loyalty_json_parser_t *ps, const char *p,
    const char *reason)
{
    ps->err->offset = (size_t) (p - ps->start);
    ps->err->reason = reason;

    return -1;
}


static int
loyalty_json_limit(loyalty_json_parser_t *ps, const char *p,
    const char *reason)
{
    ps->err->limit = 1;

    return loyalty_json_fail(ps, p, reason);
}


static void *
loyalty_json_alloc(loyalty_json_parser_t *ps, size_t size)
{
    void  *m;

    m = ps->limits->alloc(ps->limits->ctx, size);
    if (m == NULL) {
        ps->err->offset = (size_t) (ps->p - ps->start);
        ps->err->reason = NULL;
    }

    return m;
}


const loyalty_json_t *
loyalty_json_get(const loyalty_json_t *object, const char *key,
    size_t key_len)
{
    const loyalty_json_t  *m;

    if (object == NULL || object->type != LOYALTY_JSON_OBJECT) {
        return NULL;
    }

    for (m = object->child; m != NULL; m = m->next) {
        if (m->key_len == key_len && memcmp(m->key, key, key_len) == 0) {
            return m;
        }
    }

    return NULL;
}


/*
 * Walks the tree token by token.  A token without "~" (the usual one) is
 * looked up where it lies in the pointer; only one with escapes is copied
 * out, unescaped.
 */

const loyalty_json_t *
loyalty_json_pointer(const loyalty_json_t *root, const char *pointer,
    size_t len)
{
    char                   token[256];
    size_t                 n, i, index;
    const char            *p, *end, *t, *next;
    const loyalty_json_t  *v;

    if (len > 255 || (len > 0 && pointer[0] != '/')) {
        return NULL;
    }

    v = root;
    p = pointer;
    end = pointer + len;

    while (v != NULL && p < end) {
        p++;                                    /* the '/' */

        next = memchr(p, '/', (size_t) (end - p));
        if (next == NULL) {
            next = end;
        }

        t = p;
        n = (size_t) (next - p);

        if (memchr(p, '~', n) != NULL) {
            /* ~1 is '/', ~0 is '~', nothing else may follow a '~' */
            for (n = 0; p < next; p++) {
                if (*p == '~') {
                    if (p + 1 == next || (p[1] != '0' && p[1] != '1')) {
                        return NULL;
                    }

                    token[n++] = (*++p == '1') ? '/' : '~';
                    continue;
                }

                token[n++] = *p;
            }

            t = token;
        }

        p = next;

        if (v->type == LOYALTY_JSON_OBJECT) {
            v = loyalty_json_get(v, t, n);
            continue;
        }

        if (v->type != LOYALTY_JSON_ARRAY || n == 0
            || (n > 1 && t[0] == '0') || n > 9)
        {
            return NULL;
        }

        index = 0;

        for (i = 0; i < n; i++) {
            if (t[i] < '0' || t[i] > '9') {
                return NULL;
            }

            index = index * 10 + (size_t) (t[i] - '0');
        }

        for (v = v->child; v != NULL && index > 0; index--) {
            v = v->next;
        }
    }

    return v;
}


int
loyalty_json_pointer_check(const char *pointer, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    if (pointer[0] != '/' || len > 255) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (pointer[i] == '~'
            && (i + 1 == len || (pointer[i + 1] != '0'
                                 && pointer[i + 1] != '1')))
        {
            return -1;
        }
    }

    return 0;
}


const char *
loyalty_json_type_name(loyalty_json_type_t type)
{
    static const char  *names[] = {
        "null", "false", "true", "a number", "a string", "an array",
        "an object"
    };

    return names[type];
}
