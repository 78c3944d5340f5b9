#!/usr/bin/env bash
# A single-node SLURM on this Debian machine, for trying the SLURM launcher and for the `slurm` tests.
#
#   sudo scripts/slurm_local.sh          # installs slurm-wlm and munge if absent, writes slurm.conf for this
#                                        # host, starts munged, slurmctld and slurmd, waits for an idle node
#   sudo scripts/slurm_local.sh stop     # stops the three daemons
#
# Two partitions on the one node: `cpu` (the default) and `debug` (2-minute limit, for preemption tests).
# Jobs may be requeued (JobRequeue=1): submitit's checkpoint/requeue is what resumes them.
set -euo pipefail

if [ "${1:-}" = "stop" ]; then
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run as root (it installs packages and starts daemons): sudo $0" >&2
  exit 2
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null
  }
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
conf_dir=/etc/slurm
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge /etc/munge
chown slurm: /var/spool/slurmctld /var/log/slurm
chown munge: /run/munge /etc/munge

if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown munge: /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi

cat > "$conf_dir/slurm.conf" <<EOF
# written by artdirector's scripts/slurm_local.sh for host $host
ClusterName=artdirector-local
SlurmctldHost=$host
SlurmUser=slurm
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
KillWait=10
OverTimeLimit=0
# a requeued job may start again once its credential expires (default 120 s): 30 s keeps the requeue test short
AuthInfo=cred_expire=30
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
PartitionName=debug Nodes=$host MaxTime=2 State=UP OverSubscribe=FORCE:4
EOF

pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 60); do
  state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1 || true)
  case "$state" in
    idle*|mixed*|allocated*) echo "SLURM is up: node $host ($cpus CPUs, ${mem_mb} MB) is $state"; exit 0 ;;
  esac
  sleep 1
done
echo "error: the node did not become idle in 60 s; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
exit 1
