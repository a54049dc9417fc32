#!/usr/bin/env python3
"""Sets every timestamp in the directory entries of a small FAT12/16 image to
2000-01-01 00:00, so the EFI image in the ISO is the same bytes every build
(mtools stamps the "." and ".." entries it creates with the current time).
Walks the root directory and, from it, each subdirectory's first cluster;
file contents are never touched. Directories here hold a few entries, so
each fits in its first cluster, which is checked."""
import struct
import sys

DATE = ((2000 - 1980) << 9) | (1 << 5) | 1  # FAT date: 2000-01-01
TIME = 0

def main(path: str) -> None:
    with open(path, 'r+b') as f:
        img = bytearray(f.read())
    bps, spc, reserved, nfats, root_entries, _total16, _media, fat_sectors = struct.unpack_from('<HBHBHHBH', img, 11)
    if bps not in (512, 1024, 2048, 4096) or fat_sectors == 0 or root_entries == 0:
        sys.exit(f'{path}: not a FAT12/16 image')
    root = (reserved + nfats * fat_sectors) * bps
    data = root + root_entries * 32
    cluster_bytes = spc * bps

    def fix(start: int, size: int) -> None:
        for at in range(start, start + size, 32):
            first, attr = img[at], img[at + 11]
            if first == 0x00:
                return  # end of directory
            if first == 0xE5 or attr == 0x0F:
                continue  # deleted, or part of a long name
            struct.pack_into('<BHHH', img, at + 13, 0, TIME, DATE, DATE)  # created (tenths, time, date), accessed
            struct.pack_into('<HH', img, at + 22, TIME, DATE)  # written
            name = bytes(img[at:at + 11])
            if attr & 0x10 and name not in (b'.          ', b'..         '):
                cluster = struct.unpack_from('<H', img, at + 26)[0]
                sub = data + (cluster - 2) * cluster_bytes
                # Must end within its first cluster (a free entry there), or this walk would miss entries.
                if not any(img[e] == 0 for e in range(sub, sub + cluster_bytes, 32)):
                    sys.exit(f'{path}: a directory spans more than one cluster')
                fix(sub, cluster_bytes)

    fix(root, root_entries * 32)
    with open(path, 'r+b') as f:
        f.write(img)

if __name__ == '__main__':
    main(sys.argv[1])
