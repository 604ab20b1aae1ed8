#!/usr/bin/env bash
# A real single-node Slurm on this machine: installs Debian's slurm-wlm and munge when
# missing, writes a slurm.conf for localhost into a scratch folder (nothing under /etc
# changes but munge's key, made when missing), starts munged, slurmctld and slurmd, then
# submits through the real sbatch:
#   - `valar slurm prepare --shards 4`: a 4-task array and a merge job after it, whose
#     merged folder must be byte-identical to a single-process `valar prepare`;
#   - `valar slurm sweep` of 2 seeds: a 2-task array and a summary job after it, whose
#     summary.csv and summary.png must be written.
# The daemons are stopped on exit, failure included. Needs root (or sudo), and the valar
# binary (VALAR, default target/debug/valar, built by the recipe).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "test-slurm needs root to start Slurm's daemons" >&2; exit 1; }
  exec sudo -E "$0" "$@"
fi

valar=$(realpath "${VALAR:-target/debug/valar}")
[ -x "$valar" ] || { echo "no valar binary at $valar (cargo build -p valar-cli)" >&2; exit 1; }

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  echo "Installing slurm-wlm and munge with apt-get ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/valar-slurm.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  status=$?
  # Daemons first (each by the id it was started with), then the scratch folder.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "test-slurm FAILED; daemon logs:" >&2
    tail -n 30 "$work"/slurmctld.log "$work"/slurmd.log "$work"/munged.log 2>/dev/null >&2 || true
    echo "(kept $work)" >&2
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT INT TERM

# munge: the key (made by the package, or here), and a daemon with its own socket.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p "$work/munge"
chown munge:munge "$work/munge"
socket="$work/munge/munge.socket"
runuser -u munge -- munged --foreground --socket="$socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/munged.log" \
  --seed-file="$work/munge/munged.seed" >"$work/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
[ -S "$socket" ] || { echo "munged did not start" >&2; exit 1; }

# slurm.conf: one node, this machine's CPUs and memory as slurmd itself reports them;
# no cgroups, no accounting daemon (a container has neither systemd nor cgroup control).
read -r cpus memory < <(slurmd -C | awk '/^NodeName/ {
  for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
  print v["CPUs"], v["RealMemory"] }')
mkdir -p "$work/state" "$work/spool"
export SLURM_CONF="$work/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=valar-test
SlurmctldHost=localhost
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$((memory > 200 ? memory - 100 : memory)) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF

slurmctld -D -i -f "$SLURM_CONF" >"$work/slurmctld.out" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$SLURM_CONF" >"$work/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 120); do
  state=$(sinfo -h -N -n localhost -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || { echo "the node did not come up (state: ${state:-none})" >&2; exit 1; }
echo "Slurm is up: $(sinfo -h -o '%P %D node(s) %c CPUs %T')"

# Waits until job $1 (and its array tasks) have left the queue, then checks that every
# one of them completed.
wait_for() {
  local id=$1
  for _ in $(seq 1200); do
    [ -z "$(squeue -h -j "$id" 2>/dev/null)" ] && break
    sleep 0.5
  done
  local states
  states=$(scontrol -o show job "$id" | grep -o 'JobState=[A-Z_]*' | sort | uniq -c)
  echo "job $id: $states"
  if grep -qv 'JobState=COMPLETED' <<<"$states"; then
    echo "job $id did not complete" >&2
    scontrol show job "$id" >&2
    return 1
  fi
}

# Submitted array job A (…) and job B after it (…): prints "A B".
job_ids() {
  sed -n 's/^Submitted array job \([0-9]*\) .* and job \([0-9]*\) after it.*/\1 \2/p' <<<"$1"
}

export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-}"
data="$work/data"
"$valar" synth --out "$data/synth" --n 600 --val-n 60 --seed 5 >/dev/null
csv="$data/synth/Manually_Annotated_file_lists/training.csv"
images="$data/synth/Manually_Annotated_Images"
# A corrupt image, so that a shard replaces a face.
first=$(sed -n 2p "$csv" | cut -d, -f1)
printf 'not a jpeg' >"$images/$first"
prep=(--csv "$csv" --images "$images" --quota 40 --seed 3)

echo "== sharded prepare: 4 array tasks, then the merge"
out=$("$valar" slurm prepare --shards 4 --cpus-per-task 1 --time 00:20:00 -- "${prep[@]}" --out "$data/merged")
echo "$out"
read -r array merge < <(job_ids "$out")
wait_for "$array"
wait_for "$merge"
for k in 0 1 2 3; do
  ls "$data/merged.shards/logs/valar-prepare-${array}_$k.log" >/dev/null
done
"$valar" prepare "${prep[@]}" --out "$data/single" >/dev/null
for f in manifest.csv faces.npy rejects.csv; do
  cmp "$data/single/$f" "$data/merged/$f"
done
grep -q corrupt_image "$data/merged/rejects.csv"
echo "merged folder is byte-identical to the single-process prepare (manifest.csv, faces.npy, rejects.csv)"

echo "== sweep: 2 seeds as 2 array tasks, then the summary"
"$valar" prepare "${prep[@]}" --size 32 --out "$data/train" >/dev/null
"$valar" prepare --csv "$data/synth/Manually_Annotated_file_lists/validation.csv" --images "$images" \
  --all --size 32 --out "$data/test" >/dev/null
cat >"$data/sweep.toml" <<EOF
test = "test"
[base]
data = "train"
model = "compact"
epochs = 2
batch_size = 32
[cross]
seed = [0, 1]
EOF
out=$("$valar" slurm sweep "$data/sweep.toml" --out "$data/sweep" --cpus-per-task 1 --time 00:20:00)
echo "$out"
read -r array summary < <(job_ids "$out")
wait_for "$array"
wait_for "$summary"
ls "$data/sweep/logs/valar-sweep-${array}_0.log" "$data/sweep/logs/valar-sweep-${array}_1.log" >/dev/null
head -n 1 "$data/sweep/summary.csv" | grep -q '^group,split,dimension,seeds'
[ "$(awk -F, 'NR > 1 && $4 == 2' "$data/sweep/summary.csv" | wc -l)" -eq 4 ]
python3 - "$data/sweep/summary.png" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    head = f.read(24)
assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
print("summary.png: %dx%d" % struct.unpack(">II", head[16:24]))
EOF
cat "$data/sweep/summary.md"
echo "test-slurm passed"
