# breachflow — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/breachflow
STATICCHECK_VERSION ?= v0.8.2

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build the breachflow binary into bin/
	$(GO) build -o $(BIN) ./cmd/breachflow

.PHONY: dev
dev: build ## Run everything in one process (Temporal, worker, API, mail sink) against local PostgreSQL
	$(BIN) dev

.PHONY: test
test: ## Run every test against real PostgreSQL, in-process Temporal and the mail sink
	$(GO) test -count=1 -timeout 30m ./...

.PHONY: test-faults
test-faults: ## The fault suite: the real processes (Temporal on SQLite, serve, 2 workers, mail sink) on a private PostgreSQL cluster, with crashes and outages injected
	$(GO) test -tags faults -count=1 -timeout 30m -v -run TestFaults ./internal/faults/

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags faults ./internal/faults/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: bench
bench: ## Run the benchmarks that print the figures in the README
	$(GO) test -run '^$$' -bench . -benchtime=1x ./internal/tenants/
	$(GO) test -run '^$$' -bench SinkAccept -benchtime=20x ./internal/mail/sink/

.PHONY: bench-notify
bench-notify: ## One incident over 100,000 tenants × 3 contacts on the real stack: second approval to first and last notice accepted
	BREACHFLOW_BENCH_TENANTS=$${BREACHFLOW_BENCH_TENANTS:-100000} $(GO) test -count=1 -run '^$$' -bench NotifyIncident -benchtime=1x -timeout 60m -v ./workflows/

.PHONY: clean
clean: ## Remove build output
	rm -rf bin artifacts

.PHONY: bench-e2e
bench-e2e: ## One incident end to end (breachflow bench: the worker in its own process), webhook and ack figures, and a plain baseline; prints the README's figures table
	$(GO) run ./cmd/breachflow bench --tenants $${BREACHFLOW_BENCH_TENANTS:-100000} --contacts-per-tenant $${BREACHFLOW_BENCH_CONTACTS:-3}

.PHONY: bench-floor
bench-floor: ## What writing the evidence alone costs on this server, no engine (internal/bench/floor): the floor under the notification path
	sh internal/bench/floor/run.sh
