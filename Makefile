# xdpscan: see README.md. Everything here runs as root on Debian 12.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
# The clang that compiled the committed bpf/*_bpfel.o: the bytes differ
# between clang versions, so `check-generated` only means something with it.
BPF_CLANG ?= clang-19
APT_PACKAGES := clang-19 llvm-19 libbpf-dev libpcap-dev bpftool iproute2 nftables ethtool libcap2-bin util-linux procps prometheus \
	tcpdump tshark masscan zmap nmap time stress-ng libxml2-utils bash-completion iputils-ping xdp-tools jq ndiff man-db gcc
TESTBED ?= default
# make install: the binary, man pages, shell completions, and the file
# capabilities of the README's least-privilege section.
PREFIX ?= /usr/local
DESTDIR ?=
SETCAP_CAPS ?= cap_bpf,cap_net_admin,cap_net_raw+ep
# Stamped into the binary: `xdpscan --version` (GOFLAGS=-buildvcs=false
# leaves Go's own build info without them).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 10m

.PHONY: all deps generate build install test test-busy fuzz bench compare testbed-up testbed-down check-generated demo clean

all: build

deps:  ## apt packages the build, the tests and the comparisons need
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi
	@# The e2e test starts its own Prometheus; the package's service (started by apt on a
	@# systemd host) would hold port 9090 and scrape nothing useful: stop and disable it.
	@if [ -d /run/systemd/system ] && systemctl is-enabled -q prometheus 2>/dev/null; then \
		systemctl disable --now prometheus >/dev/null 2>&1 || true; \
	fi
	@echo "deps: $(APT_PACKAGES) installed"

generate:  ## recompile bpf/*.c into bpf/*_bpfel.{go,o} with $(BPF_CLANG)
	$(GO) generate ./...

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/xdpscan ./cmd/xdpscan

install: build  ## PREFIX=/usr/local DESTDIR=: binary (with file capabilities), man pages, bash/zsh/fish completions
	install -D -m 0755 bin/xdpscan $(DESTDIR)$(PREFIX)/bin/xdpscan
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	bin/xdpscan man $(DESTDIR)$(PREFIX)/share/man/man1
	bin/xdpscan completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/xdpscan
	bin/xdpscan completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_xdpscan
	bin/xdpscan completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/xdpscan.fish
	setcap $(SETCAP_CAPS) $(DESTDIR)$(PREFIX)/bin/xdpscan

test:  ## vet, then every test with the race detector (root: BPF and namespaces)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-busy:  ## the e2e suite with one CPU saturated (stress-ng, stopped at the end): it must pass as on an idle machine
	XDPSCAN_E2E_BUSY=1 $(GO) test -race -count=1 -timeout 30m ./e2e/

# Every fuzz target, as package:Name (a new one goes here).
FUZZ_TARGETS := loader:FuzzScanProgram loader:FuzzCaptureProgram loader:FuzzOneFieldForgery \
	filter:FuzzTranslate filter:FuzzSpecialize targets:FuzzParseTargets targets:FuzzParsePorts \
	targets:FuzzParsePortSpec scan:FuzzParseRecvErr scan:FuzzLoadResume output:FuzzRead output:FuzzParseNDJSON

fuzz:  ## a short run (30s) of every fuzz target
	@$(MAKE) --no-print-directory fuzz-long FUZZTIME=30s

fuzz-long:  ## every fuzz target for FUZZTIME each (default 10m; not part of CI)
	@for t in $(FUZZ_TARGETS); do \
		echo "== $$t"; $(GO) test ./$${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -timeout 0 $(FUZZFLAGS) || exit 1; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

compare: deps build  ## xdpscan vs masscan, zmap, tcpdump, libpcap on the testbed: tables, docs/bench/results.json, plots (~20 min)
	bin/xdpscan bench scan --target both --out docs/bench
	bin/xdpscan bench capture --out docs/bench

check-generated: generate  ## fail if the committed bpf2go outputs differ from the C sources
	@$(BPF_CLANG) --version | head -1
	@if ! git diff --quiet -- bpf/ || [ -n "$$(git status --porcelain -- bpf/)" ]; then \
		git status --short -- bpf/; \
		echo "bpf2go outputs are stale: run 'make generate' with $(BPF_CLANG) and commit bpf/"; exit 1; \
	fi
	@echo "bpf2go outputs match the C sources"

testbed-up: build
	bin/xdpscan testbed up --name $(TESTBED)

testbed-down: build
	bin/xdpscan testbed down --name $(TESTBED)

demo: deps build  ## set up, then run the main job on the testbed and tear it down
	./scripts/demo.sh

clean:
	rm -rf bin
