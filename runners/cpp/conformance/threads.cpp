#include <future>
#include <iostream>
#include <thread>
int main() {
    int value = 0;
    std::thread worker([&value] { value = 6 * 7; });
    worker.join();
    auto same = std::async(std::launch::async, [] { return 42; });
    if (same.get() != value) return 1;
    std::cout << value << "\n";
}
