/*
 * The cart parser: any body through the JSON reader and loyalty_cart_read,
 * with the limits the checkout uses (ngx_http_loyalty_request.c).  The
 * first byte chooses the spec: amounts in minor units or decimals, the
 * rounding, a default currency.  A cart read is checked for what the
 * module relies on: lines within bounds, totals that add up, amounts and
 * quantities within the spec, codes in normal form.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_alloc.h"
#include "loyalty_cart.h"


static void
fuzz_cart_code(const loyalty_str_t *s)
{
    char    out[LOYALTY_CODE_MAX + 1];
    size_t  len, bad;

    if (s->len == 0) {
        return;
    }

    FUZZ_CHECK(loyalty_code_normalize((const char *) s->data, s->len, out,
                                      &len, &bad)
               == LOYALTY_CODE_OK);
    FUZZ_CHECK(len == s->len && memcmp(out, s->data, len) == 0);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                 i;
    int64_t                max_minor, sum, scale;
    fuzz_alloc_t           a;
    loyalty_cart_t         cart;
    loyalty_json_t        *root;
    loyalty_cart_rc_t      rc;
    loyalty_cart_spec_t    spec;
    loyalty_cart_error_t   err;
    loyalty_json_error_t   jerr;
    loyalty_json_limits_t  limits;

    if (size < 1) {
        return 0;
    }

    loyalty_cart_spec_init(&spec);
    spec.amounts_minor = data[0] & 1;
    spec.round = (loyalty_round_t) ((data[0] >> 1) % 5);
    spec.currency = (data[0] & 0x10) ? "EUR" : ((data[0] & 0x20) ? "JPY"
                                                                 : NULL);
    spec.max_lines = 20;

    memset(&a, 0, sizeof(a));
    a.max = 64 * size + 65536;

    limits.alloc = fuzz_alloc;
    limits.ctx = &a;
    limits.max_depth = 16;
    limits.max_values = spec.max_lines * 64 + 10000;
    limits.max_members = 256;
    limits.max_string = 8192;

    root = loyalty_json_parse((const char *) data + 1, size - 1, &limits,
                              &jerr);

    if (root == NULL) {
        FUZZ_CHECK(jerr.reason == NULL || jerr.offset <= size - 1);
        fuzz_alloc_free(&a);
        return 0;
    }

    memset(&err, 0, sizeof(err));
    rc = loyalty_cart_read(root, &spec, fuzz_alloc, &a, &cart, &err);
    FUZZ_CHECK(loyalty_cart_code(rc) != NULL);

    if (rc != LOYALTY_CART_OK) {
        FUZZ_CHECK(rc == LOYALTY_CART_NO_MEMORY || err.message[0] != '\0');
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        fuzz_alloc_free(&a);
        return 0;
    }

    FUZZ_CHECK(cart.nlines >= 1 && cart.nlines <= spec.max_lines);
    FUZZ_CHECK(cart.decimals <= 3 && strlen(cart.currency) == 3);

    for (scale = 1, i = 0; i < cart.decimals; i++) {
        scale *= 10;
    }

    max_minor = spec.max_units * scale;
    sum = 0;

    for (i = 0; i < cart.nlines; i++) {
        FUZZ_CHECK(cart.lines[i].sku.len > 0);
        FUZZ_CHECK(cart.lines[i].quantity >= 1
                   && cart.lines[i].quantity <= spec.max_quantity);
        FUZZ_CHECK(cart.lines[i].price >= 0
                   && cart.lines[i].price <= max_minor);
        FUZZ_CHECK(cart.lines[i].total
                   == cart.lines[i].price * cart.lines[i].quantity);
        sum += cart.lines[i].total;
    }

    FUZZ_CHECK(sum == cart.subtotal && cart.subtotal <= max_minor);
    FUZZ_CHECK(cart.shipping >= 0 && cart.shipping <= max_minor);
    FUZZ_CHECK(cart.tax >= 0 && cart.tax <= max_minor);
    FUZZ_CHECK(cart.discount >= 0 && cart.discount <= max_minor);
    FUZZ_CHECK(cart.points >= 0 && cart.points <= spec.max_points);

    fuzz_cart_code(&cart.coupon);
    fuzz_cart_code(&cart.referral);

    fuzz_alloc_free(&a);

    return 0;
}
