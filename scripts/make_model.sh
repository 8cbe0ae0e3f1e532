#!/usr/bin/env bash
# make model: rebuild the bundled default (edge/assets) from scratch with the full pipeline, on
# this 2-core CPU. Every stage skips when its output exists (delete it to redo) and training
# stages resume after a kill, so re-running after an interruption loses nothing.
#   data -> teacher (cpu preset) -> PSL relabel -> student (PSL distill) -> QAT int8 -> export -> bundle
set -euo pipefail
BIN=${BIN:-.venv/bin}
DATA=${DATA:-data/synth_default}
RUNS=${RUNS:-runs/default}
FOLD=${FOLD:-0}
STUDENT_ARGS=${STUDENT_ARGS:-"--student mobilenetv2 --width 0.35 --window 2.4 --set model_args.mobilenetv2.last_channels=320 --set stream_hop_s=1.6"}
ff() { echo "+ footfall $*" >&2; "$BIN/footfall" "$@"; }

[ -f "$DATA/manifest.csv" ] || ff data synth "$DATA" --runners 20 --minutes 4 --runs 3 --seed 0
TEACHER=$RUNS/teacher$FOLD
if [ ! -f "$TEACHER/.done" ]; then
  ff train --preset cpu --data "$DATA" --fold "$FOLD" --out "$TEACHER" $([ -f "$TEACHER/last.pt" ] && echo --resume)
  echo done > "$TEACHER/.done"
fi
ff psl relabel --teacher "$TEACHER/best.pt" --data "$DATA"  # resumable: relabels only what is missing
PSL=$(ls -td "$DATA"/psl/*/ | head -1)
STUDENT=$RUNS/student$FOLD
if [ ! -f "$STUDENT/.done" ]; then
  # shellcheck disable=SC2086
  ff distill $STUDENT_ARGS --psl "$PSL" --data "$DATA" --fold "$FOLD" --preset cpu --out "$STUDENT" $([ -f "$STUDENT/last.pt" ] && echo --resume)
  echo done > "$STUDENT/.done"
fi
[ -f "$STUDENT/int8/report.json" ] || ff qat --student "$STUDENT/best.pt"
# ship the int8 graph (QAT or PTQ) with the lower validation MAE; the test runners stay unseen
INT8=$("$BIN/python" -m train.qat ship "$STUDENT/int8")
echo "+ shipping $INT8 (lower validation 5-s MAE; $STUDENT/int8/report.json)" >&2
EXPORT=$RUNS/export$FOLD
[ -f "$EXPORT/.done" ] || { ff export "$INT8" --to pte,tflite,onnx,qnn --precision int8,fp32 --data "$DATA" --out "$EXPORT" && echo done > "$EXPORT/.done"; }
"$BIN/python" -m train.bundle sample
"$BIN/python" -m train.bundle artifacts "$EXPORT"
echo "make model: done; try: make demo" >&2
