#include "CHeap.h"
#include <malloc.h>

ls_heap ls_heap_figures(void) {
    struct mallinfo2 m = mallinfo2();
    ls_heap h = { m.uordblks + m.hblkhd, m.fordblks, m.arena + m.hblkhd };
    return h;
}
