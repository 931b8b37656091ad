# shellcheck shell=bash
# Install steps shared by scripts/demo, scripts/test and scripts/lint. Source it, don't run it.
#
# Each step checks before it acts, so a second run installs nothing and takes seconds.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$REPO_ROOT/.venv"
# Touched after a successful `pip install`; older than pyproject.toml means install again.
INSTALL_STAMP="$VENV/.transcoder-installed"
APT_UPDATED=""

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "'$*' needs root: run as root or install sudo"
    fi
}

# apt-get install the given Debian packages; refresh the package lists once per run first.
apt_install() {
    command -v apt-get >/dev/null || die "no apt-get here; install these yourself: $*"
    if [ -z "$APT_UPDATED" ]; then
        step "updating the apt package lists"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    step "installing $* (apt)"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "$@" >/dev/null
}

ensure_ffmpeg() {
    if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
        apt_install ffmpeg
    fi
    step "ffmpeg: $(ffmpeg -hide_banner -version | sed -n '1s/ Copyright.*//p')"
}

# Debian's Chromium, which the browser test of the web page drives through Playwright (it
# never downloads a browser of its own). Without it that test skips, so failing to install
# it only warns: distributions such as Ubuntu ship Chromium as a snap, not as this package.
ensure_chromium() {
    if [ ! -x /usr/bin/chromium ]; then
        (apt_install chromium) || true
    fi
    if [ -x /usr/bin/chromium ]; then
        # Debian's launcher script prints a harmless shell warning on stderr; keep stdout.
        step "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
    else
        printf 'warning: %s\n' "no /usr/bin/chromium; the web page's browser test will skip" >&2
    fi
}

# Create .venv with python3 (3.11 or newer), installing python3 and its venv module if missing.
ensure_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
        step "virtualenv: .venv ($("$VENV/bin/python" --version))"
        return
    fi
    command -v python3 >/dev/null || apt_install python3 python3-venv
    python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "transcoder needs Python 3.11 or newer; python3 is $(python3 --version)"

    step "creating the virtualenv .venv ($(python3 --version))"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
        # Debian and Ubuntu ship venv without ensurepip until python3-venv is installed.
        rm -rf "$VENV"
        apt_install python3-venv
        python3 -m venv "$VENV"
    fi
}

# pip install -e '.[dev]' into .venv, unless pyproject.toml is unchanged since the last install.
ensure_package() {
    if [ -f "$INSTALL_STAMP" ] && [ "$INSTALL_STAMP" -nt "$REPO_ROOT/pyproject.toml" ]; then
        step "transcoder is installed in .venv and up to date"
        return
    fi
    step "installing transcoder with its dev extras into .venv (first time: a minute or two)"
    (cd "$REPO_ROOT" && "$VENV/bin/python" -m pip install -qq --disable-pip-version-check -e '.[dev]')
    touch "$INSTALL_STAMP"
}
