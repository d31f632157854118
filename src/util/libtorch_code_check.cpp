#include "util/libtorch_code_check.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/frontend/lexer.h>
#include <torch/csrc/jit/frontend/parser.h>
#include <torch/csrc/jit/frontend/tree_views.h>

#include "util/text.h"

namespace mipin {
namespace {

using namespace torch::jit;

// A module's class body declares attributes (`name : Type`), constants
// (`name : Final[Type] = value`) and its parameter and buffer lists
// (`__parameters__ = [...]`). The importer takes for granted that a constant
// has a type and that a list or an `__annotations__[...]` entry has a value,
// and dereferences what is missing.
std::optional<std::string> class_problem(const ClassDef& def) {
  if (def.superclass().present()) {
    const Expr super = def.superclass().get();
    // Enums and named tuples have bodies of their own kind, which the importer checks.
    if (super.kind() != TK_VAR || Var(super).name().name() != "Module") return std::nullopt;
  }
  const std::string class_name = def.name().name();
  for (const Stmt& statement : def.body()) {
    if (statement.kind() != TK_ASSIGN) continue;
    const Assign assign(statement);
    if (assign.lhs_list().size() != 1) continue;
    const Expr lhs = assign.lhs();
    if (lhs.kind() == TK_SUBSCRIPT) {
      if (!assign.rhs().present()) return "class " + class_name + " declares an __annotations__ entry without a type";
      continue;
    }
    if (lhs.kind() != TK_VAR) continue;
    const std::string name = Var(lhs).name().name();
    // `__annotations__ = []` opens the entries of attributes whose names are
    // no identifiers; the importer skips it (torch::save writes it).
    if (name == "__annotations__") continue;
    const bool list = name == "__parameters__" || name == "__buffers__" || name == "__forward_hooks__" ||
                      name == "__forward_pre_hooks__";
    if (list && !assign.rhs().present()) return "class " + class_name + " declares " + name + " without a value";
    if (!list && assign.rhs().present() && !assign.type().present())
      return "class " + class_name + " gives '" + name + "' a value without a type";
  }
  return std::nullopt;
}

// The top level of a code file as the importer reads it: an optional
// op_version_set line, imports, classes and functions.
std::optional<std::string> file_problem(const std::string& code, const std::string& record) {
  Parser parser(std::make_shared<Source>(code, record, 1));
  Lexer& lexer = parser.lexer();
  if (lexer.cur().kind == TK_IDENT && lexer.cur().text() == "op_version_set") {
    lexer.next();
    lexer.expect('=');
    lexer.expect(TK_NUMBER);
    lexer.expect(TK_NEWLINE);
  }
  while (lexer.cur().kind != TK_EOF) {
    while (lexer.nextIf(TK_IMPORT)) {
      while (lexer.cur().kind != TK_NEWLINE && lexer.cur().kind != TK_EOF) lexer.next();
      lexer.expect(TK_NEWLINE);
    }
    if (lexer.cur().kind == TK_CLASS_DEF) {
      if (auto problem = class_problem(ClassDef(parser.parseClass()))) return "in " + record + ": " + *problem;
    } else if (lexer.cur().kind == TK_DEF) {
      parser.parseFunction(/*is_method=*/false);
    } else {
      return std::nullopt;  // the importer refuses it itself
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> code_libtorch_crashes_on(caffe2::serialize::PyTorchStreamReader& reader) {
  for (const std::string& record : reader.getAllRecords()) {
    if (record.rfind("code/", 0) != 0 || !ends_with(record, ".py")) continue;
    const auto [data, size] = reader.getRecord(record);
    try {
      if (auto problem = file_problem(std::string(static_cast<const char*>(data.get()), size), record))
        return problem;
    } catch (const std::exception&) {
      // Code that does not parse: the importer's own parser refuses it.
    }
  }
  return std::nullopt;
}

}  // namespace mipin
