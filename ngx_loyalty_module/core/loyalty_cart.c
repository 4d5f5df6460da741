#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "loyalty_cart.h"


typedef struct {
    const loyalty_cart_spec_t  *spec;
    loyalty_cart_error_t       *err;
    size_t                      line;       /* index of the current line */
    int64_t                     max_minor;
} loyalty_cart_reader_t;


static const loyalty_json_t *loyalty_cart_get(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field);
static loyalty_cart_rc_t loyalty_cart_id(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field, loyalty_str_t *out);
static loyalty_cart_rc_t loyalty_cart_text(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field, loyalty_str_t *out);
static loyalty_cart_rc_t loyalty_cart_norm_code(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field, loyalty_alloc_pt alloc,
    void *ctx, loyalty_str_t *out);
static loyalty_cart_rc_t loyalty_cart_money(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field, unsigned decimals,
    int64_t *out);
static loyalty_cart_rc_t loyalty_cart_count(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field, int64_t min,
    int64_t max, int64_t *out);
static loyalty_cart_rc_t loyalty_cart_currency(loyalty_cart_reader_t *rd,
    const loyalty_json_t *root, loyalty_cart_t *cart);
static loyalty_cart_rc_t loyalty_cart_lines(loyalty_cart_reader_t *rd,
    const loyalty_json_t *root, loyalty_alloc_pt alloc, void *ctx,
    loyalty_cart_t *cart);
