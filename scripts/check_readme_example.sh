#!/usr/bin/env bash
# Run the worked example of docs/guide/export.md (the ```bash block after <!-- readme-example -->;
# it was the README's until the docs site) exactly
# as written, in an empty scratch folder, with this checkout's ras_deap; then check that the
# accuracy the exported network prints without ras_deap is the test accuracy the search
# reported. Exit 0 when it is; the block's output is shown either way.
#     scripts/check_readme_example.sh            # ~1 minute (a --preset smoke search)
#     KEEP=1 scripts/check_readme_example.sh     # keep the scratch folder (printed)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
page="docs/guide/export.md"
block="$(awk '/^<!-- readme-example -->$/ {found = 1; next}
              found == 1 && /^```bash$/ {found = 2; next}
              found == 2 && /^```$/ {exit}
              found == 2 {print}' "$repo/$page")"
if [[ -z "$block" ]]; then
    echo "check_readme_example: no \`\`\`bash block after <!-- readme-example --> in $page" >&2
    exit 1
fi
scratch="$(mktemp -d "${TMPDIR:-/tmp}/ras_deap_readme.XXXXXX")"
if [[ -z "${KEEP:-}" ]]; then trap 'rm -rf "$scratch"' EXIT; else echo "scratch: $scratch"; fi
printf '%s\n' "$block" > "$scratch/example.sh"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"  # this checkout, not another install
(cd "$scratch" && bash -euo pipefail example.sh) 2>&1 | tee "$scratch/output.txt"
# the search summary's "  test accuracy  0.9704" (the retrained winner), and the last line
reported="$(grep -E '^ +test accuracy +[0-9.]+$' "$scratch/output.txt" | head -1 | awk '{print $3}')"
printed="$(grep -E '^test accuracy [0-9.]+ on [0-9]+ images$' "$scratch/output.txt" | tail -1 \
           | awk '{print $3}')"
if [[ -z "$reported" || -z "$printed" ]]; then
    echo "check_readme_example: FAILED: accuracy not found (search: '$reported', " \
         "example: '$printed')" >&2
    exit 1
fi
if [[ "$reported" != "$printed" ]]; then
    echo "check_readme_example: FAILED: the search reported test accuracy $reported, the" \
         "exported model printed $printed" >&2
    exit 1
fi
echo "check_readme_example: OK: test accuracy $printed, as the search reported"
