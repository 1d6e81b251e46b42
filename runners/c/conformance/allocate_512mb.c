#include <stdio.h>
#include <stdlib.h>

int main(void) {
    size_t size = 512u << 20;
    /* volatile: the compiler may not elide an allocation whose contents it can predict */
    volatile char* block = malloc(size);
    if (block == NULL) {
        fputs("out of memory\n", stderr);
        return 1;
    }
    for (size_t offset = 0; offset < size; offset += 4096) block[offset] = (char)offset;
    printf("%d\n", block[4096 * 3]);
    return 0;
}
