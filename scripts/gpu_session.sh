#!/usr/bin/env bash
# One sitting on a lent GPU (the `device` tool) within a fixed wall-clock budget, all at once on one GPU:
#   Z. the zoo: model=cdcgan, ddpm and dit trained on MNIST for ZOO_TIME each (in the background);
#   A. the seed recipe under both update rules, 3 seeds, EPOCHS_A epochs, 6 runs at once; then scored;
#   B. the director benchmark (3 seeds in parallel) on simultaneous seed 1's best.ckpt (selection split);
#   C. scripts/bench_creators.py on the exported zoo (the seed DCGAN = simultaneous seed 1's best.ckpt).
# Results go to $OUT (the device tool brings back at most 8 files, 16 MB each).
#
#   OUT=/tmp/gpu bash scripts/gpu_session.sh                        # on the GPU machine
#   TRAINER=cpu DEV=cpu EPOCHS_A=1 N=300 ZOO_TIME=00:00:00:40 EXTRA="data.limit_train=512" \
#     AGENT="n=200 budget.steps=2 n_real=500" CREATORS="--n 300 --steps-n 100 --time-n 20 --steps 2 4 --fid-steps 2 4" \
#     BUDGET=1500 bash scripts/gpu_session.sh                       # a dry run of the whole sitting on a CPU
#
# Offline: pure-Python packages the GPU image lacks (hydra-core, omegaconf, antlr4, diffusers) and the MNIST
# .gz files travel in .devcarry/ (ignored by git).
set -u
T0=$(date +%s)
el() { echo $(($(date +%s) - T0)); }
left() { local t=$((BUDGET - $(el) - $1)); [ $t -lt 5 ] && t=5; echo $t; }
OUT=${OUT:-/tmp/gpu_out}
BUDGET=${BUDGET:-400}        # seconds for everything below
TRAINER=${TRAINER:-gpu}
DEV=${DEV:-cuda}
EPOCHS_A=${EPOCHS_A:-10}
N=${N:-10000}
EXTRA=${EXTRA:-}
AGENT=${AGENT:-n=1000 budget.steps=6}
ZOO_TIME=${ZOO_TIME:-00:00:03:00}
CREATORS=${CREATORS:---n 10000 --steps-n 2000}
W=${W:-/tmp/gpu_work}
P=$W/parity
Z=$W/zoo
mkdir -p "$OUT" "$W" "$Z"
export PYTHONPATH=$PWD/.devcarry/site:$PWD/src PYTHONUNBUFFERED=1
LOG=$OUT/session.log
say() { echo "[$(el) s] $*" | tee -a "$LOG"; }

