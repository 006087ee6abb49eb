// cxx.cpp — C++ operator new / delete with exactly known outcomes (C++17).
//
// Expected table, at the operator new / delete level (what the program asks for):
//
//  function (noinline)  expression                         operator called                      count  bytes each  requested  released  live at exit
//  -------------------  ---------------------------------  -----------------------------------  -----  ----------  ---------  --------  ------------
//  new_scalar           new Widget                         operator new(48)            _Znwm    100    48          4800       0         100 x 48
//  new_array            new char[1000]                     operator new[](1000)        _Znam    10     1000        10000      -         -
//                       delete[] of all 10                 operator delete[](p)        _ZdaPv   10     -           -          10        0
//  new_aligned          new AlignedWidget                  operator new(128, align 64) _ZnwmSt11align_val_t  5  128  640      -         -
//                       delete of the first 2              operator delete(p, 128, align 64)    2      -           -          2         3 x 128
//                                                          _ZdlPvmSt11align_val_t
//  new_nothrow          new (std::nothrow) char[77]        operator new[](77, nothrow) _ZnamRKSt9nothrow_t  3  77  231  0        3 x 77
//
//  Totals: allocations 118, requested 15671 bytes; releases 12 (10 delete[], 2 aligned delete);
//          live at exit 106 blocks, 5415 bytes (100 x 48 + 3 x 128 + 3 x 77).
//
// The same program seen at the libc level (libstdc++ 12, glibc 2.36):
//   operator new(n) and operator new[](n) call malloc(n); the nothrow new[]
//   calls operator new[] which calls operator new which calls malloc(77);
//   the aligned new calls aligned_alloc(64, 128) (glibc: same address as
//   memalign); every operator delete variant ends in free().
//   So libc sees, from these functions: malloc 113 (100 x 48, 10 x 1000,
//   3 x 77), aligned_alloc 5 (64, 128), free 12.
//
// Other allocations: libstdc++'s static initialiser allocates its
// exception-handling emergency pool before main: one malloc(72704) (GCC 12's
// libstdc++ on x86-64), never freed, so live at exit (valgrind shows it freed
// only because valgrind calls __gnu_cxx::__freeres at exit).  Libc-level
// totals, whole run: malloc 114 (87735 bytes), aligned_alloc 5 (640 bytes),
// free 12; live at exit 107 blocks, 78119 bytes.  No iostream, output via
// write(2) only.
#include <cstddef>
#include <cstdint>
#include <new>

#include "handshake.h"

struct Widget {
	std::uint64_t a, b, c, d, e, f;
};
static_assert(sizeof(Widget) == 48, "Widget must be 48 bytes");

struct alignas(64) AlignedWidget {
	unsigned char data[128];
};
static_assert(sizeof(AlignedWidget) == 128, "AlignedWidget must be 128 bytes");
static_assert(alignof(AlignedWidget) == 64, "AlignedWidget must be 64-aligned");

Widget *volatile g_widgets[100];
char *volatile g_arrays[10];
AlignedWidget *volatile g_aligned[5];
char *volatile g_nothrow[3];

void new_scalar();
void new_array();
void new_aligned();
void new_nothrow();

HT_NOINLINE void new_scalar()
{
	for (int i = 0; i < 100; i++)
		g_widgets[i] = new Widget;
}

HT_NOINLINE void new_array()
{
	for (int i = 0; i < 10; i++)
		g_arrays[i] = new char[1000];
	for (int i = 0; i < 10; i++) {
		delete[] g_arrays[i];
		g_arrays[i] = nullptr;
	}
}

HT_NOINLINE void new_aligned()
{
	for (int i = 0; i < 5; i++)
		g_aligned[i] = new AlignedWidget;
	for (int i = 0; i < 2; i++) {
		delete g_aligned[i];
		g_aligned[i] = nullptr;
	}
}

HT_NOINLINE void new_nothrow()
{
	for (int i = 0; i < 3; i++)
		g_nothrow[i] = new (std::nothrow) char[77];
}

int main()
{
	ht_init();
	ht_ready();
	new_scalar();
	new_array();
	new_aligned();
	new_nothrow();
	ht_done();
	return 0;
}
