#!/usr/bin/env python3
"""Sets every timestamp in the directory entries of a small FAT image to
2000-01-01 00:00, so the EFI image in the ISO is the same bytes every build
(mtools stamps the "." and ".." entries it creates with the current time).
Only the root directory and the first clusters of the data area are touched:
mcopy -s creates the directories before it copies any file into them."""
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
        # The root directory, then the first four clusters (EFI/ and EFI/BOOT/ live there).
        regions = [(root, root_entries * 32), (data, 4 * spc * bps)]
        for start, size in regions:
            for at in range(start, start + size, 32):
                entry = img[at:at + 32]
                if entry[0] in (0x00, 0xE5) or entry[11] == 0x0F:  # free, deleted, long-name part
                    continue
                struct.pack_into('<BHHH', img, at + 13, 0, TIME, DATE, DATE)  # created (tenths, time, date), accessed
                struct.pack_into('<HH', img, at + 22, TIME, DATE)  # written
        f.seek(0)
        f.write(img)

if __name__ == '__main__':
    main(sys.argv[1])