static loyalty_cart_rc_t loyalty_cart_fail(loyalty_cart_reader_t *rd,
    loyalty_cart_rc_t rc, loyalty_field_t field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


static const char  *loyalty_field_names[LOYALTY_FIELD_N] = {
    "customer", "checkout_id", "order_id", "currency", "lines", "shipping",
    "tax", "coupon", "points", "referral", "discount", "line.sku",
    "line.brand", "line.category", "line.price", "line.quantity"
};

static const char  *loyalty_field_defaults[LOYALTY_FIELD_N] = {
    "/customer", "/checkout_id", "/order_id", "/currency", "/lines",
    "/shipping", "/tax", "/coupon", "/points", "/referral", "/discount_total",
    "/sku", "/brand", "/category", "/price", "/quantity"
};


void
loyalty_cart_spec_init(loyalty_cart_spec_t *spec)
{
    memset(spec, 0, sizeof(loyalty_cart_spec_t));
    memcpy(spec->pointer, loyalty_field_defaults, sizeof(spec->pointer));

    spec->required = LOYALTY_FIELD_BIT(LOYALTY_FIELD_LINES)
                     | LOYALTY_FIELD_BIT(LOYALTY_FIELD_LINE_SKU)
                     | LOYALTY_FIELD_BIT(LOYALTY_FIELD_LINE_PRICE)
                     | LOYALTY_FIELD_BIT(LOYALTY_FIELD_LINE_QUANTITY);
    spec->round = LOYALTY_ROUND_HALF_UP;
    spec->max_lines = 200;
    spec->max_units = 1000000;
    spec->max_quantity = 10000;
    spec->max_points = 1000000000;
}


int
loyalty_field_by_name(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < LOYALTY_FIELD_N; i++) {
        if (strlen(loyalty_field_names[i]) == len
            && memcmp(loyalty_field_names[i], name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


const char *
loyalty_field_name(loyalty_field_t field)
{
    return loyalty_field_names[field];
}


const char *
loyalty_cart_code(loyalty_cart_rc_t rc)
{
    switch (rc) {
    case LOYALTY_CART_OK:
        return "ok";
    case LOYALTY_CART_MISSING:
        return "missing_field";
    case LOYALTY_CART_INVALID:
        return "invalid_field";
    case LOYALTY_CART_TOO_MANY_LINES:
        return "too_many_lines";
    case LOYALTY_CART_NO_MEMORY:
        break;
    }

    return "internal_error";
}


loyalty_cart_rc_t
loyalty_cart_read(const loyalty_json_t *root, const loyalty_cart_spec_t *spec,
    loyalty_alloc_pt alloc, void *ctx, loyalty_cart_t *cart,
    loyalty_cart_error_t *err)
{
    unsigned               i;
    loyalty_cart_rc_t      rc;
    loyalty_cart_reader_t  rd;

    memset(cart, 0, sizeof(loyalty_cart_t));
    memset(err, 0, sizeof(loyalty_cart_error_t));

    rd.spec = spec;
    rd.err = err;
    rd.line = 0;

    if (root->type != LOYALTY_JSON_OBJECT) {
        snprintf(err->field, sizeof(err->field), "/");
        snprintf(err->message, sizeof(err->message),
                 "the cart must be a JSON object, not %s",
                 loyalty_json_type_name(root->type));
        return LOYALTY_CART_INVALID;
    }

    if ((rc = loyalty_cart_id(&rd, root, LOYALTY_FIELD_CUSTOMER,
                              &cart->customer))
        || (rc = loyalty_cart_id(&rd, root, LOYALTY_FIELD_CHECKOUT_ID,
                                 &cart->checkout_id))
        || (rc = loyalty_cart_id(&rd, root, LOYALTY_FIELD_ORDER_ID,
                                 &cart->order_id))
        || (rc = loyalty_cart_currency(&rd, root, cart)))
    {
        return rc;
    }

    /* the largest amount accepted, in this currency's minor units */
    rd.max_minor = spec->max_units;

    for (i = 0; i < cart->decimals; i++) {
        rd.max_minor *= 10;
    }

    if (rd.max_minor > LOYALTY_MONEY_LIMIT) {
        rd.max_minor = LOYALTY_MONEY_LIMIT;
    }

    if ((rc = loyalty_cart_lines(&rd, root, alloc, ctx, cart))
        || (rc = loyalty_cart_money(&rd, root, LOYALTY_FIELD_SHIPPING,
                                    cart->decimals, &cart->shipping))
        || (rc = loyalty_cart_money(&rd, root, LOYALTY_FIELD_TAX,
                                    cart->decimals, &cart->tax))
        || (rc = loyalty_cart_money(&rd, root, LOYALTY_FIELD_DISCOUNT,
                                    cart->decimals, &cart->discount))
        || (rc = loyalty_cart_count(&rd, root, LOYALTY_FIELD_POINTS, 0,
                                    spec->max_points, &cart->points))
        || (rc = loyalty_cart_norm_code(&rd, root, LOYALTY_FIELD_COUPON,
                                        alloc, ctx, &cart->coupon))
        || (rc = loyalty_cart_norm_code(&rd, root, LOYALTY_FIELD_REFERRAL,
                                        alloc, ctx, &cart->referral)))
    {
        return rc;
    }

    return LOYALTY_CART_OK;
}


static loyalty_cart_rc_t
loyalty_cart_currency(loyalty_cart_reader_t *rd, const loyalty_json_t *root,
    loyalty_cart_t *cart)
{
    int                    decimals;
    const char            *code;
    size_t                 len;
    const loyalty_json_t  *v;

    v = loyalty_cart_get(rd, root, LOYALTY_FIELD_CURRENCY);

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        code = rd->spec->currency;

        if (code == NULL) {
            return loyalty_cart_fail(rd, LOYALTY_CART_MISSING,
                                     LOYALTY_FIELD_CURRENCY,
                                     "is required (or set loyalty_currency)");
        }

        len = strlen(code);

    } else if (v->type != LOYALTY_JSON_STRING) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID,
                                 LOYALTY_FIELD_CURRENCY,
                                 "must be a string, not %s",
                                 loyalty_json_type_name(v->type));

    } else {
        code = v->text;
        len = v->len;
    }

    decimals = loyalty_currency_decimals(code, len);

    if (decimals < 0) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID,
                                 LOYALTY_FIELD_CURRENCY,
                                 "must be an ISO 4217 code such as \"EUR\"");
    }

    memcpy(cart->currency, code, 3);
    cart->currency[3] = '\0';
    cart->decimals = (unsigned) decimals;

    return LOYALTY_CART_OK;
}


