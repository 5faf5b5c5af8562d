# Sourced by the other scripts: make .venv with the project and its dev extra, then activate it.
# Set NLSQL_VENV to use another virtual environment.
VENV="${NLSQL_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
  touch "$stamp"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
