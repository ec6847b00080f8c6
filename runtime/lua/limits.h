/* limits.h - the sandbox's library functions whose running time a script
 * controls, rewritten to stay under the runaway limits (see limits.c). */
#ifndef LJS_RUNTIME_LIMITS_H
#define LJS_RUNTIME_LIMITS_H

#include "jobs/sched.h"

#include <lua.h>

/* Replace setmetatable (no __gc), string.rep, the pattern functions,
 * table.concat, table.move and table.sort in the sandbox's globals. Runs under lua_pcall, after the
 * standard libraries are open. Lua: may raise (out of memory). */
LJS_HIDDEN void ljs__limits_open(lua_State *L);

/* Replace string.find, match, gmatch and gsub with a matcher that polls
 * the limits (pattern.c). Called by ljs__limits_open. Lua: may raise. */
LJS_HIDDEN void ljs__pattern_open(lua_State *L);

#endif