static loyalty_cart_rc_t
loyalty_cart_lines(loyalty_cart_reader_t *rd, const loyalty_json_t *root,
    loyalty_alloc_pt alloc, void *ctx, loyalty_cart_t *cart)
{
    size_t                 i;
    loyalty_line_t        *line;
    loyalty_cart_rc_t      rc;
    const loyalty_json_t  *lines, *v;

    lines = loyalty_cart_get(rd, root, LOYALTY_FIELD_LINES);

    if (lines == NULL || lines->type == LOYALTY_JSON_NULL) {
        return loyalty_cart_fail(rd, LOYALTY_CART_MISSING,
                                 LOYALTY_FIELD_LINES, "is required");
    }

    if (lines->type != LOYALTY_JSON_ARRAY || lines->count == 0) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID,
                                 LOYALTY_FIELD_LINES,
                                 "must be a non-empty array");
    }

    if (lines->count > rd->spec->max_lines) {
        return loyalty_cart_fail(rd, LOYALTY_CART_TOO_MANY_LINES,
                                 LOYALTY_FIELD_LINES,
                                 "has %zu lines; at most %zu are accepted",
                                 lines->count, rd->spec->max_lines);
    }

    cart->lines = alloc(ctx, lines->count * sizeof(loyalty_line_t));
    if (cart->lines == NULL) {
        return LOYALTY_CART_NO_MEMORY;
    }

    memset(cart->lines, 0, lines->count * sizeof(loyalty_line_t));

    for (i = 0, v = lines->child; v != NULL; i++, v = v->next) {
        line = &cart->lines[i];

        /* its pointer is written only for an error: formatting it for
         * every line cost more than reading the line */
        rd->line = i;

        if (v->type != LOYALTY_JSON_OBJECT) {
            snprintf(rd->err->field, sizeof(rd->err->field), "%s/%zu",
                     rd->spec->pointer[LOYALTY_FIELD_LINES], i);
            snprintf(rd->err->message, sizeof(rd->err->message),
                     "%s must be an object, not %s", rd->err->field,
                     loyalty_json_type_name(v->type));
            return LOYALTY_CART_INVALID;
        }

        if ((rc = loyalty_cart_text(rd, v, LOYALTY_FIELD_LINE_SKU,
                                    &line->sku))
            || (rc = loyalty_cart_text(rd, v, LOYALTY_FIELD_LINE_BRAND,
                                       &line->brand))
            || (rc = loyalty_cart_text(rd, v, LOYALTY_FIELD_LINE_CATEGORY,
                                       &line->category))
            || (rc = loyalty_cart_money(rd, v, LOYALTY_FIELD_LINE_PRICE,
                                        cart->decimals, &line->price))
            || (rc = loyalty_cart_count(rd, v, LOYALTY_FIELD_LINE_QUANTITY,
                                        1, rd->spec->max_quantity,
                                        &line->quantity)))
        {
            return rc;
        }

        if (__builtin_mul_overflow(line->price, line->quantity, &line->total)
            || line->total > rd->max_minor
            || __builtin_add_overflow(cart->subtotal, line->total,
                                      &cart->subtotal)
            || cart->subtotal > rd->max_minor)
        {
            return loyalty_cart_fail(rd, LOYALTY_CART_INVALID,
                                     LOYALTY_FIELD_LINE_QUANTITY,
                                     "makes the cart total exceed %lld",
                                     (long long) rd->spec->max_units);
        }
    }

    cart->nlines = lines->count;

    return LOYALTY_CART_OK;
}


/* A field's value, relative to the cart or (for line fields) the line. */

static const loyalty_json_t *
loyalty_cart_get(loyalty_cart_reader_t *rd, const loyalty_json_t *base,
    loyalty_field_t field)
{
    const char  *ptr;

    ptr = rd->spec->pointer[field];

    return loyalty_json_pointer(base, ptr, strlen(ptr));
}


