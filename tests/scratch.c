/*  scratch: see scratch.h.  */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <check.h>

#include "scratch.h"

void
vdt_scratch_make(char *dir, size_t size, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(dir, size, "%s/%s.XXXXXX", tmp && *tmp ? tmp : P_tmpdir, prefix);
    ck_assert(n > 0 && (size_t)n < size);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

const char *
vdt_scratch_path(const char *dir, const char *name)
{
    static char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    ck_assert(n > 0 && (size_t)n < sizeof path);
    return path;
}

void
vdt_scratch_write(const char *dir, const char *name, const char *text)
{
    FILE *file = fopen(vdt_scratch_path(dir, name), "w");
    ck_assert_ptr_nonnull(file);
    ck_assert_int_ge(fputs(text, file), 0);
    ck_assert_int_eq(fclose(file), 0);
}

static int
s_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
vdt_scratch_remove(const char *dir)
{
    ck_assert_int_eq(nftw(dir, s_remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}
