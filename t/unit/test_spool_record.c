/*
 * The spool record reader of loyalty-worker: a line is replayed only when
 * every part of it is what nginx writes; anything else is refused whole,
 * before a single call reaches Redis.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "loyalty_keys.h"
#include "loyalty_script.h"
#include "worker_spool_record.h"

#include "unit_helpers.h"


#define RECORD_HEAD  "{'v':1,'at':1795737600,'order':'o-1','customer':'42',"

/* the module's own line for a confirmation that earned points */
#define RECORD_OK                                                           \
    RECORD_HEAD "'calls':["                                                 \
    "{'script':'order_record','argv':['2','loyalty:{customer:42}',"         \
    "'loyalty:{customer:42}:log','o-1','1234']},"                           \
    "{'script':'due_add','argv':['1','loyalty:{due:3}','42','1796342400']},"\
    "{'command':['XADD','loyalty:{events}','MAXLEN','~','100000','*',"      \
    "'type','points_earned','id','points_earned:o-1','customer','42',"      \
    "'order','o-1','points','12','pending','12','at','1795737600']}]}"


static worker_spool_record_t  rec;
static const char            *why;
static char                   line[1 << 14];


/* a line written with ' for ", read into the arena */
static int
read_line(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    quoted(line, sizeof(line), fmt, args);
    va_end(args);

    arena.used = 0;
    why = NULL;

    return worker_spool_record_read(line, strlen(line), arena_alloc, &arena,
                                    &rec, &why);
}


static void
refused(const char *fmt, const char *reason)
{
    assert_int_equal(read_line(fmt), -1);
    assert_non_null(why);
    assert_string_equal(why, reason);
}


static void
a_line_the_module_writes_is_read_whole(void **state)
{
    (void) state;

    assert_int_equal(read_line(RECORD_OK), 0);

    assert_string_equal(rec.order, "o-1");
    assert_int_equal(rec.order_len, 3);
    assert_string_equal(rec.customer, "42");
    assert_int_equal(rec.ncalls, 3);

    assert_int_equal(rec.calls[0].script, LOYALTY_SCRIPT_order_record);
    assert_int_equal(rec.calls[0].argc, 5);
    assert_string_equal(rec.calls[0].argv[1], "loyalty:{customer:42}");
    assert_string_equal(rec.calls[0].argv[4], "1234");

    assert_int_equal(rec.calls[1].script, LOYALTY_SCRIPT_due_add);
    assert_int_equal(rec.calls[2].script, -1);
    assert_int_equal(rec.calls[2].argc, 20);
    assert_string_equal(rec.calls[2].argv[1], LOYALTY_KEY_EVENTS);
}


static void
a_guest_order_has_an_empty_customer(void **state)
{
    (void) state;

    assert_int_equal(read_line("{'v':1,'at':1,'order':'o-2','customer':'',"
                               "'calls':[{'script':'order_claim','argv':"
                               "['1','loyalty:{orders:5}','o-2','']}]}"), 0);
    assert_int_equal(rec.customer_len, 0);
    assert_int_equal(rec.calls[0].script, LOYALTY_SCRIPT_order_claim);
}


/*
 * The bug an earlier reader had: "v" (or "script", "order", "customer")
 * of another type has no text, and went to strcmp() as NULL.
 */

static void
members_of_the_wrong_type_are_refused(void **state)
{
    (void) state;

    refused("{'v':[],'at':1,'order':'o','customer':'c','calls':[]}",
            "\"v\" is not 1");
    refused("{'v':{},'at':1,'order':'o','customer':'c','calls':[]}",
            "\"v\" is not 1");
    refused("{'v':'1','at':1,'order':'o','customer':'c','calls':[]}",
            "\"v\" is not 1");
    refused("{'v':1,'at':'x','order':'o','customer':'c','calls':[]}",
            "\"at\" is not a number");
    refused("{'v':1,'at':1,'order':{},'customer':'c','calls':[]}",
            "\"order\" is not an order id");
    refused("{'v':1,'at':1,'order':'o','customer':null,'calls':[]}",
            "\"customer\" is not a customer id");
    refused(RECORD_HEAD "'calls':[{'script':{},'argv':['0']}]}",
            "a script call is malformed");
    refused(RECORD_HEAD "'calls':[{'script':null,'argv':['0']}]}",
            "a script call is malformed");
    refused(RECORD_HEAD "'calls':[{'script':'due_add','argv':[1]}]}",
            "an argument is not a string");
    refused(RECORD_HEAD "'calls':['order_record']}",
            "a call is not an object");
}