/* An identifier: a string, or an integer as many shops number things. */

static loyalty_cart_rc_t
loyalty_cart_id(loyalty_cart_reader_t *rd, const loyalty_json_t *base,
    loyalty_field_t field, loyalty_str_t *out)
{
    size_t                 bad;
    loyalty_code_rc_t      rc;
    const loyalty_json_t  *v;

    v = loyalty_cart_get(rd, base, field);

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        if (rd->spec->required & LOYALTY_FIELD_BIT(field)) {
            return loyalty_cart_fail(rd, LOYALTY_CART_MISSING, field,
                                     "is required");
        }

        return LOYALTY_CART_OK;
    }

    if (v->type != LOYALTY_JSON_STRING
        && (v->type != LOYALTY_JSON_NUMBER
            || strspn(v->text, "0123456789") != v->len))
    {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be a string or a whole number");
    }

    rc = loyalty_id_check(v->text, v->len, LOYALTY_ID_MAX, &bad);

    if (rc == LOYALTY_CODE_BAD_CHAR) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "has a character that is not allowed at "
                                 "byte %zu: printable ASCII without "
                                 "spaces, '{' or '}'", bad);
    }

    if (rc != LOYALTY_CODE_OK) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be 1 to %d bytes", LOYALTY_ID_MAX);
    }

    out->data = v->text;
    out->len = v->len;

    return LOYALTY_CART_OK;
}


/* Free text of a line (sku, brand, category): any non-empty string. */

static loyalty_cart_rc_t
loyalty_cart_text(loyalty_cart_reader_t *rd, const loyalty_json_t *base,
    loyalty_field_t field, loyalty_str_t *out)
{
    const loyalty_json_t  *v;

    v = loyalty_cart_get(rd, base, field);

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        if (rd->spec->required & LOYALTY_FIELD_BIT(field)) {
            return loyalty_cart_fail(rd, LOYALTY_CART_MISSING, field,
                                     "is required");
        }

        return LOYALTY_CART_OK;
    }

    if (v->type == LOYALTY_JSON_NUMBER
        && strspn(v->text, "0123456789") == v->len)
    {
        /* numeric SKUs are common; they compare as their text */

    } else if (v->type != LOYALTY_JSON_STRING || v->len == 0) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be a non-empty string");
    }

    out->data = v->text;
    out->len = v->len;

    return LOYALTY_CART_OK;
}


static loyalty_cart_rc_t
loyalty_cart_norm_code(loyalty_cart_reader_t *rd,
    const loyalty_json_t *base, loyalty_field_t field, loyalty_alloc_pt alloc,
    void *ctx, loyalty_str_t *out)
{
    char                  *code;
    size_t                 bad, len;
    loyalty_code_rc_t      rc;
    const loyalty_json_t  *v;

    v = loyalty_cart_get(rd, base, field);

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        return LOYALTY_CART_OK;
    }

    if (v->type != LOYALTY_JSON_STRING) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be a string, not %s",
                                 loyalty_json_type_name(v->type));
    }

    code = alloc(ctx, LOYALTY_CODE_MAX + 1);
    if (code == NULL) {
        return LOYALTY_CART_NO_MEMORY;
    }

    rc = loyalty_code_normalize(v->text, v->len, code, &len, &bad);

    switch (rc) {

    case LOYALTY_CODE_OK:
        out->data = code;
        out->len = len;
        return LOYALTY_CART_OK;

    case LOYALTY_CODE_EMPTY:
        /* an empty coupon box is no coupon */
        return LOYALTY_CART_OK;

    case LOYALTY_CODE_TOO_LONG:
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "is longer than %d characters",
                                 LOYALTY_CODE_MAX);

    default:
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "may hold only letters, digits, '-', '_' "
                                 "and '.' (byte %zu is not one)", bad);
    }
}


