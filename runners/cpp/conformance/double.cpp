#include <iostream>
#include <sys/stat.h>
int main(int argc, char** argv) { long long n; std::cin >> n; std::cout << n * 2 << std::endl; struct stat st; if (stat("/proc/self/exe", &st) != 0 && stat(argv[0], &st) != 0) return 0; std::cerr << st.st_ino << ":" << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec; }
