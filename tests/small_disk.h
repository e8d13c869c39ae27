/*  small_disk: a real 1 MiB space for store fault tests, so that a write fails for real: a tmpfs
    (a quarter filled) in a mount namespace of the test's own, or else a file size limit.  */
#ifndef VDT_SMALL_DISK_H_INCLUDED
#define VDT_SMALL_DISK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>

typedef enum { VDT_DISK_NONE, VDT_DISK_TMPFS, VDT_DISK_RLIMIT } vdt_disk_kind_t;

typedef struct {
    vdt_disk_kind_t kind;
    char mount[300]; // <dir>/disk
    struct rlimit saved;
} vdt_small_disk_t;

//  Makes <dir>/disk and writes the path of a store inside it into path[size].
void vdt_small_disk_init(vdt_small_disk_t *disk, const char *dir, char *path, size_t size);

/*  Mounts a 1 MiB tmpfs on disk->mount and fills a quarter of it. Returns whether it could.
    Before any thread starts: a process with threads may not enter a new mount namespace.  */
bool vdt_small_disk_tmpfs(vdt_small_disk_t *disk);

//  Once the store is open: limits the process's files to 1 MiB. Returns VDT_DISK_RLIMIT, or
//  VDT_DISK_NONE if it may not (the test then has nothing to run on).
vdt_disk_kind_t vdt_small_disk_limit(vdt_small_disk_t *disk);

//  Gives the space back: deletes the filler, or lifts the file size limit.
void vdt_small_disk_free(vdt_small_disk_t *disk);

//  Unmounts the tmpfs, if one was mounted (the store closed first).
void vdt_small_disk_unmount(vdt_small_disk_t *disk);

#endif
