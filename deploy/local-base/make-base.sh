#!/bin/sh
# Makes the two base images the Dockerfile builds on, locally, for a machine
# that cannot pull node:20-bookworm / node:20-bookworm-slim from a registry
# (docs/container.md, "Without a registry"):
#
#   localhost/conclave-base:runtime   a minimal Debian bookworm (debootstrap --variant=minbase)
#                                     + tini + ca-certificates + this machine's Node binary
#                                     at /usr/local/bin/node (where the official images have it)
#   localhost/conclave-base:build     the same + python3, make, g++ (to compile better-sqlite3),
#                                     npm and Node's headers from this machine, npm's nodedir
#                                     set to them, and this machine's CA bundle (so npm trusts
#                                     whatever TLS proxy this machine reaches the registry through)
#
# Debian bookworm's own nodejs is 18, too old (Conclave needs >= 20.15), and
# no other Node is reachable from this machine's apt sources, so the Node
# binary (and npm, and the headers) are copied from this machine: NODE_BIN,
# default `command -v node`; it must be dynamically linked against glibc only
# (as the NodeSource and nodejs.org builds are).
#
# Usage (as root: debootstrap needs it):
#   deploy/local-base/make-base.sh                 both images
#   RUNTIME_TAG=… BUILD_TAG=… ENGINE=buildah deploy/local-base/make-base.sh
#
# Environment: ENGINE (podman, default, or buildah), DEBIAN_MIRROR (default
# http://deb.debian.org/debian), SUITE (bookworm), NODE_BIN, CACHE_DIR (the
# .deb files debootstrap downloads, kept between runs; default
# /var/cache/conclave-base), KEEP_ROOTFS=1 (leave the rootfs in place and say where).
# The rootfs is made in a temporary directory under /var/tmp and removed at the end.
set -eu

RUNTIME_TAG=${RUNTIME_TAG:-localhost/conclave-base:runtime}
BUILD_TAG=${BUILD_TAG:-localhost/conclave-base:build}
ENGINE=${ENGINE:-podman}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
CACHE_DIR=${CACHE_DIR:-/var/cache/conclave-base}
NODE_BIN=${NODE_BIN:-$(command -v node || true)}

say() { printf 'make-base: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it)"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
command -v "$ENGINE" >/dev/null || die "$ENGINE is missing (apt-get install $ENGINE)"
[ -n "$NODE_BIN" ] && [ -x "$NODE_BIN" ] || die "no Node binary: set NODE_BIN"
NODE_VERSION=$("$NODE_BIN" -p 'process.versions.node')
"$NODE_BIN" -e '
  const [a, b] = process.versions.node.split(".").map(Number)
  process.exit(a > 22 || (a === 22 && b >= 2) || (a === 20 && b >= 15) ? 0 : 1)' ||
  die "Node $NODE_VERSION at $NODE_BIN is too old: Conclave needs ^20.15.0 or >=22.2.0"
NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$NODE_BIN")")")
NPM_DIR=$NODE_PREFIX/lib/node_modules/npm
NODE_HEADERS=$NODE_PREFIX/include/node
[ -f "$NPM_DIR/bin/npm-cli.js" ] || die "npm not found next to $NODE_BIN (looked in $NPM_DIR)"
[ -f "$NODE_HEADERS/node_api.h" ] || die "Node's headers not found next to $NODE_BIN (looked in $NODE_HEADERS)"
if ldd "$NODE_BIN" | grep -v -E 'linux-vdso|ld-linux|lib(c|m|dl|pthread|rt|stdc\+\+|gcc_s)\.so' | grep -q '=>'; then
  die "$NODE_BIN needs libraries besides glibc and libstdc++: $(ldd "$NODE_BIN" | tr '\n' ' ')"
fi

