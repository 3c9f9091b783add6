fn main() -> std::process::ExitCode {
    waterspout::cli::main()
}
