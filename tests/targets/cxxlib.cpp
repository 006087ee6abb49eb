// cxxlib.cpp — operator new reached from the program's functions directly, through inline
// library templates compiled into the program, and through libstdc++'s own code (Debian's
// libstdc++ is built without frame pointers).  C++17.
//
// Ground truth (libstdc++ 12, glibc 2.36; the sizes are the operator new arguments):
//
//  function (noinline)  what it does                           operator new calls             live at exit
//  -------------------  -------------------------------------  -----------------------------  ------------
//  new_widgets          new Widget x 50, kept                  operator new(40) x 50          50 x 40
//  reserve_strings      std::string::reserve(1000) x 10        operator new(1001) x 10, from  10 x 1001
//                       (std::string::reserve lives in          inside libstdc++
//                       libstdc++.so: explicit instantiation)   (basic_string::reserve ->
//                                                               _M_create)
//  grow_vector          std::vector<long> push_back x 100      operator new(8 << k), k = 0..7  1 x 1024
//                       (inline template code in this file)    (8 to 1024 bytes, 8 calls);
//                                                              each growth frees the old one
//
//  Totals: 68 operator new calls, 14050 bytes (2000 + 10010 + 2040); 7 deletes (the old
//  vector buffers, 1016 bytes); live at exit 61 blocks, 13034 bytes.
//
// Call chains, innermost first (libstdc++'s and inlined frames in brackets):
//   operator new <- new_widgets <- main
//   operator new <- [std::string::_M_create <- std::string::reserve] <- reserve_strings <- main
//   operator new <- [std::vector growth, inline] <- grow_vector <- main
//
// The strings and the vector are built in static storage and never destroyed, so nothing is
// freed at exit.  Other allocations: libstdc++'s emergency exception pool before main, malloc(72704) from
// a constructor run by ld.so (never freed; see cxx.cpp).  Output via write(2) only.
#include <new>
#include <string>
#include <vector>

#include "handshake.h"

struct Widget {
	long a, b, c, d, e;
};
static_assert(sizeof(Widget) == 40, "Widget must be 40 bytes");

Widget *volatile g_widgets[50];
// Built in place and never destroyed: no destructor frees them at exit.
alignas(std::string) static unsigned char g_string_mem[10][sizeof(std::string)];
alignas(std::vector<long>) static unsigned char g_vector_mem[sizeof(std::vector<long>)];

void new_widgets();
void reserve_strings();
void grow_vector();

HT_NOINLINE void new_widgets()
{
	for (int i = 0; i < 50; i++)
		g_widgets[i] = new Widget;
}

HT_NOINLINE void reserve_strings()
{
	for (int i = 0; i < 10; i++)
		(new (g_string_mem[i]) std::string)->reserve(1000);
}

HT_NOINLINE void grow_vector()
{
	std::vector<long> *v = new (g_vector_mem) std::vector<long>;

	for (long i = 0; i < 100; i++)
		v->push_back(i);
}

int main()
{
	ht_init();
	ht_ready();
	new_widgets();
	reserve_strings();
	grow_vector();
	ht_done();
	return 0;
}
