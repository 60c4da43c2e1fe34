# The steps that build_default.sh (the package from nothing) and rerun_heads.sh (the heads again, on
# the shipped backbone) both take. Sourced, from the repository root, with these set: seed, device,
# python, cli ("node bin/rcnn-serve.js"), recipes (models/recipes/shapes-vgg).

# A hyperparameter of config.json, by its dotted path (config.py prints lists comma-separated).
config() {
  $python $recipes/config.py "$1"
}

# The generator's training splits (seeds 1, 11, 21) under data/: their images one after another.
train=(data/train data/train-extra data/train-extra2)

# The training splits and the test split, each written unless it is there (the generator writes
# annotations.json last), all at once: the generator runs on one thread (two processes of two
# splits each wrote all four in 9.3 minutes on two cores; one after another took 23).
write_splits() {
  local split pid pids=()
  for split in "${train[@]#data/}" test; do
    [ -f "data/$split/annotations.json" ] && continue
    $cli dataset --split "$split" --out "data/$split" 2> >(sed -u "s|^|$split: |" >&2) &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
}

# Each split's selective-search boxes: `single` mode (proposals.jsonl) for Fast R-CNN's head, `fast`
# (proposals-fast.jsonl, the mode R-CNN tests with) for R-CNN's. Each file is written under another
# name and moved into place, so that an interrupted run leaves nothing a later one takes as done.
selective_search_boxes() {
  local split mode file
  for split in "${train[@]}"; do
    for mode in single fast; do
      file="$split/$(boxes_file "$mode")"
      [ -f "$file" ] && continue
      $cli proposals "$split"/images/*.jpg --mode "$mode" --max-proposals 2000 --json > "$file.partial"
      mv "$file.partial" "$file"
    done
  done
}

boxes_file() {
  if [ "$1" = single ]; then echo proposals.jsonl; else echo "proposals-$1.jsonl"; fi
}

# The Fast R-CNN and R-CNN heads, learning on the backbone of a faster-rcnn stage's .pth ($1), frozen,
# into $2/fast.pth and $2/rcnn.pth. Fast R-CNN's head has Faster R-CNN's box head's layers and starts
# from them. The two run side by side, each on one thread, as the shipped heads were trained: 49 and
# 50 minutes on two cores (5000 steps each, with a benchmark alongside for most of it), where the
# two one after the other took about 20 and 60. Each writes its log beside its weights.
train_heads() {
  local faster=$1 out=$2 fast rcnn
  mkdir -p "$out"
  OMP_NUM_THREADS=1 $python $recipes/train_shapes.py fast-rcnn --device "$device" --data "${train[@]}" \
    --proposals "${train[@]/%//$(boxes_file single)}" --backbone "$faster" --init "$faster" \
    --sizes "$(config heads.sizes)" --seed "$seed" --out "$out/fast.pth" > "$out/fast-rcnn.log" 2>&1 &
  fast=$!
  OMP_NUM_THREADS=1 $python $recipes/train_shapes.py rcnn --device "$device" --data "${train[@]}" \
    --proposals "${train[@]/%//$(boxes_file fast)}" --backbone "$faster" --seed "$seed" \
    --out "$out/rcnn.pth" > "$out/rcnn.log" 2>&1 &
  rcnn=$!
  echo "training the Fast R-CNN and R-CNN heads (logs: $out/fast-rcnn.log, $out/rcnn.log)"
  wait "$fast" || { kill "$rcnn" 2> /dev/null; tail -n 20 "$out/fast-rcnn.log"; return 1; }
  wait "$rcnn" || { tail -n 20 "$out/rcnn.log"; return 1; }
  tail -n 2 "$out/fast-rcnn.log" "$out/rcnn.log"
}
