#!/usr/bin/env bash
# Builds a real kube-apiserver and etcd from the Go module proxy for the integration tests,
# and caches them outside the repository. Needs only go, bash and coreutils.
#
# stdout gets exactly two lines, KUBE_APISERVER_BIN=<abs path> and ETCD_BIN=<abs path>;
# everything else goes to stderr.
#
# Where the binaries come from, first match wins:
#   1. KUBE_APISERVER_BIN and ETCD_BIN, both set to executables (an error if only half usable);
#   2. KUBEBUILDER_ASSETS, a directory holding kube-apiserver and etcd (envtest's layout);
#   3. ${BEACON_K8S_CACHE:-$HOME/.cache/beacon-k8s}/<KUBERNETES_VERSION>/, built on first use
#      (10-25 minutes on 2 cores for kube-apiserver; seconds afterwards, since the Go module
#      and build caches stay at their default locations).
#
# kube-apiserver: a throwaway module requiring k8s.io/kubernetes, with every staging module
# (k8s.io/api, apimachinery, apiserver, client-go, ...: the `=> ./staging/...` replaces in
# kubernetes' own go.mod) replaced by its published v0.MINOR.PATCH release, and main.go copied
# from cmd/kube-apiserver. etcd: a throwaway module requiring go.etcd.io/etcd/server/v3, main.go
# copied from that module (it is the etcd binary's main package).
set -euo pipefail

# Pinned for reproducible builds. Built rather than installed because Debian's etcd is 3.4,
# below what Kubernetes 1.31+ supports (1.34 is released against etcd 3.6), and the only
# download reachable here is the module proxy, which serves every Kubernetes and etcd release.
KUBERNETES_VERSION="v1.34.4"   # newest v1.34 patch on proxy.golang.org
ETCD_VERSION="v3.6.16"         # newest etcd 3.6 (Kubernetes v1.34.4's go.mod requires 3.6.4)
STAGING_VERSION="v0.${KUBERNETES_VERSION#v1.}"  # k8s.io/api etc. are tagged v0.34.4 for v1.34.4

exec 3>&1 1>&2  # fd 3 is the real stdout: only the two result lines go there

