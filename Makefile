# The two commands of the README:
#   make demo   runs the whole path on embedded defaults (no server, no cgo)
#   make test   installs what the tests need (apt-get, as root), starts the
#               real servers, runs every check and test, and stops them
# .ci/test.sh documents the variables that narrow a run.
#   make cross  cross-builds the validator's binary for linux/arm64 and
#               linux/arm v7 with PC/SC, and smoke-tests it under qemu
#               (.ci/cross.sh says which Debian packages it needs)

GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)

.PHONY: test demo localkafka cross

test:
	bash .ci/test.sh

demo:
	CGO_ENABLED=0 $(GO) run ./cmd/transit demo

# A broker for running the services by hand on 127.0.0.1:9092.
localkafka:
	$(GO) run ./cmd/localkafka -ports 9092 -topic taps:8

# Vehicle computers: bin/transit-linux-arm64 and bin/transit-linux-armv7.
cross:
	GO=$(GO) bash .ci/cross.sh
