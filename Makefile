# wharf — the two commands a new user needs are `make run` and `make test`.
GO      ?= go
BIN     := bin/wharf
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build run test test-short conformance vet fmt clean

## build: compile bin/wharf
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/wharf

## run: run the mirror on its embedded default (:5000, Docker Hub, ./data)
run: build
	./$(BIN) serve

## test: vet, the OCI conformance suite, then every other test with the race detector
test: vet conformance
	$(GO) test -race -count=1 -timeout 40m -skip '^TestOCIConformance$$' ./...

## conformance: the OCI distribution-spec conformance suite against a live wharf (0 failures required)
conformance:
	$(GO) test -count=1 -timeout 10m -run '^TestOCIConformance$$' -v ./e2e/

## docs-check: every code block in README.md, deploy/ and docs/ is run, loaded or checked as the comment
## before it says (TestDocs, in make test too), then each test a checked-by/output-of comment names runs
.PHONY: docs-check
docs-check:
	$(GO) test -count=1 -run '^(TestDocs|TestDocsNameRealThings|TestDocBlockParser)$$' ./e2e/
	@set -e; for t in $$(grep -rhoE --include='*.md' '<!-- *(checked-by|output-of):[^>]*' README.md deploy docs | grep -oE 'Test[A-Za-z0-9_]+' | sort -u); do \
		pkg=$$(dirname $$(grep -rlE --include='*_test.go' "^func $$t\(" . | head -1)); \
		echo "== $$t in $$pkg"; \
		$(GO) test -count=1 -timeout 20m -run "^$$t\$$" $$pkg/; \
	done

## test-short: the fast tests only (no Docker engine, no subprocesses)
test-short:
	$(GO) test -short -count=1 ./...

## fuzz: run every fuzz target (each func FuzzX in a *_test.go) for FUZZTIME (default 30s), one after another;
## not part of test, where only the seed corpora run. Crashers land in the package's testdata/fuzz/FuzzX/.
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$t in $$(dirname $$f)"; \
			$(GO) test -run '^$$$$' -fuzz "^$$t\$$$$" -fuzztime $(FUZZTIME) $$(dirname $$f)/; \
		done; \
	done

## lint: staticcheck, pinned, over every package (not part of test); a finding that is meant carries
## a //lint:ignore comment that says why
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
.PHONY: lint
lint:
	$(GO) run $(STATICCHECK) ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin

## bench: wharf vs distribution's proxy mode, side by side, into docs/benchmarks.md
## (not part of test or CI; BENCH_SCALE=quick for a smoke run, see bench/run.sh)
.PHONY: bench
bench:
	./bench/run.sh

## soak: the storm, 1,000 clients for 60 s against bin/wharf with eviction and a faulty upstream
## (SOAK_CLIENTS, SOAK_DURATION, SOAK_SEED; not part of test, whose TestStorm is 100 clients for 10 s)
SOAK_CLIENTS  ?= 1000
SOAK_DURATION ?= 60s
.PHONY: soak
soak:
	SOAK_CLIENTS=$(SOAK_CLIENTS) SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -timeout 30m -run '^TestStorm$$' -v ./e2e/