log() { printf '[build-binaries] %s\n' "$*"; }
die() { log "error: $*"; exit 1; }
abspath() { case $1 in /*) printf '%s' "$1" ;; *) printf '%s/%s' "$PWD" "$1" ;; esac; }
emit() {
  printf 'KUBE_APISERVER_BIN=%s\nETCD_BIN=%s\n' "$(abspath "$1")" "$(abspath "$2")" >&3
  exit 0
}
is_exe() { [[ -f $1 && -x $1 ]]; }

# 1. Explicit binaries.
if [[ -n ${KUBE_APISERVER_BIN:-} || -n ${ETCD_BIN:-} ]]; then
  is_exe "${KUBE_APISERVER_BIN:-}" || die "KUBE_APISERVER_BIN='${KUBE_APISERVER_BIN:-}' is not an executable (set both it and ETCD_BIN, or neither)"
  is_exe "${ETCD_BIN:-}" || die "ETCD_BIN='${ETCD_BIN:-}' is not an executable (set both it and KUBE_APISERVER_BIN, or neither)"
  log "using KUBE_APISERVER_BIN and ETCD_BIN from the environment"
  emit "$KUBE_APISERVER_BIN" "$ETCD_BIN"
fi

# 2. envtest assets.
if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
  if is_exe "$KUBEBUILDER_ASSETS/kube-apiserver" && is_exe "$KUBEBUILDER_ASSETS/etcd"; then
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
    emit "$KUBEBUILDER_ASSETS/kube-apiserver" "$KUBEBUILDER_ASSETS/etcd"
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; building instead"
fi

# 3. The cache, built when missing or not the pinned version.
CACHE="$(abspath "${BEACON_K8S_CACHE:-$HOME/.cache/beacon-k8s}")/$KUBERNETES_VERSION"
APISERVER="$CACHE/kube-apiserver"
ETCD="$CACHE/etcd"

apiserver_ok() { local v; v="$("$APISERVER" --version 2>/dev/null)" && [[ $v == "Kubernetes $KUBERNETES_VERSION" ]]; }
etcd_ok() { local v; v="$("$ETCD" --version 2>/dev/null)" && [[ $v == *"etcd Version: ${ETCD_VERSION#v}"* ]]; }

if apiserver_ok && etcd_ok; then emit "$APISERVER" "$ETCD"; fi

command -v go >/dev/null || die "go is not on PATH (the binaries are built from the Go module proxy)"
mkdir -p "$CACHE"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/beacon-k8s-build.XXXXXX")"
trap 'rm -rf "$WORK"; rm -f "$APISERVER.tmp.$$" "$ETCD.tmp.$$"' EXIT
export CGO_ENABLED=0

# download MODULE@VERSION: fetches it into the module cache; sets MOD_DIR, MOD_GOMOD, MOD_TIME.
download() {
  local json line
  json="$(cd "$WORK" && go mod download -json "$1")" || die "go mod download $1 failed"
  MOD_DIR="" MOD_GOMOD="" MOD_TIME=""
  while IFS= read -r line; do
    if [[ $line =~ ^[[:space:]]*\"(Dir|GoMod|Info)\":\ \"(.*)\",?$ ]]; then
      case ${BASH_REMATCH[1]} in
        Dir) MOD_DIR="${BASH_REMATCH[2]}" ;;
        GoMod) MOD_GOMOD="${BASH_REMATCH[2]}" ;;
        Info) if [[ $(<"${BASH_REMATCH[2]}") =~ \"Time\":\ ?\"([^\"]+)\" ]]; then MOD_TIME="${BASH_REMATCH[1]}"; fi ;;
      esac
    fi
  done <<<"$json"
  [[ -d $MOD_DIR && -f $MOD_GOMOD ]] || die "go mod download -json $1 gave no Dir/GoMod:"$'\n'"$json"
}

# header GOMOD: the `go` and `godebug` lines of a dependency's go.mod, so the wrapper builds
# with the same language version and GODEBUG defaults (kubernetes: godebug default=go1.24).
# Not its `toolchain` line: that would make Go fetch a newer toolchain for nothing.
header() {
  local line
  while IFS= read -r line; do
    if [[ $line =~ ^(go|godebug)[[:space:]] ]]; then printf '%s\n' "$line"; fi
  done <"$1"
}

build_apiserver() {
  local start=$SECONDS dir="$WORK/kube-apiserver" line n=0
  mkdir -p "$dir"
  log "kube-apiserver $KUBERNETES_VERSION: downloading k8s.io/kubernetes"
  download "k8s.io/kubernetes@$KUBERNETES_VERSION"
  {
    printf 'module beacon.test/kube-apiserver\n\n'
    header "$MOD_GOMOD"
    printf '\nrequire k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"
    # kubernetes requires its staging modules at v0.0.0 and replaces them with
    # ./staging/src/k8s.io/...; replaces in a dependency are ignored, so pin each to its release.
    printf 'replace (\n'
    while IFS= read -r line; do
      if [[ $line =~ ^[[:space:]]*(k8s\.io/[A-Za-z0-9._-]+)[[:space:]]+=\>[[:space:]]+\./staging/ ]]; then
        printf '\t%s => %s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[1]}" "$STAGING_VERSION"
      fi
    done <"$MOD_GOMOD"
    printf ')\n'
  } >"$dir/go.mod"
  while IFS= read -r line; do
    if [[ $line == *" => k8s.io/"* ]]; then n=$((n + 1)); fi
  done <"$dir/go.mod"
  ((n >= 20)) || die "found only $n staging modules in $MOD_GOMOD; has its layout changed?"
  log "kube-apiserver: $n staging modules pinned to $STAGING_VERSION"
  # main.go is kubernetes' own cmd/kube-apiserver/apiserver.go (blank imports included).
  cat "$MOD_DIR/cmd/kube-apiserver/apiserver.go" >"$dir/main.go"
  local build_date="$MOD_TIME"
  log "kube-apiserver: resolving dependencies (go mod tidy)"
  (cd "$dir" && go mod tidy)
  log "kube-apiserver: compiling (10-25 minutes on 2 cores the first time)"
  # As kubernetes' hack/lib/golang.sh builds release binaries: these tags, -trimpath, -s -w,
  # and the version variables it stamps (so --version and /version say v1.34.4, not v0.0.0-master).
  local major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
  local minor="${KUBERNETES_VERSION#v*.}"; minor="${minor%%.*}"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    if [[ -n $build_date ]]; then ldflags+=" -X $pkg.buildDate=$build_date"; fi
  done
  (cd "$dir" && go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags="$ldflags" -o "$APISERVER.tmp.$$" .)
  mv -f "$APISERVER.tmp.$$" "$APISERVER"
  log "kube-apiserver: built in $((SECONDS - start)) s"
}

build_etcd() {
  local start=$SECONDS dir="$WORK/etcd"
  mkdir -p "$dir"
  log "etcd $ETCD_VERSION: downloading go.etcd.io/etcd/server/v3"
  download "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  {
    printf 'module beacon.test/etcd\n\n'
    header "$MOD_GOMOD"
    printf '\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION"
  } >"$dir/go.mod"
  # go.etcd.io/etcd/server/v3 is itself the etcd binary's main package: copy its main.go.
  cat "$MOD_DIR/main.go" >"$dir/main.go"
  log "etcd: resolving dependencies (go mod tidy)"
  (cd "$dir" && go mod tidy)
  log "etcd: compiling"
  (cd "$dir" && go build -trimpath -ldflags="-s -w" -o "$ETCD.tmp.$$" .)
  mv -f "$ETCD.tmp.$$" "$ETCD"
  log "etcd: built in $((SECONDS - start)) s"
}

if ! etcd_ok; then build_etcd; fi
etcd_ok || die "$ETCD does not report etcd ${ETCD_VERSION#v}: $("$ETCD" --version 2>&1 | head -1)"
if ! apiserver_ok; then build_apiserver; fi
apiserver_ok || die "$APISERVER does not report Kubernetes $KUBERNETES_VERSION: $("$APISERVER" --version 2>&1)"
log "$("$APISERVER" --version), $("$ETCD" --version | head -1)"
emit "$APISERVER" "$ETCD"