if [ -d .devcarry/whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target .devcarry/site .devcarry/whl/*.whl >>"$LOG" 2>&1
fi
mkdir -p data/MNIST/raw
if [ -d .devcarry/MNIST/raw ] && [ ! -f data/MNIST/raw/train-images-idx3-ubyte ]; then
  cp .devcarry/MNIST/raw/*.gz data/MNIST/raw/ && gunzip -kf data/MNIST/raw/*.gz
fi
DATA="--data-root $PWD/data data.root=$PWD/data"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || true
  python3 -c "import torch, lightning, hydra, torchmetrics, torchvision, diffusers; print('torch', torch.__version__, 'lightning', lightning.__version__, 'hydra', hydra.__version__, 'torchmetrics', torchmetrics.__version__, 'torchvision', torchvision.__version__, 'diffusers', diffusers.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
  nproc; } 2>&1 | tee -a "$LOG"

# Z: the zoo, in the background, one CPU thread each (the GPU does the work)
PREC=32-true; [ "$DEV" = cuda ] && PREC=bf16-mixed
zoo() {  # name, then overrides
  local name=$1; shift
  OMP_NUM_THREADS=1 python3 scripts/train.py model=$name data=mnist data.fallback_to_bundled=false data.root=$PWD/data \
    trainer=$TRAINER trainer.max_epochs=1000 +trainer.max_time=$ZOO_TIME +trainer.enable_progress_bar=false seed=0 \
    hydra.run.dir=$Z/$name $EXTRA "$@" >"$Z/$name.log" 2>&1
}
say "Z: zoo training, $ZOO_TIME each"
zoo cdcgan model.optimizer_g.lr=2e-4 "model.optimizer_g.betas=[0.5,0.999]" model.optimizer_d.lr=2e-4 \
  "model.optimizer_d.betas=[0.5,0.999]" callbacks.fid.every_n_epochs=5 callbacks.model_checkpoint.every_n_epochs=5 &
ZP="$!"
zoo ddpm trainer.precision=$PREC callbacks.fid.every_n_epochs=5 callbacks.model_checkpoint.every_n_epochs=5 ${DDPM_EXTRA:-} &
ZP="$ZP $!"
zoo dit trainer.precision=$PREC callbacks.fid.every_n_epochs=5 callbacks.model_checkpoint.every_n_epochs=5 ${DIT_EXTRA:-} &
ZP="$ZP $!"

# A: parity, 6 runs at once, 2 threads each (16 threads each oversubscribe the CPU: see docs/benchmarks.md)
say "A: parity, $EPOCHS_A epochs"
OMP_NUM_THREADS=2 timeout $(left 200) python3 scripts/bench_parity.py --epochs "$EPOCHS_A" --seeds 1 2 3 \
  --trainer "$TRAINER" --jobs 6 --ckpt-every 5 --out "$P" --train-only $DATA $EXTRA >>"$LOG" 2>&1
say "A: trained"
for rule in simultaneous alternating; do
  OMP_NUM_THREADS=4 timeout $(left 150) python3 scripts/bench_parity.py --epochs "$EPOCHS_A" --seeds 1 2 3 --rules $rule \
    --n "$N" --out "$P" --report-only --accept-fewer --results "results_$rule.json" $DATA >"$W/parity_$rule.txt" 2>&1 &
  RP="${RP:-} $!"
done

# B: the director, on a frozen copy of the selection-chosen checkpoint
cp "$P/simultaneous_seed1/checkpoints/best.ckpt" "$W/director.ckpt" 2>/dev/null ||
  cp "$P/simultaneous_seed1/checkpoints/last.ckpt" "$W/director.ckpt"
say "B: director bench, 3 seeds in parallel"
for s in 0 1 2; do
  OMP_NUM_THREADS=2 timeout $(left 15) python3 scripts/bench_agents.py "$W/director.ckpt" --seeds $s --out "$W/agents" -- \
    $AGENT device=$DEV data.root=$PWD/data data.fallback_to_bundled=false >"$W/agents_seed$s.log" 2>&1 &
  BP="${BP:-} $!"
done

# C: the zoo, exported and measured
wait $ZP
say "Z: zoo trained"
mkdir -p "$W/export"
# GANs: best.ckpt (chosen on the selection split); diffusion: last.ckpt (EMA weights, still improving)
python3 scripts/export_zoo.py "$W/director.ckpt" --name dcgan --out "$W/export" >>"$LOG" 2>&1
python3 scripts/export_zoo.py "$(ls $Z/cdcgan/checkpoints/best.ckpt 2>/dev/null || ls $Z/cdcgan/checkpoints/last.ckpt)" \
  --name cdcgan --out "$W/export" >>"$LOG" 2>&1
for m in ddpm dit; do
  python3 scripts/export_zoo.py "$Z/$m/checkpoints/last.ckpt" --name $m --out "$W/export" >>"$LOG" 2>&1
done
# what must come back even if the call is cut short goes to $OUT as soon as it exists
(cd "$W/export" && tar czf "$OUT/zoo_gans.tar.gz" dcgan.* cdcgan.* 2>/dev/null)
cp "$W"/export/ddpm.ckpt "$W"/export/dit.ckpt "$OUT"/ 2>/dev/null
OMP_NUM_THREADS=4 timeout $(left 25) python3 scripts/bench_creators.py "$W"/export/*.ckpt $CREATORS --data-root "$PWD/data" \
  >"$W/creators.txt" 2>&1
tail -n 8 "$W/creators.txt" >>"$LOG"
(cd "$W" && tar czf "$OUT/zoo_logs.tar.gz" creators.txt export/*.json export/*.png zoo/*.log zoo/*/run.json zoo/*/grids \
  zoo/*/.hydra 2>/dev/null)
wait $RP
say "A: scored"
for rule in simultaneous alternating; do tail -n 4 "$W/parity_$rule.txt" >>"$LOG"; done
(cd "$W" && tar czf "$OUT/parity.tar.gz" parity_*.txt parity/results_*.json parity/grid_*.png parity/*/run.json \
  parity/*/train.log parity/*/grids 2>/dev/null)
wait $BP
say "B: done"
python3 scripts/bench_agents.py "$W/director.ckpt" --seeds 0 1 2 --out "$W/agents" --merge \
  --plot "$W/agents/director_fid_vs_seconds.png" >"$W/agents_table.txt" 2>&1
tail -n 12 "$W/agents_table.txt" >>"$LOG"
(cd "$W" && tar czf "$OUT/agents.tar.gz" agents_*.txt agents_seed*.log agents/results.json agents/seed*.json \
  agents/director_fid_vs_seconds.png 2>/dev/null)
say "done"
ls -la "$OUT" | tee -a "$LOG"
