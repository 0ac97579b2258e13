#!/bin/sh
# gluster.sh start DIR | stop DIR - a private one-brick GlusterFS volume
# on loopback, mounted with its FUSE client at DIR/mnt, for `make bench`
# and `make check-long` (tests/check_gluster.sh).
#
#   start DIR  DIR: an absolute path to a new or empty directory of the
#              caller's. Starts glusterd, creates and starts the volume,
#              mounts it at DIR/mnt. Exit 0: mounted. Otherwise prints
#              "skipped: REASON" on standard output, leaves nothing
#              running or mounted, and exits 2 (GlusterFS cannot run
#              here) or 1 (it failed to start; the ends of its logs are
#              printed on standard error).
#   stop DIR   unmounts DIR/mnt, ends the servers and the client started
#              for DIR, removes what start made (DIR itself stays). Safe
#              to call twice, after a failed start, or with nothing there.
#
# Invariants:
# 1. Nothing shared with a glusterd the user runs: a working directory
#    (DIR/lib), run directory and CLI socket (DIR/run) of its own, and a
#    network namespace of its own (unshare -n, loopback only), because the
#    brick processes glusterd spawns always fetch their volume file from
#    port 24007 (glusterd 10 passes no port to them), which a system
#    glusterd holds. Without unshare and ip, the host's loopback is used
#    and start refuses when port 24007 is taken. glusterd listens on
#    127.0.0.1 only (transport.socket.bind-address).
# 2. Every process started here has DIR in its command line (glusterd:
#    -f DIR/glusterd.vol; the brick: --brick-name DIR/brick; the client:
#    DIR/mnt); stop ends exactly those, by pid, never by name alone.
# 3. What glusterd puts outside DIR whose name derives from DIR - the
#    brick's log /var/log/glusterfs/bricks/<DIR path>-brick.log and its
#    socket /var/run/gluster/<hash>.socket (read from the brick's command
#    line) - is removed by stop. glusterd also appends to
#    /var/log/glusterfs/cmd_history.log (shared with any other glusterd,
#    so left alone) and creates empty directories there.
# 4. The brick's host is written 127.1: the gluster tool refuses 127.0.0.1
#    and localhost as a brick host.
set -u
cmd=${1:-}
D=${2:-}
case $D in
/?*) ;;
*) echo "usage: gluster.sh start|stop /ABSOLUTE/DIR" >&2; exit 64 ;;
esac
D=${D%/}
VOL=wct

# The pids of the processes started for D (invariant 2).
ours() {
    for p in /proc/[0-9]*; do
        { read -r n < "$p/comm"; } 2>/dev/null || continue
        case $n in
        glusterd|glusterfs|glusterfsd) ;;
        *) continue ;;
        esac
        c=$( { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null) || continue
        case " $c " in
        *" $D/glusterd.vol "*|*" $D/brick "*|*" $D/mnt "*) echo "${p#/proc/}" ;;
        esac
    done
}

mounted() { awk -v m="$D/mnt" '$2 == m {f = 1} END {exit !f}' /proc/mounts; }

