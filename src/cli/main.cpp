// The `mipin` command: subcommands over the library.
#include <torch/torch.h>

#include <iostream>

#include "common.h"
#include "job.h"
#include "mipin/util/error.h"
#include "mipin/util/memory.h"

int main(int argc, char** argv) {
  mipin::reuse_freed_memory();
  CLI::App app{
      "mipin explains trained neural networks faithfully.\n\n"
      "Typical session:\n"
      "  mipin train --arch cnn --data fashion-mnist --out cnn.pt   # or bring a TorchScript file\n"
      "  mipin info cnn.pt                                          # what mipin sees in it\n"
      "  mipin check cnn.pt                                         # its gradient against autograd\n"
      "  mipin fit --model cnn.pt --data fashion-mnist --out cnn.mipin\n"
      "  mipin explain --model cnn.pt --inverse cnn.mipin --data fashion-mnist --index 0:16 --out maps\n"
      "  mipin evaluate --model cnn.pt --inverse cnn.mipin --data fashion-mnist\n\n"
      "Run 'mipin <command> --help' for the options of each command.",
      "mipin"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "mipin 0.1.0");
  mipin::cli::register_train_command(app);
  mipin::cli::register_info_command(app);
  mipin::cli::register_check_command(app);
  mipin::cli::register_fit_command(app);
  mipin::cli::register_explain_command(app);
  mipin::cli::register_evaluate_command(app);
  mipin::cli::register_methods_command(app);
  mipin::cli::register_data_command(app);
  mipin::cli::remember_command_line(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mipin::Error& e) {
    std::cerr << "mipin: error: " << e.what() << std::endl;
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "mipin: error: " << e.what_without_backtrace() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "mipin: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
