# The two set-up commands of the README: `make demo` and `make test`.
# Both find or start a Redis through scripts/with-redis.sh.

GO      ?= go
BIN     := bin/wxmass
REDIS   := scripts/with-redis.sh

.PHONY: all build demo test vet fmt bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/wxmass

## demo: run the sample sends against the fake WeChat server.
demo: build
	$(REDIS) ./$(BIN) demo

## test: go vet, then the whole test suite with the race detector. The
## packages run first; cmd/ (whose tests run worker processes and measure the
## rate they achieve together) runs after them, alone on the machine. The
## browser tests need Debian's chromium and a CJK font (the console's Chinese
## pages), installed when missing (WXMASS_NEED_CHROMIUM: a browser test whose
## chromium or font is missing fails rather than skips); the launchers of private Redis servers, sentinels and clusters need
## redis-server, installed when missing. Then deploy-check validates deploy/.
test:
	scripts/ensure-chromium.sh
	WXMASS_NEED_REDIS_SERVER=1 WXMASS_NEED_CHROMIUM=1 $(REDIS) sh -c '$(GO) vet ./... && $(GO) test -race -count=1 $$($(GO) list ./... | grep -v /cmd/) && $(GO) test -race -count=1 ./cmd/...'
	$(MAKE) deploy-check

## deploy-check: validate deploy/ (Dockerfile, docker-compose.yml, the
## Kubernetes manifests, prometheus.yml and its rules, the Grafana dashboard,
## redis.conf) with the libraries that read them for real and against wxmass
## itself: its --help, its loaders, its metrics, and its compose services run
## as local processes. A Go module of its own (deploy/check), so wxmass's
## go.mod gets none of its dependencies. Needs redis-server.
.PHONY: deploy-check
deploy-check:
	cd deploy/check && $(GO) test -count=1 ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

## reliability: the reliability suite (internal/reliability): real worker
## processes against private redis-servers (single, Sentinel, Cluster) and the
## fake WeChat while workers are killed, runs are stopped, Redis restarts or
## fails over, WeChat is down or revokes tokens, one account's daily quota
## runs out; each scenario ends with DESIGN.md's invariants checked (each
## recipient against the fake's record) and a line in
## .artifacts/reliability.txt. About 10 minutes; run it alone on the machine.
reliability:
	$(REDIS) $(GO) test -tags reliability -count=1 -v -timeout 40m ./internal/reliability/

## bench: the Go benchmarks, then `wxmass bench` (BENCHMARKS.md) on DB 9.
## (No timing assertions live in tests.)
bench: build
	$(REDIS) $(GO) test -run '^$$' -bench . -benchmem ./...
	$(REDIS) sh -c './$(BIN) bench --log-level warn --redis-url "$${WXMASS_REDIS_URL%/}/9"'

## fuzz: each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin
