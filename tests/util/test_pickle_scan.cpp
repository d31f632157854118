// The pickle walk, against pickles Python's own pickle module writes (every
// protocol LibTorch and Python use) and the same cut short, given lengths
// past their end, memo slots out of order or values taken from an empty
// stack.
#include <gtest/gtest.h>

#include <string>

#include "mipin/util/atomic_file.h"
#include "support/test_support.h"
#include "util/pickle_scan.h"

namespace mipin {
namespace {

TEST(PickleScan, PicklesPythonWritesPassAndLengthsPastTheEndAreFound) {
  test::TempDir dir;
  // Strings, bytes, big ints, floats, nested containers, globals and memo
  // references, in protocols 0 to 5 (5 frames its opcodes).
  const auto made = test::run_python(
      "import pickle, collections\n"
      "value = {'name': 'x' * 300, 'short': 'ab', 'bytes': b'\\x00' * 70000, 'small': b'xy',\n"
      "         'ints': [1, 300, 70000, 2 ** 40, -2 ** 70, 2 ** 3000], 'float': 1.5, 'none': None,\n"
      "         'tuple': (1, (2, 3), (4, 5, 6), ()), 'set': {1, 2}, 'frozen': frozenset([3]),\n"
      "         'bool': [True, False], 'ordered': collections.OrderedDict(a=1), 'unicode': 'é' * 5}\n"
      "value['again'] = value['tuple']\n"
      "for protocol in range(6):\n"
      "    open('" + dir.path() + "/p%d.pkl' % protocol, 'wb').write(pickle.dumps(value, protocol))\n");
  ASSERT_EQ(made.exit_code, 0) << made.err;
  for (int protocol = 0; protocol < 6; ++protocol) {
    const std::string pickle = read_file(dir.file("p" + std::to_string(protocol) + ".pkl"));
    EXPECT_EQ(pickle_problem(pickle), std::nullopt) << "protocol " << protocol;
    // Cut short inside the 70000 bytes: the length now reaches past the end.
    if (protocol >= 3) {
      const size_t at = pickle.find(std::string(100, '\0'));
      ASSERT_NE(at, std::string::npos);
      const auto problem = pickle_problem(pickle.substr(0, at + 50));
      ASSERT_TRUE(problem.has_value()) << "protocol " << protocol;
      EXPECT_NE(problem->find("declares"), std::string::npos) << *problem;
    }
  }
  // BINUNICODE declaring 2^32 - 1 bytes with 3 following; SHORT_BINBYTES
  // declaring 9 with 2; BINBYTES8 declaring 2^40.
  const std::string binunicode = std::string("\x80\x02X\xff\xff\xff\xff", 7) + "abc";
  EXPECT_NE(pickle_problem(binunicode).value_or("").find("declares 4294967295 bytes, and 3 follow"),
            std::string::npos);
  EXPECT_TRUE(pickle_problem(std::string("C\x09xy", 4)).has_value());
  EXPECT_TRUE(pickle_problem(std::string("\x8e\0\0\0\0\0\x01\0\0", 9) + "xx").has_value());
  // Memo slots in order: the next one may be named, not one further on
  // (LONG_BINPUT, BINPUT, PUT in decimal).
  EXPECT_EQ(pickle_problem(std::string("\x80\x02]q\x00]q\x01]r\x02\0\0\0.", 15)), std::nullopt);
  EXPECT_NE(pickle_problem(std::string("\x80\x02]r\xff\xff\xff\x7f.", 9)).value_or("").find(
                "stores memo slot 2147483647 where the next is 0"),
            std::string::npos);
  EXPECT_TRUE(pickle_problem(std::string("\x80\x02]q\x00]q\x02.", 9)).has_value());
  EXPECT_TRUE(pickle_problem("(lp5\n.").has_value());
  EXPECT_EQ(pickle_problem("(lp0\n(lp1\n."), std::nullopt);
  // Values taken from the stack must be there: TUPLE2 over one value, an
  // APPEND with nothing to append to, SETITEMS without a mark, STOP on an
  // empty stack, a POP reaching below the last mark.
  EXPECT_NE(pickle_problem("K\x01\x86.").value_or("").find("takes 2 values from a stack of 1"), std::string::npos);
  EXPECT_TRUE(pickle_problem("K\x01" "a.").has_value());
  EXPECT_NE(pickle_problem("}K\x01K\x02u.").value_or("").find("none is set"), std::string::npos);
  EXPECT_TRUE(pickle_problem(".").has_value());
  EXPECT_TRUE(pickle_problem("K\x01(0t.").has_value());
  EXPECT_EQ(pickle_problem("}(K\x01K\x02u."), std::nullopt);
  // Past STOP, or past an opcode it does not know, nothing is read.
  EXPECT_EQ(pickle_problem(std::string("N.X\xff\xff\xff\xff", 7)), std::nullopt);
  EXPECT_EQ(pickle_problem(std::string("\xffX\xff\xff\xff\xff", 6)), std::nullopt);
}

}  // namespace
}  // namespace mipin
