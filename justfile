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

# Run every test (in the release profile: they reuse its build).
test:
    cargo test --workspace --release

# Build the binary we ship (thin LTO), in target/dist/.
dist:
    cargo build --profile dist

# Run the house-price example twice (the second run finds every stage fresh), then score two rows.
demo:
    cargo run --release -- run examples/house-prices
    cargo run --release -- run examples/house-prices
    printf 'area\n60\n120\n' | cargo run --release -q -- predict --bundle examples/house-prices/artifacts/bundle/bundle --input -

# ML benchmark against scikit-learn (see docs/performance.md); `just bench-ml --quick` for a smoke run.
bench-ml *ARGS:
    bash bench/ml.sh {{ARGS}}

# Engine benchmark against DVC (see docs/performance.md); `just bench-engine --quick` for a smoke run.
bench-engine *ARGS:
    bash bench/engine.sh {{ARGS}}

# Everything CI runs.
ci:
    bash .ci/run
