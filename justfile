# Common tasks. `just --list` shows them.

# Build the release binary.
build:
    cargo build --release

# Format the code.
fmt:
    cargo fmt --all

# Lint as CI does.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Run every test.
test:
    cargo test --workspace

# Run the example pipeline twice: the second run finds every stage fresh.
demo:
    cargo run --release -- run examples/chain
    cargo run --release -- run examples/chain

# Engine benchmark against DVC (see docs/performance.md); `just bench-engine --quick` for a smoke run.
bench-engine *ARGS:
    bash bench/engine.sh {{ARGS}}

# Everything CI runs.
ci:
    bash .ci/run