/* The other bug: any command in a spool line used to reach Redis. */

static void
only_the_events_xadd_is_a_command(void **state)
{
    (void) state;

    refused(RECORD_HEAD "'calls':[{'command':['FLUSHALL']}]}",
            "a command other than the events XADD");
    refused(RECORD_HEAD "'calls':[{'command':['XADD','loyalty:{other}',"
            "'*','a','b']}]}", "a command other than the events XADD");
    refused(RECORD_HEAD "'calls':[{'command':['xadd','loyalty:{events}',"
            "'*','a','b']}]}", "a command other than the events XADD");
    refused(RECORD_HEAD "'calls':[{'command':['EVAL','return 1','0']}]}",
            "a command other than the events XADD");
    refused(RECORD_HEAD "'calls':[{'command':['XADD','loyalty:{events}',"
            "'*','a','b'],'script':'due_add'}]}",
            "a script call is malformed");
}


static void
only_the_scripts_of_a_confirmation_are_replayed(void **state)
{
    (void) state;

    refused(RECORD_HEAD "'calls':[{'script':'account_grant','argv':"
            "['1','loyalty:{customer:42}','1000']}]}",
            "a script a confirmation does not run");
    refused(RECORD_HEAD "'calls':[{'script':'no_such','argv':['0']}]}",
            "a script a confirmation does not run");
    refused(RECORD_HEAD "'calls':[{'script':'due_add','argv':"
            "['1','other:key','42','1']}]}",
            "a key is not one of the program's");
    refused(RECORD_HEAD "'calls':[{'script':'due_add','argv':"
            "['3','loyalty:{due:3}','42']}]}",
            "the number of keys is not a number of the arguments");
    refused(RECORD_HEAD "'calls':[{'script':'due_add','argv':"
            "['-1','loyalty:{due:3}']}]}",
            "the number of keys is not a number");
    refused(RECORD_HEAD "'calls':[{'script':'due_add','argv':"
            "['','loyalty:{due:3}']}]}",
            "the number of keys is not a number of the arguments");
}


static void
the_whole_line_is_checked(void **state)
{
    (void) state;

    refused("[1]", "not an object");
    refused("{'v':1,'broken", "not valid JSON");
    refused("{'v':1,'at':1,'order':'o','customer':'c'}",
            "a member is missing");
    refused("{'v':1,'at':1,'order':'o','customer':'c','calls':[],'x':1}",
            "not valid JSON");
    refused(RECORD_HEAD "'calls':[]}",
            "\"calls\" is not a list of 1 to 5 calls");
    refused(RECORD_HEAD "'calls':[{'command':['XADD','loyalty:{events}']},"
            "{'command':['XADD','loyalty:{events}']},"
            "{'command':['XADD','loyalty:{events}']},"
            "{'command':['XADD','loyalty:{events}']},"
            "{'command':['XADD','loyalty:{events}']},"
            "{'command':['XADD','loyalty:{events}']}]}",
            "\"calls\" is not a list of 1 to 5 calls");
    refused("{'v':1,'at':1,'order':'o {x}','customer':'c','calls':[]}",
            "\"order\" is not an order id");
    refused("{'v':1,'at':1,'order':'o','customer':'a b','calls':[]}",
            "\"customer\" is not a customer id");
    refused("{'v':1,'at':1,'order':'o','customer':'c','extra':1}",
            "an unknown member");
    refused("{'v':1,'v':1,'order':'o','customer':'c','calls':[]}",
            "not valid JSON");
}


static void
the_arena_running_out_is_not_a_bad_line(void **state)
{
    char    *p;
    size_t   saved;

    (void) state;

    /* the arena nearly full: the reader must say so, not refuse the line */
    saved = sizeof(arena.buf) - 64;
    snprintf(line, sizeof(line), "%s", RECORD_OK);

    for (p = line; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    arena.used = saved;
    assert_int_equal(worker_spool_record_read(line, strlen(line),
                                              arena_alloc, &arena, &rec,
                                              &why), -2);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(a_line_the_module_writes_is_read_whole),
        cmocka_unit_test(a_guest_order_has_an_empty_customer),
        cmocka_unit_test(members_of_the_wrong_type_are_refused),
        cmocka_unit_test(only_the_events_xadd_is_a_command),
        cmocka_unit_test(only_the_scripts_of_a_confirmation_are_replayed),
        cmocka_unit_test(the_whole_line_is_checked),
        cmocka_unit_test(the_arena_running_out_is_not_a_bad_line),
    };

    return cmocka_run_group_tests_name("spool_record", tests, NULL, NULL);
}
