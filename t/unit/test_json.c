/* The strict JSON reader: structure, strings, limits, pointers. */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_json.h"


#define UNIT_ARENA_SIZE  (1 << 18)
#include "unit_helpers.h"


static loyalty_json_limits_t  limits = {
    arena_alloc, &arena, 8, 1000, 32, 64
};


static loyalty_json_t *
parse(const char *text, loyalty_json_error_t *err)
{
    arena.used = 0;
    return loyalty_json_parse(text, strlen(text), &limits, err);
}


static void
assert_refused(const char *text, const char *reason, size_t offset)
{
    loyalty_json_error_t  err;

    assert_null(parse(text, &err));
    assert_non_null(err.reason);
    assert_string_equal(err.reason, reason);
    assert_int_equal(err.offset, offset);
}


static void
documents_become_trees(void **state)
{
    loyalty_json_t        *root;
    loyalty_json_error_t   err;
    const loyalty_json_t  *v;

    (void) state;

    root = parse(" {\"a\": [1, -2.5e3, \"x\"], \"b\": {\"c\": null},"
                 " \"t\": true, \"f\": false} ", &err);
    assert_non_null(root);
    assert_int_equal(root->type, LOYALTY_JSON_OBJECT);
    assert_int_equal(root->count, 4);

    v = loyalty_json_get(root, "a", 1);
    assert_int_equal(v->type, LOYALTY_JSON_ARRAY);
    assert_int_equal(v->count, 3);
    assert_string_equal(v->child->text, "1");
    assert_string_equal(v->child->next->text, "-2.5e3");
    assert_int_equal(v->child->next->next->type, LOYALTY_JSON_STRING);

    v = loyalty_json_get(loyalty_json_get(root, "b", 1), "c", 1);
    assert_int_equal(v->type, LOYALTY_JSON_NULL);
    assert_int_equal(loyalty_json_get(root, "t", 1)->type, LOYALTY_JSON_TRUE);
    assert_int_equal(loyalty_json_get(root, "f", 1)->type,
                     LOYALTY_JSON_FALSE);
    assert_null(loyalty_json_get(root, "z", 1));

    root = parse("[]", &err);
    assert_int_equal(root->type, LOYALTY_JSON_ARRAY);
    assert_int_equal(root->count, 0);

    root = parse("\"only\"", &err);
    assert_string_equal(root->text, "only");
}


static void
numbers_keep_their_text(void **state)
{
    loyalty_json_t        *root;
    loyalty_json_error_t   err;

    (void) state;

    root = parse("[19.99, 0.30000000000000004, 1E+2, -0, 0]", &err);
    assert_string_equal(root->child->text, "19.99");
    assert_string_equal(root->child->next->text, "0.30000000000000004");
    assert_string_equal(root->child->next->next->text, "1E+2");
    assert_int_equal(root->child->next->next->next->len, 2);
}


static void
strings_are_decoded_and_checked(void **state)
{
    loyalty_json_t        *root;
    loyalty_json_error_t   err;

    (void) state;

    root = parse("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac\\ud83d\\ude00\"", &err);
    assert_non_null(root);
    assert_string_equal(root->text,
                        "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");

    root = parse("\"caf\xc3\xa9\"", &err);
    assert_string_equal(root->text, "caf\xc3\xa9");

    /* printable ASCII without escapes is copied as it is */
    root = parse("[\"plain: 100% ASCII / {}[],\", \"x\\u0041\", \"\"]", &err);
    assert_non_null(root);
    assert_string_equal(root->child->text, "plain: 100% ASCII / {}[],");
    assert_int_equal(root->child->len, 25);
    assert_string_equal(root->child->next->text, "xA");
    assert_int_equal(root->child->next->next->len, 0);

    assert_refused("\"a\\u0000b\"", "NUL character in a string", 2);
    assert_refused("\"a\nb\"", "control character in a string", 2);
    assert_refused("\"\\x41\"", "invalid escape", 1);
    assert_refused("\"\\u12g4\"", "invalid \\u escape", 1);
    assert_refused("\"\\ud83d\"", "unpaired surrogate", 1);
    assert_refused("\"\\ude00\"", "unpaired surrogate", 1);
    assert_refused("\"\\ud83d\\u0041\"", "unpaired surrogate", 1);
    assert_refused("\"\xc3\"", "invalid UTF-8", 1);
    assert_refused("\"\xc0\xaf\"", "invalid UTF-8", 1);
    assert_refused("\"\xed\xa0\x80\"", "invalid UTF-8", 1);
    assert_refused("\"\xf4\x90\x80\x80\"", "invalid UTF-8", 1);
    assert_refused("\"\xff\"", "invalid UTF-8", 1);
    assert_refused("\"abc", "unterminated string", 4);
    assert_refused("\"abc\\\"", "unterminated string", 6);
}


static void
malformed_documents_are_refused_with_an_offset(void **state)
{
    loyalty_json_error_t  err;

    (void) state;

    assert_refused("", "unexpected end of data", 0);
    assert_refused("   ", "unexpected end of data", 3);
    assert_refused("{", "expected a member name", 1);
    assert_refused("{\"a\" 1}", "expected ':'", 5);
    assert_refused("{\"a\":1,}", "expected a member name", 7);
    assert_refused("{a:1}", "expected a member name", 1);
    assert_refused("[1,]", "unexpected character", 3);
    assert_refused("[1 2]", "expected ',' or ']'", 3);
    assert_refused("{\"a\":1 \"b\":2}", "expected ',' or '}'", 7);
    assert_refused("{} {}", "unexpected data after the document", 3);
    assert_refused("tru", "unexpected character", 0);
    assert_refused("nul", "unexpected character", 0);
    assert_refused("01", "unexpected data after the document", 1);
    assert_refused("1.", "invalid number", 2);
    assert_refused("1e", "invalid number", 2);
    assert_refused("-", "unexpected character", 0);
    assert_refused("+1", "unexpected character", 0);
    assert_refused("NaN", "unexpected character", 0);

    /* a NUL after the document is data too */
    assert_null(loyalty_json_parse("[1]\0", 4, &limits, &err));
    assert_string_equal(err.reason, "unexpected data after the document");
}


