/*  small_disk: see small_disk.h.  */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "small_disk.h"

#define S_SIZE         (1024 * 1024)
#define S_FILLER_BYTES (S_SIZE / 4)

void
vdt_small_disk_init(vdt_small_disk_t *disk, const char *dir, char *path, size_t size)
{
    *disk = (vdt_small_disk_t){ .kind = VDT_DISK_NONE };
    snprintf(disk->mount, sizeof disk->mount, "%s/disk", dir);
    ck_assert_int_eq(mkdir(disk->mount, 0700), 0);
    snprintf(path, size, "%s/store.db", disk->mount);
}

bool
vdt_small_disk_tmpfs(vdt_small_disk_t *disk)
{
    //  A namespace of our own: a failed test cannot leave the tmpfs mounted.
    if (unshare(CLONE_NEWNS) != 0)
        return false;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return false;
    if (mount("tmpfs", disk->mount, "tmpfs", MS_NOSUID | MS_NODEV, "size=1M") != 0)
        return false;
    char filler[512];
    snprintf(filler, sizeof filler, "%s/filler", disk->mount);
    FILE *file = fopen(filler, "w");
    ck_assert_ptr_nonnull(file);
    static const char block[4096];
    for (int i = 0; i < S_FILLER_BYTES / 4096; i++)
        ck_assert_uint_eq(fwrite(block, 1, sizeof block, file), sizeof block);
    ck_assert_int_eq(fclose(file), 0);
    disk->kind = VDT_DISK_TMPFS;
    return true;
}

vdt_disk_kind_t
vdt_small_disk_limit(vdt_small_disk_t *disk)
{
    if (getrlimit(RLIMIT_FSIZE, &disk->saved) != 0)
        return VDT_DISK_NONE;
    struct rlimit small = disk->saved;
    small.rlim_cur = S_SIZE;
    if (small.rlim_max != RLIM_INFINITY && small.rlim_max < small.rlim_cur)
        return VDT_DISK_NONE;
    //  Over the limit, write() fails with EFBIG instead of killing us with SIGXFSZ.
    if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR || setrlimit(RLIMIT_FSIZE, &small) != 0)
        return VDT_DISK_NONE;
    disk->kind = VDT_DISK_RLIMIT;
    return disk->kind;
}

void
vdt_small_disk_free(vdt_small_disk_t *disk)
{
    if (disk->kind == VDT_DISK_TMPFS) {
        char filler[512];
        snprintf(filler, sizeof filler, "%s/filler", disk->mount);
        ck_assert_int_eq(unlink(filler), 0);
    } else if (disk->kind == VDT_DISK_RLIMIT) {
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &disk->saved), 0);
        signal(SIGXFSZ, SIG_DFL);
    }
}

void
vdt_small_disk_unmount(vdt_small_disk_t *disk)
{
    if (disk->kind == VDT_DISK_TMPFS)
        ck_assert_msg(umount2(disk->mount, 0) == 0, "umount: %s", strerror(errno));
}
