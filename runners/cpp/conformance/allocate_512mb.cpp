#include <vector>
#include <iostream>
int main() { std::vector<char> v(512u << 20, 1); std::cout << int(v[12345]) << std::endl; }
