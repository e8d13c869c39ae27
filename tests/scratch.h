/*  scratch: a fresh directory per test, under $TMPDIR (else the system's), removed with all it
    holds once the test is done. One place for what every suite with files needs.  */
#ifndef VDT_SCRATCH_H_INCLUDED
#define VDT_SCRATCH_H_INCLUDED

#include <stddef.h>

//  Makes "<tmp>/<prefix>.XXXXXX" and writes its path into dir[size]; aborts the test if it cannot.
void vdt_scratch_make(char *dir, size_t size, const char *prefix);

//  "<dir>/<name>" in a static buffer, valid until the next call; aborts the test if too long.
const char *vdt_scratch_path(const char *dir, const char *name);

//  Writes `text` as the file `name` of `dir` (created or replaced); aborts the test on failure.
void vdt_scratch_write(const char *dir, const char *name, const char *text);

//  Removes `dir` and everything below it (links are removed, never followed); aborts the test
//  if something cannot be removed.
void vdt_scratch_remove(const char *dir);

#endif
