#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost for the workflow's SLURM test:
# munged + mariadbd + slurmdbd (for sacct) + slurmctld + slurmd, two fake GPUs (gres), partitions
# gpu and cpu on the one node.
#
#   tests/slurm/cluster.sh start DIR   # writes configs under DIR, starts the daemons, waits for the node
#   tests/slurm/cluster.sh stop DIR    # stops only the daemons this script started (by PID)
#
# Needs Debian's slurm-wlm, slurmdbd, munge and mariadb-server, and root. No systemd: every daemon
# is started directly. Facts behind the details: slurmdbd.conf must be mode 600; SlurmctldHost must
# be the short hostname; a gres without File= is dropped and the node goes INVAL, so File= points at
# character devices; without DefMemPerCPU a job takes the whole node's memory. The configs are
# linked into /etc/slurm because the executor's job step drops SLURM_CONF before its nested srun;
# an existing, real /etc/slurm/slurm.conf is never touched (the script refuses to start).
set -euo pipefail

cmd=${1:?start or stop}
dir=$(realpath -m "${2:?directory}")
host=$(hostname -s)

CONFS="slurm.conf slurmdbd.conf gres.conf"

stop() {
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    if [ -f "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
  for f in $CONFS; do
    if [ "$(readlink "/etc/slurm/$f" 2>/dev/null)" = "$dir/$f" ]; then rm -f "/etc/slurm/$f"; fi
  done
}

wait_for() {  # wait_for SECONDS COMMAND...
  local limit=$1; shift
  for _ in $(seq $((limit * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for: $*" >&2
  return 1
}

start() {
  for f in $CONFS; do
    if [ -e "/etc/slurm/$f" ] && [ ! -L "/etc/slurm/$f" ]; then
      echo "/etc/slurm/$f exists and is not ours: refusing to start a test cluster here" >&2
      exit 1
    fi
  done
  mkdir -p "$dir"/{state,spool,dev,mysql,log} /run/munge /run/mysqld
  # fake GPUs: character devices, as slurmd requires for gres File=
  for i in 0 1; do [ -e "$dir/dev/gpu$i" ] || mknod "$dir/dev/gpu$i" c 1 3; done

  # munge
  [ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  munged --force --socket=/run/munge/munge.socket.2 --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log"
  wait_for 20 munge -n

  # mariadb for slurmdbd
  if [ ! -d "$dir/mysql/mysql" ]; then
    mariadb-install-db --datadir="$dir/mysql" --user=root --auth-root-authentication-method=socket \
      >"$dir/log/mariadb-install.log" 2>&1
  fi
  mariadbd --datadir="$dir/mysql" --user=root --socket=/run/mysqld/mysqld.sock \
    --pid-file="$dir/mariadbd.pid" --skip-networking --log-error="$dir/log/mariadb.log" &
  wait_for 60 mariadb --socket=/run/mysqld/mysqld.sock -e "select 1"
  mariadb --socket=/run/mysqld/mysqld.sock -e "
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

  cat >"$dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=16819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
EOF
  chmod 600 "$dir/slurmdbd.conf"

  node=$(slurmd -C | head -1 | sed 's/ RealMemory=[0-9]*//; s/ UpTime=.*//')
  cat >"$dir/slurm.conf" <<EOF
ClusterName=hyperface-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=16819
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
$node NodeAddr=127.0.0.1 RealMemory=8000 Gres=gpu:2 State=UNKNOWN
PartitionName=gpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=cpu Nodes=$host Default=NO MaxTime=INFINITE State=UP
EOF
  echo "NodeName=$host Name=gpu File=$dir/dev/gpu[0-1]" >"$dir/gres.conf"

  mkdir -p /etc/slurm
  for f in $CONFS; do ln -sfn "$dir/$f" "/etc/slurm/$f"; done
  slurmdbd
  wait_for 60 sacctmgr -n show cluster
  slurmctld
  wait_for 60 scontrol ping
  slurmd
  wait_for 90 bash -c "sinfo -h -N -o '%T' | grep -Eq '^(idle|mixed|allocated)'"
  sinfo -N -o '%N %T %G %c %m'
}

case $cmd in
  start) trap 'stop' ERR; start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
