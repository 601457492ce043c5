# CityBrain Lakehouse — the make targets are the interface (CI calls them too).
#
#   make run     build and start the whole platform on embedded defaults with demo data
#   make test    install what the tests need (PostgreSQL, Kafka and Iceberg jars, pyiceberg) and run every test
#   make bench   run the benchmarks and write bench/results.json and bench/results.md (SUITES=soak: the soak)
#   make lint    gofmt, go vet, staticcheck
#   make fuzz    run each fuzz target briefly

GO        ?= go
BIN       := bin/citybrain
export CITYBRAIN_CACHE ?= $(HOME)/.cache/citybrain
export GOFLAGS ?= -buildvcs=false

.PHONY: build dashboards run test test-deps test-short bench lint fuzz clean

build: dashboards
	$(GO) build -o $(BIN) ./cmd/citybrain

# The web dashboards (TypeScript + Apache ECharts from npm) bundled into
# dashboards/dist, which the binary embeds; npm's cache is under $(CITYBRAIN_CACHE).
dashboards:
	cd dashboards/web && npm_config_cache=$(CITYBRAIN_CACHE)/npm npm ci --no-audit --no-fund && npm_config_cache=$(CITYBRAIN_CACHE)/npm npm run build

run: build
	$(BIN) serve --config citybrain.yaml

test-deps: dashboards
	bash internal/testenv/setup.sh

# Integration tests start real Apache Kafka, PostgreSQL, an Iceberg REST
# catalog and Python with pyiceberg; -p 1 keeps two of them from starting at once on 2 cores.
test: test-deps
	$(GO) test -p 1 -count=1 -timeout 25m ./...
	$(MAKE) fuzz FUZZTIME=2000x

test-short:
	$(GO) test -short -count=1 ./...

# SUITES picks suites (comma-separated; default all but the manual soak), BENCHFLAGS adds flags:
#   make bench SUITES=soak BENCHFLAGS='-soak-duration 10m'
SUITES     ?=
BENCHFLAGS ?=
bench: build
	$(GO) run ./internal/benchrun $(if $(SUITES),-suite $(SUITES)) $(BENCHFLAGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

# Every fuzz target in the tree (one per decoder), FUZZTIME each (a duration or a count such as 2000x);
# make test runs them briefly, by count: a short duration can end in a spurious "context deadline exceeded".
FUZZTIME ?= 20s
fuzz:
	@set -e; for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
	  pkg=$$(dirname $$t); \
	  for f in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$t | cut -d' ' -f2); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

clean:
	rm -rf bin data
