#include <stdio.h>
#include <sys/stat.h>

/* Doubles its input; prints on stderr the identity of the binary that runs (same for every case = compiled once). */
int main(int argc, char** argv) {
    long long n;
    if (scanf("%lld", &n) != 1) return 1;
    printf("%lld\n", n * 2);
    struct stat st;
    if (stat("/proc/self/exe", &st) != 0 && stat(argv[0], &st) != 0) return 0;
    fprintf(stderr, "%lu:%ld.%ld", (unsigned long)st.st_ino, (long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    (void)argc;
    return 0;
}
