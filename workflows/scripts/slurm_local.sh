#!/usr/bin/env bash
# Single-node SLURM cluster on localhost, for CI and local testing.
#
#   bash workflows/scripts/slurm_local.sh up     STATE_DIR
#   bash workflows/scripts/slurm_local.sh status STATE_DIR
#   bash workflows/scripts/slurm_local.sh down   STATE_DIR
#
# Needs root (apt-get, /etc/munge, /etc/slurm).  Debian/Ubuntu packages
# slurm-wlm + munge (Debian 12: SLURM 22.05, munge 0.5.15).
#
# `up` writes STATE_DIR/slurm.conf and installs it as /etc/slurm/slurm.conf
# (so sbatch/squeue/snakemake find it without SLURM_CONF); an existing
# /etc/slurm/slurm.conf is backed up to STATE_DIR and restored by `down`.
# Daemon PIDs go to STATE_DIR/pids/*.pid.  `down` signals exactly those PIDs
# (after checking /proc/PID/comm), never processes found by name.
#
# Env overrides: SLURM_LOCAL_PARTITION (default: debug),
#                SLURM_LOCAL_UP_TIMEOUT (seconds, default: 60),
#                SLURM_LOCAL_CLUSTER   (ClusterName, default: avemlocal).
set -euo pipefail

export PATH="/usr/sbin:/sbin:/usr/bin:/bin:${PATH:-}"

PARTITION="${SLURM_LOCAL_PARTITION:-debug}"
UP_TIMEOUT="${SLURM_LOCAL_UP_TIMEOUT:-60}"
CLUSTER="${SLURM_LOCAL_CLUSTER:-avemlocal}"
SYS_CONF=/etc/slurm/slurm.conf
MUNGE_KEY=/etc/munge/munge.key
MUNGE_SOCKET=/run/munge/munge.socket.2
MUNGE_PIDFILE=/run/munge/munged.pid
MUNGE_LOG=/var/log/munge/munged.log
OWN_MARK="# written by avem workflows/scripts/slurm_local.sh"

log() { echo "[slurm_local] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() {
    echo "usage: $0 {up|down|status} STATE_DIR" >&2
    exit 2
}

[[ $# -eq 2 ]] || usage
CMD="$1"
mkdir -p "$2"
STATE_DIR="$(cd "$2" && pwd)"
PID_DIR="$STATE_DIR/pids"
LOG_DIR="$STATE_DIR/log"
CONF="$STATE_DIR/slurm.conf"
BACKUP="$STATE_DIR/slurm.conf.orig"
NO_BACKUP_MARK="$STATE_DIR/slurm.conf.orig.none"

# --- pid helpers ------------------------------------------------------------
# pid_of NAME: prints the recorded pid when it is alive and its comm is NAME.
pid_of() {
    local name="$1" f="$PID_DIR/$1.pid" pid comm
    [[ -s "$f" ]] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [[ "$comm" == "$name" ]] || return 1
    echo "$pid"
}

alive() { pid_of "$1" >/dev/null; }

# stop_pid NAME: SIGTERM the recorded pid, wait up to 15 s, then SIGKILL.
stop_pid() {
    local name="$1" pid i
    if ! pid="$(pid_of "$name")"; then
        [[ -e "$PID_DIR/$name.pid" ]] && log "$name: recorded pid not running (or not $name); nothing to stop"
        rm -f "$PID_DIR/$name.pid"
        return 0
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.1
    done
    if [[ -d "/proc/$pid" ]]; then
        log "$name (pid $pid) still alive after 15 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    else
        log "$name stopped after ~$((i / 10)) s"
    fi
    rm -f "$PID_DIR/$name.pid"
}

dump_logs() {
    local f n
    for f in "$MUNGE_LOG" "$LOG_DIR/slurmd.log" "$LOG_DIR/slurmctld.log"; do
        [[ -f "$f" ]] || continue
        n=40
        [[ "$f" == "$MUNGE_LOG" ]] && n=10
        echo "===== tail -n $n $f =====" >&2
        tail -n "$n" "$f" >&2 || true
    done
}

munge_works() {
    [[ -S "$MUNGE_SOCKET" ]] && munge -n -S "$MUNGE_SOCKET" 2>/dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1
}

node_name() { hostname -s; }

# --- up ---------------------------------------------------------------------
install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null &&
        command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "SLURM is not installed and we are not root"
    log "installing slurm-wlm munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q slurm-wlm munge >"$LOG_DIR/apt.log" 2>&1; then
        log "apt-get install failed; running apt-get update and retrying"
        apt-get update -q >>"$LOG_DIR/apt.log" 2>&1 || true
        apt-get install -y -q slurm-wlm munge >>"$LOG_DIR/apt.log" 2>&1 ||
            { tail -n 30 "$LOG_DIR/apt.log" >&2; die "apt-get install slurm-wlm munge failed"; }
    fi
}

ensure_munge_key() {
    if [[ ! -s "$MUNGE_KEY" ]]; then
        log "creating $MUNGE_KEY"
        install -d -o munge -g munge -m 0700 /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

start_munge() {
    if alive munged; then
        return 0
    fi
    if munge_works; then
        # A munged we did not start is already serving the socket: use it,
        # record nothing, so `down` leaves it alone.
        log "using already running munged (not started by this script; down will not stop it)"
        return 0
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f "$MUNGE_PIDFILE"
    log "starting munged as user munge"
    # munged daemonizes itself and writes its pid file.
    runuser -u munge -- munged --pid-file="$MUNGE_PIDFILE" --log-file="$MUNGE_LOG" \
        || { dump_logs; die "munged failed to start"; }
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s "$MUNGE_PIDFILE" ]] && break
        sleep 0.1
    done
    [[ -s "$MUNGE_PIDFILE" ]] || { dump_logs; die "munged wrote no pid file $MUNGE_PIDFILE"; }
    cp "$MUNGE_PIDFILE" "$PID_DIR/munged.pid"
    alive munged || { dump_logs; die "munged pid $(cat "$MUNGE_PIDFILE") is not a running munged"; }
    munge_works || { dump_logs; die "munged is running but munge -n | unmunge fails"; }
}

