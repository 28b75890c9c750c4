#ifndef LS_CHEAP_H
#define LS_CHEAP_H

#include <stddef.h>

/// glibc's heap as mallinfo2(3) sees it, over every arena: what the program holds and what malloc keeps free.
/// Beside the resident set it tells a leak (in_use grows) from fragmentation or malloc's caches (free grows).
typedef struct ls_heap {
    /// Bytes in chunks the program holds, mmapped ones included (uordblks + hblkhd).
    size_t in_use;
    /// Bytes in free chunks malloc keeps in its arenas (fordblks).
    size_t free;
    /// Bytes of the arenas (arena) plus mmapped chunks (hblkhd): what malloc got from the system.
    size_t from_system;
} ls_heap;

/// Walks every arena under its lock: for a scrape, not for a hot path. Zeros where malloc is not glibc's (an
/// AddressSanitizer build).
ls_heap ls_heap_figures(void);

#endif