WORK=$(mktemp -d /var/tmp/conclave-base.XXXXXX)
ROOTFS=$WORK/rootfs
cleanup() {
  for m in "$ROOTFS/proc" "$WORK/build/proc"; do
    mountpoint -q "$m" 2>/dev/null && umount "$m"
  done
  if [ "${KEEP_ROOTFS:-}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$CACHE_DIR"
say "debootstrap $SUITE (minbase + tini, ca-certificates) from $DEBIAN_MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=tini,ca-certificates --cache-dir="$CACHE_DIR" \
  "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
  die "debootstrap failed; its log: $(tail -n 20 "$WORK/debootstrap.log")"

say "Node $NODE_VERSION from $NODE_BIN -> /usr/local/bin/node"
install -m 0755 "$NODE_BIN" "$ROOTFS/usr/local/bin/node"
# The NodeSource binary carries its debug info (~10 MB); strip it when strip is here.
command -v strip >/dev/null && strip --strip-debug "$ROOTFS/usr/local/bin/node"
chroot "$ROOTFS" /usr/local/bin/node -e 'process.exit(0)' || die "the copied Node does not run in $SUITE"

# What the image does not need: apt's lists and caches, documentation.
slim() {
  chroot "$1" apt-get clean
  rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/usr/share/doc/* "$1"/usr/share/man/* \
    "$1"/usr/share/info/* "$1"/var/log/*.log "$1"/var/log/apt/*
}

say "the build variant: python3, make, g++, npm, Node's headers"
cp -a "$ROOTFS" "$WORK/build"
BUILD=$WORK/build
cp /etc/resolv.conf "$BUILD/etc/resolv.conf"
mount -t proc proc "$BUILD/proc"
{
  chroot "$BUILD" apt-get update -q &&
    DEBIAN_FRONTEND=noninteractive chroot "$BUILD" apt-get install -y -q --no-install-recommends \
      python3 make g++
} >"$WORK/apt.log" 2>&1 || die "apt-get in the build rootfs failed: $(tail -n 20 "$WORK/apt.log")"
umount "$BUILD/proc"
mkdir -p "$BUILD/usr/local/lib/node_modules" "$BUILD/usr/local/include" "$BUILD/usr/local/etc"
cp -a "$NPM_DIR" "$BUILD/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$BUILD/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$BUILD/usr/local/bin/npx"
cp -a "$NODE_HEADERS" "$BUILD/usr/local/include/node"
# node-gyp compiles against these headers instead of downloading them from nodejs.org.
printf 'nodedir=/usr/local\ncafile=/etc/ssl/certs/ca-certificates.crt\nfund=false\naudit=false\nupdate-notifier=false\n' \
  >"$BUILD/usr/local/etc/npmrc"
slim "$BUILD"
cp /etc/ssl/certs/ca-certificates.crt "$BUILD/etc/ssl/certs/ca-certificates.crt"
: >"$BUILD/etc/resolv.conf"

slim "$ROOTFS"

import_rootfs() {
  say "importing $1 as $2"
  case $ENGINE in
    podman)
      tar -C "$1" --numeric-owner -cf - . | podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "ENV NODE_VERSION=$NODE_VERSION" --change 'CMD ["node"]' - "$2" >/dev/null
      ;;
    buildah)
      tar -C "$1" --numeric-owner -cf "$WORK/rootfs.tar" . &&
        c=$(buildah from scratch) &&
        buildah add "$c" "$WORK/rootfs.tar" / >/dev/null &&
        buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
          --env "NODE_VERSION=$NODE_VERSION" --cmd node "$c" &&
        buildah commit --rm "$c" "$2" >/dev/null &&
        rm -f "$WORK/rootfs.tar"
      ;;
    *) die "ENGINE must be podman or buildah (got $ENGINE)" ;;
  esac
}
import_rootfs "$ROOTFS" "$RUNTIME_TAG"
import_rootfs "$BUILD" "$BUILD_TAG"
say "done: $RUNTIME_TAG and $BUILD_TAG (Node $NODE_VERSION, Debian $SUITE)"
