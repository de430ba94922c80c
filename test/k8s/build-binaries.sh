#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy, for the integration
# tests, and caches them outside the repository. Prints KUBE_APISERVER_BIN=... and
# ETCD_BIN=... on stdout (everything else goes to stderr).
#
# Overrides, in order: KUBE_APISERVER_BIN and ETCD_BIN (both executable); KUBEBUILDER_ASSETS
# (controller-runtime's envtest layout: a directory holding kube-apiserver and etcd).
#
# Why build: Debian's etcd is 3.4.23, below what Kubernetes 1.31+ supports, and no other
# download is reachable here; the module proxy serves every Kubernetes and etcd release.
set -euo pipefail

KUBERNETES_VERSION="v1.34.4"  # k8s.io/kubernetes; its staging modules are v0.34.4
STAGING_VERSION="v0.34.4"
ETCD_VERSION="v3.6.16"        # go.etcd.io/etcd/server/v3 (3.6: supported by Kubernetes 1.34)

log() { printf '[build-binaries] %s\n' "$*" >&2; }

if [ -n "${KUBE_APISERVER_BIN:-}" ] && [ -n "${ETCD_BIN:-}" ] && [ -x "$KUBE_APISERVER_BIN" ] && [ -x "$ETCD_BIN" ]; then
  printf 'KUBE_APISERVER_BIN=%s\nETCD_BIN=%s\n' "$KUBE_APISERVER_BIN" "$ETCD_BIN"; exit 0
fi
if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/kube-apiserver" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
  printf 'KUBE_APISERVER_BIN=%s\nETCD_BIN=%s\n' "$KUBEBUILDER_ASSETS/kube-apiserver" "$KUBEBUILDER_ASSETS/etcd"; exit 0
fi

CACHE="${BEACON_K8S_CACHE:-$HOME/.cache/beacon-k8s}/$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
mkdir -p "$CACHE"
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

build_apiserver() {
  local dir="$CACHE/src-apiserver"
  rm -rf "$dir"; mkdir -p "$dir"
  log "kube-apiserver $KUBERNETES_VERSION: resolving modules"
  # Kubernetes replaces each staging module with ./staging/src/...: pin them to releases.
  local mod; mod="$(curl -fsS "$(go env GOPROXY | cut -d, -f1)/k8s.io/kubernetes/@v/$KUBERNETES_VERSION.mod")"
  {
    echo "module beacon.test/kube-apiserver"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    grep -E '^\s+k8s\.io/[a-z0-9-]+ => \./staging/' <<<"$mod" | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$dir/go.mod"
  cat > "$dir/main.go" <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  (cd "$dir" && go mod tidy >&2 && log "kube-apiserver: compiling (10-25 minutes on 2 cores the first time)" && go build -trimpath -o "$CACHE/kube-apiserver" . >&2)
}

build_etcd() {
  local dir="$CACHE/src-etcd"
  rm -rf "$dir"; mkdir -p "$dir"
  log "etcd $ETCD_VERSION: resolving modules"
  printf 'module beacon.test/etcd\n\ngo 1.24.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$dir/go.mod"
  cat > "$dir/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && go mod tidy >&2 && log "etcd: compiling" && go build -trimpath -o "$CACHE/etcd" . >&2)
}

"$CACHE/etcd" --version >/dev/null 2>&1 || build_etcd
"$CACHE/kube-apiserver" --version >/dev/null 2>&1 || build_apiserver
log "$("$CACHE/kube-apiserver" --version), $("$CACHE/etcd" --version | head -1)"
printf 'KUBE_APISERVER_BIN=%s\nETCD_BIN=%s\n' "$CACHE/kube-apiserver" "$CACHE/etcd"
