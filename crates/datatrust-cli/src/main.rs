//! The `datatrust` binary: everything is in the library, so tests drive the same code.

fn main() -> std::process::ExitCode {
    datatrust_cli::main()
}