stop() {
    if mounted; then
        umount "$D/mnt" 2>/dev/null || umount -l "$D/mnt" 2>/dev/null ||
            echo "gluster.sh: could not unmount $D/mnt" >&2
    fi
    # The brick's socket, named from its command line (invariant 3).
    socks=$(for p in $(ours); do
        { tr '\0' '\n' < "/proc/$p/cmdline"; } 2>/dev/null |
            awk 'prev == "-S" {print} {prev = $0}'
    done)
    pids=$(ours)
    [ -n "$pids" ] && kill -TERM $pids 2>/dev/null
    i=0
    while [ -n "$(ours)" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    pids=$(ours)
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    i=0
    while [ -n "$(ours)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    [ -z "$(ours)" ] || echo "gluster.sh: processes of $D did not end: $(ours)" >&2
    for s in $socks; do
        case $s in /var/run/gluster/*.socket|/run/gluster/*.socket) rm -f "$s" ;; esac
    done
    brick=$(echo "$D/brick" | sed 's|^/||; s|/|-|g')
    rm -f "/var/log/glusterfs/bricks/$brick.log"
    mounted || rm -rf "$D/mnt"
    rm -rf "$D/lib" "$D/run" "$D/log" "$D/brick" "$D/glusterd.vol" \
        "$D/glusterd.pid" "$D/client.pid"
}

skip() {  # skip CODE REASON; on a failure (1) the logs go to stderr first
    echo "skipped: $2"
    if [ "$1" = 1 ]; then
        for l in "$D"/log/*; do
            [ -f "$l" ] && { echo "--- $l"; tail -n 15 "$l"; } >&2
        done
    fi
    stop
    exit "$1"
}

start() {
    for b in glusterd gluster glusterfs; do
        command -v $b >/dev/null 2>&1 ||
            skip 2 "no $b (Debian: glusterfs-server, glusterfs-client)"
    done
    [ "$(id -u)" -eq 0 ] || skip 2 "glusterd needs root"
    [ -c /dev/fuse ] || skip 2 "no /dev/fuse"
    mkdir -p "$D/lib" "$D/run" "$D/log" "$D/brick" "$D/mnt" || skip 1 "cannot write $D"
    cat > "$D/glusterd.vol" <<EOF
volume management
    type mgmt/glusterd
    option working-directory $D/lib
    option run-directory $D/run
    option glusterd-sockfile $D/run/glusterd.socket
    option transport-type socket
    option transport.socket.bind-address 127.0.0.1
    option transport.socket.listen-port 24007
    option ping-timeout 0
    option event-threads 1
end-volume
EOF
    # glusterd daemonizes; the daemon keeps the namespace alive.
    gd="glusterd -f $D/glusterd.vol -p $D/glusterd.pid -l $D/log/glusterd.log"
    if command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 &&
        unshare -n true 2>/dev/null; then
        unshare -n sh -c "ip link set lo up && exec $gd" ||
            skip 1 "glusterd did not start"
    else
        if awk 'NR > 1 && $4 == "0A" && $2 ~ /:5DC7$/ {f = 1} END {exit !f}' \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            skip 2 "port 24007 in use (another glusterd?) and no unshare -n to run beside it"
        fi
        $gd || skip 1 "glusterd did not start"
    fi
    i=0
    while ! [ -S "$D/run/glusterd.socket" ] || ! [ -s "$D/glusterd.pid" ]; do
        [ $i -lt 300 ] || skip 1 "glusterd did not come up in 30 s"
        sleep 0.1; i=$((i + 1))
    done
    gpid=$(cat "$D/glusterd.pid")
    G="gluster --mode=script --glusterd-sock=$D/run/glusterd.socket --log-file=$D/log/cli.log"
    i=0
    until $G volume create $VOL "127.1:$D/brick" force > "$D/log/create.out" 2>&1; do
        [ $i -lt 50 ] || skip 1 "volume create failed: $(cat "$D/log/create.out")"
        sleep 0.2; i=$((i + 1))
    done
    $G volume start $VOL > "$D/log/start.out" 2>&1 ||
        skip 1 "volume start failed: $(cat "$D/log/start.out")"
    # The client in glusterd's network namespace, where 127.1 is its host.
    nsenter --net="/proc/$gpid/ns/net" glusterfs --volfile-server=127.1 \
        --volfile-id=$VOL -p "$D/client.pid" -l "$D/log/client.log" "$D/mnt" ||
        skip 1 "the glusterfs client failed"
    i=0
    until mounted && [ "$(stat -f -c %T "$D/mnt" 2>/dev/null)" = fuseblk ] &&
        [ -d "$D/mnt/." ]; do
        [ $i -lt 300 ] || skip 1 "the mount did not appear in 30 s"
        sleep 0.1; i=$((i + 1))
    done
}

case $cmd in
start) trap 'skip 1 "interrupted"' INT TERM HUP; start ;;
stop) trap '' INT TERM HUP; stop ;;
*) echo "usage: gluster.sh start|stop /ABSOLUTE/DIR" >&2; exit 64 ;;
esac
