#include <pthread.h>
#include <stdio.h>

static void* answer(void* result) {
    *(int*)result = 6 * 7;
    return NULL;
}

int main(void) {
    int value = 0;
    pthread_t worker;
    if (pthread_create(&worker, NULL, answer, &value) != 0) return 1;
    pthread_join(worker, NULL);
    printf("%d\n", value);
    return 0;
}
