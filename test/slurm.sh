#!/usr/bin/env bash
# test/slurm.sh -- the README's Slurm recipe, run on a real (single-node) Slurm: `make test-slurm`.
#
# Starts munged, slurmctld and slurmd on localhost (Debian: slurm-wlm, munge) with a generated
# slurm.conf in a private folder, submits the demo grid (detect and niah, weights/demo.rhw) as a
# 3-task job array plus one merge job that depends on it, waits, and checks the merged outputs
# against a one-process run: the score file, the per-test records and the CSV byte for byte, the
# SVGs but for the lines that describe the run (their run comment and <desc>), and the .run.json
# without the fields that describe the run (command, threads, shard, start, wall time, tests
# resumed/run, the KV bytes of the context it allocated).  Then it kills one shard mid-run, reruns the array, and checks the shard
# resumed (its rerun says "resuming") and the merge gives the same bytes again.  Every daemon it
# started is stopped on exit, whatever happened.
#
#   test/slurm.sh [BIN]        BIN: the CLI (default ./retrieval_heads), built natively
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-./retrieval_heads}")
ROOT=$(pwd)

# The shard numbering of --shard i/n, in this one place: 1 since --shard counts 1..n (issue 23;
# 0 before).  The array is --array=$SHARD_BASE-$((SHARD_BASE + N - 1)) and each task passes
# --shard $SLURM_ARRAY_TASK_ID/N, as the README's recipe does.
SHARD_BASE=${SHARD_BASE:-1}
N=3
MODEL=weights/demo.rhw
GRID="--lengths 256:1024:3 --depths 0:100:3"

for t in munged slurmctld slurmd sbatch squeue scontrol python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "test/slurm.sh: $t not found (Debian: slurm-wlm munge python3)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "test/slurm.sh: $BIN is not built" >&2; exit 1; }

D=$(mktemp -d /tmp/rh_slurm.XXXXXX)
chmod 755 "$D"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$D"
}
trap cleanup EXIT
t_start=$(date +%s.%N)
secs() { awk -v a="$1" -v b="${2:-$(date +%s.%N)}" 'BEGIN { printf "%.1f", b - a }'; } # since $1 (until $2)

# ---- munge: a private key and socket ----
mkdir -p "$D/munge"
chmod 700 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$D/munge/munge.key"
munged --force --key-file="$D/munge/munge.key" --socket="$D/munge/sock" --pid-file="$D/munge/pid" \
    --log-file="$D/munge/log" --seed-file="$D/munge/seed"
for _ in $(seq 50); do [ -s "$D/munge/pid" ] && break; sleep 0.1; done
pids+=("$(cat "$D/munge/pid")")

# ---- slurm.conf: this host, its CPUs, private ports, files and spool ----
host=$(hostname -s)
cpus=$(nproc)
mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
port=$((20000 + $$ % 20000))
mkdir -p "$D/state" "$D/spool" "$D/out" "$D/one"
cat > "$D/slurm.conf" <<EOF
ClusterName=rhtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/sock
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$D/slurm.conf"
slurmctld -f "$SLURM_CONF"
for _ in $(seq 100); do [ -s "$D/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$D/slurmctld.pid")")
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do [ -s "$D/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$D/slurmd.pid")")
for i in $(seq 300); do
    st=$(sinfo -h -o %t 2>/dev/null || true)
    case "$st" in idle*|mix*|alloc*) break ;; esac
    [ "$i" = 300 ] && { echo "test/slurm.sh: the node never came up ($st)"; tail -n 20 "$D"/slurm*.log; exit 1; }
    sleep 0.1
done
echo "slurm: slurmctld and slurmd on $host ($cpus CPUs), port $port, up in $(secs "$t_start") s"

