/*
 * The connect storm of host/tests/ebpf_live.rs: COUNT TCP connects to
 * ADDR:PORT (IPv4) in a tight loop, each socket closed at once, then one
 * line on stdout with what happened and how long the loop took on the
 * monotonic clock:
 *
 *     connects 1000 refused 1000 other 0 ms 41
 *
 * Built static by the test (the busybox test image has no libc), so the
 * 1,000 connects of one container fit the 2 s whatever the
 * machine's fork/exec cost: a shell loop of `nc` spends a process per
 * connect.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ADDR PORT COUNT\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "storm: not an IPv4 address: %s\n", argv[1]);
        return 2;
    }
    int count = atoi(argv[3]);
    int refused = 0, other = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < count; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0) {
            perror("storm: socket");
            return 1;
        }
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
            if (errno == ECONNREFUSED)
                refused++;
            else
                other++;
        }
        close(s);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    long ms = (end.tv_sec - start.tv_sec) * 1000L + (end.tv_nsec - start.tv_nsec) / 1000000L;
    printf("connects %d refused %d other %d ms %ld\n", count, refused, other, ms);
    fflush(stdout);
    return 0;
}
