# go.mk — the Go programs the end-to-end tests trace, built with several Go
# toolchains (see the header comments of gotarget/main.go and gocgo/main.go for
# their ground truth).  Included by the top-level Makefile; also usable alone:
#   make -f tests/targets/go/go.mk go-targets
#
#   make go-targets        every version below
#   make go-targets-1.19   only Debian's /usr/bin/go (works offline)
#   make go-targets-1.27   a toolchain from scripts/fetch-go.sh (network on first use;
#                          fails loudly when it cannot be had — the tests skip)
#
# Into build/targets/go/VER/:
#   gotarget            default build (CGO_ENABLED=0: a static binary with Go symbols)
#   gotarget-stripped   -ldflags='-s -w' (no symbol table or DWARF; .gopclntab stays)
#   gotarget-pie        -buildmode=pie, for GO_PIE_VERSIONS only
#   gocgo               CGO_ENABLED=1, for the system version only
#
# No -trimpath: the tests expect the source paths in the binaries.  -buildvcs=false:
# stamping VCS state needs git to accept this tree and changes nothing we test.
# The build cache and GOPATH stay under build/; GOPROXY=off since only std is used.

GO_SRC          := tests/targets/go
GO_OUT          := build/targets/go
GO_TOOLCHAINS   := build/go-toolchains
GO_SYSTEM       ?= /usr/bin/go
GO_SYSTEM_VER   := 1.19
GO_VERSIONS     := 1.19 1.23 1.27
GO_PIE_VERSIONS := 1.19 1.27
GO_MK           := $(lastword $(MAKEFILE_LIST))

GO_ENV := env -u GOROOT -u GOEXPERIMENT GOCACHE=$(CURDIR)/build/go-cache \
	GOPATH=$(CURDIR)/build/gopath GOFLAGS=-mod=mod GOTOOLCHAIN=local GO111MODULE=on \
	GOPROXY=off GOWORK=off
GO_BUILD_FLAGS := -buildvcs=false

GOTARGET_DEPS := $(GO_SRC)/gotarget/main.go $(GO_SRC)/gotarget/go.mod $(GO_MK)
GOCGO_DEPS    := $(GO_SRC)/gocgo/main.go $(GO_SRC)/gocgo/go.mod $(GO_MK)

# Shell snippet: sets GO to the `go` of version $(1), checks that it is that
# version, or fails the recipe with a message.
go_select = if [ "$(1)" = "$(GO_SYSTEM_VER)" ]; then GO=$(GO_SYSTEM); \
	else GO=$$(scripts/fetch-go.sh $(1) $(GO_TOOLCHAINS))/bin/go || \
	{ echo "go.mk: no Go $(1) toolchain (scripts/fetch-go.sh failed)" >&2; exit 1; }; fi; \
	v=$$($(GO_ENV) $$GO env GOVERSION) || exit 1; \
	case "$$v" in go$(1)|go$(1).*) ;; \
	*) echo "go.mk: $$GO is $$v, not Go $(1)" >&2; exit 1;; esac

go_bins = $(GO_OUT)/$(1)/gotarget $(GO_OUT)/$(1)/gotarget-stripped \
	$(if $(filter $(1),$(GO_PIE_VERSIONS)),$(GO_OUT)/$(1)/gotarget-pie) \
	$(if $(filter $(1),$(GO_SYSTEM_VER)),$(GO_OUT)/$(1)/gocgo)

go-targets: $(addprefix go-targets-,$(GO_VERSIONS))

$(foreach v,$(GO_VERSIONS),$(eval go-targets-$(v): $(call go_bins,$(v))))

# The build runs in the module's directory (go -C needs 1.20); -o is absolute.
$(GO_OUT)/%/gotarget: $(GOTARGET_DEPS)
	@mkdir -p $(@D)
	@$(call go_select,$*); set -x; cd $(GO_SRC)/gotarget && \
		CGO_ENABLED=0 $(GO_ENV) $$GO build $(GO_BUILD_FLAGS) -o $(CURDIR)/$@ .

$(GO_OUT)/%/gotarget-stripped: $(GOTARGET_DEPS)
	@mkdir -p $(@D)
	@$(call go_select,$*); set -x; cd $(GO_SRC)/gotarget && \
		CGO_ENABLED=0 $(GO_ENV) $$GO build $(GO_BUILD_FLAGS) -ldflags='-s -w' \
		-o $(CURDIR)/$@ .

$(GO_OUT)/%/gotarget-pie: $(GOTARGET_DEPS)
	@mkdir -p $(@D)
	@$(call go_select,$*); set -x; cd $(GO_SRC)/gotarget && \
		CGO_ENABLED=0 $(GO_ENV) $$GO build $(GO_BUILD_FLAGS) -buildmode=pie \
		-o $(CURDIR)/$@ .

$(GO_OUT)/%/gocgo: $(GOCGO_DEPS)
	@mkdir -p $(@D)
	@$(call go_select,$*); set -x; cd $(GO_SRC)/gocgo && \
		CGO_ENABLED=1 $(GO_ENV) $$GO build $(GO_BUILD_FLAGS) -o $(CURDIR)/$@ .

.PHONY: go-targets $(addprefix go-targets-,$(GO_VERSIONS))
