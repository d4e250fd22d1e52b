#!/usr/bin/env bash
# A sweep as a Slurm job array on a one-node cluster on localhost: installs
# Debian's Slurm and MUNGE, starts munged, slurmctld and slurmd with a
# generated slurm.conf (state, logs and sockets under a temporary
# directory), submits the array that `idlegrid-sim sweep --slurm` writes
# (2 mechanisms x 4 seeds of a short marketplace, 4 shards, the merge as a
# dependent job), waits for it (bounded), and checks the merged sweep.csv,
# summary.csv and plots equal a local run of the same sweep, byte for byte.
# Stops the daemons it started on exit.
#
# Called from .ci/run after the release build; standalone:
#   IDLEGRID_SIM=path/to/idlegrid-sim bash .ci/slurm.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${IDLEGRID_SIM:-${CARGO_TARGET_DIR:-target}/release/idlegrid-sim}"
BIN="$(realpath "$BIN")"
TIMEOUT="${SLURM_SWEEP_TIMEOUT:-600}"
started=$SECONDS

if ! declare -F apt_install >/dev/null; then
    apt_install() {
        if command -v apt-get >/dev/null 2>&1; then
            (apt-get update -qq && apt-get install -y -qq "$@") || echo "warning: could not install $*"
        fi
    }
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt_install slurm-wlm munge
fi
for tool in munged slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$tool" >/dev/null || { echo "slurm: $tool not installed"; exit 1; }
done
echo "slurm: installed after $((SECONDS - started)) s ($(slurmctld -V))"

T="$(mktemp -d /tmp/idlegrid-slurm.XXXXXX)"
mkdir -p "$T/ctld" "$T/d" "$T/munge"
chmod 700 "$T/munge"
# Stops the daemons this script started (by their pid files) and waits
# for them to exit (at most 20 s).
stop() {
    local pids=()
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
        [ -s "$f" ] && pids+=("$(cat "$f")")
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 40); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.5
    done
    echo "slurm: daemons still running after 20 s: ${pids[*]}"
}
trap stop EXIT

# MUNGE: a fresh key and a private socket.
dd if=/dev/urandom of="$T/munge/munge.key" bs=1 count=1024 status=none
chmod 400 "$T/munge/munge.key"
munged --force --key-file="$T/munge/munge.key" --socket="$T/munge/munge.socket" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/munge/munged.log" \
    --seed-file="$T/munge/munged.seed"

cpus="$(nproc)"
export SLURM_CONF="$T/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=idlegrid-ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$T/ctld
SlurmdSpoolDir=$T/d
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=localhost CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -i
slurmd -N localhost
for _ in $(seq 60); do
    sinfo -h -o '%T' 2>/dev/null | grep -qx idle && break
    sleep 1
done
if ! sinfo -h -o '%T' | grep -qx idle; then
    echo "slurm: the node never became idle"; sinfo || true
    tail -n 30 "$T/slurmctld.log" "$T/slurmd.log" || true
    exit 1
fi
echo "slurm: one-node cluster up ($cpus CPUs) after $((SECONDS - started)) s"

# The sweep: a short marketplace, 2 mechanisms x 4 seeds in 4 shards.
cat >"$T/tiny.toml" <<'EOF'
name = "tiny"
duration_ms = 40_000
machine = "marketplace"
[nodes]
count = 4
[marketplace]
active_secs = 6
[marketplace.providers]
count = 12
[marketplace.clients]
count = 4
job_interval_ms = 1_000
EOF
SWEEP=(sweep "$T/tiny.toml" --param marketplace.mechanism --values k_double,pay_as_ask
    --seeds 1..5 --metrics market.clearing_price.mean,market.volume,jobs.completed)
"$BIN" "${SWEEP[@]}" --jobs 1 --slurm "$T/job" --shards 4
submitted=$SECONDS
ids="$(sh "$T/job/submit.sh")"
echo "slurm: $ids"
merge="$(echo "$ids" | sed -n 's/.*merge job \([0-9]*\).*/\1/p')"
state=""
while [ $((SECONDS - submitted)) -lt "$TIMEOUT" ]; do
    state="$(scontrol show job "$merge" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')"
    case "$state" in
        COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;;
        PENDING) scontrol show job "$merge" | grep -q 'Reason=DependencyNeverSatisfied' && break ;;
    esac
    sleep 2
done
echo "slurm: merge job $merge ${state:-unknown} $((SECONDS - submitted)) s after submission"
if [ "$state" != COMPLETED ]; then
    scontrol show job "$merge" || true
    tail -n 20 "$T"/job/logs/*.out "$T/slurmctld.log" || true
    exit 1
fi

# The same sweep here; every output must be the same bytes.
"$BIN" "${SWEEP[@]}" --jobs 2 --out "$T/local" >/dev/null
diff <(sort "$T/local/sweep.csv") <(sort "$T/job/merged/sweep.csv")
for f in "$T"/local/*; do
    cmp "$f" "$T/job/merged/$(basename "$f")"
done
[ "$(ls "$T/local" | wc -l)" = "$(ls "$T/job/merged" | wc -l)" ]
echo "slurm: merged job array = local sweep ($(($(wc -l <"$T/local/sweep.csv") - 1)) runs, $(ls "$T/local" | wc -l) files identical); $((SECONDS - started)) s in all"
stop
trap - EXIT
rm -rf "$T"
