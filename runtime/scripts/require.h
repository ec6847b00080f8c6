/* require.h - sandboxed modules: require(name) inside the script root. */
#ifndef LJS_RUNTIME_REQUIRE_H
#define LJS_RUNTIME_REQUIRE_H

#include "runtime/core.h"

/* Run the loaded chunk on top of the stack in a fresh environment (a copy
 * of the sandbox globals plus a `require` bound to `root`), guard the
 * environment against new globals afterwards, and leave the chunk's first
 * result on the stack. Lua: may raise. */
LJS_HIDDEN void ljs__require_run_chunk(lua_State *L, const char *root);

/* The directory part of `path` ("." when there is none) into out. */
LJS_HIDDEN void ljs__require_root(const char *path, char *out, size_t n);

#endif
