//! The `ferrocorn` binary: the library's server with the application `APP` names.

use std::process::ExitCode;

fn main() -> ExitCode {
    ferrocorn::Server::ferrocorn().run()
}
