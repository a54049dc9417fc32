#!/bin/sh
# Brings a fresh Debian machine to where `npm start` and `npm test` can run:
# the Debian tools custos and its tests use, then npm ci (which builds the
# native addon against the pinned runtime's headers). Cheap when nothing is missing.
set -eu
cd "$(dirname "$0")/.."

# util-linux: losetup, blockdev, partx; fdisk: sfdisk; e2fsprogs: mkfs.ext4;
# python3, make, g++: node-gyp for the native addon; dc3dd: the peer in npm run bench;
# openssh-client (ssh-keygen) and jq: the independent checks of custody records;
# tmux: the real terminal the TUI tests drive; binutils: strip for the single executable;
# ntfs-3g: NTFS evidence drives (custos mounts them with it; the tests read them back with it);
# btrfs-progs: the compressed evidence drive of the 64 GiB memory test;
# hdparm: the independent decoder of IDENTIFY DEVICE answers (hdparm --Istdin);
# cryptsetup-bin: real LUKS1/LUKS2 headers for the encrypted-volume test;
# smartmontools, nvme-cli: the independent decoders of SMART and NVMe answers, run in the QEMU guest from a disk of their own;
# qemu-utils (qemu-img, qemu-nbd) and bubblewrap: virtual disk sources, read by QEMU in a sandbox;
# libvmdk-utils, libvhdi-utils, libqcow-utils: libyal's readers, the second oracle for virtual disk images;
# the ISO (build-iso.sh): grub-*, xorriso, mtools, cpio, zstd, kmod; qemu-system-x86: booting it.
packages="util-linux fdisk e2fsprogs mount python3 make g++ dc3dd ewf-tools sleuthkit openssh-client jq tmux binutils ntfs-3g btrfs-progs hdparm cryptsetup-bin smartmontools nvme-cli
  qemu-utils bubblewrap libvmdk-utils libvhdi-utils libqcow-utils
  grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools dosfstools cpio zstd kmod qemu-system-x86 ovmf"
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "custos setup: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
  fi
  echo "custos setup: installing$missing" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# npm ci when node_modules is absent or older than the lockfile.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] || [ "${CUSTOS_FORCE_CI:-}" = 1 ]; then
  npm ci
elif [ ! -f native/build/Release/custos_native.node ]; then
  npm run build:native
fi