static void
duplicate_members_are_refused(void **state)
{
    (void) state;

    assert_refused("{\"coupon\":\"A\",\"coupon\":\"B\"}",
                   "duplicate member name", 14);

    /* the same name written with an escape is the same name */
    assert_refused("{\"ab\":1,\"a\\u0062\":2}", "duplicate member name", 8);
}


static void
limits_are_enforced(void **state)
{
    char                   big[4096];
    size_t                 i;
    loyalty_json_error_t   err;

    (void) state;

    /* depth 8 is allowed, 9 is not */
    assert_non_null(parse("[[[[[[[[1]]]]]]]]", &err));
    assert_refused("[[[[[[[[[1]]]]]]]]]", "nested too deeply", 8);
    assert_refused("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
                   "{\"a\":{}}}}}}}}}", "nested too deeply", 40);

    /* strings: 64 bytes decoded */
    memset(big, 'x', 66);
    big[0] = '"';
    big[65] = '"';
    big[66] = '\0';
    assert_non_null(parse(big, &err));
    big[66] = 'x';
    big[67] = '"';
    big[68] = '\0';
    big[65] = 'x';
    assert_refused(big, "string too long", 0);

    /* members: 32 per object */
    strcpy(big, "{");
    for (i = 0; i < 33; i++) {
        sprintf(big + strlen(big), "%s\"k%zu\":0", i ? "," : "", i);
    }
    strcat(big, "}");
    assert_refused(big, "too many members in an object",
                   strstr(big, "\"k32\"") - big);

    /* values: 1000 in the document */
    strcpy(big, "[");
    for (i = 0; i < 999; i++) {
        strcat(big, i ? ",0" : "0");
    }
    strcat(big, "]");
    assert_non_null(parse(big, &err));
    big[strlen(big) - 1] = '\0';
    strcat(big, ",0]");
    assert_refused(big, "too many values", strlen(big) - 2);
}


static void
pointers_find_nested_values(void **state)
{
    loyalty_json_t        *root;
    loyalty_json_error_t   err;
    const loyalty_json_t  *v;

    (void) state;

    root = parse("{\"cart\":{\"items\":[{\"sku\":\"A\"},{\"sku\":\"B\"}]},"
                 "\"a/b\":1,\"m~n\":2,\"\":3}", &err);
    assert_non_null(root);

    v = loyalty_json_pointer(root, "", 0);
    assert_ptr_equal(v, root);

    v = loyalty_json_pointer(root, "/cart/items/1/sku", 17);
    assert_string_equal(v->text, "B");

    v = loyalty_json_pointer(root, "/a~1b", 5);
    assert_string_equal(v->text, "1");
    v = loyalty_json_pointer(root, "/m~0n", 5);
    assert_string_equal(v->text, "2");
    v = loyalty_json_pointer(root, "/", 1);
    assert_string_equal(v->text, "3");

    assert_null(loyalty_json_pointer(root, "/cart/items/2", 13));
    assert_null(loyalty_json_pointer(root, "/cart/items/01", 14));
    assert_null(loyalty_json_pointer(root, "/cart/items/-", 13));
    assert_null(loyalty_json_pointer(root, "/cart/items/x", 13));
    assert_null(loyalty_json_pointer(root, "/cart/nope", 10));
    assert_null(loyalty_json_pointer(root, "/a~1b/deeper", 12));
    assert_null(loyalty_json_pointer(root, "cart", 4));

    /* escapes are checked where the walk reads them */
    assert_null(loyalty_json_pointer(root, "/a~2b", 5));
    assert_null(loyalty_json_pointer(root, "/a~", 3));
    assert_null(loyalty_json_pointer(root, "/cart/items/0/s~u", 17));

    root = parse("{\"x/y\":{\"z~\":[4,5]}}", &err);
    v = loyalty_json_pointer(root, "/x~1y/z~0/1", 11);
    assert_string_equal(v->text, "5");

    assert_int_equal(loyalty_json_pointer_check("/a~2", 4), -1);
    assert_int_equal(loyalty_json_pointer_check("/a~", 3), -1);
    assert_int_equal(loyalty_json_pointer_check("a", 1), -1);
    assert_int_equal(loyalty_json_pointer_check("/a/~0/~1", 8), 0);
}


static void
running_out_of_memory_is_not_a_syntax_error(void **state)
{
    loyalty_json_error_t  err;

    (void) state;

    arena.used = sizeof(arena.buf) - 8;
    assert_null(loyalty_json_parse("[1,2,3]", 7, &limits, &err));
    assert_null(err.reason);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(documents_become_trees),
        cmocka_unit_test(numbers_keep_their_text),
        cmocka_unit_test(strings_are_decoded_and_checked),
        cmocka_unit_test(malformed_documents_are_refused_with_an_offset),
        cmocka_unit_test(duplicate_members_are_refused),
        cmocka_unit_test(limits_are_enforced),
        cmocka_unit_test(pointers_find_nested_values),
        cmocka_unit_test(running_out_of_memory_is_not_a_syntax_error),
    };

    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
