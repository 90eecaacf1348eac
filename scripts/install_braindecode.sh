#!/usr/bin/env bash
# braindecode (the benchmark's EEGNet and ShallowFBCSPNet: the field's reference models)
# into $PYTHON (default: the `python` on PATH, i.e. the active venv). Idempotent: returns at
# once when the pinned versions are in and torchaudio holds no compiled libs.
#
# Why not `pip install braindecode`: braindecode requires torchaudio, and PyPI has no
# torchaudio built for torch 2.13 (the newest, 2.11.1, is built against torch 2.11). Left to
# resolve dependencies, pip may swap torch for the build a torchaudio release names (a
# multi-GB CUDA build, and not the torch eegwb runs on). So:
#   1. braindecode's ordinary dependencies: eegwb's `bench` extra (read from pyproject.toml,
#      one list for `pip install -e ".[bench]"` and for this script);
#   2. braindecode and torchaudio at pinned versions with --no-deps, so torch is untouched;
#   3. torchaudio's compiled libs (torchaudio/lib/*.so) deleted: built for torch 2.11's ABI,
#      they fail to load against torch 2.13, and torchaudio falls back to pure Python when
#      they are absent (torchaudio/_extension/utils.py: `_load_lib` returns False when the
#      .so file is not found). braindecode's models use none of the compiled ops.
# tests/test_braindecode_models.py checks the result: both models import and run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
BRAINDECODE=1.8.1
TORCHAUDIO=2.11.1

# torchaudio's lib folder, found without importing torchaudio (its libs may not load yet).
libs_dir() {
    "$PY" -c 'import importlib.util as u; s = u.find_spec("torchaudio"); print(s.submodule_search_locations[0] + "/lib" if s else "")'
}

installed() {
    "$PY" - "$BRAINDECODE" "$TORCHAUDIO" <<'PYEOF' || return 1
import importlib.metadata as m, sys
want = dict(zip(("braindecode", "torchaudio"), sys.argv[1:]))
try:
    ok = all(m.version(name).split("+")[0] == version for name, version in want.items())
except m.PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
PYEOF
    local dir
    dir=$(libs_dir)
    ! compgen -G "$dir/*.so" > /dev/null
}

if installed; then
    exit 0
fi
mapfile -t bench < <("$PY" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["bench"]))')
"$PY" -m pip install -q "${bench[@]}"
"$PY" -m pip install -q --no-deps "braindecode==$BRAINDECODE" "torchaudio==$TORCHAUDIO"
dir=$(libs_dir)
rm -f "$dir"/*.so
installed || { echo "install_braindecode.sh: braindecode $BRAINDECODE not in place" >&2; exit 1; }
