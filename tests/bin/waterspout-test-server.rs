//! The `waterspout` command, built inside the test crate so integration tests
//! can start (and kill -9) a real server process.

fn main() -> std::process::ExitCode {
    waterspout::cli::main()
}
