# Crossgate: the two commands are `make run` and `make test`.
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
SIM_LISTEN ?= 127.0.0.1:9090

.PHONY: run test setup plugins build bench lint clean

# CI builds once from nothing: incremental caches would only be written.
# Rebuilding the gateway's own crates took 95 and 106 s without them against
# 122 and 119 s with them, but whole fresh builds showed no difference
# (docs/benchmarks/2026-12-07-build-profile.md): kept as harmless.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif

## Install the wasm target connectors are built for.
setup:
	rustup target add $(WASM_TARGET)

## Build every connector in plugins/ as a WebAssembly component.
plugins: setup
	cd plugins && $(CARGO) build --release --target $(WASM_TARGET)

## Build the gateway and the provider simulator.
build: plugins
	$(CARGO) build --bin crossgate --bin provider-sim

## Start the provider simulator and the gateway on config/crossgate.toml.
run: build
	@./target/debug/provider-sim --listen $(SIM_LISTEN) & sim=$$!; \
	trap 'kill $$sim 2>/dev/null' EXIT INT TERM; \
	./target/debug/crossgate serve --config config/crossgate.toml

## Build everything and run every test: gateway, SDK, simulator and connectors,
## the store suite on SQLite and on PostgreSQL (a throwaway cluster on loopback),
## and what people see in headless Chromium (driven by chromedriver); both are
## installed from Debian's packages when missing (tests/postgres/cluster.sh,
## tests/browser/chromium.sh). Under CI=true a missing one fails the run.
## Tests that depend on the hour pin the gateway's clock ([clock] start).
## The connectors (their own workspace and target) build beside the gateway's
## tests: the gateway's build ends in a long chain of one crate at a time
## (cranelift, wasmtime, the gateway), which leaves a core to them. The tests
## mostly wait (on gateways, providers, the database): four run at a time.
## PostgreSQL and the browser start (or are installed) meanwhile too.
test: setup
	@mkdir -p target plugins/target; \
	tests/postgres/cluster.sh start > target/postgres.env & database=$$!; \
	tests/browser/chromium.sh start > target/browser.env & browser=$$!; \
	trap 'wait $$database $$browser; tests/postgres/cluster.sh stop; tests/browser/chromium.sh stop' EXIT; \
	export RUST_TEST_THREADS="$${RUST_TEST_THREADS:-4}"; \
	( cd plugins && $(CARGO) build --release --target $(WASM_TARGET) && $(CARGO) test --no-run ) \
		> plugins/target/make-test.log 2>&1 & connectors=$$!; \
	$(CARGO) test --workspace --no-run || exit 1; \
	wait $$connectors || { cat plugins/target/make-test.log; exit 1; }; \
	wait $$database || exit 1; \
	wait $$browser || exit 1; \
	eval "$$(cat target/postgres.env target/browser.env)"; \
	$(CARGO) test --workspace && (cd plugins && $(CARGO) test) || exit 1; \
	tests/report.sh

## The figures, on SQLite and on PostgreSQL (release build; the first one takes ~10 minutes).
bench: plugins
	@eval "$$(tests/postgres/cluster.sh start)"; \
	trap 'tests/postgres/cluster.sh stop' EXIT; \
	$(CARGO) bench -p crossgate --bench gateway --features native-baseline


## Formatting and lints, warnings as errors.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p crossgate --all-targets --features native-baseline -- -D warnings
	cd plugins && $(CARGO) fmt --all -- --check && $(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	cd plugins && $(CARGO) clean
	rm -rf data
