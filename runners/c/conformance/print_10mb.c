#include <stdio.h>

int main(void) {
    for (int i = 0; i < 10000000; ++i) putchar('x');
    return 0;
}
