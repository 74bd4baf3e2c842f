#!/usr/bin/env bash
# Mutation testing with mutmut (a dev extra): does the test suite notice when the code is
# changed on purpose (>= turned into >, a constant off by one, a return value dropped)?
#
#   scripts/mutation.sh                                  # analysis/, monitor/, api/auth.py
#   scripts/mutation.sh src/genperf/api/auth.py -- tests/api/test_auth.py
#
# Arguments before `--` are the files or folders to mutate, after it the tests to run on each
# mutant (default: the tests of those packages). Not part of CI: the whole default scope is
# thousands of mutants, hours on 2 cores. Runs in a scratch copy of the repository (mutmut
# rewrites files and reads its settings from pyproject.toml), prints mutmut's results and the
# score: killed / (killed + survived); timeouts count as killed, skipped ones are left out.
# Environment: PYTHON (default .venv/bin/python), JOBS (parallel mutants, default: cores).
# Known limits: code that runs only at import time (api/auth.py's require(), which builds the
# route dependencies) cannot be switched per mutant, so its mutants always "survive"; and
# tests/api/test_serve.py in the selection makes every mutant survive (leave it out).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$repo/.venv/bin/python}"
jobs="${JOBS:-$(nproc)}"

targets=()
tests=()
seen_separator=0
for arg in "$@"; do
  if [ "$arg" = "--" ]; then seen_separator=1; continue; fi
  if [ "$seen_separator" = 1 ]; then tests+=("$arg"); else targets+=("$arg"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(src/genperf/analysis src/genperf/monitor src/genperf/api/auth.py)
fi
if [ ${#tests[@]} -eq 0 ]; then
  tests=(tests/analysis tests/monitor tests/api/test_auth.py)
fi

work="$(mktemp -d -t genperf-mutation.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT; echo "scratch copy: $work" >&2
# Tracked and new (not ignored) files only: no virtualenv, no caches.
(cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
  (cd "$repo" && xargs -0 cp --parents -t "$work" 2>/dev/null || true)
cd "$work"

toml_list() {
  local out="" item
  for item in "$@"; do out+="\"$item\", "; done
  echo "[${out%, }]"
}
# The copy's pyproject gets mutmut's settings (the repository's own stays as it is).
only=()
for target in "${targets[@]}"; do
  if [ -d "$target" ]; then only+=("$target/*"); else only+=("$target"); fi
done
cat >>pyproject.toml <<EOF

[tool.mutmut]
source_paths = ["src"]
only_mutate = $(toml_list "${only[@]}")
pytest_add_cli_args_test_selection = $(toml_list "${tests[@]}")
pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not slow and not postgres", "-W", "ignore"]
also_copy = ["tests", "benchmarks"]
EOF

# mutmut puts mutants/src first on sys.path itself. A PYTHONPATH naming that folder before it
# exists would make Python cache it as empty, and the tests would import the unmutated code.
status=0
env -u PYTHONPATH "$python" -m mutmut run --max-children "$jobs" || status=$?
"$python" -m mutmut export-cicd-stats >/dev/null 2>&1 || true
if [ -f mutants/mutmut-cicd-stats.json ]; then
  "$python" - <<'EOF'
import json

s = json.load(open("mutants/mutmut-cicd-stats.json"))
killed = s.get("killed", 0) + s.get("timeout", 0)
survived = s.get("survived", 0)
total = killed + survived
print(json.dumps(s))
if total:
    print(f"mutation score: {killed}/{total} killed = {100 * killed / total:.1f}%")
EOF
  "$python" -m mutmut results 2>/dev/null | grep -E "survived" | head -100 || true
fi
exit "$status"
