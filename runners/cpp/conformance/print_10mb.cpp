#include <iostream>
#include <string>
int main() { std::cout << std::string(10000000, 'x'); }
