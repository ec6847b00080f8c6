/* host_malloc.c - embedding ljs must leave the host's own malloc alone.
 *
 * Debian's libmimalloc.so.2 exports malloc/free; whichever of libc and
 * libmimalloc comes first in the process's symbol search order supplies
 * malloc for the whole process (DEPS.md). This host links libljs (static or
 * shared: built once per mode by tests/CMakeLists.txt, and again by the
 * installed-package consumer in tests/install/) and checks that the malloc it
 * calls is still libc's. Plain C, no cmocka: exit 0 = pass, 1 = fail.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT */
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ljs.h>

/* Shared object that defines the symbol at `addr`, or "?" */
static const char *object_of(void *addr)
{
    Dl_info info;
    if (addr == NULL || dladdr(addr, &info) == 0 || info.dli_fname == NULL)
        return "?";
    return info.dli_fname;
}

int main(void)
{
    int fail = 0;

    /* Really link the library (and show which build we got). */
    printf("ljs_version() = %lu\n", ljs_version());

    /* malloc as this program calls it, and as the dynamic linker's global
     * search finds it (the same unless the program is non-PIE, where
     * `malloc` may be a PLT address inside the program itself). */
    void *(*fn)(size_t) = malloc;
    void *direct;
    memcpy(&direct, &fn, sizeof direct);
    void *global = dlsym(RTLD_DEFAULT, "malloc");
    /* A symbol only libc has: names the libc object to compare against. */
    void *libc_only = dlsym(RTLD_DEFAULT, "gnu_get_libc_version");

    const char *libc_obj = object_of(libc_only);
    const char *direct_obj = object_of(direct);
    const char *global_obj = object_of(global);
    printf("libc is             %s\n", libc_obj);
    printf("malloc (as called)  %s\n", direct_obj);
    printf("malloc (dlsym)      %s\n", global_obj);

    /* In a sanitizer build the sanitizer runtime owns malloc: that is fine
     * too, as long as it is not mimalloc. */
    int sanitizer = strstr(global_obj, "libasan") != NULL || strstr(global_obj, "libtsan") != NULL;
    if (strstr(global_obj, "mimalloc") != NULL || (strcmp(global_obj, libc_obj) != 0 && !sanitizer)) {
        fprintf(stderr, "FAIL: the process's malloc comes from %s, not libc (%s)\n", global_obj, libc_obj);
        fail = 1;
    }
    if (strstr(direct_obj, "mimalloc") != NULL) {
        fprintf(stderr, "FAIL: the host's malloc resolves into %s\n", direct_obj);
        fail = 1;
    }

    /* Belt and braces: if mimalloc is loaded at all, a block from the
     * host's malloc must not live in a mimalloc region. */
    void *in_region = dlsym(RTLD_DEFAULT, "mi_is_in_heap_region");
    void *p = malloc(100);
    if (p == NULL) {
        fprintf(stderr, "FAIL: malloc(100) returned NULL\n");
        return 1;
    }
    if (in_region != NULL) {
        _Bool (*is_in)(const void *);
        memcpy(&is_in, &in_region, sizeof is_in);
        int mi = is_in(p) ? 1 : 0;
        printf("mimalloc loaded (%s); host malloc block in a mimalloc region: %s\n", object_of(in_region),
               mi ? "yes" : "no");
        if (mi) {
            fprintf(stderr, "FAIL: the host's malloc(100) was served by mimalloc\n");
            fail = 1;
        }
    } else {
        printf("mimalloc not loaded in this process\n");
    }
    free(p);

    if (fail)
        printf("host_malloc: FAIL\n");
    else if (sanitizer)
        printf("host_malloc: OK (host malloc is the sanitizer's, not mimalloc)\n");
    else
        printf("host_malloc: OK (host malloc is libc's)\n");
    return fail;
}