static loyalty_cart_rc_t
loyalty_cart_money(loyalty_cart_reader_t *rd, const loyalty_json_t *base,
    loyalty_field_t field, unsigned decimals, int64_t *out)
{
    char                   max[LOYALTY_MONEY_TEXT_MAX];
    loyalty_money_rc_t     rc;
    loyalty_money_spec_t   ms;
    const loyalty_json_t  *v;

    v = loyalty_cart_get(rd, base, field);

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        if (rd->spec->required & LOYALTY_FIELD_BIT(field)) {
            return loyalty_cart_fail(rd, LOYALTY_CART_MISSING, field,
                                     "is required");
        }

        *out = 0;
        return LOYALTY_CART_OK;
    }

    if (v->type != LOYALTY_JSON_NUMBER && v->type != LOYALTY_JSON_STRING) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be a number or a decimal string, "
                                 "not %s", loyalty_json_type_name(v->type));
    }

    ms.min = 0;
    ms.max = rd->max_minor;

    if (rd->spec->amounts_minor) {
        /* already minor units: a whole number, nothing to round */
        ms.decimals = 0;
        ms.round = LOYALTY_ROUND_EXACT;

    } else {
        ms.decimals = decimals;
        ms.round = rd->spec->round;
    }

    rc = loyalty_money_parse(v->text, v->len, &ms, out);

    if (rc == LOYALTY_MONEY_OK) {
        return LOYALTY_CART_OK;
    }

    if (rc == LOYALTY_MONEY_RANGE) {
        loyalty_money_format(rd->max_minor,
                             rd->spec->amounts_minor ? 0 : decimals, max);
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be from 0 to %s", max);
    }

    if (rc == LOYALTY_MONEY_PRECISION) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be a whole number of minor units");
    }

    return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                             "%s", loyalty_money_strerror(rc));
}


static loyalty_cart_rc_t
loyalty_cart_count(loyalty_cart_reader_t *rd, const loyalty_json_t *base,
    loyalty_field_t field, int64_t min, int64_t max, int64_t *out)
{
    size_t                 i;
    int64_t                n;
    const loyalty_json_t  *v;

    v = loyalty_cart_get(rd, base, field);

    if (v == NULL || v->type == LOYALTY_JSON_NULL) {
        if (rd->spec->required & LOYALTY_FIELD_BIT(field)) {
            return loyalty_cart_fail(rd, LOYALTY_CART_MISSING, field,
                                     "is required");
        }

        *out = 0;
        return LOYALTY_CART_OK;
    }

    n = -1;

    if (v->type == LOYALTY_JSON_NUMBER && v->len <= 18
        && strspn(v->text, "0123456789") == v->len)
    {
        for (n = 0, i = 0; i < v->len; i++) {
            n = n * 10 + (v->text[i] - '0');
        }
    }

    if (n < min || n > max) {
        return loyalty_cart_fail(rd, LOYALTY_CART_INVALID, field,
                                 "must be a whole number from %lld to %lld",
                                 (long long) min, (long long) max);
    }

    *out = n;

    return LOYALTY_CART_OK;
}


static loyalty_cart_rc_t
loyalty_cart_fail(loyalty_cart_reader_t *rd, loyalty_cart_rc_t rc,
    loyalty_field_t field, const char *fmt, ...)
{
    int       n;
    va_list   args;

    /* the field as the shop wrote it: its JSON pointer */
    if (field >= LOYALTY_FIELD_LINE_SKU) {
        snprintf(rd->err->field, sizeof(rd->err->field), "%s/%zu%s",
                 rd->spec->pointer[LOYALTY_FIELD_LINES], rd->line,
                 rd->spec->pointer[field]);

    } else {
        snprintf(rd->err->field, sizeof(rd->err->field), "%s",
                 rd->spec->pointer[field]);
    }

    n = snprintf(rd->err->message, sizeof(rd->err->message), "%s ",
                 rd->err->field);

    va_start(args, fmt);
    vsnprintf(rd->err->message + n, sizeof(rd->err->message) - (size_t) n,
              fmt, args);
    va_end(args);

    return rc;
}
