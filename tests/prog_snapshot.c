/*
 * prog_snapshot.c - a program that snapshots its own btrfs subvolume, for
 * test_shim_errors.c (shim/ioctl.c invariant (4)).
 *
 *   prog_snapshot MNT TAG
 *
 * Makes the subvolume MNT/sv-TAG, writes 20,000 lines to its file data,
 * snapshots it as MNT/snap-TAG with BTRFS_IOC_SNAP_CREATE_V2 (as backup
 * tools do), writes more, and prints the size and a hash of the
 * snapshot's copy: the kernel's holds every line written before the
 * snapshot, none after.
 */
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    char p[4200];
    int mnt = open(argv[1], O_RDONLY | O_DIRECTORY);
    struct btrfs_ioctl_vol_args v;
    memset(&v, 0, sizeof v);
    snprintf(v.name, sizeof v.name, "sv-%s", argv[2]);
    if (mnt < 0 || ioctl(mnt, BTRFS_IOC_SUBVOL_CREATE, &v) != 0) {
        perror("subvolume");
        return 2;
    }
    snprintf(p, sizeof p, "%s/sv-%s/data", argv[1], argv[2]);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 2;
    char b[64];
    for (int i = 0; i < 20000; i++) {
        int l = snprintf(b, sizeof b, "line %06d\n", i);
        if (write(fd, b, (size_t)l) != l)
            return 2;
    }
    snprintf(p, sizeof p, "%s/sv-%s", argv[1], argv[2]);
    struct btrfs_ioctl_vol_args_v2 a;
    memset(&a, 0, sizeof a);
    a.fd = open(p, O_RDONLY | O_DIRECTORY);
    snprintf(a.name, sizeof a.name, "snap-%s", argv[2]);
    if (a.fd < 0 || ioctl(mnt, BTRFS_IOC_SNAP_CREATE_V2, &a) != 0) {
        perror("snapshot");
        return 2;
    }
    if (write(fd, "after the snapshot\n", 19) != 19 || close(fd) != 0)
        return 2;
    snprintf(p, sizeof p, "%s/snap-%s/data", argv[1], argv[2]);
    FILE *f = fopen(p, "r");
    uint64_t h = 1469598103934665603ull, n = 0;
    for (int c; f && (c = getc(f)) != EOF; n++)
        h = (h ^ (unsigned char)c) * 1099511628211ull;
    printf("snapshot's data: %llu bytes, hash %016llx\n",
           (unsigned long long)n, (unsigned long long)h);
    return f ? 0 : 1;
}