# ---- the recipe (README: "A grid on a Slurm cluster"): one job array, then the merge ----
# Each task: one shard of detect, then of niah; the merge job reruns both without --shard (it
# computes nothing: every test is in the shards' records) and writes the outputs.
cat > "$D/shard.sh" <<EOF
#!/bin/sh
cd "$ROOT"
set -e
"$BIN" detect $MODEL $GRID -t 1 --quiet --shard \$SLURM_ARRAY_TASK_ID/$N -o "$D/out/scores.json"
"$BIN" niah $MODEL $GRID -t 1 --quiet --shard \$SLURM_ARRAY_TASK_ID/$N -o "$D/out/niah"
EOF
cat > "$D/merge.sh" <<EOF
#!/bin/sh
cd "$ROOT"
set -e
"$BIN" detect $MODEL $GRID -t 1 --quiet -o "$D/out/scores.json"
"$BIN" niah $MODEL $GRID -t 1 --quiet -o "$D/out/niah"
EOF
submit() { # the array and the merge; prints the merge job's id
    local arr
    arr=$(sbatch --parsable --array="$SHARD_BASE-$((SHARD_BASE + N - 1))" -c 1 -o "$D/shard-%a.log" "$D/shard.sh")
    sbatch --parsable --dependency=afterok:"$arr" --kill-on-invalid-dep=yes -c 1 -o "$D/merge.log" "$D/merge.sh"
}
wait_gone() { # wait until no job is queued or running
    local i
    for i in $(seq 1800); do
        [ -z "$(squeue -h -o %i)" ] && return 0
        sleep 0.2
    done
    echo "test/slurm.sh: jobs still queued after 6 minutes:"; squeue; exit 1
}
t0=$(date +%s.%N)
merge=$(submit)
wait_gone
t1=$(date +%s.%N)
grep -q 'mean score' "$D/merge.log" || { echo "test/slurm.sh: the merge job did not finish:"; cat "$D"/*.log; exit 1; }
echo "slurm: $N-task array + merge (job $merge) done in $(secs "$t0" "$t1") s"

# ---- the one-process run (2 threads: the outputs are the same bytes for any thread count) ----
t0=$(date +%s.%N)
"$BIN" detect $MODEL $GRID -t 2 --quiet -o "$D/one/scores.json" > /dev/null
"$BIN" niah $MODEL $GRID -t 2 --quiet -o "$D/one/niah" > /dev/null
echo "one process: done in $(secs "$t0") s"

compare() { # the outputs in $D/out equal those in $D/one
    python3 - "$D/one" "$D/out" <<'EOF'
import json, sys
a, b = sys.argv[1], sys.argv[2]
RUN = ("command", "threads", "shard", "started_utc", "wall_s", "tests", "kv_cache_bytes", "kv_cache_full_bytes")
def rd(p):
    with open(p, "rb") as f:
        return f.read()
bad = 0
def body(name, x):
    # what describes the run: the SVG's run comment and <desc>
    if name.endswith(".svg"):
        return b"".join(l for l in x.splitlines(True) if not l.startswith((b"<!-- run: ", b"<desc>")))
    return x
for name in ("scores.json", "scores.svg", "niah.svg", "scores.tests.jsonl", "niah.jsonl", "niah.csv"):
    x, y = body(name, rd(f"{a}/{name}")), body(name, rd(f"{b}/{name}"))
    if x != y:
        print(f"DIFFER: {name}"); bad = 1
    else:
        print(f"  same bytes: {name}" + (" (but the lines that describe the run)" if name.endswith(".svg") else ""))
for name in ("scores.run.json", "niah.run.json"):
    try:
        x, y = json.loads(rd(f"{a}/{name}")), json.loads(rd(f"{b}/{name}"))
    except FileNotFoundError:
        continue
    for k in RUN:
        x.pop(k, None); y.pop(k, None)
    if json.dumps(x, sort_keys=True) != json.dumps(y, sort_keys=True):
        print(f"DIFFER: {name}"); bad = 1
    else:
        print(f"  same: {name} (but {', '.join(RUN)})")
sys.exit(bad)
EOF
}
compare

# ---- a killed shard: rerunning the array resumes it ----
# Remove the merged outputs and the last shard's records, run that shard alone under Slurm and
# cancel it once some of its tests are recorded; then submit the whole recipe again.
last=$((SHARD_BASE + N - 1))
rm -f "$D"/out/scores.json "$D"/out/scores.svg "$D"/out/scores.run.json "$D"/out/scores.tests.jsonl \
      "$D"/out/niah.* "$D"/out/*shard-$last-of-$N*
arr=$(sbatch --parsable --array="$last" -c 1 -o "$D/killed.log" "$D/shard.sh")
rec="$D/out/scores.shard-$last-of-$N.tests.jsonl"
for i in $(seq 600); do
    [ -f "$rec" ] && [ "$(wc -l < "$rec")" -ge 6 ] && break
    sleep 0.1
done
scancel -s KILL "$arr"
wait_gone
done_at_kill=$(wc -l < "$rec") # one test a line
echo "slurm: shard $last/$N killed with $done_at_kill tests recorded"
# the rerun of the array: the other shards find every test done, the killed one resumes
sed -i 's/--quiet --shard/--shard/' "$D/shard.sh"
merge=$(submit)
wait_gone
grep -q "resuming: $done_at_kill of" "$D/shard-$last.log" || { echo "test/slurm.sh: shard $last did not resume:"; head -n 5 "$D/shard-$last.log"; exit 1; }
echo "slurm: rerun: shard $last/$N said \"$(grep -o 'resuming: [0-9]* of [0-9]* tests already done' "$D/shard-$last.log" | head -n 1)\""
compare
echo "test/slurm.sh: passed in $(secs "$t_start") s"
