fn main() -> std::process::ExitCode {
    watchpost::cli::main()
}