write_conf() {
    local node cpus mem_mb real_mb
    node="$(node_name)"
    cpus="$(nproc)"
    mem_mb=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024))
    real_mb=$((mem_mb * 90 / 100))
    cat >"$CONF" <<EOF
$OWN_MARK (state dir: $STATE_DIR)
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
MinJobAge=600
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmctldPidFile=$PID_DIR/slurmctld.pid
SlurmdPidFile=$PID_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

install_conf() {
    install -d -m 0755 /etc/slurm
    if [[ -e "$SYS_CONF" ]] && ! grep -qF "$OWN_MARK" "$SYS_CONF"; then
        if [[ ! -e "$BACKUP" ]]; then
            log "backing up existing $SYS_CONF to $BACKUP"
            cp -a "$SYS_CONF" "$BACKUP"
        fi
    elif [[ ! -e "$SYS_CONF" && ! -e "$BACKUP" ]]; then
        : >"$NO_BACKUP_MARK"
    fi
    install -m 0644 "$CONF" "$SYS_CONF"
}

wait_idle() {
    local node="$1" state="" i
    for ((i = 0; i < UP_TIMEOUT * 2; i++)); do
        state="$(sinfo -h -N -n "$node" -o '%T' 2>/dev/null | head -n1 || true)"
        case "$state" in
        idle | mixed | allocated) return 0 ;;
        esac
        alive slurmctld || { dump_logs; die "slurmctld died during start-up"; }
        alive slurmd || { dump_logs; die "slurmd died during start-up"; }
        sleep 0.5
    done
    log "node $node not idle after ${UP_TIMEOUT}s (state: '${state:-none}')"
    sinfo -N -l >&2 || true
    dump_logs
    die "SLURM did not come up"
}

cmd_up() {
    mkdir -p "$PID_DIR" "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
    if alive slurmctld && alive slurmd; then
        [[ -f "$CONF" ]] && install_conf
        log "already up (slurmctld pid $(pid_of slurmctld), slurmd pid $(pid_of slurmd))"
        echo "$PARTITION"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "must run as root"
    install_packages
    ensure_munge_key
    start_munge
    write_conf
    install_conf
    local node
    node="$(node_name)"
    if ! alive slurmctld; then
        log "starting slurmctld"
        # -c: clear saved state (jobs, node states) for a fresh cluster.
        slurmctld -c -f "$SYS_CONF" || { dump_logs; die "slurmctld failed to start"; }
    fi
    if ! alive slurmd; then
        log "starting slurmd"
        slurmd -f "$SYS_CONF" || { dump_logs; die "slurmd failed to start"; }
    fi
    local i
    for ((i = 0; i < 50; i++)); do
        alive slurmctld && alive slurmd && break
        sleep 0.1
    done
    wait_idle "$node"
    log "up: node $node idle, partition $PARTITION (slurmctld $(pid_of slurmctld), slurmd $(pid_of slurmd), munged $(pid_of munged || echo external))"
    echo "$PARTITION"
}

# --- down -------------------------------------------------------------------
cmd_down() {
    if alive slurmctld; then
        # Cancel jobs of *this* cluster so their slurmstepd processes end.
        local jobs
        jobs="$(squeue -h -o '%A' -t PENDING,RUNNING,SUSPENDED,COMPLETING 2>/dev/null | tr '\n' ' ' || true)"
        if [[ -n "${jobs// /}" ]]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            local i
            for ((i = 0; i < 20; i++)); do
                [[ -z "$(squeue -h -o '%A' -t RUNNING,COMPLETING 2>/dev/null)" ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_pid slurmd
    stop_pid slurmctld
    stop_pid munged
    if [[ -e "$BACKUP" ]]; then
        log "restoring $SYS_CONF from $BACKUP"
        cp -a "$BACKUP" "$SYS_CONF"
        rm -f "$BACKUP"
    elif [[ -e "$NO_BACKUP_MARK" ]]; then
        if [[ -e "$SYS_CONF" ]] && grep -qF "$OWN_MARK" "$SYS_CONF"; then
            rm -f "$SYS_CONF"
        fi
        rm -f "$NO_BACKUP_MARK"
    fi
    log "down"
}

# --- status -----------------------------------------------------------------
cmd_status() {
    local rc=0 n
    for n in munged slurmctld slurmd; do
        if alive "$n"; then
            echo "$n: running (pid $(pid_of "$n"))"
        elif [[ $n == munged ]] && munge_works; then
            echo "$n: running (not started by this script)"
        else
            echo "$n: not running"
            rc=1
        fi
    done
    if [[ $rc -eq 0 ]]; then
        sinfo -N -o '%N %P %T %c %m' || rc=1
    fi
    return $rc
}

case "$CMD" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*) usage ;;
esac
