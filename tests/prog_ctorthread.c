/*
 * prog_ctorthread DIR - linked with so_ctorthread.so, whose constructor
 * started a thread before the shim's constructor ran. Reads its
 * descriptor table's size (FDSize), writes 100 lines to DIR/ctor.out
 * (the cache is made then, and its descriptors placed), reads it again:
 * prints "fdsize kept" when the table did not grow meanwhile, as without
 * the shim (shim/altstack.c (5), ownfd.c (6): grown while the process had
 * one thread; growing the table of a process with threads waits for an
 * RCU grace period, 14-24 ms here: probe AD F5), "fdsize grew"
 * otherwise; "no thread" when the library's thread is not there.
 *
 * prog_ctorthread DIR opener - with WCT_CTOR_OPENER set, the library's
 * thread opens and closes /dev/null from its constructor on: prints
 * "opens N wrong M", M the opens that did not get the lowest free number
 * while the shim's constructor ran.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib_shim.h"

extern long ctor_opens, ctor_wrong;
void ctor_opener_stop(void);

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[2], "opener")) {
        ctor_opener_stop();
        printf("opens %ld wrong %ld\n", ctor_opens, ctor_wrong);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: prog_ctorthread DIR [opener]\n");
        return 2;
    }
    if (wct_status_field("Threads") < 2) {
        printf("no thread\n");
        return 0;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/ctor.out", argv[1]);
    long before = wct_status_field("FDSize");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return perror("open"), 1;
    char line[64];
    memset(line, 'c', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 100; i++)
        if (write(fd, line, sizeof line) != (ssize_t)sizeof line)
            return perror("write"), 1;
    if (close(fd) != 0)
        return perror("close"), 1;
    long after = wct_status_field("FDSize");
    unlink(path);
    printf("fdsize %s\n", after > before ? "grew" : "kept");
    return 0;
}
