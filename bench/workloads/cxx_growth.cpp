// cxx_growth — C++ new/delete through std::string and std::vector growth.
//
//   cxx_growth ROUNDS
//
// Per round: a vector of strings built by push_back (the vector regrows), each string
// grown one piece at a time past the small-string buffer (each regrowth is a new + delete);
// a vector<int> grown element by element; a few node objects with plain new/delete kept in
// a short list; then the strings are joined into one growing string and everything is
// released at the end of the round.  Containers use a counting allocator that forwards to
// ::operator new / ::operator delete (libstdc++'s, the functions heaptap probes), so the
// program knows exactly how many allocator calls it made.  One op = one call to operator
// new or operator delete.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "report.h"

static unsigned long long g_ops;

template <class T> struct counting_alloc {
	using value_type = T;
	counting_alloc() = default;
	template <class U> counting_alloc(const counting_alloc<U> &) {}
	T *allocate(std::size_t n)
	{
		g_ops++;
		return static_cast<T *>(::operator new(n * sizeof(T)));
	}
	void deallocate(T *p, std::size_t)
	{
		g_ops++;
		::operator delete(p);
	}
	template <class U> bool operator==(const counting_alloc<U> &) const { return true; }
	template <class U> bool operator!=(const counting_alloc<U> &) const { return false; }
};

using str = std::basic_string<char, std::char_traits<char>, counting_alloc<char>>;
template <class T> using vec = std::vector<T, counting_alloc<T>>;

struct node {
	node *next;
	std::uint64_t payload[5];
};

int main(int argc, char **argv)
{
	unsigned long long rounds, seed = 0xd1b54a32d192ed03ULL, sum = 0;

	if (argc != 2 || !(rounds = std::strtoull(argv[1], nullptr, 10))) {
		std::fprintf(stderr, "usage: cxx_growth ROUNDS\n");
		return 2;
	}
	for (unsigned long long r = 0; r < rounds; r++) {
		vec<str> words;
		vec<int> numbers;
		node *list = nullptr;
		unsigned nwords = 20 + bench_rand(&seed) % 60;

		for (unsigned w = 0; w < nwords; w++) {
			str s;
			unsigned pieces = 1 + bench_rand(&seed) % 12;

			for (unsigned p = 0; p < pieces; p++)
				s.append(3 + bench_rand(&seed) % 13, static_cast<char>('a' + p));
			words.push_back(std::move(s));
		}
		for (unsigned i = 0, n = bench_rand(&seed) % 300; i < n; i++)
			numbers.push_back(static_cast<int>(i));
		for (unsigned i = 0, n = 1 + bench_rand(&seed) % 8; i < n; i++) {
			node *nd = new node{ list, { i, i, i, i, i } };

			g_ops++;
			BENCH_ESCAPE(nd);
			list = nd;
		}
		str joined;
		for (const str &s : words) {
			joined += s;
			joined += ',';
		}
		sum += joined.size() + numbers.size() + words.size();
		while (list) {
			node *next = list->next;

			sum += list->payload[0];
			delete list;
			g_ops++;
			list = next;
		}
	}
	bench_report(g_ops, sum);
	return 0;
}
