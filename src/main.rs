use std::process::ExitCode;

fn main() -> ExitCode {
    let registry = mlcycle_stages::builtin_registry();
    mlcycle::main_with_registry(registry)
}
