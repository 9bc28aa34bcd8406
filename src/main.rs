fn main() -> std::process::ExitCode {
    // Before any thread exists: see its documentation (memory flat across reconnections).
    let _ = watchpost::health::keep_memory_flat();
    watchpost::cli::main()
}
