#include "loyalty_script.h"


const loyalty_script_t  loyalty_scripts[LOYALTY_SCRIPT_N] = {
#define LOYALTY_SCRIPT(name, sha1, source)                                  \
    { #name, sha1, source, sizeof(source) - 1 },
#include "loyalty_lua.h"
#undef LOYALTY_SCRIPT
};
