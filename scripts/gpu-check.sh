#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and CUDA 11.x drivers (ND4J 1.0.0-M2.1's CUDA backend is built for
# CUDA 11.6): builds with -Pcuda, runs the double-precision gradient checks on the CUDA backend, benches one replica
# (tokens/s, MFU against a GEMM measured in the same process on the GPU) for small and gpt2-124m, trains 50 steps,
# and prints one summary table. About 8 minutes. Not run in this project's CI (no GPU there); built there.
#   scripts/gpu-check.sh
#   GPU_CHECK_BACKEND=cpu GPU_CHECK_PRESETS=small scripts/gpu-check.sh   # the same steps on the CPU build (checks the script)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BACKEND="${GPU_CHECK_BACKEND:-cuda}"
LOG=$(mktemp -d /tmp/sparkformer-gpu-check.XXXXXX)
. "$ROOT/scripts/jvm-flags.sh"
declare -a ROWS=()
row() { ROWS+=("$(printf '%-34s %s' "$1" "$2")"); }

if [ "$BACKEND" = cuda ]; then
  command -v nvidia-smi >/dev/null || { echo "gpu-check: no nvidia-smi: this needs an NVIDIA GPU and its driver" >&2; exit 1; }
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu-check: GPU: /' >&2
  PROFILE=(-Pcuda) TARGET=target-cuda
else
  PROFILE=() TARGET=target
fi

echo "gpu-check: building (${PROFILE[*]:-cpu}) ..." >&2
mvn -B -q "${PROFILE[@]}" -DskipTests install > "$LOG/build.log" 2>&1 || { tail -30 "$LOG/build.log" >&2; exit 1; }
row "build (${BACKEND})" "ok"

echo "gpu-check: gradient checks on the ${BACKEND} backend ..." >&2
if mvn -B -q "${PROFILE[@]}" -pl worker surefire:test -Dtest='GradientCheckTest' > "$LOG/gradcheck.log" 2>&1; then
  row "gradient checks (double precision)" "pass"
else
  row "gradient checks (double precision)" "FAIL (see $LOG/gradcheck.log)"
fi

CP="$ROOT/driver/$TARGET/sparkformer-driver.jar:$ROOT/driver/$TARGET/lib/*"
run() { java -Xmx12g "${JAVA17_OPENS[@]}" -Dlog4j2.configurationFile="$ROOT/conf/log4j2.xml" -cp "$CP" org.sparkformer.driver.Main "$@"; }
for preset in ${GPU_CHECK_PRESETS:-small gpt2-124m}; do
  echo "gpu-check: bench --preset $preset ..." >&2
  batch=(); [ "$preset" = gpt2-124m ] && batch=(--batch-size 4)
  if out=$(run bench --preset "$preset" --steps 20 --warmup 5 "${batch[@]}" 2> "$LOG/bench-$preset.err" | tail -1); then
    row "bench $preset" "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("%.0f tokens/s, %.1f ms/step, MFU %.2f of GEMM %.0f GFLOP/s" % (r["tokens_per_s"], r["ms_per_step"], r["mfu"], r["gemm_gflops"]))' "$out")"
  else
    row "bench $preset" "FAIL (see $LOG/bench-$preset.err)"
  fi
done

echo "gpu-check: 50 training steps ..." >&2
DATA="${GPU_CHECK_DATA:-}"
[ -n "$DATA" ] || { DATA="$LOG/corpus.txt"; find "$ROOT" -name '*.java' -path '*/src/*' -exec cat {} + > "$DATA"; }
for dtype in float32 float16 bfloat16; do
  if run train --data "$DATA" --preset small --steps 50 --eval-interval 50 --master 'local[1]' --samples 0 --dtype "$dtype" \
      --tensorboard none --progress log --out "$LOG/run-$dtype" > "$LOG/train-$dtype.log" 2>&1; then
    row "train small 50 steps ($dtype)" "$(grep '^done' "$LOG/train-$dtype.log" | sed 's/, run in.*//')"
  else
    row "train small 50 steps ($dtype)" "FAIL (see $LOG/train-$dtype.log)"
  fi
done

echo
echo "sparkformer gpu-check (${BACKEND} backend), logs in $LOG"
printf '%s\n' "${ROWS[@]}"
